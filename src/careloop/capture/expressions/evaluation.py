"""Evaluating REDCap expressions: values, REDCap's functions, and closures compiled from the tree.

See :mod:`careloop.capture.expressions` for the semantics (empty values,
numeric or text comparison, functions careloop does not compute).
"""

from __future__ import annotations

import datetime as dt
import math
import operator
import re
import statistics
from collections.abc import Callable, Mapping
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TypeAlias

from careloop.capture.expressions.syntax import (
    NOT_EVALUATED,
    Call,
    FieldRef,
    Node,
    NumberLiteral,
    SmartVariable,
    StringLiteral,
    Unary,
    Value,
)

# --------------------------------------------------------------------------- evaluation

_Compiled: TypeAlias = Callable[[Mapping[str, object], dt.datetime], Value]


def format_number(x: float) -> str:
    """A number as REDCap stores it: no trailing ``.0``, no exponent for ordinary sizes."""
    if x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    text = f"{x:.12g}"
    if "e" in text:
        return repr(x)
    return text


def _as_number(v: Value) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    if isinstance(v, float):
        return v
    s = v.strip()
    if not s or "_" in s:  # float() accepts "1_000"; REDCap does not
        return None
    try:
        x = float(s)
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def _as_text(v: Value) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return format_number(v)
    return v


def truthy(v: Value) -> bool:
    """REDCap's truth of a value: empty, ``0`` and ``'0'`` are false."""
    if v is None:
        return False
    if isinstance(v, bool):
        return v
    if isinstance(v, float):
        return v != 0.0 and not math.isnan(v)
    x = _as_number(v)
    if x is not None:
        return x != 0.0
    return v != ""


def _equal(a: Value, b: Value) -> bool:
    x, y = _as_number(a), _as_number(b)
    if x is not None and y is not None:
        return x == y
    return _as_text(a) == _as_text(b)


def _order(op: str, a: Value, b: Value) -> bool:
    if _as_text(a) == "" or _as_text(b) == "":
        return False
    x, y = _as_number(a), _as_number(b)
    left: float | str
    right: float | str
    if x is not None and y is not None:
        left, right = x, y
    else:
        left, right = _as_text(a), _as_text(b)
    if op == "<":
        return left < right  # type: ignore[operator]
    if op == ">":
        return left > right  # type: ignore[operator]
    if op == "<=":
        return left <= right  # type: ignore[operator]
    return left >= right  # type: ignore[operator]


def _arith(op: str, a: Value, b: Value) -> Value:
    x, y = _as_number(a), _as_number(b)
    if x is None or y is None:
        return None
    try:
        if op == "+":
            r = x + y
        elif op == "-":
            r = x - y
        elif op == "*":
            r = x * y
        elif op == "/":
            if y == 0:
                return None
            r = x / y
        else:
            r = x**y
    except (OverflowError, ZeroDivisionError):
        return None
    if isinstance(r, complex) or not math.isfinite(r):
        return None
    return float(r)


def _round(x: Value, places: Value, mode: str) -> Value:
    n, d = _as_number(x), _as_number(places) if places is not None else 0.0
    if n is None or d is None:
        return None
    try:
        quantum = Decimal(1).scaleb(-int(d))
        dec = Decimal(repr(n))
        if mode == "round":
            out = dec.quantize(quantum, rounding=ROUND_HALF_UP)
        elif mode == "roundup":  # away from zero, as REDCap's roundup
            out = dec.quantize(quantum, rounding=ROUND_CEILING if n >= 0 else ROUND_FLOOR)
        else:
            out = dec.quantize(quantum, rounding=ROUND_FLOOR if n >= 0 else ROUND_CEILING)
    except (InvalidOperation, ValueError):
        return None
    return float(out)


_TIME_PART = r"(?:[ T]([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?)?$"
_DATE_FORMATS = {
    "ymd": re.compile(r"^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})" + _TIME_PART),
    "mdy": re.compile(r"^([0-9]{1,2})[-/]([0-9]{1,2})[-/]([0-9]{4})" + _TIME_PART),
    "dmy": re.compile(r"^([0-9]{1,2})[-/]([0-9]{1,2})[-/]([0-9]{4})" + _TIME_PART),
}
_UNIT_SECONDS = {
    "y": 365.2425 * 86400,
    "M": 30.44 * 86400,
    "d": 86400.0,
    "h": 3600.0,
    "m": 60.0,
    "s": 1.0,
}


