"""Axis values: the X/Y/Z plot's text syntax (WebUI v1.10.1 ``scripts/xyz_grid.py``) and literal lists.

Text gives the same values, in the same order, as the built-in script; where the built-in script
would crash, silently drop a range or take nan or inf, a ``SpecError`` is raised instead. numpy's ``arange`` and
``linspace`` are reproduced step by step in pure Python, so the floats are bit-identical.
"""

from __future__ import annotations

import csv
import math
import re
from io import StringIO
from itertools import chain
from typing import Any

from sd_sweep.core.errors import SpecError

MAX_VALUES = 100_000
KINDS = ("int", "float", "str", "bool", "size")

# Copied verbatim from xyz_grid.py, unescaped "." (any character) included.
RE_RANGE = re.compile(r"\s*([+-]?\s*\d+)\s*-\s*([+-]?\s*\d+)(?:\s*\(([+-]\d+)\s*\))?\s*")
RE_RANGE_FLOAT = re.compile(
    r"\s*([+-]?\s*\d+(?:.\d*)?)\s*-\s*([+-]?\s*\d+(?:.\d*)?)(?:\s*\(([+-]\d+(?:.\d*)?)\s*\))?\s*"
)
RE_RANGE_COUNT = re.compile(r"\s*([+-]?\s*\d+)\s*-\s*([+-]?\s*\d+)(?:\s*\[(\d+)\s*])?\s*")
RE_RANGE_COUNT_FLOAT = re.compile(
    r"\s*([+-]?\s*\d+(?:.\d*)?)\s*-\s*([+-]?\s*\d+(?:.\d*)?)(?:\s*\[(\d+(?:.\d*)?)\s*])?\s*"
)

# Python's re backtracks polynomially on these patterns; no real range is this long.
_MAX_RANGE_TOKEN = 200
_INT64_MAX = 2**63 - 1


def parse_values(raw: Any, kind: str, field: str) -> list:
    """Values of one axis, from X/Y/Z text, a list of literal values, or one scalar.

    Only ``SpecError`` ever leaves this function.
    """
    if kind not in KINDS:
        raise SpecError.single(field, kind, f"unknown value kind; expected one of {', '.join(KINDS)}")
    try:
        values = _parse(raw, kind, field)
    except SpecError:
        raise
    except Exception as exc:  # callers rely on SpecError being the only failure
        raise SpecError.single(field, raw, f"cannot read the values: {exc}") from exc
    if not values:
        raise SpecError.single(field, raw, "no values given")
    return values


