from __future__ import annotations

import csv
import math
from io import StringIO
from itertools import chain

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from sd_sweep.core.errors import SpecError
from sd_sweep.core.values import (
    MAX_VALUES,
    RE_RANGE,
    RE_RANGE_COUNT,
    RE_RANGE_COUNT_FLOAT,
    RE_RANGE_FLOAT,
    arange,
    format_value,
    linspace,
    parse_values,
)

np = pytest.importorskip("numpy")

FIELD = "axes[0].values"


def builtin_process_axis(vals: str, typ: type) -> list:
    """Transcription of ``process_axis`` in xyz_grid.py (v1.10.1), text mode, with numpy.

    Checked against the outputs of the real function in ``REAL_XYZ_GRID``.
    """
    valslist = list(map(str.strip, chain.from_iterable(csv.reader(StringIO(vals), skipinitialspace=True))))
    if typ is int:
        ext: list = []
        for val in valslist:
            if not val.strip():
                continue
            m = RE_RANGE.fullmatch(val)
            mc = RE_RANGE_COUNT.fullmatch(val)
            if m is not None:
                start = int(m.group(1))
                end = int(m.group(2)) + 1
                step = int(m.group(3)) if m.group(3) is not None else 1
                ext += list(range(start, end, step))
            elif mc is not None:
                start = int(mc.group(1))
                end = int(mc.group(2))
                num = int(mc.group(3)) if mc.group(3) is not None else 1
                ext += [int(x) for x in np.linspace(start=start, stop=end, num=num).tolist()]
            else:
                ext.append(val)
        valslist = ext
    elif typ is float:
        ext = []
        for val in valslist:
            if not val.strip():
                continue
            m = RE_RANGE_FLOAT.fullmatch(val)
            mc = RE_RANGE_COUNT_FLOAT.fullmatch(val)
            if m is not None:
                start = float(m.group(1))
                end = float(m.group(2))
                step = float(m.group(3)) if m.group(3) is not None else 1
                ext += np.arange(start, end + step, step).tolist()
            elif mc is not None:
                start = float(mc.group(1))
                end = float(mc.group(2))
                num = int(mc.group(3)) if mc.group(3) is not None else 1
                ext += np.linspace(start=start, stop=end, num=num).tolist()
            else:
                ext.append(val)
        valslist = ext
    return [typ(x) for x in valslist]


def same_floats(a: list, b: list) -> bool:
    return [float(x).hex() for x in a] == [float(x).hex() for x in b]


def test_the_xyz_grid_regexes_are_the_builtin_ones() -> None:
    assert RE_RANGE.pattern == r"\s*([+-]?\s*\d+)\s*-\s*([+-]?\s*\d+)(?:\s*\(([+-]\d+)\s*\))?\s*"
    assert RE_RANGE_FLOAT.pattern == (
        r"\s*([+-]?\s*\d+(?:.\d*)?)\s*-\s*([+-]?\s*\d+(?:.\d*)?)(?:\s*\(([+-]\d+(?:.\d*)?)\s*\))?\s*"
    )
    assert RE_RANGE_COUNT.pattern == r"\s*([+-]?\s*\d+)\s*-\s*([+-]?\s*\d+)(?:\s*\[(\d+)\s*])?\s*"
    assert RE_RANGE_COUNT_FLOAT.pattern == (
        r"\s*([+-]?\s*\d+(?:.\d*)?)\s*-\s*([+-]?\s*\d+(?:.\d*)?)(?:\s*\[(\d+(?:.\d*)?)\s*])?\s*"
    )


