from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFont

from sd_sweep.core import grid
from sd_sweep.core.grid import MAX_SIDE, GridAxis, GridEntry, Sheet, build_sheets, resolve_layout

CELL = 16


def make_axes(*counts: int) -> list[GridAxis]:
    names = ["a", "b", "c", "d", "e"]
    return [GridAxis(names[i], names[i].upper(), [f"{names[i]}{v}" for v in range(n)]) for i, n in enumerate(counts)]


def color_for(coords: dict[str, int]) -> tuple[int, int, int]:
    key = sum(v * 37**i for i, v in enumerate(coords.values()))
    return (40 + key * 53 % 200, 40 + key * 97 % 200, 40 + key * 29 % 200)


def make_entries(axes: list[GridAxis], size: tuple[int, int] = (CELL, CELL), skip=()) -> list[GridEntry]:
    entries = []
    for combo in itertools.product(*(range(len(a.labels)) for a in axes)):
        coords = {a.name: v for a, v in zip(axes, combo, strict=True)}
        if combo in skip:
            continue
        entries.append(GridEntry(coords, Image.new("RGB", size, color_for(coords))))
    return entries


def all_coords(axes: list[GridAxis]) -> list[tuple[int, ...]]:
    return list(itertools.product(*(range(len(a.labels)) for a in axes)))


def covered(sheets: list[Sheet], axes: list[GridAxis]) -> list[tuple[int, ...]]:
    return [tuple(c[a.name] for a in axes) for s in sheets for c in s.cells]


def is_blank(image: Image.Image, box: tuple[int, int, int, int]) -> bool:
    return image.crop(box).convert("L").getextrema() == (255, 255)


# --- resolve_layout ---------------------------------------------------------------------------


def test_resolve_layout_defaults() -> None:
    assert resolve_layout([], None, None, None) == (None, None, [])
    assert resolve_layout(make_axes(2), None, None, None) == ("a", None, [])
    assert resolve_layout(make_axes(2, 2), None, None, None) == ("a", "b", [])
    assert resolve_layout(make_axes(2, 2, 2, 2), None, None, None) == ("a", "b", ["c", "d"])


def test_resolve_layout_explicit_choices_and_unnamed_axes_become_pages() -> None:
    axes = make_axes(2, 2, 2, 2)
    assert resolve_layout(axes, "c", "a", None) == ("c", "a", ["b", "d"])
    assert resolve_layout(axes, "d", None, ["c"]) == ("d", None, ["c", "a", "b"])
    assert resolve_layout(axes, None, "b", []) == (None, "b", ["a", "c", "d"])
    assert resolve_layout(axes, None, None, ["d", "a"]) == (None, None, ["d", "a", "b", "c"])


@pytest.mark.parametrize(
    ("x", "y", "pages", "named"),
    [
        ("zz", None, None, "'zz'"),
        ("a", "nope", ["bad"], "'nope', 'bad'"),
        ("a", "a", None, "'a'"),
        ("a", "b", ["b", "c", "c"], "'b', 'c'"),
    ],
)
def test_resolve_layout_errors_name_the_axes(x, y, pages, named) -> None:
    with pytest.raises(ValueError, match=named):
        resolve_layout(make_axes(2, 2, 2), x, y, pages)


def test_duplicate_axis_names_rejected() -> None:
    axes = [GridAxis("a", "A", ["1"]), GridAxis("a", "A2", ["2"])]
    with pytest.raises(ValueError, match="'a'"):
        resolve_layout(axes, None, None, None)


# --- entry validation -----------------------------------------------------------------------


def test_bad_entries_rejected_before_rendering() -> None:
    axes = make_axes(2, 2)
    with pytest.raises(ValueError, match="out of range"):
        build_sheets(axes, [GridEntry({"a": 0, "b": 2}, None)])
    with pytest.raises(ValueError, match="missing axes"):
        build_sheets(axes, [GridEntry({"a": 0}, None)])
    with pytest.raises(ValueError, match="more than one"):
        build_sheets(axes, [GridEntry({"a": 0, "b": 0}, None), GridEntry({"a": 0, "b": 0}, None)])
    with pytest.raises(ValueError, match="without values"):
        build_sheets([GridAxis("a", "A", [])], [])
    with pytest.raises(ValueError, match="pixel_budget"):
        build_sheets(axes, [], pixel_budget=0)


