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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property

from careloop.capture.expressions.evaluation import _compile, format_number, truthy
from careloop.capture.expressions.syntax import (
    FUNCTIONS,
    MAX_LENGTH,
    NOT_EVALUATED,
    Binary,
    Call,
    FieldRef,
    Node,
    NumberLiteral,
    SmartVariable,
    StringLiteral,
    Unary,
    Value,
    _Parser,
    _SyntaxProblem,
    to_source,
    walk,
)
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