# What ``process_axis`` of v1.10.1 (82a973c0) ``scripts/xyz_grid.py`` produced for each text on an int or a
# float axis: the list it returned, or the name of the exception it raised. Recorded by running that very
# function (its source, taken from the file, with numpy 1.26.2) in the WebUI's own Python, not rewritten.
REAL_XYZ_GRID: list[tuple[str, str, list | str]] = [
    ("5", "int", [5]),
    ("1, 2, 3", "int", [1, 2, 3]),
    ("-1", "int", [-1]),
    ("+3", "int", [3]),
    ("  7  ", "int", [7]),
    ("1-5", "int", [1, 2, 3, 4, 5]),
    ("1 - 5", "int", [1, 2, 3, 4, 5]),
    (" 1-5 ", "int", [1, 2, 3, 4, 5]),
    ("1-5 (+2)", "int", [1, 3, 5]),
    ("1-10 (+3)", "int", [1, 4, 7, 10]),
    ("1-11 (+3)", "int", [1, 4, 7, 10]),
    ("10-1 (-3)", "int", [10, 7, 4]),
    ("10-1 (-1)", "int", [10, 9, 8, 7, 6, 5, 4, 3]),
    ("1-5(+2)", "int", [1, 3, 5]),
    ("1-5 (+2 )", "int", [1, 3, 5]),
    ("1-5 ( +2)", "int", "ValueError"),
    ("1-5 (+10)", "int", [1]),
    ("1-10 [4]", "int", [1, 4, 7, 10]),
    ("1-10 [3]", "int", [1, 5, 10]),
    ("10-1 [4]", "int", [10, 7, 4, 1]),
    ("1-10[4]", "int", [1, 4, 7, 10]),
    ("1-10 [ 4]", "int", "ValueError"),
    ("1-10 [4 ]", "int", [1, 4, 7, 10]),
    ("1-10 [+4]", "int", "ValueError"),
    ("-10-0 [4]", "int", [-10, -6, -3, 0]),
    ("-5--1", "int", [-5, -4, -3, -2, -1]),
    ("-5 - -1", "int", [-5, -4, -3, -2, -1]),
    ("+1-+3", "int", [1, 2, 3]),
    ("- 5-10", "int", "ValueError"),
    ("1 - - 5", "int", "ValueError"),
    ("3-3", "int", [3]),
    ("0-0", "int", [0]),
    ("7-7 [3]", "int", [7, 7, 7]),
    ("1-10 [1]", "int", [1]),
    ("1-2 [5]", "int", [1, 1, 1, 1, 2]),
    ("1-10 [20]", "int", [1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10]),
    ("3--3 (-2)", "int", [3, 1, -1]),
    ("-3-3", "int", [-3, -2, -1, 0, 1, 2, 3]),
    ("1, 3-5, 9", "int", [1, 3, 4, 5, 9]),
    ("1-3, 2-4", "int", [1, 2, 3, 2, 3, 4]),
    ("1-5 (+2), 8", "int", [1, 3, 5, 8]),
    ('"1-3", 5', "int", [1, 2, 3, 5]),
    ("1, 1, 2", "int", [1, 1, 2]),
    ("1\n2", "int", [1, 2]),
    ("1\n\n2", "int", [1, 2]),
    ('"1", 2', "int", [1, 2]),
    ("1_000", "int", [1000]),
    ("1_0-1_2", "int", "ValueError"),
    ("\uff11-\uff13", "int", [1, 2, 3]),
    ("\u0661-\u0663", "int", [1, 2, 3]),
    ("2147483647-2147483649", "int", [2147483647, 2147483648, 2147483649]),
    ("1,,2", "int", [1, 2]),
    ("1, ,2", "int", [1, 2]),
    (",1", "int", [1]),
    ("1,", "int", [1]),
    (",", "int", []),
    ("", "int", []),
    (" ", "int", []),
    ("1.5", "int", "ValueError"),
    ("1e3", "int", "ValueError"),
    ("0x10", "int", "ValueError"),
    ("abc", "int", "ValueError"),
    ("1-10 (3)", "int", "ValueError"),
    ("1-10 (+0)", "int", "ValueError"),
    ("1-10 [0]", "int", []),
    ("5-1", "int", []),
    ("1--5", "int", []),
    ("1-10 (-1)", "int", []),
    ("1-5 (+2) (+3)", "int", "ValueError"),
    ("1-5 [2] [3]", "int", "ValueError"),
    ("1-5 (+2) [3]", "int", "ValueError"),
    ("1-1e1", "int", "ValueError"),
    ("1-", "int", "ValueError"),
    ("-", "int", "ValueError"),
    ("1-2-3", "int", "ValueError"),
    ("5-1 [3]", "int", [5, 3, 1]),
    ("1-10 [2.5]", "int", "ValueError"),
    ("7", "float", [7.0]),
    ("0.5, 7.5", "float", [0.5, 7.5]),
    ("-1.5", "float", [-1.5]),
    ("+2.5", "float", [2.5]),
    (".5", "float", [0.5]),
    ("5.", "float", [5.0]),
    ("1e3", "float", [1000.0]),
    ("1_0.5", "float", [10.5]),
    ("1-3", "float", [1.0, 2.0, 3.0]),
    ("1 - 3", "float", [1.0, 2.0, 3.0]),
    ("1-2", "float", [1.0, 2.0]),
    ("1-2 (+1)", "float", [1.0, 2.0]),
    ("0.5-1.5 (+0.25)", "float", [0.5, 0.75, 1.0, 1.25, 1.5]),
    ("0.5-2 (+0.5)", "float", [0.5, 1.0, 1.5, 2.0]),
    ("2-0.5 (-0.5)", "float", [2.0, 1.5, 1.0, 0.5]),
    ("1.0--2 (-1)", "float", [1.0, 0.0, -1.0, -2.0]),
    ("1.0--2 [4]", "float", [1.0, 0.0, -1.0, -2.0]),
    ("-0.5-0.5 (+0.25)", "float", [-0.5, -0.25, 0.0, 0.25, 0.5]),
    ("-1--0.5 [3]", "float", "ValueError"),
    ("1-2 [5]", "float", [1.0, 1.25, 1.5, 1.75, 2.0]),
    ("2-1 [3]", "float", [2.0, 1.5, 1.0]),
    ("1-2 [1]", "float", [1.0]),
    ("0.1-0.3 [3]", "float", [0.1, 0.2, 0.3]),
    (
        "0-1 (+0.1)",
        "float",
        [0.0, 0.1, 0.2, 0.30000000000000004, 0.4, 0.5, 0.6000000000000001, 0.7000000000000001, 0.8, 0.9, 1.0],
    ),
    ("0-1 (+0.3)", "float", [0.0, 0.3, 0.6, 0.8999999999999999, 1.2]),
    ("0-0.3 (+0.1)", "float", [0.0, 0.1, 0.2, 0.30000000000000004]),
    ("1-1.3 (+0.1)", "float", [1.0, 1.1, 1.2000000000000002, 1.3000000000000003, 1.4000000000000004]),
    ("1-2 (+1.5)", "float", [1.0, 2.5]),
    ("7-7", "float", [7.0]),
    ("5, 1-2 [3], 9", "float", [5.0, 1.0, 1.5, 2.0, 9.0]),
    ("1-2 [3], 1-2 (+0.5)", "float", [1.0, 1.5, 2.0, 1.0, 1.5, 2.0]),
    ("1.-2.", "float", [1.0, 2.0]),
    ("1-2 (+.5)", "float", "ValueError"),
    ("1-2 (+0.5) ", "float", [1.0, 1.5, 2.0]),
    ("1-2(+0.5)", "float", [1.0, 1.5, 2.0]),
    ("1-2 ( +0.5)", "float", "ValueError"),
    ("1-2 (0.5)", "float", "ValueError"),
    ("1-1e1", "float", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]),
    ("1x5-3", "float", "ValueError"),
    ("1e-2", "float", "ValueError"),
    ("1.5e-3", "float", [0.0015]),
    ("\u0661.\u0665-\u0663", "float", [1.5, 2.5, 3.5]),
    ("nan", "float", [math.nan]),
    ("inf", "float", [math.inf]),
    ("-inf", "float", [-math.inf]),
    ("1,,2", "float", [1.0, 2.0]),
    ("1, ,2", "float", [1.0, 2.0]),
    ("1,", "float", [1.0]),
    (",", "float", []),
    ("", "float", []),
    ("abc", "float", "ValueError"),
    ("1-2 [2.5]", "float", "ValueError"),
    ("1-2 [2.]", "float", "ValueError"),
    ("1-2 [0]", "float", []),
    ("1-2 (+0)", "float", "ZeroDivisionError"),
    ("2-1 (+0.5)", "float", []),
    ("1--2", "float", "ValueError"),
    ("1-2 (-0.5)", "float", []),
    ("-", "float", "ValueError"),
    ("1.5.5-2", "float", "ValueError"),
    ("1-2 [3] [4]", "float", "ValueError"),
    ("0-1 (+0.25), 0.5", "float", [0.0, 0.25, 0.5, 0.75, 1.0, 0.5]),
]