def _as_datetime(v: Value, fmt: str, now: dt.datetime) -> dt.datetime | None:
    text = _as_text(v).strip()
    if not text:
        return None
    low = text.lower()
    if low == "today":
        return dt.datetime.combine(now.date(), dt.time())
    if low == "now":
        return now
    for name in (fmt, "ymd"):
        m = _DATE_FORMATS.get(name, _DATE_FORMATS["ymd"]).match(text)
        if m is None:
            continue
        a, b, c = int(m.group(1)), int(m.group(2)), int(m.group(3))
        year, month, day = (a, b, c) if name == "ymd" else (c, a, b) if name == "mdy" else (c, b, a)
        try:
            return dt.datetime(
                year, month, day, int(m.group(4) or 0), int(m.group(5) or 0), int(m.group(6) or 0)
            )
        except ValueError:
            return None
    return None


def _datediff(args: list[Value], now: dt.datetime) -> Value:
    unit = _as_text(args[2])
    fmt = "ymd"
    signed = False
    rest = args[3:]
    if rest and _as_text(rest[0]).lower() in _DATE_FORMATS:
        fmt = _as_text(rest[0]).lower()
        rest = rest[1:]
    if rest:
        signed = truthy(rest[0]) or _as_text(rest[0]).lower() == "true"
    if unit not in _UNIT_SECONDS:
        return None
    first, second = _as_datetime(args[0], fmt, now), _as_datetime(args[1], fmt, now)
    if first is None or second is None:
        return None
    diff = (second - first).total_seconds() / _UNIT_SECONDS[unit]
    return diff if signed else abs(diff)


def _numbers(values: list[Value]) -> list[float]:
    out = []
    for v in values:
        x = _as_number(v)
        if x is not None:
            out.append(x)
    return out


def _text_call(name: str, args: list[Value]) -> Value:
    """REDCap's text functions; ``contains`` and its kin ignore case, as REDCap's do."""
    texts = [_as_text(a) for a in args]
    if name in ("contains", "not_contain", "starts_with", "ends_with"):
        haystack, needle = texts[0].lower(), texts[1].lower()
        if name == "contains":
            return needle in haystack
        if name == "not_contain":
            return needle not in haystack
        if name == "starts_with":
            return haystack.startswith(needle)
        return haystack.endswith(needle)
    if name == "find":  # 1-based position of the needle, 0 when absent
        return float(texts[1].lower().find(texts[0].lower()) + 1)
    if name == "length":
        return float(len(texts[0]))
    if name in ("left", "right", "mid"):
        counts = [_as_number(a) for a in args[1:]]
        if any(c is None or c < 0 or not c.is_integer() for c in counts):
            return None
        whole = [int(c) for c in counts if c is not None]
        if name == "left":
            return texts[0][: whole[0]]
        if name == "right":
            return texts[0][len(texts[0]) - whole[0] :] if whole[0] else ""
        start = max(whole[0], 1) - 1
        return texts[0][start : start + whole[1]]
    if name == "concat":
        return "".join(texts)
    if name == "upper":
        return texts[0].upper()
    if name == "lower":
        return texts[0].lower()
    if name == "trim":
        return texts[0].strip()
    if name == "isblankormissingcode":
        return texts[0].strip() == ""
    if name == "isnumber":
        return _as_number(args[0]) is not None
    x = _as_number(args[0])  # isinteger
    return x is not None and x.is_integer() and "." not in texts[0]


_TEXT_FUNCTIONS = frozenset(
    {
        "concat", "contains", "ends_with", "find", "isblankormissingcode", "isinteger",
        "isnumber", "left", "length", "lower", "mid", "not_contain", "right", "starts_with",
        "trim", "upper",
    }
)  # fmt: skip


def _call(name: str, args: list[Value], now: dt.datetime) -> Value:
    if name in NOT_EVALUATED:
        return None
    if name in _TEXT_FUNCTIONS:
        return _text_call(name, args)
    if name in ("year", "month", "day"):
        when = _as_datetime(args[0], "ymd", now)
        if when is None:
            return None
        return float(when.year if name == "year" else when.month if name == "month" else when.day)
    if name == "mod":
        a, b = _as_number(args[0]), _as_number(args[1])
        if a is None or b is None or b == 0:
            return None
        return math.fmod(a, b)
    if name == "datediff":
        return _datediff(args, now)
    if name in ("round", "roundup", "rounddown"):
        return _round(args[0], args[1] if len(args) > 1 else None, name)
    if name in ("sum", "min", "max", "mean", "median"):
        nums = _numbers(args)
        if not nums:
            return None
        if name == "sum":
            return float(math.fsum(nums))
        if name == "min":
            return min(nums)
        if name == "max":
            return max(nums)
        if name == "mean":
            return float(statistics.fmean(nums))
        return float(statistics.median(nums))
    x = _as_number(args[0])
    if x is None:
        return None
    if name == "abs":
        return abs(x)
    return math.sqrt(x) if x >= 0 else None  # sqrt


