"""REDCap branching logic and calculated-field expressions.

An expression such as ``[dx] = '1' and ([age] > 5 or [x] <> '')`` is turned
into a small tree of frozen nodes by a hand-written tokenizer and a
precedence-climbing parser, and evaluated by closures compiled from that tree.
It is written here because no package on PyPI parses REDCap's logic syntax,
and because a data dictionary is untrusted input: nothing in it is ever handed
to ``eval`` — only the names, operators and functions below exist.

Grammar, loosest binding first::

    or        := and (("or" | "||") and)*
    and       := not (("and" | "&&") not)*
    not       := ("not" | "!") not | compare
    compare   := sum (("=" | "==" | "<>" | "!=" | "<" | ">" | "<=" | ">=") sum)*
    sum       := product (("+" | "-") product)*
    product   := unary (("*" | "/") unary)*
    unary     := "-" unary | "+" unary | power
    power     := primary ("^" unary)?
    primary   := NUMBER | STRING | reference
               | FUNCTION "(" (or ("," or)*)? ")" | "(" or ")"
    reference := ("[" EVENT "]")? "[" FIELD ("(" CODE ")")? (":" MODIFIER)? "]"
                 ("[" INSTANCE "]")? | "[" SMART-VARIABLE "]" …

A line whose first character (after spaces) is ``#`` or ``//`` is a comment,
as REDCap allows in logic and calculations.

REDCap also lets logic reach beyond one response: an event prefix
(``[visit_2_arm_1][weight]``), a repeat instance (``[weight][2]``), a field
modifier other than ``:value`` (``[sex:label]``), smart variables
(``[event-name]``, ``[user-dag-name]`` — names with ``-`` or ``:``) and a few
functions careloop does not compute (``stdev``, ``log``, ``exponential``,
``concat_ws``, ``replace_text``). careloop reads and keeps all of them, so a
dictionary REDCap accepts imports and exports unchanged, but cannot evaluate
them within one response: such an expression is not :attr:`Expression.evaluable`,
and the validator then keeps the field shown (not required) or leaves the
calculated value blank.

Semantics follow REDCap where REDCap documents them: an empty value is
``''``; ``=``/``<>`` compare numerically when both sides are numbers and as
text otherwise (so ``[x] = ''`` is true for an empty ``x`` and ``[x] = 0`` is
not); ``<``, ``>``, ``<=``, ``>=`` are false when either side is empty;
arithmetic on an empty value is empty (a calculated field stays blank until
its inputs are filled); ``sum``, ``min``, ``max``, ``mean`` and ``median``
skip empty values; an unchecked checkbox option ``[cb(2)]`` is ``'0'``.
"""

from __future__ import annotations

import datetime as dt
import math
import operator
import re
import statistics
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from functools import cached_property
from typing import Literal, TypeAlias

from careloop.core.errors import ErrorDetail, InputError

__all__ = [
    "FUNCTIONS",
    "NOT_EVALUATED",
    "Binary",
    "Call",
    "Expression",
    "FieldRef",
    "Node",
    "NumberLiteral",
    "SmartVariable",
    "StringLiteral",
    "Unary",
    "Value",
    "format_number",
    "parse_expression",
    "to_source",
    "truthy",
    "walk",
]

MAX_LENGTH = 20_000
"""Longest expression accepted (REDCap's own limit on logic is in this range)."""
MAX_DEPTH = 100
"""Deepest nesting accepted, so hostile input cannot exhaust the stack."""

Value: TypeAlias = str | float | bool | None
"""What an expression yields: text, a number, a truth value, or ``None`` for empty."""