def format_value(value: Any) -> str:
    """The short label of a value in grid headers: ``5``, ``0.5``, ``7``, ``512x768``, ``on``."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _format_float(value)
    if isinstance(value, tuple) and _is_int_pair(value):
        return f"{value[0]}x{value[1]}"
    return str(value)


def _format_float(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    value = round(value, 8)  # as the built-in format_value does
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


def _parse(raw: Any, kind: str, field: str) -> list:
    if isinstance(raw, str):
        return _parse_text(raw, kind, field)
    if isinstance(raw, (list, tuple)):
        if kind == "size" and _is_int_pair(raw):
            return [_coerce_item(raw, "size", field, None)]
        if len(raw) > MAX_VALUES:
            raise SpecError.single(field, f"<{len(raw)} values>", f"too many values (more than {MAX_VALUES})")
        return [_coerce_item(item, kind, field, index) for index, item in enumerate(raw)]
    if isinstance(raw, (bool, int, float)):
        return [_coerce_item(raw, kind, field, None)]
    raise SpecError.single(field, raw, "must be text like '1, 2, 5-8' or a list of values")


# ---- X/Y/Z text ---------------------------------------------------------------------------------


def split_csv(text: str, field: str) -> list[str]:
    """``csv_string_to_list_strip`` of xyz_grid.py: csv with ``skipinitialspace``, rows flattened, cells stripped.

    So a quote right after ``", "`` opens a quoted field, as in the X/Y/Z plot: ``a, "b, c"`` is two values.
    """
    try:
        rows = list(csv.reader(StringIO(text), skipinitialspace=True))
    except csv.Error as exc:
        raise SpecError.single(field, text, f"cannot read the comma-separated list: {exc}") from exc
    return [cell.strip() for cell in chain.from_iterable(rows)]


def _parse_text(text: str, kind: str, field: str) -> list:
    if not text.strip():
        raise SpecError.single(field, text, "no values given")
    tokens = split_csv(text, field)
    if kind == "str":
        if len(tokens) > MAX_VALUES:
            raise SpecError.single(field, f"<{len(tokens)} values>", f"too many values (more than {MAX_VALUES})")
        return tokens
    if kind == "bool":
        return [_bool_token(token, field) for token in tokens]
    if kind == "size":
        return [_size_token(token, field) for token in tokens]
    expand = _expand_int if kind == "int" else _expand_float
    values: list = []
    for token in filter(None, tokens):  # the X/Y/Z plot skips empty cells of number axes: "1, 2," is 1 and 2
        values += expand(token, field, MAX_VALUES - len(values))
        if len(values) > MAX_VALUES:
            raise SpecError.single(field, token, f"too many values (more than {MAX_VALUES})")
    return values


def _may_be_range(token: str, field: str) -> bool:
    if "-" not in token:
        return False
    if len(token) > _MAX_RANGE_TOKEN:
        raise SpecError.single(field, token, f"value too long (more than {_MAX_RANGE_TOKEN} characters)")
    return True


def _expand_int(token: str, field: str, budget: int) -> list[int]:
    ranged = _may_be_range(token, field)
    m = RE_RANGE.fullmatch(token) if ranged else None
    if m is not None:
        start = _int_part(m.group(1), token, field)
        end = _int_part(m.group(2), token, field) + 1
        step = _int_part(m.group(3), token, field) if m.group(3) is not None else 1
        if step == 0:
            raise SpecError.single(field, token, "the step of a range cannot be 0")
        numbers = range(start, end, step)
        _check_count(len(numbers), budget, token, field)
        return list(numbers)
    mc = RE_RANGE_COUNT.fullmatch(token) if ranged else None
    if mc is not None:
        start = _int_part(mc.group(1), token, field)
        end = _int_part(mc.group(2), token, field)
        num = _count_part(mc.group(3), token, field, budget)
        if abs(start) > _INT64_MAX or abs(end) > _INT64_MAX:
            raise SpecError.single(field, token, "the ends of a counted range are too large")
        return [int(x) for x in linspace(float(start), float(end), num)]
    try:
        return [int(token)]
    except ValueError:
        raise SpecError.single(field, token, _not_a("an integer", token)) from None


def _expand_float(token: str, field: str, budget: int) -> list[float]:
    ranged = _may_be_range(token, field)
    m = RE_RANGE_FLOAT.fullmatch(token) if ranged else None
    if m is not None:
        start = _float_part(m.group(1), token, field)
        end = _float_part(m.group(2), token, field)
        step = _float_part(m.group(3), token, field) if m.group(3) is not None else 1
        if step == 0:
            raise SpecError.single(field, token, "the step of a range cannot be 0")
        stop = end + step
        if not math.isfinite(stop):
            raise SpecError.single(field, token, "the numbers of this range are too large")
        length = arange_length(start, stop, step)
        _check_count(length, budget, token, field)
        values = arange(start, stop, step)
        if not all(math.isfinite(v) for v in values):
            raise SpecError.single(field, token, "the numbers of this range are too large")
        return values
    mc = RE_RANGE_COUNT_FLOAT.fullmatch(token) if ranged else None
    if mc is not None:
        start = _float_part(mc.group(1), token, field)
        end = _float_part(mc.group(2), token, field)
        num = _count_part(mc.group(3), token, field, budget)
        values = linspace(start, end, num) if math.isfinite(end - start) else [math.inf]
        if not all(math.isfinite(v) for v in values):
            raise SpecError.single(field, token, "the numbers of this range are too large")
        return values
    try:
        number = float(token)
    except ValueError:
        raise SpecError.single(field, token, _not_a("a number", token)) from None
    if not math.isfinite(number):
        raise SpecError.single(field, token, "must be a finite number")
    return [number]


def _not_a(what: str, token: str) -> str:
    if "-" in token and any(c.isdigit() for c in token):
        return f"not {what} nor a range; ranges look like 1-5, 1-10 (+3), 10-1 (-3) or 1-10 [4] (a step needs its sign)"
    return f"not {what}"


def _int_part(text: str, token: str, field: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise SpecError.single(field, token, f"{text.strip()!r} in this range is not an integer") from None


def _float_part(text: str, token: str, field: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise SpecError.single(field, token, f"{text.strip()!r} in this range is not a number") from None
    if not math.isfinite(number):
        raise SpecError.single(field, token, "the numbers of this range are too large")
    return number


def _count_part(text: str | None, token: str, field: str, budget: int) -> int:
    if text is None:
        return 1
    try:
        num = int(text)
    except ValueError:
        raise SpecError.single(field, token, f"the count {text.strip()!r} must be a whole number") from None
    if num < 1:
        raise SpecError.single(field, token, "the count of a range must be at least 1")
    _check_count(num, budget, token, field)
    return num


def _check_count(count: int, budget: int, token: str, field: str) -> None:
    if count <= 0:
        raise SpecError.single(field, token, "this range is empty (counting down needs a negative step, like (-1))")
    if count > budget:
        raise SpecError.single(field, token, f"too many values (more than {MAX_VALUES})")


# ---- numpy's arange and linspace, float64 step for step ------------------------------------------


def arange_length(start: float, stop: float, step: float) -> int:
    """Length of ``np.arange(start, stop, step)`` (numpy's ``_calc_length``), for finite numbers and step != 0."""
    diff = stop - start
    quotient = diff / step
    if quotient == 0 and diff != 0:
        return 0 if math.copysign(1.0, quotient) < 0 else 1
    return max(0, math.ceil(quotient))


def arange(start: float, stop: float, step: float) -> list[float]:
    """``np.arange(start, stop, step).tolist()`` for float64: numpy fills ``start + i * ((start + step) - start)``."""
    length = arange_length(start, stop, step)
    if length <= 0:
        return []
    start = float(start)
    if length == 1:
        return [start]
    second = float(start + step)
    delta = second - start
    return [start, second] + [start + i * delta for i in range(2, length)]


def linspace(start: float, stop: float, num: int) -> list[float]:
    """``np.linspace(start, stop, num).tolist()`` for float64 scalars and the default ``endpoint=True``."""
    if num <= 0:
        return []
    delta = stop - start
    div = num - 1
    if div == 0:
        return [0.0 * delta + start]
    step = delta / div
    if step == 0:  # numpy's path for steps that underflow to 0 (numpy gh-5437)
        return [(i / div) * delta + start for i in range(div)] + [float(stop)]
    return [i * step + start for i in range(div)] + [float(stop)]


# ---- single values ------------------------------------------------------------------------------

_BOOL_WORDS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}
_RE_SIZE = re.compile(r"\s*([0-9]+)\s*[xX\u00d7]\s*([0-9]+)\s*")