def _outcome(row: tuple[str, str, list | str]) -> str:
    text, _kind, real = row
    if isinstance(real, str):
        return "raises"
    if not real:
        return "drops"
    return "lists" if all(math.isfinite(v) for v in real) else "non-finite"


@pytest.mark.parametrize(("text", "kind", "real"), [r for r in REAL_XYZ_GRID if _outcome(r) == "lists"])
def test_text_gives_the_lists_of_the_real_xyz_grid(text: str, kind: str, real: list) -> None:
    values = parse_values(text, kind, FIELD)
    assert [type(v) for v in values] == [int if kind == "int" else float] * len(real)
    if kind == "int":
        assert values == real
    else:
        assert same_floats(values, real)


@pytest.mark.parametrize(("text", "kind", "real"), [r for r in REAL_XYZ_GRID if _outcome(r) != "lists"])
def test_text_the_real_xyz_grid_rejects_drops_or_makes_non_finite_is_a_spec_error(
    text: str, kind: str, real: list | str
) -> None:
    """Where the real one crashes, returns nothing, or returns nan or inf, ``parse_values`` refuses the text.

    Nothing (``5-1``, ``1-10 [0]``, ``,``) would be a sweep that silently leaves out what was asked for,
    and nan or inf is no CFG scale, denoising strength or weight.
    """
    with pytest.raises(SpecError) as info:
        parse_values(text, kind, FIELD)
    [problem] = info.value.problems
    assert problem.field == FIELD
    assert problem.value in (text, text.strip())
    assert problem.message