FUNCTIONS: dict[str, tuple[int, int | None]] = {
    "abs": (1, 1),
    "concat": (1, None),
    "concat_ws": (2, None),
    "contains": (2, 2),
    "datediff": (3, 5),
    "day": (1, 1),
    "ends_with": (2, 2),
    "exponential": (1, 1),
    "find": (2, 2),
    "if": (3, 3),
    "isblankormissingcode": (1, 1),
    "isinteger": (1, 1),
    "isnumber": (1, 1),
    "left": (2, 2),
    "length": (1, 1),
    "log": (1, 2),
    "lower": (1, 1),
    "max": (1, None),
    "mean": (1, None),
    "median": (1, None),
    "mid": (3, 3),
    "min": (1, None),
    "mod": (2, 2),
    "month": (1, 1),
    "not_contain": (2, 2),
    "replace_text": (3, 3),
    "right": (2, 2),
    "round": (1, 2),
    "roundup": (1, 2),
    "rounddown": (1, 2),
    "sqrt": (1, 1),
    "starts_with": (2, 2),
    "stdev": (1, None),
    "sum": (1, None),
    "trim": (1, 1),
    "upper": (1, 1),
    "year": (1, 1),
}
"""REDCap's functions and their (least, most) number of arguments."""

NOT_EVALUATED = frozenset({"concat_ws", "exponential", "log", "replace_text", "stdev"})
"""Functions careloop reads and keeps but does not compute (see the module docstring)."""


# --------------------------------------------------------------------------- tree


@dataclass(frozen=True)
class NumberLiteral:
    """A number as written, e.g. ``5`` or ``0.25`` (never signed: ``-5`` is unary minus)."""

    text: str


@dataclass(frozen=True)
class StringLiteral:
    """A quoted text, e.g. ``'1'`` or ``"ymd"``."""

    value: str


@dataclass(frozen=True)
class FieldRef:
    """``[name]``, or ``[name(code)]`` for one option of a checkbox field.

    ``event`` (``[event][name]``), ``instance`` (``[name][2]``) and ``modifier``
    (``[name:label]``) keep what REDCap allows beyond one response.
    """

    name: str
    code: str | None = None
    event: str | None = None
    instance: str | None = None
    modifier: str | None = None

    @property
    def plain(self) -> bool:
        """Names this response's own value (no event, other instance or modifier)."""
        return (
            self.event is None
            and self.instance in (None, "current-instance")
            and self.modifier in (None, "value")
        )


@dataclass(frozen=True)
class SmartVariable:
    """A REDCap smart variable such as ``[event-name]``, kept as written (without brackets)."""

    text: str


@dataclass(frozen=True)
class Unary:
    """``-x``, ``+x`` or ``not x``."""

    op: Literal["-", "+", "not"]
    operand: Node


@dataclass(frozen=True)
class Binary:
    """A binary operation; ``op`` is canonical (``=`` for ``==``, ``<>`` for ``!=``)."""

    op: Literal["or", "and", "=", "<>", "<", ">", "<=", ">=", "+", "-", "*", "/", "^"]
    left: Node
    right: Node


@dataclass(frozen=True)
class Call:
    """A function call; ``name`` is lower case and one of :data:`FUNCTIONS`."""

    name: str
    args: tuple[Node, ...]


Node: TypeAlias = NumberLiteral | StringLiteral | FieldRef | SmartVariable | Unary | Binary | Call

_PRECEDENCE = {
    "or": 1, "and": 2, "not": 3,
    "=": 4, "<>": 4, "<": 4, ">": 4, "<=": 4, ">=": 4,
    "+": 5, "-": 5, "*": 6, "/": 6,
    "unary": 7, "^": 8,
}  # fmt: skip
_ATOM = 9


# --------------------------------------------------------------------------- tokens


class _SyntaxProblem(Exception):
    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


@dataclass(frozen=True)
class _Token:
    kind: Literal["num", "str", "field", "smart", "name", "op", "(", ")", ",", "end"]
    text: str
    position: int
    code: str | None = None
    ref: FieldRef | None = None


