"""Labelled comparison sheets ("XYZ grids") for sweeps with any number of axes.

One axis runs along the columns (x), one along the rows (y) and every remaining axis splits
the sweep into pages, one sheet (or several parts of it) per combination of page-axis values.
Sheets are built lazily: :func:`build_sheets` is a generator that opens and pastes the images
of one sheet at a time, so memory stays bounded by the largest sheet, never the whole sweep.
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from PIL import Image, ImageDraw, ImageFont

logger = logging.getLogger(__name__)

MAX_SIDE = 65_000
"""Largest width or height of a sheet; PNG and JPEG writers (and viewers) fail above it."""

BACKGROUND = (255, 255, 255)
TEXT_COLOR = (0, 0, 0)
PLACEHOLDER_FILL = (224, 224, 224)
PLACEHOLDER_LINE = (176, 176, 176)

_FONT_CANDIDATES: tuple[str, ...] = (
    "DejaVuSans.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
    "/Library/Fonts/Arial.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "C:/Windows/Fonts/arial.ttf",
    "C:/Windows/Fonts/segoeui.ttf",
    "Arial.ttf",
    "arial.ttf",
)

_LANCZOS = getattr(Image, "Resampling", Image).LANCZOS


@dataclass(frozen=True)
class GridAxis:
    """One sweep axis: ``name`` is the key used in coords, ``title`` the text shown in page
    titles and ``labels`` the value labels in display order."""

    name: str
    title: str
    labels: list[str]


@dataclass
class GridEntry:
    """One cell: a value index per axis name, and its image (a path is opened only while its
    sheet is drawn; ``None`` draws a placeholder)."""

    coords: dict[str, int]
    image: Image.Image | str | os.PathLike | None


@dataclass
class Sheet:
    """One rendered sheet.

    ``cells`` lists the coordinates of every cell placed on it (placeholders included) in
    row-major order; ``missing`` the subset drawn as placeholders (no image, or an unreadable
    file). ``part``/``parts`` number the row splits of one page (1/1 when it was not split) and
    ``scale`` is the factor the cells were downscaled by to respect the pixel budget.
    """

    title: str
    stem: str
    image: Image.Image
    cells: list[dict[str, int]] = field(default_factory=list)
    missing: list[dict[str, int]] = field(default_factory=list)
    page: dict[str, int] = field(default_factory=dict)
    part: int = 1
    parts: int = 1
    scale: float = 1.0


def resolve_layout(
    axes: list[GridAxis], x: str | None, y: str | None, pages: list[str] | None
) -> tuple[str | None, str | None, list[str]]:
    """Return ``(x, y, pages)`` with every axis placed exactly once.

    With nothing chosen, the first axis becomes the columns, the second the rows and the rest
    page axes. Otherwise the choices are taken as given (``None`` meaning a single column or
    row) and axes named nowhere are appended to the page axes in axis order.
    """
    names = [axis.name for axis in axes]
    dup_axes = sorted({n for n in names if names.count(n) > 1})
    if dup_axes:
        raise ValueError(f"duplicated axis names in the sweep: {', '.join(map(repr, dup_axes))}")
    if x is None and y is None and pages is None:
        return (names[0] if names else None, names[1] if len(names) > 1 else None, names[2:])

    chosen = [n for n in (x, y) if n is not None] + list(pages or [])
    unknown = [n for n in dict.fromkeys(chosen) if n not in names]
    if unknown:
        raise ValueError(
            f"unknown axis names in the grid layout: {', '.join(map(repr, unknown))} "
            f"(axes: {', '.join(map(repr, names)) or 'none'})"
        )
    duplicated = [n for n in dict.fromkeys(chosen) if chosen.count(n) > 1]
    if duplicated:
        raise ValueError(f"axis names used more than once in the grid layout: {', '.join(map(repr, duplicated))}")
    page_axes = list(pages or []) + [n for n in names if n not in chosen]
    return x, y, page_axes


def build_sheets(
    axes: list[GridAxis],
    entries: list[GridEntry],
    *,
    x: str | None = None,
    y: str | None = None,
    pages: list[str] | None = None,
    pixel_budget: int = 64_000_000,
    margin: int = 0,
    font_path: str | None = None,
    draw_labels: bool = True,
    stem_prefix: str = "grid",
) -> Iterator[Sheet]:
    """Yield the sheets of a sweep, one page (or page part) at a time.

    Entries are validated before the first sheet is yielded; images given as paths are only
    opened while their sheet is being drawn and closed right after. A page too large for
    ``pixel_budget`` (or :data:`MAX_SIDE`) is split by rows into parts ``-p1``, ``-p2``...;
    when even one row is too large the cells are downscaled until one fits.
    """
    if pixel_budget < 1:
        raise ValueError(f"pixel_budget must be positive (got {pixel_budget!r})")
    if margin < 0:
        raise ValueError(f"margin must not be negative (got {margin!r})")
    x, y, page_names = resolve_layout(axes, x, y, pages)
    empty = [axis.name for axis in axes if not axis.labels]
    if empty:
        raise ValueError(f"axes without values: {', '.join(map(repr, empty))}")
    index = _index_entries(axes, entries)
    return _generate(
        axes,
        index,
        x=x,
        y=y,
        page_names=page_names,
        pixel_budget=pixel_budget,
        margin=margin,
        font_path=font_path,
        draw_labels=draw_labels,
        stem_prefix=stem_prefix,
    )


def _index_entries(axes: list[GridAxis], entries: list[GridEntry]) -> dict[tuple[int, ...], GridEntry]:
    names = [axis.name for axis in axes]
    index: dict[tuple[int, ...], GridEntry] = {}
    for i, entry in enumerate(entries):
        keys = set(entry.coords)
        if keys != set(names):
            missing = [n for n in names if n not in keys]
            extra = sorted(keys - set(names))
            raise ValueError(f"entries[{i}].coords: missing axes {missing}, unknown axes {extra}")
        key = tuple(entry.coords[n] for n in names)
        for axis, value in zip(axes, key, strict=True):
            if not isinstance(value, int) or not 0 <= value < len(axis.labels):
                raise ValueError(
                    f"entries[{i}].coords[{axis.name!r}]: index {value!r} out of range 0..{len(axis.labels) - 1}"
                )
        if key in index:
            raise ValueError(f"entries[{i}]: more than one entry for coords {entry.coords}")
        index[key] = entry
    return index


def _generate(
    axes: list[GridAxis],
    index: dict[tuple[int, ...], GridEntry],
    *,
    x: str | None,
    y: str | None,
    page_names: list[str],
    pixel_budget: int,
    margin: int,
    font_path: str | None,
    draw_labels: bool,
    stem_prefix: str,
) -> Iterator[Sheet]:
    by_name = {axis.name: axis for axis in axes}
    names = [axis.name for axis in axes]
    x_axis = by_name[x] if x is not None else None
    y_axis = by_name[y] if y is not None else None
    x_labels = _headers(x_axis) if x_axis else [""]
    y_labels = _headers(y_axis) if y_axis else [""]
    page_axes = [by_name[n] for n in page_names]
    font_source = _font_source(font_path)
    used_stems: set[str] = set()
    fallback_box: tuple[int, int] | None = None

    for page_values in itertools.product(*(range(len(a.labels)) for a in page_axes)):
        page = dict(zip(page_names, page_values, strict=True))
        title = ", ".join(f"{a.title or a.name}: {a.labels[v]}" for a, v in zip(page_axes, page_values, strict=True))
        page_stem = "-".join(
            [_safe(stem_prefix) or "grid"]
            + [
                f"{_safe(a.name, 24)}_{_safe(str(a.labels[v]), 40) or v}"
                for a, v in zip(page_axes, page_values, strict=True)
            ]
        )

        grid_cells: list[list[tuple[dict[str, int], GridEntry | None]]] = []
        for row in range(len(y_labels)):
            row_cells = []
            for col in range(len(x_labels)):
                coords = dict(page)
                if x is not None:
                    coords[x] = col
                if y is not None:
                    coords[y] = row
                ordered = {n: coords[n] for n in names}
                row_cells.append((ordered, index.get(tuple(ordered[n] for n in names))))
            grid_cells.append(row_cells)

        sizes = [_image_size(e.image) for r in grid_cells for _, e in r if e is not None and e.image is not None]
        known = [s for s in sizes if s is not None]
        if known:
            box = (max(w for w, _ in known), max(h for _, h in known))
            fallback_box = fallback_box or box
        else:
            fallback_box = fallback_box or _first_size(index.values()) or (256, 256)
            box = fallback_box

        layout_page = _Page(
            title=title,
            x_labels=x_labels if any(label.strip() for label in x_labels) else None,
            y_labels=y_labels if any(label.strip() for label in y_labels) else None,
            box=box,
            n_cols=len(x_labels),
            n_rows=len(y_labels),
            margin=margin,
            font_source=font_source,
        )
        geo = _fit(layout_page, pixel_budget, draw_labels=draw_labels)
        rows_per_part = geo.max_rows(pixel_budget)
        n_parts = math.ceil(len(y_labels) / rows_per_part)
        base, extra = divmod(len(y_labels), n_parts)
        start = 0
        for part in range(1, n_parts + 1):
            count = base + (1 if part <= extra else 0)
            rows = list(range(start, start + count))
            start += count
            stem = page_stem if n_parts == 1 else f"{page_stem}-p{part}"
            stem = _unique(stem, used_stems)
            image, cells, missing = _render(geo, grid_cells, rows)
            yield Sheet(
                title=title,
                stem=stem,
                image=image,
                cells=cells,
                missing=missing,
                page=dict(page),
                part=part,
                parts=n_parts,
                scale=geo.scale,
            )


def _headers(axis: GridAxis) -> list[str]:
    """``CFG scale: 7``: each header names its axis, as the X/Y/Z plot's do."""
    name = axis.title or axis.name
    return [f"{name}: {label}" for label in axis.labels]