@pytest.mark.parametrize(("text", "kind", "real"), REAL_XYZ_GRID)
def test_the_transcription_reproduces_the_real_xyz_grid(text: str, kind: str, real: list | str) -> None:
    """The property tests below compare with ``builtin_process_axis``; this anchors it to the real outputs."""
    typ = int if kind == "int" else float
    if isinstance(real, str):
        with pytest.raises((ValueError, ZeroDivisionError)) as info:
            builtin_process_axis(text, typ)
        assert type(info.value).__name__ == real
    elif kind == "int":
        assert builtin_process_axis(text, typ) == real
    else:
        assert same_floats(builtin_process_axis(text, typ), real)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('"a, b", c', ["a, b", "c"]),
        ("Euler a, DPM++ 2M", ["Euler a", "DPM++ 2M"]),
        ("  x  ,y", ["x", "y"]),
        # csv with skipinitialspace (csv_string_to_list_strip): a quote after ", " opens a quoted field.
        ('a, "b, c"', ["a", "b, c"]),
        ('red fox, "blue fox, at night", green fox', ["red fox", "blue fox, at night", "green fox"]),
        ('a,  "b"c, d', ["a", "bc", "d"]),
        ('x "y", z', ['x "y"', "z"]),
        ("a,,b", ["a", "", "b"]),
        ("1-5", ["1-5"]),
        ("line one\nline two", ["line one", "line two"]),
    ],
)
def test_str_text(raw: str, expected: list[str]) -> None:
    assert parse_values(raw, "str", FIELD) == expected
    assert parse_values(raw, "str", FIELD) == builtin_process_axis(raw, str)


def test_bool_text() -> None:
    assert parse_values("true, False, YES, no, On, off, 1, 0", "bool", FIELD) == [
        True,
        False,
        True,
        False,
        True,
        False,
        True,
        False,
    ]


def test_size_text() -> None:
    assert parse_values("512x768, 768X512, 1024 x 1024", "size", FIELD) == [(512, 768), (768, 512), (1024, 1024)]


@pytest.mark.parametrize(
    ("raw", "kind", "expected"),
    [
        ([1, 2, 3], "int", [1, 2, 3]),
        ((1, 2), "int", [1, 2]),
        (["5", " 6 "], "int", [5, 6]),
        ([5.0], "int", [5]),
        ([1, 0.5, "2.5"], "float", [1.0, 0.5, 2.5]),
        (["1-5", "a, b"], "str", ["1-5", "a, b"]),
        ([1, 0.5, True], "str", ["1", "0.5", "True"]),
        ([True, False, "yes", "off", 1, 0], "bool", [True, False, True, False, True, False]),
        (["512x768", [768, 512], (64, 64)], "size", [(512, 768), (768, 512), (64, 64)]),
        ([512, 768], "size", [(512, 768)]),
        (5, "int", [5]),
        (2.5, "float", [2.5]),
        (3, "float", [3.0]),
        (True, "bool", [True]),
        (7, "str", ["7"]),
    ],
)
def test_lists_and_scalars(raw: object, kind: str, expected: list) -> None:
    values = parse_values(raw, kind, FIELD)
    assert values == expected
    assert [type(v) for v in values] == [type(v) for v in expected]