_GROUP_RE = re.compile(r"\[([^\[\]]*)\]")
_FIELD_GROUP = re.compile(
    r"^([A-Za-z][A-Za-z0-9_]*)(?:\(([-A-Za-z0-9_.]+)\))?(?::([A-Za-z0-9_:,-]+))?$"
)
_NUMBER_RE = re.compile(r"[0-9]+(?:\.[0-9]+)?|\.[0-9]+")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DIGITS = frozenset("0123456789")
_NAME_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_TWO_CHAR_OPS = ("<>", "!=", "<=", ">=", "==", "&&", "||")
_ONE_CHAR_OPS = "=<>+-*/^!"


def _smart(text: str) -> bool:
    # REDCap: smart variables have dashes or colons, which field names cannot.
    return bool(text) and ("-" in text or ":" in text) and _FIELD_GROUP.match(text) is None


def _reference(groups: list[str], i: int) -> FieldRef | SmartVariable:
    """A run of adjacent ``[…]`` groups as a field reference or a smart variable."""
    fields = [_FIELD_GROUP.match(g) for g in groups]
    for g, m in zip(groups, fields, strict=True):
        if m is None and not _smart(g) and not g.isdigit():
            raise _SyntaxProblem(
                f"[{g}] is not a field reference; write [field_name] or, for one "
                "checkbox option, [field_name(code)]",
                i,
            )

    def field(m: re.Match[str], **where: str | None) -> FieldRef:
        return FieldRef(m.group(1), m.group(2), modifier=m.group(3), **where)

    def instance(g: str) -> bool:
        return g.isdigit() or g.endswith("-instance")

    n = len(groups)
    if n == 1:
        m = fields[0]
        if m is not None:
            return field(m)
        if groups[0].isdigit():
            raise _SyntaxProblem(f"[{groups[0]}] is a repeat instance with no field before it", i)
        return SmartVariable(groups[0])
    if n == 2:
        first, second = fields
        if first is not None and instance(groups[1]):
            return field(first, instance=groups[1])
        if second is not None and (first is not None or _smart(groups[0])):
            return field(second, event=groups[0])
    if n == 3 and fields[1] is not None and instance(groups[2]):
        return field(fields[1], event=groups[0], instance=groups[2])
    return SmartVariable("][".join(groups))


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    line_start = True
    while i < n:
        ch = text[i]
        if ch == "\n":
            line_start = True
            i += 1
            continue
        if ch.isspace():
            i += 1
            continue
        if line_start and (ch == "#" or text.startswith("//", i)):
            end = text.find("\n", i)
            i = n if end == -1 else end  # a comment runs to the end of its line
            continue
        line_start = False
        if ch == "[":
            groups: list[str] = []
            j = i
            while j < n and text[j] == "[":
                m = _GROUP_RE.match(text, j)
                if m is None:
                    raise _SyntaxProblem("'[' is never closed with ']'", j)
                groups.append(m.group(1).strip())
                j = m.end()
            ref = _reference(groups, i)
            if isinstance(ref, SmartVariable):
                tokens.append(_Token("smart", ref.text, i))
            else:
                tokens.append(_Token("field", ref.name, i, ref.code, ref))
            i = j
            continue
        if ch in "'\"":
            end = text.find(ch, i + 1)
            if end == -1:
                raise _SyntaxProblem(f"the text starting with {ch} is never closed", i)
            tokens.append(_Token("str", text[i + 1 : end], i))
            i = end + 1
            continue
        if ch in _DIGITS or (ch == "." and i + 1 < n and text[i + 1] in _DIGITS):
            m = _NUMBER_RE.match(text, i)
            assert m is not None
            if m.end() < n and text[m.end()] in _NAME_START:
                raise _SyntaxProblem(f"a number runs into a name at '{text[i : m.end() + 1]}'", i)
            tokens.append(_Token("num", m.group(0), i))
            i = m.end()
            continue
        if ch in _NAME_START:
            m = _NAME_RE.match(text, i)
            assert m is not None
            tokens.append(_Token("name", m.group(0), i))
            i = m.end()
            continue
        three = text[i : i + 3]
        if three in ("===", "!=="):  # JavaScript's strict comparisons, which REDCap passes on
            tokens.append(_Token("op", three[:2], i))
            i += 3
            continue
        two = text[i : i + 2]
        if two in _TWO_CHAR_OPS:
            tokens.append(_Token("op", two, i))
            i += 2
            continue
        if ch in _ONE_CHAR_OPS:
            tokens.append(_Token("op", ch, i))
            i += 1
            continue
        if ch in "(),":
            tokens.append(_Token(ch, ch, i))  # type: ignore[arg-type]
            i += 1
            continue
        raise _SyntaxProblem(f"unexpected character {ch!r}", i)
    tokens.append(_Token("end", "", n))
    return tokens