def _safe(text: str, limit: int = 64) -> str:
    return re.sub(r"[^A-Za-z0-9.+=-]+", "_", text).strip("._")[:limit].strip("._")


def _unique(stem: str, used: set[str]) -> str:
    candidate, n = stem, 2
    while candidate in used:
        candidate = f"{stem}~{n}"
        n += 1
    used.add(candidate)
    return candidate


def _image_size(image: Image.Image | str | os.PathLike | None) -> tuple[int, int] | None:
    """Size of an image or image file; reading a file's size decodes only its header."""
    if image is None:
        return None
    if isinstance(image, Image.Image):
        return image.size
    try:
        opened = Image.open(image)
    except OSError as e:
        logger.warning("grid: cannot read image %s: %s", image, e)
        return None
    try:
        return opened.size
    finally:
        opened.close()


def _first_size(entries: Iterable[GridEntry]) -> tuple[int, int] | None:
    for entry in entries:
        size = _image_size(entry.image)
        if size is not None:
            return size
    return None


# --- fonts and text -------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _font_source(font_path: str | None) -> str | None:
    """The first TrueType font that loads: ``font_path``, then common system fonts."""
    candidates = ((font_path,) if font_path else ()) + _FONT_CANDIDATES
    for candidate in candidates:
        try:
            ImageFont.truetype(candidate, 12)
        except OSError:
            if candidate == font_path:
                logger.warning("grid: cannot load font %s, searching system fonts instead", font_path)
            continue
        return candidate
    return None