# --- counts and sizes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("counts", "x", "y", "pages", "n_sheets", "grid_shape"),
    [
        ((3,), None, None, None, 1, (3, 1)),
        ((3,), None, "a", None, 1, (1, 3)),
        ((3, 2), None, None, None, 1, (3, 2)),
        ((3, 2), "b", "a", None, 1, (2, 3)),
        ((3, 2), "a", None, None, 2, (3, 1)),
        ((3, 2), None, None, ["a"], 6, (1, 1)),
        ((3, 2, 4), None, None, None, 4, (3, 2)),
        ((3, 2, 4), "c", "a", None, 2, (4, 3)),
        ((3, 2, 4), "c", None, ["b"], 6, (4, 1)),
        ((2, 3, 2, 2), None, None, None, 4, (2, 3)),
        ((2, 3, 2, 2), "d", "c", ["b", "a"], 6, (2, 2)),
        ((2, 3, 2, 2), None, "b", [], 8, (1, 3)),
    ],
)
def test_sheet_counts_and_sizes(*, counts, x, y, pages, n_sheets, grid_shape) -> None:
    axes = make_axes(*counts)
    entries = make_entries(axes)
    sheets = list(build_sheets(axes, entries, x=x, y=y, pages=pages, margin=2))
    assert len(sheets) == n_sheets
    assert sorted(covered(sheets, axes)) == all_coords(axes)
    assert len({s.stem for s in sheets}) == n_sheets
    cols, rows = grid_shape
    for sheet in sheets:
        assert len(sheet.cells) == cols * rows
        assert sheet.missing == []
        assert sheet.parts == 1
        assert sheet.scale == 1.0
        width, height = sheet.image.size
        assert width >= cols * CELL + (cols - 1) * 2
        assert height >= rows * CELL + (rows - 1) * 2
    assert len({s.image.size for s in sheets}) == 1


def test_unlabelled_sheet_is_exactly_the_cells() -> None:
    axes = make_axes(3, 2)
    sheets = list(build_sheets(axes, make_entries(axes), margin=3, draw_labels=False))
    assert sheets[0].image.size == (3 * CELL + 2 * 3, 2 * CELL + 3)
    first = sheets[0].cells[0]
    assert sheets[0].image.getpixel((0, 0)) == color_for(first)
    assert sheets[0].cells[1] == {"a": 1, "b": 0}
    assert sheets[0].image.getpixel((CELL + 3, 0)) == color_for({"a": 1, "b": 0})


def test_no_axes_gives_one_cell() -> None:
    image = Image.new("RGB", (CELL, CELL), (1, 2, 3))
    (sheet,) = build_sheets([], [GridEntry({}, image)])
    assert (sheet.title, sheet.stem, sheet.cells) == ("", "grid", [{}])
    assert image.getpixel((0, 0)) == (1, 2, 3)  # caller's image is not closed


def test_titles_and_stems() -> None:
    axes = [
        GridAxis("cfg_scale", "CFG scale", ["5", "7"]),
        GridAxis("steps", "Steps", ["20"]),
        GridAxis("seed", "seed", ["2", "-1"]),
        GridAxis("sampler_name", "Sampler", ["Euler a", "Euler/a"]),
    ]
    sheets = list(build_sheets(axes, make_entries(axes)))
    assert [s.title for s in sheets] == [
        "seed: 2, Sampler: Euler a",
        "seed: 2, Sampler: Euler/a",
        "seed: -1, Sampler: Euler a",
        "seed: -1, Sampler: Euler/a",
    ]
    stems = [s.stem for s in sheets]
    assert stems[0] == "grid-seed_2-sampler_name_Euler_a"
    assert len(set(stems)) == 4
    assert all(all(ch.isalnum() or ch in "._-+=~" for ch in stem) for stem in stems)
    assert sheets[0].page == {"seed": 0, "sampler_name": 0}
    no_pages = list(build_sheets(axes[:2], make_entries(axes[:2]), stem_prefix="xyz"))
    assert [(s.title, s.stem) for s in no_pages] == [("", "xyz")]


# --- labels ---------------------------------------------------------------------------------