@pytest.mark.parametrize(
    ("raw", "kind", "token"),
    [
        ("", "int", ""),
        ("   ", "str", "   "),
        ([], "int", []),
        ("1, x", "int", "x"),
        (",", "int", ","),
        ("1, , 2-1", "float", "2-1"),
        ("1.5", "int", "1.5"),
        ("abc", "float", "abc"),
        ("nan", "float", "nan"),
        ("inf", "float", "inf"),
        ("1-10 (3)", "int", "1-10 (3)"),
        ("1-10 (+0)", "int", "1-10 (+0)"),
        ("1-2 (+0)", "float", "1-2 (+0)"),
        ("1-10 [0]", "int", "1-10 [0]"),
        ("1-2 [0]", "float", "1-2 [0]"),
        ("1-2 [2.5]", "float", "1-2 [2.5]"),
        ("5-1", "int", "5-1"),
        ("1-10 (-1)", "int", "1-10 (-1)"),
        ("2-1 (+0.5)", "float", "2-1 (+0.5)"),
        ("- 5-10", "int", "- 5-10"),
        ("1e-2", "float", "1e-2"),
        ("1--2", "float", "1--2"),
        ("1-1000000", "int", "1-1000000"),
        ("1-2 [1000000]", "float", "1-2 [1000000]"),
        ("0-1 (+0.000001)", "float", "0-1 (+0.000001)"),
        ("maybe", "bool", "maybe"),
        ("512", "size", "512"),
        ("0x512", "size", "0x512"),
        ("512x768x2", "size", "512x768x2"),
        ([1, "x"], "int", "x"),
        ([1.5], "int", 1.5),
        ([True], "int", True),
        ([True], "float", True),
        ([None], "str", None),
        ([[1, 2, 3]], "size", [1, 2, 3]),
        (None, "int", None),
        ({"a": 1}, "str", {"a": 1}),
        ("1", "colour", "colour"),
    ],
)
def test_errors_name_the_field_and_the_value(raw: object, kind: str, token: object) -> None:
    with pytest.raises(SpecError) as info:
        parse_values(raw, kind, FIELD)
    [problem] = info.value.problems
    assert problem.field == FIELD
    assert problem.value == token
    assert problem.message


def test_too_many_values_in_total() -> None:
    parse_values(f"1-{MAX_VALUES}", "int", FIELD)
    with pytest.raises(SpecError):
        parse_values(f"1-{MAX_VALUES}, 7", "int", FIELD)
    with pytest.raises(SpecError):
        parse_values(list(range(MAX_VALUES + 1)), "int", FIELD)


def test_long_range_tokens_are_refused_quickly() -> None:
    with pytest.raises(SpecError):
        parse_values("1" * 100_000 + "-", "float", FIELD)


@pytest.mark.parametrize(
    ("value", "label"),
    [
        (5, "5"),
        (-3, "-3"),
        (0.5, "0.5"),
        (7.0, "7"),
        (-0.0, "0"),
        (0.1 + 0.2, "0.3"),
        (1.2000000000000002, "1.2"),
        (1e-12, "0"),
        (1e20, "1e+20"),
        ((512, 768), "512x768"),
        (True, "on"),
        (False, "off"),
        ("Euler a", "Euler a"),
    ],
)
def test_format_value(value: object, label: str) -> None:
    assert format_value(value) == label


# ---- against the built-in algorithm ------------------------------------------------------------

small_int = st.integers(min_value=-60, max_value=60)
decimal = st.builds(
    lambda whole, frac, digits: f"{whole}.{str(frac).zfill(digits)[:digits]}" if digits else str(whole),
    st.integers(min_value=0, max_value=50),
    st.integers(min_value=0, max_value=999),
    st.integers(min_value=0, max_value=3),
)
signed_decimal = st.tuples(st.sampled_from(["", "-", "+"]), decimal).map("".join)


@given(start=small_int, end=small_int, step=st.one_of(st.none(), st.integers(min_value=-9, max_value=9)))
@example(start=10, end=1, step=-3)
def test_int_step_ranges_match_builtin(start: int, end: int, step: int | None) -> None:
    text = f"{start}-{end}" + ("" if step is None else f" ({step:+d})")
    try:
        expected = builtin_process_axis(text, int)
    except ValueError:
        expected = []
    if expected:
        assert parse_values(text, "int", FIELD) == expected
    else:
        with pytest.raises(SpecError):
            parse_values(text, "int", FIELD)