_EXPECTED = {
    "int": "must be an integer",
    "float": "must be a finite number",
    "str": "must be text",
    "bool": "must be true/false, yes/no, on/off or 1/0",
    "size": "must be a size like '512x768' or [512, 768], both at least 1",
}


def _bool_token(token: str, field: str) -> bool:
    return _coerce_item(token, "bool", field, None)


def _size_token(token: str, field: str) -> tuple[int, int]:
    return _coerce_item(token, "size", field, None)


def _coerce_item(item: Any, kind: str, field: str, index: int | None) -> Any:
    value = _COERCE[kind](item)
    if value is None:
        where = "" if index is None else f"item {index}: "
        raise SpecError.single(field, item, where + _EXPECTED[kind])
    return value


def _item_str(item: Any) -> str | None:
    if isinstance(item, str):
        return item
    if isinstance(item, (bool, int, float)):
        return str(item)
    return None


def _item_bool(item: Any) -> bool | None:
    if isinstance(item, bool):
        return item
    if isinstance(item, int) and item in (0, 1):
        return bool(item)
    if isinstance(item, str):
        return _BOOL_WORDS.get(item.strip().lower())
    return None


def _item_size(item: Any) -> tuple[int, int] | None:
    if isinstance(item, str):
        m = _RE_SIZE.fullmatch(item)
        if m is None:
            return None
        width, height = int(m.group(1)), int(m.group(2))
    elif isinstance(item, (list, tuple)) and _is_int_pair(item):
        width, height = item
    else:
        return None
    return (width, height) if width >= 1 and height >= 1 else None


def _is_int_pair(raw: list | tuple) -> bool:
    return len(raw) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in raw)


def _item_int(item: Any) -> int | None:
    if isinstance(item, bool):
        return None
    if isinstance(item, int):
        return item
    if isinstance(item, float):
        return int(item) if item.is_integer() else None
    if isinstance(item, str):
        try:
            return int(item)
        except ValueError:
            return None
    return None


def _item_float(item: Any) -> float | None:
    if isinstance(item, bool) or not isinstance(item, (int, float, str)):
        return None
    try:
        number = float(item)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


_COERCE = {"int": _item_int, "float": _item_float, "str": _item_str, "bool": _item_bool, "size": _item_size}


__all__ = ["KINDS", "MAX_VALUES", "arange", "arange_length", "format_value", "linspace", "parse_values", "split_csv"]