def _equal_to_literal(left: _Compiled, literal: NumberLiteral | StringLiteral) -> _Compiled:
    """``[field] = 'x'``, the commonest test in branching logic, without the general path.

    Same result as :func:`_equal`; only quicker when the value is text, as
    stored values are.
    """
    constant: Value = float(literal.text) if isinstance(literal, NumberLiteral) else literal.value
    number = _as_number(constant)
    text = _as_text(constant)

    def equal(env: Mapping[str, object], now: dt.datetime) -> bool:
        v = left(env, now)
        if v is None or v == "":
            return text == ""
        if type(v) is str:
            if v == text:
                return True
            if number is None:
                return False  # text differs and the constant is no number
            if "_" not in v:
                try:
                    x = float(v)
                except ValueError:
                    return False
                if math.isfinite(x):
                    return x == number
        return _equal(v, constant)

    return equal


_ORDER = {"<": operator.lt, ">": operator.gt, "<=": operator.le, ">=": operator.ge}


def _order_to_number(op: str, left: _Compiled, literal: NumberLiteral) -> _Compiled:
    """``[field] > 5`` without the general path (same result as :func:`_order`)."""
    number = float(literal.text)
    compare = _ORDER[op]

    def order(env: Mapping[str, object], now: dt.datetime) -> bool:
        v = left(env, now)
        if v is None or v == "":
            return False
        if type(v) is str and "_" not in v:
            try:
                x = float(v)
            except ValueError:
                return _order(op, v, number)
            if math.isfinite(x):
                return compare(x, number)  # type: ignore[no-any-return]
        return _order(op, v, number)

    return order


def _compile(node: Node) -> _Compiled:
    if isinstance(node, NumberLiteral):
        number = float(node.text)
        return lambda env, now: number
    if isinstance(node, StringLiteral):
        text = node.value
        return lambda env, now: text
    if isinstance(node, SmartVariable) or (isinstance(node, FieldRef) and not node.plain):
        return lambda env, now: None  # beyond one response: see Expression.evaluable
    if isinstance(node, FieldRef):
        name, code = node.name, node.code
        if code is None:

            def field(env: Mapping[str, object], now: dt.datetime) -> Value:
                v = env.get(name)
                if type(v) is str:
                    return v or None
                if v is None:
                    return None
                if isinstance(v, frozenset | set | tuple | list):
                    return None  # a whole checkbox has no single value
                return _as_text(v) if isinstance(v, float | bool) else str(v)

            return field

        def option(env: Mapping[str, object], now: dt.datetime) -> Value:
            v = env.get(name)
            if isinstance(v, frozenset | set | tuple | list):
                return "1" if code in v else "0"
            return "0"

        return option
    if isinstance(node, Unary):
        inner = _compile(node.operand)
        if node.op == "not":
            return lambda env, now: not truthy(inner(env, now))
        if node.op == "-":
            return lambda env, now: _arith("-", 0.0, inner(env, now))
        return lambda env, now: _arith("+", 0.0, inner(env, now))
    if isinstance(node, Call):
        compiled = [_compile(a) for a in node.args]
        fname = node.name
        if fname == "if":
            cond, yes, no = compiled
            return lambda env, now: yes(env, now) if truthy(cond(env, now)) else no(env, now)
        return lambda env, now: _call(fname, [c(env, now) for c in compiled], now)
    left, right = _compile(node.left), _compile(node.right)
    op = node.op
    if op == "and":
        return lambda env, now: truthy(left(env, now)) and truthy(right(env, now))
    if op == "or":
        return lambda env, now: truthy(left(env, now)) or truthy(right(env, now))
    if op in ("=", "<>") and isinstance(node.right, NumberLiteral | StringLiteral):
        equal = _equal_to_literal(left, node.right)
        if op == "=":
            return equal
        return lambda env, now: not equal(env, now)
    if op == "=":
        return lambda env, now: _equal(left(env, now), right(env, now))
    if op == "<>":
        return lambda env, now: not _equal(left(env, now), right(env, now))
    if op in _ORDER and isinstance(node.right, NumberLiteral):
        return _order_to_number(op, left, node.right)
    if op in ("<", ">", "<=", ">="):
        return lambda env, now: _order(op, left(env, now), right(env, now))
    return lambda env, now: _arith(op, left(env, now), right(env, now))