@given(start=small_int, end=small_int, num=st.integers(min_value=0, max_value=40))
def test_int_count_ranges_match_builtin(start: int, end: int, num: int) -> None:
    text = f"{start}-{end} [{num}]"
    expected = builtin_process_axis(text, int)
    if num >= 1:
        assert parse_values(text, "int", FIELD) == expected
    else:
        with pytest.raises(SpecError):
            parse_values(text, "int", FIELD)


signed_step = st.tuples(st.sampled_from("+-"), decimal).map("".join)


@given(start=signed_decimal, end=signed_decimal, step=st.one_of(st.none(), signed_step))
@example(start="0", end="1", step="+0.1")
@example(start="1", end="1.3", step="+0.1")
@example(start="2", end="0.5", step="-0.5")
def test_float_step_ranges_match_builtin(start: str, end: str, step: str | None) -> None:
    text = f"{start}-{end}" + ("" if step is None else f" ({step})")
    try:
        expected = builtin_process_axis(text, float)
    except (ValueError, ZeroDivisionError):
        expected = []
    if expected and len(expected) <= MAX_VALUES:
        assert same_floats(parse_values(text, "float", FIELD), expected)
    else:
        with pytest.raises(SpecError):
            parse_values(text, "float", FIELD)


@given(start=signed_decimal, end=signed_decimal, num=st.integers(min_value=0, max_value=60))
def test_float_count_ranges_match_builtin(start: str, end: str, num: int) -> None:
    text = f"{start}-{end} [{num}]"
    try:
        expected = builtin_process_axis(text, float)
    except ValueError:
        expected = []
    if expected:
        assert same_floats(parse_values(text, "float", FIELD), expected)
    else:
        with pytest.raises(SpecError):
            parse_values(text, "float", FIELD)


finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12)


@given(start=finite, stop=finite, step=finite)
@settings(suppress_health_check=[HealthCheck.filter_too_much])
def test_arange_is_numpy_arange(start: float, stop: float, step: float) -> None:
    assume(step != 0)
    assume(abs((stop - start) / step) <= 2000)
    assert same_floats(arange(start, stop, step), np.arange(start, stop, step).tolist())


@given(
    start=st.floats(allow_nan=False, allow_infinity=False),
    stop=st.floats(allow_nan=False, allow_infinity=False),
    num=st.integers(min_value=0, max_value=200),
)
def test_linspace_is_numpy_linspace(start: float, stop: float, num: int) -> None:
    assume(math.isfinite(stop - start))
    with np.errstate(all="ignore"):
        expected = np.linspace(start, stop, num).tolist()
    assert same_floats(linspace(start, stop, num), expected)


@given(start=st.floats(min_value=-1e-300, max_value=1e-300), num=st.integers(min_value=2, max_value=50))
def test_linspace_denormal_steps_are_numpy_linspace(start: float, num: int) -> None:
    stop = start + 5e-324
    assume(math.isfinite(stop))
    assert same_floats(linspace(start, stop, num), np.linspace(start, stop, num).tolist())


range_alphabet = st.sampled_from(list('0123456789 -+.,()[]x"e\n'))


@given(text=st.text(alphabet=range_alphabet, max_size=30), kind=st.sampled_from(["int", "float"]))
@settings(max_examples=500)
def test_whatever_parses_equals_the_builtin(text: str, kind: str) -> None:
    try:
        values = parse_values(text, kind, FIELD)
    except SpecError:
        return
    expected = builtin_process_axis(text, int if kind == "int" else float)
    if kind == "int":
        assert values == expected
    else:
        assert same_floats(values, expected)


# ---- never anything but SpecError --------------------------------------------------------------

json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=15,
)
kinds = st.sampled_from(["int", "float", "str", "bool", "size"])


@given(raw=st.text(max_size=60), kind=kinds)
@settings(max_examples=400)
def test_arbitrary_text_raises_only_spec_error(raw: str, kind: str) -> None:
    problems = []
    try:
        values = parse_values(raw, kind, FIELD)
    except SpecError as exc:
        problems = exc.problems
    else:
        assert values
    assert all(p.field == FIELD for p in problems)


@given(raw=json_like, kind=kinds)
@settings(max_examples=400)
def test_arbitrary_json_like_values_raise_only_spec_error(raw: object, kind: str) -> None:
    problems = []
    try:
        values = parse_values(raw, kind, FIELD)
    except SpecError as exc:
        problems = exc.problems
    else:
        assert all(isinstance(format_value(value), str) for value in values)
    assert all(p.field == FIELD for p in problems)