def test_headers_are_drawn() -> None:
    axes = make_axes(3, 2, 2)
    sheet = next(build_sheets(axes, make_entries(axes, size=(64, 64))))
    width, height = sheet.image.size
    left = width - 3 * 64
    top = height - 2 * 64
    assert min(left, top) > 0
    assert not is_blank(sheet.image, (left, 0, width, top))  # title and column headers
    assert not is_blank(sheet.image, (0, top, left, height))  # row headers
    for col in range(3):
        assert not is_blank(sheet.image, (left + col * 64, 0, left + (col + 1) * 64, top))


def test_long_labels_wrap_at_words_and_grow_the_header() -> None:
    short = [GridAxis("a", "A", ["x", "y"]), GridAxis("b", "B", ["1", "2"])]
    long_text = "a very long label that cannot possibly fit on one line of a small cell"
    long = [GridAxis("a", "A", [long_text, "y"]), GridAxis("b", "B", ["1", "2"])]
    size = (96, 96)
    short_sheet = next(build_sheets(short, make_entries(short, size=size)))
    long_sheet = next(build_sheets(long, make_entries(long, size=size)))
    assert long_sheet.image.width == short_sheet.image.width
    assert long_sheet.image.height > short_sheet.image.height + 20


def test_a_word_wider_than_a_column_widens_it_instead_of_being_split() -> None:
    word = "Supercalifragilisticexpialidocious" * 2
    axes = [GridAxis("a", "A", [word, "y"]), GridAxis("b", "B", ["1", "2"])]
    page = grid._Page(
        title="",
        x_labels=grid._headers(axes[0]),
        y_labels=grid._headers(axes[1]),
        box=(96, 96),
        n_cols=2,
        n_rows=2,
        margin=0,
        font_source=grid._font_source(None),
    )
    geo = grid._layout(page, 1.0, draw_labels=True)
    assert geo.col_w > 96
    assert [line for lines in geo.col_lines for line in lines] == ["A:", word, "A: y"]


def test_headers_name_their_axis() -> None:
    axis = GridAxis("cfg_scale", "CFG scale", ["5", "7"])
    assert grid._headers(axis) == ["CFG scale: 5", "CFG scale: 7"]
    assert grid._headers(GridAxis("steps", "", ["10"])) == ["steps: 10"]


def test_wrap_breaks_long_words_and_never_truncates() -> None:
    measure = grid._Measure(grid._get_font(grid._font_source(None), 12), 2)
    text = "short " + "x" * 80 + " tail\nsecond paragraph"
    lines = measure.wrap(text, 60)
    assert len(lines) > 3
    assert all(measure.width(line) <= 60 for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "").replace("\n", "")


def test_bitmap_default_font_fallback(monkeypatch) -> None:
    monkeypatch.setattr(grid, "_font_source", lambda font_path: None)
    monkeypatch.setattr(grid, "_get_font", lambda source, size: ImageFont.load_default())
    axes = [GridAxis("a", "A", ["a fairly long label for a bitmap font", "b"]), GridAxis("b", "B", ["r1", "r2"])]
    sheet = next(build_sheets(axes, make_entries(axes, size=(48, 48))))
    width, height = sheet.image.size
    assert not is_blank(sheet.image, (width - 96, 0, width, height - 96))


def test_get_font_without_source_works() -> None:
    font = grid._get_font(None, 20)
    assert grid._Measure(font, 2).width("abc") > 0


def test_bad_font_path_falls_back(tmp_path: Path) -> None:
    axes = make_axes(2)
    sheets = list(build_sheets(axes, make_entries(axes), font_path=str(tmp_path / "missing.ttf")))
    assert len(sheets) == 1


# --- missing cells and mixed sizes ----------------------------------------------------------


