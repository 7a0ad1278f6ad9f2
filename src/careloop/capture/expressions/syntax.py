"""REDCap expressions as text: the tree, the tokenizer, the parser and printing.

See :mod:`careloop.capture.expressions` for the grammar and semantics.
Nothing here evaluates anything; :mod:`~careloop.capture.expressions.evaluation`
compiles the tree into closures.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, TypeAlias

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