# --------------------------------------------------------------------------- parser

_COMPARE = {"=": "=", "==": "=", "<>": "<>", "!=": "<>", "<": "<", ">": ">", "<=": "<=", ">=": ">="}


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.i = 0
        self.depth = 0

    def peek(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def word(self) -> str | None:
        tok = self.peek()
        return tok.text.lower() if tok.kind == "name" else None

    def parse(self) -> Node:
        if self.peek().kind == "end":
            raise _SyntaxProblem("the expression is empty", 0)
        node = self.parse_or()
        tok = self.peek()
        if tok.kind != "end":
            raise _SyntaxProblem(
                f"unexpected {_describe(tok)}; expected an operator or the end", tok.position
            )
        return node

    def _enter(self, position: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _SyntaxProblem(
                f"the expression is nested more than {MAX_DEPTH} levels deep", position
            )

    def parse_or(self) -> Node:
        node = self.parse_and()
        while self.word() == "or" or (self.peek().kind == "op" and self.peek().text == "||"):
            self.take()
            node = Binary("or", node, self.parse_and())
        return node

    def parse_and(self) -> Node:
        node = self.parse_not()
        while self.word() == "and" or (self.peek().kind == "op" and self.peek().text == "&&"):
            self.take()
            node = Binary("and", node, self.parse_not())
        return node

    def parse_not(self) -> Node:
        tok = self.peek()
        if self.word() == "not" or (tok.kind == "op" and tok.text == "!"):
            self.take()
            self._enter(tok.position)
            node = Unary("not", self.parse_not())
            self.depth -= 1
            return node
        return self.parse_compare()

    def parse_compare(self) -> Node:
        node = self.parse_sum()
        while self.peek().kind == "op" and self.peek().text in _COMPARE:
            op = _COMPARE[self.take().text]
            node = Binary(op, node, self.parse_sum())  # type: ignore[arg-type]
        return node

    def parse_sum(self) -> Node:
        node = self.parse_product()
        while self.peek().kind == "op" and self.peek().text in "+-":
            op = self.take().text
            node = Binary(op, node, self.parse_product())  # type: ignore[arg-type]
        return node

    def parse_product(self) -> Node:
        node = self.parse_unary()
        while self.peek().kind == "op" and self.peek().text in "*/":
            op = self.take().text
            node = Binary(op, node, self.parse_unary())  # type: ignore[arg-type]
        return node

    def parse_unary(self) -> Node:
        tok = self.peek()
        if tok.kind == "op" and tok.text in "+-":
            self.take()
            self._enter(tok.position)
            node = Unary(tok.text, self.parse_unary())  # type: ignore[arg-type]
            self.depth -= 1
            return node
        return self.parse_power()

    def parse_power(self) -> Node:
        node = self.parse_primary()
        if self.peek().kind == "op" and self.peek().text == "^":
            tok = self.take()
            self._enter(tok.position)
            node = Binary("^", node, self.parse_unary())
            self.depth -= 1
        return node

    def parse_primary(self) -> Node:
        tok = self.take()
        if tok.kind == "num":
            return NumberLiteral(tok.text)
        if tok.kind == "str":
            return StringLiteral(tok.text)
        if tok.kind == "field":
            return tok.ref if tok.ref is not None else FieldRef(tok.text, tok.code)
        if tok.kind == "smart":
            return SmartVariable(tok.text)
        if tok.kind == "(":
            self._enter(tok.position)
            node = self.parse_or()
            self.depth -= 1
            self.expect(")", "to close the '(' at column " + str(tok.position + 1))
            return node
        if tok.kind == "name":
            name = tok.text.lower()
            if name in ("true", "false"):  # REDCap's datediff takes a true/false flag
                return NumberLiteral("1" if name == "true" else "0")
            if name in ("and", "or", "not"):
                raise _SyntaxProblem(f"'{tok.text}' needs a value before it", tok.position)
            if name not in FUNCTIONS:
                known = ", ".join(sorted(FUNCTIONS))
                raise _SyntaxProblem(
                    f"unknown function or name '{tok.text}'; fields are written [name] and "
                    f"the functions are {known}",
                    tok.position,
                )
            return self.parse_call(name, tok)
        raise _SyntaxProblem(f"unexpected {_describe(tok)}; expected a value", tok.position)

    def parse_call(self, name: str, tok: _Token) -> Node:
        self.expect("(", f"after the function name '{tok.text}'")
        self._enter(tok.position)
        args: list[Node] = []
        if self.peek().kind != ")":
            args.append(self.parse_or())
            while self.peek().kind == ",":
                self.take()
                args.append(self.parse_or())
        self.expect(")", f"to close the call to {name}()")
        self.depth -= 1
        least, most = FUNCTIONS[name]
        if len(args) < least or (most is not None and len(args) > most):
            wanted = (
                str(least)
                if least == most
                else (f"at least {least}" if most is None else f"{least} to {most}")
            )
            raise _SyntaxProblem(
                f"{name}() takes {wanted} argument(s), got {len(args)}", tok.position
            )
        return Call(name, tuple(args))

    def expect(self, kind: str, why: str) -> None:
        tok = self.peek()
        if tok.kind != kind:
            raise _SyntaxProblem(f"expected '{kind}' {why}, found {_describe(tok)}", tok.position)
        self.take()


def _describe(tok: _Token) -> str:
    if tok.kind == "end":
        return "the end of the expression"
    if tok.kind in ("field", "smart"):
        return f"[{tok.text}]"
    if tok.kind == "str":
        return f"text '{tok.text}'"
    return f"'{tok.text}'"


# --------------------------------------------------------------------------- printing


def _prec(node: Node) -> int:
    if isinstance(node, Binary):
        return _PRECEDENCE[node.op]
    if isinstance(node, Unary):
        return _PRECEDENCE["not"] if node.op == "not" else _PRECEDENCE["unary"]
    return _ATOM


def _quote(value: str) -> str:
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise ValueError(f"text {value!r} holds both quote characters and cannot be written")


def to_source(node: Node) -> str:
    """Print a tree as canonical REDCap syntax with the fewest parentheses."""
    if isinstance(node, NumberLiteral):
        return node.text
    if isinstance(node, StringLiteral):
        return _quote(node.value)
    if isinstance(node, FieldRef):
        inner = node.name + (f"({node.code})" if node.code is not None else "")
        inner += f":{node.modifier}" if node.modifier is not None else ""
        event = f"[{node.event}]" if node.event is not None else ""
        instance = f"[{node.instance}]" if node.instance is not None else ""
        return f"{event}[{inner}]{instance}"
    if isinstance(node, SmartVariable):
        return f"[{node.text}]"
    if isinstance(node, Call):
        return f"{node.name}({', '.join(to_source(a) for a in node.args)})"
    if isinstance(node, Unary):
        inner = to_source(node.operand)
        mine = _prec(node)
        if _prec(node.operand) < mine:
            inner = f"({inner})"
        return f"not {inner}" if node.op == "not" else f"{node.op}{inner}"
    mine = _PRECEDENCE[node.op]
    left, right = to_source(node.left), to_source(node.right)
    if node.op == "^":  # right-associative
        if _prec(node.left) <= mine:
            left = f"({left})"
        if _prec(node.right) < _PRECEDENCE["unary"]:
            right = f"({right})"
    else:
        if _prec(node.left) < mine:
            left = f"({left})"
        if _prec(node.right) <= mine:
            right = f"({right})"
    return f"{left} {node.op} {right}"


def walk(node: Node) -> Iterator[Node]:
    """Every node of a tree, parents first."""
    yield node
    if isinstance(node, Unary):
        yield from walk(node.operand)
    elif isinstance(node, Binary):
        yield from walk(node.left)
        yield from walk(node.right)
    elif isinstance(node, Call):
        for arg in node.args:
            yield from walk(arg)


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


# --------------------------------------------------------------------------- public


@dataclass(frozen=True)
class Expression:
    """A parsed REDCap expression: the text as written and its tree.

    Two expressions are equal when their trees are, whatever the spacing,
    quoting or spelling of operators (``!=`` or ``<>``) in the source.
    """

    source: str
    """The expression as written in the data dictionary."""
    tree: Node
    """The parsed tree."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Expression) and self.tree == other.tree

    def __hash__(self) -> int:
        return hash(self.tree)

    @cached_property
    def canonical(self) -> str:
        """The expression printed in one canonical way (used for content hashes)."""
        return to_source(self.tree)

    @cached_property
    def evaluable(self) -> bool:
        """Whether careloop can compute it from one response (and other forms' answers).

        False when it uses an event prefix, another repeat instance, a field
        modifier other than ``:value``, a smart variable, or a function in
        :data:`NOT_EVALUATED`.
        """
        for n in walk(self.tree):
            if isinstance(n, SmartVariable) or (isinstance(n, FieldRef) and not n.plain):
                return False
            if isinstance(n, Call) and n.name in NOT_EVALUATED:
                return False
        return True

    @cached_property
    def references(self) -> tuple[FieldRef, ...]:
        """Every ``[field]`` or ``[field(code)]`` in order of appearance."""
        return tuple(n for n in walk(self.tree) if isinstance(n, FieldRef))

    def referenced_fields(self) -> frozenset[str]:
        """Names of the fields the expression reads."""
        return frozenset(r.name for r in self.references)

    @cached_property
    def compiled(self) -> Callable[[Mapping[str, object], dt.datetime], Value]:
        """The evaluator built from the tree: ``compiled(values, now)`` (for hot loops)."""
        return _compile(self.tree)

    def evaluate(self, values: Mapping[str, object], *, now: dt.datetime | None = None) -> Value:
        """Evaluate against a response's values.

        Args:
            values: Field name → value as text (``''`` or missing is empty);
                a checkbox field's value is the set of its checked codes.
            now: The moment ``"today"``/``"now"`` stand for (default: the clock).
        """
        return self.compiled(values, now or dt.datetime.now())

    def is_true(self, values: Mapping[str, object], *, now: dt.datetime | None = None) -> bool:
        """Whether the expression holds, as branching logic reads it."""
        return truthy(self.compiled(values, now or dt.datetime.now()))


def parse_expression(text: str, *, where: str = "expression") -> Expression:
    """Parse REDCap branching logic or a calculation.

    Args:
        text: The expression, e.g. ``[dx] = '1' and [age] >= 5``.
        where: Names the place in error messages (e.g. ``dict.csv:12:bmi``).

    Raises:
        InputError: The text is not a valid expression; the detail says where
            (1-based column) and why.
    """
    if len(text) > MAX_LENGTH:
        raise InputError(
            f"Expression is {len(text)} characters long; the limit is {MAX_LENGTH}.",
            details=[ErrorDetail(where, "expression too long")],
        )
    try:
        tree = _Parser(text).parse()
    except _SyntaxProblem as exc:
        message = f"{exc.message} (column {exc.position + 1})"
        raise InputError(
            f"Invalid expression {text!r}: {message}",
            details=[ErrorDetail(where, message, text)],
        ) from None
    return Expression(text, tree)