def test_missing_entries_get_placeholders() -> None:
    axes = make_axes(2, 2)
    entries = make_entries(axes, skip={(1, 1)})
    entries[0].image = None
    (sheet,) = build_sheets(axes, entries, draw_labels=False)
    assert sheet.missing == [{"a": 0, "b": 0}, {"a": 1, "b": 1}]
    assert len(sheet.cells) == 4
    center = sheet.image.getpixel((CELL + CELL // 2 + 3, CELL + 3))
    assert center not in (grid.BACKGROUND, color_for({"a": 1, "b": 1}))


def test_page_without_any_image_uses_fallback_box() -> None:
    axes = make_axes(2, 2, 2)
    entries = [e for e in make_entries(axes, size=(20, 12)) if e.coords["c"] == 0]
    sheets = list(build_sheets(axes, entries, draw_labels=False))
    assert [s.image.size for s in sheets] == [(40, 24), (40, 24)]
    assert len(sheets[1].missing) == 4


def test_mixed_sizes_are_centred_in_the_largest_box() -> None:
    axes = [GridAxis("size", "Size", ["small", "wide", "tall"])]
    sizes = [(8, 8), (24, 10), (10, 20)]
    entries = [GridEntry({"size": i}, Image.new("RGB", s, (255, 0, 0))) for i, s in enumerate(sizes)]
    (sheet,) = build_sheets(axes, entries, draw_labels=False)
    assert sheet.image.size == (3 * 24, 20)
    assert sheet.image.getpixel((12, 10)) == (255, 0, 0)
    assert sheet.image.getpixel((0, 0)) == grid.BACKGROUND
    assert sheet.image.getpixel((24, 5)) == (255, 0, 0)
    assert sheet.image.getpixel((24, 0)) == grid.BACKGROUND
    assert sheet.image.getpixel((48 + 12, 0)) == (255, 0, 0)
    assert sheet.image.getpixel((48, 10)) == grid.BACKGROUND


def test_modes_and_transparency() -> None:
    axes = make_axes(3)
    images = [
        Image.new("RGBA", (CELL, CELL), (255, 0, 0, 0)),
        Image.new("L", (CELL, CELL), 0),
        Image.new("P", (CELL, CELL)),
    ]
    entries = [GridEntry({"a": i}, im) for i, im in enumerate(images)]
    (sheet,) = build_sheets(axes, entries, draw_labels=False)
    assert sheet.image.mode == "RGB"
    assert sheet.image.getpixel((1, 1)) == grid.BACKGROUND
    assert sheet.image.getpixel((CELL + 1, 1)) == (0, 0, 0)


# --- pixel budget ---------------------------------------------------------------------------


def test_budget_splits_rows_and_repeats_headers() -> None:
    axes = make_axes(3, 10, 2)
    full = next(build_sheets(axes, make_entries(axes)))
    budget = full.image.width * (full.image.height // 3)
    sheets = list(build_sheets(axes, make_entries(axes), pixel_budget=budget))
    assert len(sheets) > 2
    first_page = [s for s in sheets if s.page == {"c": 0}]
    assert [s.part for s in first_page] == list(range(1, len(first_page) + 1))
    assert all(s.parts == len(first_page) for s in first_page)
    assert [s.stem for s in first_page] == [f"grid-c_c0-p{i}" for i in range(1, len(first_page) + 1)]
    assert all(s.title == "C: c0" for s in first_page)
    assert all(s.scale == 1.0 for s in sheets)
    for sheet in sheets:
        assert sheet.image.width * sheet.image.height <= budget
        assert sheet.image.width == full.image.width
        assert not is_blank(sheet.image, (full.image.width - 3 * CELL, 0, full.image.width, 20))
    assert sorted(covered(sheets, axes)) == all_coords(axes)
    rows = [[c["b"] for c in s.cells[::3]] for s in first_page]
    assert [r for part in rows for r in part] == list(range(10))
    assert max(map(len, rows)) - min(map(len, rows)) <= 1


def test_budget_downscales_when_one_row_is_too_big() -> None:
    axes = make_axes(4, 3)
    entries = make_entries(axes, size=(200, 100))
    budget = 60_000
    sheets = list(build_sheets(axes, entries, pixel_budget=budget, margin=2))
    assert all(s.image.width * s.image.height <= budget for s in sheets)
    assert all(0 < s.scale < 1 for s in sheets)
    assert sorted(covered(sheets, axes)) == all_coords(axes)


def test_max_side_limit(monkeypatch) -> None:
    monkeypatch.setattr(grid, "MAX_SIDE", 100)
    axes = make_axes(5, 12)
    sheets = list(build_sheets(axes, make_entries(axes), draw_labels=False, margin=1))
    assert all(max(s.image.size) <= 100 for s in sheets)
    assert sorted(covered(sheets, axes)) == all_coords(axes)
    assert len(sheets) > 1
    assert sheets[0].scale == 1.0
    wide = list(build_sheets(make_axes(20), make_entries(make_axes(20)), draw_labels=False))
    assert len(wide) == 1
    assert wide[0].image.width <= 100
    assert wide[0].scale < 1
    assert MAX_SIDE == 65_000


def test_budget_too_small_for_labels_drops_them_then_errors() -> None:
    axes = [GridAxis("a", "A", ["long label " * 5] * 4)]
    sheets = list(build_sheets(axes, make_entries(axes), pixel_budget=8))
    assert all(s.image.width * s.image.height <= 8 for s in sheets)
    with pytest.raises(ValueError, match="cannot fit"):
        list(build_sheets(make_axes(9), make_entries(make_axes(9)), pixel_budget=8))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    counts=st.lists(st.integers(1, 4), min_size=1, max_size=4),
    layout_seed=st.integers(0, 10_000),
    budget=st.integers(2_000, 40_000),
    margin=st.integers(0, 3),
    draw_labels=st.booleans(),
    data=st.data(),
)
def test_any_layout_and_budget_covers_every_cell_once(
    *, counts, layout_seed, budget, margin, draw_labels, data
) -> None:
    axes = make_axes(*counts)
    names = [a.name for a in axes]
    order = data.draw(st.permutations(names))
    x = order[0] if layout_seed % 3 else None
    y = order[1] if len(order) > 1 and layout_seed % 5 else None
    pages = [n for n in order[2:] if layout_seed % 2]
    skip = set(data.draw(st.lists(st.sampled_from(all_coords(axes)), max_size=3)))
    sizes = data.draw(st.lists(st.tuples(st.integers(4, 40), st.integers(4, 40)), min_size=1, max_size=3))
    entries = []
    for i, combo in enumerate(all_coords(axes)):
        if combo not in skip:
            coords = dict(zip(names, combo, strict=True))
            entries.append(GridEntry(coords, Image.new("RGB", sizes[i % len(sizes)], color_for(coords))))
    sheets = list(
        build_sheets(axes, entries, x=x, y=y, pages=pages, pixel_budget=budget, margin=margin, draw_labels=draw_labels)
    )
    assert sorted(covered(sheets, axes)) == all_coords(axes)
    assert sorted(tuple(c[n] for n in names) for s in sheets for c in s.missing) == sorted(skip)
    assert len({s.stem for s in sheets}) == len(sheets)
    for sheet in sheets:
        assert sheet.image.width * sheet.image.height <= budget


# --- lazy opening ---------------------------------------------------------------------------


def test_paths_are_opened_lazily_and_closed(tmp_path: Path, monkeypatch) -> None:
    axes = make_axes(2, 2, 3)
    entries = []
    for entry in make_entries(axes):
        path = tmp_path / ("-".join(map(str, entry.coords.values())) + ".png")
        entry.image.save(path)
        entries.append(GridEntry(entry.coords, str(path) if entry.coords["a"] else path))

    opened: list[str] = []
    open_now: set[int] = set()
    real_open, real_close = Image.open, Image.Image.close

    def counting_open(fp, *args, **kwargs):
        image = real_open(fp, *args, **kwargs)
        opened.append(str(fp))
        open_now.add(id(image))
        return image

    def counting_close(self):
        open_now.discard(id(self))
        return real_close(self)

    monkeypatch.setattr(grid.Image, "open", counting_open)
    monkeypatch.setattr(grid.Image.Image, "close", counting_close)

    sheets = build_sheets(axes, entries)
    assert opened == []
    for page in range(3):
        sheet = next(sheets)
        assert sheet.page == {"c": page}
        assert opened
        assert all(Path(p).stem.endswith(f"-{page}") for p in opened)
        assert open_now == set()
        assert sheet.missing == []
        colors = {color for _, color in sheet.image.getcolors(1 << 16)}
        assert {color_for({"a": a, "b": b, "c": page}) for a in range(2) for b in range(2)} <= colors
        opened.clear()
    assert next(sheets, None) is None


def test_unreadable_file_becomes_placeholder(tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    axes = make_axes(3)
    entries = [
        GridEntry({"a": 0}, Image.new("RGB", (CELL, CELL))),
        GridEntry({"a": 1}, bad),
        GridEntry({"a": 2}, tmp_path / "gone.png"),
    ]
    (sheet,) = build_sheets(axes, entries)
    assert sheet.missing == [{"a": 1}, {"a": 2}]