@functools.lru_cache(maxsize=64)
def _get_font(source: str | None, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A font of ``size`` px: the TrueType ``source``, Pillow's bundled scalable font
    (Pillow >= 10.1) or, as the last resort, the fixed-size bitmap default."""
    if source is not None:
        try:
            return ImageFont.truetype(source, size)
        except OSError:
            pass
    try:
        font = ImageFont.load_default(size=size)  # type: ignore[call-arg]
        if isinstance(font, ImageFont.FreeTypeFont):
            return font
    except (TypeError, OSError):
        pass
    return ImageFont.load_default()


class _Measure:
    """Measures and wraps text in one font, with a uniform line pitch."""

    _scratch = ImageDraw.Draw(Image.new("L", (1, 1)))

    def __init__(self, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, spacing: int) -> None:
        self.font = font
        self.spacing = spacing
        top, bottom = self.bbox("Agjy|")[1::2]
        self.top = top
        self.line_h = max(bottom - top, 1)

    def bbox(self, text: str) -> tuple[int, int, int, int]:
        return tuple(int(v) for v in self._scratch.textbbox((0, 0), text, font=self.font))  # type: ignore[return-value]

    def width(self, text: str) -> int:
        left, _, right, _ = self.bbox(text)
        return right - left

    def block_height(self, lines: list[str]) -> int:
        return len(lines) * self.line_h + max(len(lines) - 1, 0) * self.spacing if lines else 0

    def wrap(self, text: str, max_width: int) -> list[str]:
        """Word-wrap ``text`` to ``max_width`` px, splitting words that are wider than a line."""
        lines: list[str] = []
        for paragraph in text.splitlines() or [""]:
            current = ""
            for word in paragraph.split():
                candidate = f"{current} {word}" if current else word
                if self.width(candidate) <= max_width:
                    current = candidate
                    continue
                if current:
                    lines.append(current)
                    current = ""
                if self.width(word) <= max_width:
                    current = word
                    continue
                for ch in word:
                    if current and self.width(current + ch) > max_width:
                        lines.append(current)
                        current = ""
                    current += ch
            lines.append(current)
        while len(lines) > 1 and lines[-1] == "":
            lines.pop()
        return lines

    def draw(self, draw: ImageDraw.ImageDraw, lines: list[str], center_x: float, top_y: float) -> None:
        for i, line in enumerate(lines):
            left, _, right, _ = self.bbox(line)
            pos_x = center_x - (right - left) / 2 - left
            pos_y = top_y + i * (self.line_h + self.spacing) - self.top
            draw.text((round(pos_x), round(pos_y)), line, font=self.font, fill=TEXT_COLOR)


# --- layout -----------------------------------------------------------------------------------


@dataclass
class _Page:
    """What the layout of one page depends on, besides the scale."""

    title: str
    x_labels: list[str] | None
    y_labels: list[str] | None
    box: tuple[int, int]
    n_cols: int
    n_rows: int
    margin: int
    font_source: str | None


@dataclass
class _Geometry:
    """Where everything goes on the sheets of one page; ``left``/``top`` is the first cell's
    corner, columns are ``col_w`` and rows ``row_h`` apart (plus ``margin``)."""

    scale: float
    cell_w: int
    cell_h: int
    col_w: int
    row_h: int
    margin: int
    left: int
    top: int
    width: int
    n_rows: int
    measure: _Measure | None = None
    pad: int = 0
    row_label_x: float = 0.0
    title_lines: list[str] = field(default_factory=list)
    title_h: int = 0
    col_lines: list[list[str]] = field(default_factory=list)
    row_lines: list[list[str]] = field(default_factory=list)

    def height(self, rows: int) -> int:
        return self.top + rows * self.row_h + max(rows - 1, 0) * self.margin

    def max_rows(self, pixel_budget: int) -> int:
        """How many rows one sheet can hold within the budget and :data:`MAX_SIDE` (0: none)."""
        if self.width > MAX_SIDE:
            return 0
        limit = min(MAX_SIDE, pixel_budget // self.width)
        if limit < self.top + self.row_h:
            return 0
        return min(self.n_rows, (limit - self.top + self.margin) // (self.row_h + self.margin))


def _layout(page: _Page, scale: float, *, draw_labels: bool) -> _Geometry:
    box, n_cols, n_rows, margin = page.box, page.n_cols, page.n_rows, page.margin
    cell_w = max(1, round(box[0] * scale))
    cell_h = max(1, round(box[1] * scale))
    if not draw_labels:
        width = n_cols * cell_w + (n_cols - 1) * margin
        return _Geometry(scale, cell_w, cell_h, cell_w, cell_h, margin, 0, 0, width, n_rows)

    font_size = max(10, int((cell_w + cell_h) / 2 * 0.05))
    pad = max(2, font_size // 2)
    gutter = 2 * pad
    """Space kept free between neighbouring column headers."""
    measure = _Measure(_get_font(page.font_source, font_size), max(1, font_size // 4))

    # Labels wrap at word boundaries only: a column or the row labels widen to their widest word.
    col_w = cell_w
    col_lines: list[list[str]] = []
    col_h = 0
    if page.x_labels is not None:
        col_w = max(cell_w, _widest_word(measure, page.x_labels) + gutter)
        col_lines = [measure.wrap(label, max(1, col_w - gutter)) for label in page.x_labels]
        col_h = max(measure.block_height(lines) for lines in col_lines) + 2 * pad

    label_w = 0
    row_lines: list[list[str]] = []
    if page.y_labels is not None:
        natural = max(measure.width(line) for label in page.y_labels for line in (label.splitlines() or [""]))
        text_w = max(1, min(natural, max(cell_w * 3 // 4, 8 * font_size)), _widest_word(measure, page.y_labels))
        row_lines = [measure.wrap(label, text_w) for label in page.y_labels]
        label_w = max(measure.width(line) for lines in row_lines for line in lines) + 2 * pad
    row_h = max([cell_h] + [measure.block_height(lines) + 2 * pad for lines in row_lines])
    content_w = label_w + n_cols * col_w + (n_cols - 1) * margin
    width = content_w

    title_lines: list[str] = []
    title_h = 0
    if page.title:
        natural = measure.width(page.title)
        title_lines = measure.wrap(page.title, max(1, width - 2 * pad, min(natural, 30 * font_size)))
        width = max(width, max(measure.width(line) for line in title_lines) + 2 * pad)
        title_h = measure.block_height(title_lines) + 2 * pad

    offset = (width - content_w) // 2
    return _Geometry(
        scale=scale,
        cell_w=cell_w,
        cell_h=cell_h,
        col_w=col_w,
        row_h=row_h,
        margin=margin,
        left=offset + label_w,
        top=title_h + col_h,
        width=width,
        n_rows=n_rows,
        measure=measure,
        pad=pad,
        row_label_x=offset + label_w / 2,
        title_lines=title_lines,
        title_h=title_h,
        col_lines=col_lines,
        row_lines=row_lines,
    )


def _widest_word(measure: _Measure, labels: list[str]) -> int:
    return max((measure.width(word) for label in labels for word in label.split()), default=0)


def _fit(page: _Page, pixel_budget: int, *, draw_labels: bool) -> _Geometry:
    """Full-size layout if at least one row fits the budget, else the largest downscale that
    fits one row (binary search: text sizes make the sheet area only roughly monotonic)."""
    geo = _layout(page, 1.0, draw_labels=draw_labels)
    if geo.max_rows(pixel_budget) >= 1:
        return geo
    lo = 1 / max(page.box)
    best = _layout(page, lo, draw_labels=draw_labels)
    if best.max_rows(pixel_budget) < 1:
        if draw_labels:
            logger.warning("grid: labels do not fit within pixel_budget=%d; drawing without them", pixel_budget)
            return _fit(page, pixel_budget, draw_labels=False)
        raise ValueError(
            f"a row of {page.n_cols} cells cannot fit within pixel_budget={pixel_budget} "
            f"and {MAX_SIDE} px per side even at 1 px per cell"
        )
    hi = 1.0
    while hi - lo > 0.5 / max(page.box):
        mid = (lo + hi) / 2
        candidate = _layout(page, mid, draw_labels=draw_labels)
        if candidate.max_rows(pixel_budget) >= 1:
            lo, best = mid, candidate
        else:
            hi = mid
    return best


# --- rendering --------------------------------------------------------------------------------


def _render(
    geo: _Geometry,
    grid_cells: list[list[tuple[dict[str, int], GridEntry | None]]],
    rows: list[int],
) -> tuple[Image.Image, list[dict[str, int]], list[dict[str, int]]]:
    sheet = Image.new("RGB", (geo.width, geo.height(len(rows))), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    pitch_x = geo.col_w + geo.margin
    pitch_y = geo.row_h + geo.margin

    if geo.measure is not None:
        m = geo.measure
        if geo.title_lines:
            m.draw(draw, geo.title_lines, geo.width / 2, geo.pad)
        if geo.col_lines:
            band_top, band_h = geo.title_h, geo.top - geo.title_h
            for col, lines in enumerate(geo.col_lines):
                center = geo.left + col * pitch_x + geo.col_w / 2
                m.draw(draw, lines, center, band_top + (band_h - m.block_height(lines)) / 2)
        if geo.row_lines:
            for i, row in enumerate(rows):
                lines = geo.row_lines[row]
                top = geo.top + i * pitch_y + (geo.row_h - m.block_height(lines)) / 2
                m.draw(draw, lines, geo.row_label_x, top)

    cells: list[dict[str, int]] = []
    missing: list[dict[str, int]] = []
    for i, row in enumerate(rows):
        y0 = geo.top + i * pitch_y
        for col, (coords, entry) in enumerate(grid_cells[row]):
            x0 = geo.left + col * pitch_x
            cells.append(coords)
            image = entry.image if entry is not None else None
            if not _paste(sheet, image, x0, y0, geo):
                missing.append(coords)
                _placeholder(draw, x0, y0, geo)
    return sheet, cells, missing


def _paste(
    sheet: Image.Image, source: Image.Image | str | os.PathLike | None, x0: int, y0: int, geo: _Geometry
) -> bool:
    """Paste one cell's image centred in its box; False if there is no readable image."""
    if source is None:
        return False
    owned: list[Image.Image] = []
    try:
        if isinstance(source, Image.Image):
            image = source
        else:
            image = Image.open(source)
            owned.append(image)
        if geo.scale != 1.0:
            size = (max(1, round(image.width * geo.scale)), max(1, round(image.height * geo.scale)))
            image = image.resize(size, _LANCZOS)
            owned.append(image)
        mask = None
        if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
            image = image.convert("RGBA")
            owned.append(image)
            mask = image
        elif image.mode != "RGB":
            image = image.convert("RGB")
            owned.append(image)
        box = (x0 + (geo.col_w - image.width) // 2, y0 + (geo.row_h - image.height) // 2)
        sheet.paste(image, box, mask)
        return True
    except OSError as e:
        logger.warning("grid: cannot read image %s: %s", source, e)
        return False
    finally:
        for image in owned:
            image.close()


def _placeholder(draw: ImageDraw.ImageDraw, x0: int, y0: int, geo: _Geometry) -> None:
    left = x0 + (geo.col_w - geo.cell_w) // 2
    top = y0 + (geo.row_h - geo.cell_h) // 2
    right, bottom = left + geo.cell_w - 1, top + geo.cell_h - 1
    draw.rectangle((left, top, right, bottom), fill=PLACEHOLDER_FILL)
    line_w = max(1, min(geo.cell_w, geo.cell_h) // 128)
    draw.line((left, top, right, bottom), fill=PLACEHOLDER_LINE, width=line_w)
    draw.line((left, bottom, right, top), fill=PLACEHOLDER_LINE, width=line_w)
