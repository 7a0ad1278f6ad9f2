"""REDCap branching logic and calculations: parsing, printing, evaluation, safety."""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from careloop.capture.expressions import (
    FUNCTIONS,
    Binary,
    Call,
    FieldRef,
    Node,
    NumberLiteral,
    StringLiteral,
    Unary,
    parse_expression,
    to_source,
)
from careloop.core.errors import InputError

NOW = dt.datetime(2024, 6, 15, 12, 0)


def ev(text: str, **values: object) -> object:
    return parse_expression(text).evaluate(values, now=NOW)


def holds(text: str, **values: object) -> bool:
    return parse_expression(text).is_true(values, now=NOW)


# ---------------------------------------------------------------- parsing


def test_and_binds_tighter_than_or():
    tree = parse_expression("[a] = '1' or [b] = '2' and [c] = '3'").tree
    assert isinstance(tree, Binary) and tree.op == "or"
    assert isinstance(tree.right, Binary) and tree.right.op == "and"


def test_parentheses_override_precedence():
    tree = parse_expression("([a] = '1' or [b] = '2') and [c] = '3'").tree
    assert isinstance(tree, Binary) and tree.op == "and"


def test_arithmetic_precedence_and_right_associative_power():
    assert ev("1 + 2 * 3") == 7
    assert ev("(1 + 2) * 3") == 9
    assert ev("2 ^ 3 ^ 2") == 512
    assert ev("-2 ^ 2") == -4
    assert ev("10 - 4 - 3") == 3
    assert ev("12 / 3 / 2") == 2


def test_operators_and_keywords_are_read_in_every_spelling():
    a = parse_expression("[x] <> '1' AND [y] = '2' Or NOT [z] = '3'")
    b = parse_expression("[x] != '1' && [y] == '2' || ! [z] = '3'")
    assert a == b
    assert a.canonical == "[x] <> '1' and [y] = '2' or not [z] = '3'"


def test_checkbox_option_reference_is_parsed():
    tree = parse_expression("[meds(2)] = '1'").tree
    assert tree == Binary("=", FieldRef("meds", "2"), StringLiteral("1"))
    assert parse_expression("[cb(-1)] = '1'").references == (FieldRef("cb", "-1"),)


def test_referenced_fields_lists_every_field_once():
    expr = parse_expression("if([a] > 1, sum([b], [c(3)]), [a])")
    assert expr.referenced_fields() == {"a", "b", "c"}


def test_both_quote_characters_delimit_text():
    assert holds('"it\'s" = [x]', x="it's")
    with pytest.raises(InputError):  # '' is no escape in REDCap
        parse_expression("[x] = 'it''s'")
    assert holds("[x] = \"a 'quoted' word\"", x="a 'quoted' word")


def test_equal_expressions_ignore_spacing_and_quotes():
    assert parse_expression("[a]='1'") == parse_expression('[a] = "1"')
    assert parse_expression("[a]='1'").source == "[a]='1'"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("[a] = ", "expected a value"),
        ("[a] = '1", "never closed"),
        ("([a] = '1'", "expected ')'"),
        ("[a] = '1')", "unexpected ')'"),
        ("[a b] = 1", "not a field reference"),
        ("[1] = 1", "repeat instance with no field"),
        ("foo([a])", "unknown function"),
        ("round()", "takes 1 to 2 argument"),
        ("if([a], 1)", "takes 3 argument"),
        ("[a] = 1 # comment", "unexpected character '#'"),
        ("and [a] = 1", "needs a value before it"),
        ("3abc", "runs into a name"),
    ],
)
def test_syntax_errors_say_what_and_where(text, fragment):
    with pytest.raises(InputError) as info:
        parse_expression(text, where="dict.csv:4:bmi")
    assert fragment in str(info.value)
    assert info.value.details[0].location == "dict.csv:4:bmi"


def test_syntax_error_names_the_column():
    with pytest.raises(InputError, match=r"column 7"):
        parse_expression("[a] = $")


@pytest.mark.parametrize(
    "hostile",
    [
        "__import__('os').system('rm -rf /')",
        "[a].__class__",
        "open('/etc/passwd')",
        "eval('1')",
        "lambda: 1",
        "[a]; import os",
        'exec("print(1)")',
    ],
)
def test_code_injection_is_rejected_as_a_syntax_error(hostile):
    with pytest.raises(InputError):
        parse_expression(hostile)


def test_deep_nesting_and_huge_input_are_refused_without_crashing():
    with pytest.raises(InputError, match="nested"):
        parse_expression("(" * 5000 + "1" + ")" * 5000)
    with pytest.raises(InputError, match="nested"):
        parse_expression("-" * 5000 + "1")
    with pytest.raises(InputError, match="too long"):
        parse_expression("1 + " * 10000 + "1")


# ---------------------------------------------------------------- evaluation


def test_equality_compares_numbers_numerically_and_text_as_text():
    assert holds("[a] = '1'", a="1")
    assert holds("[a] = 1", a="1.0")
    assert holds("[a] = '01'", a="1")  # both numeric: REDCap compares as numbers
    assert not holds("[a] = 'abc'", a="ABC")
    assert holds("[a] <> 'x'", a="y")


def test_an_empty_value_equals_empty_text_and_nothing_else():
    assert holds("[a] = ''")
    assert holds("[a] = ''", a="")
    assert not holds("[a] = 0")
    assert not holds("[a] <> ''")
    assert holds("[a] <> 0")


def test_ordering_with_an_empty_value_is_false_both_ways():
    assert not holds("[age] > 5")
    assert not holds("[age] < 5")
    assert not holds("[age] <= 5")
    assert holds("[age] >= 5", age="5")


def test_ordering_compares_dates_as_text():
    assert holds("[d] > '2024-01-31'", d="2024-02-01")


def test_arithmetic_with_an_empty_value_is_empty():
    assert ev("[a] + 1") is None
    assert ev("[a] * [b]", a="2") is None
    assert ev("[a] / 0", a="2") is None
    assert ev("(-8) ^ 0.5") is None
    assert ev("[a] + 1", a="abc") is None


def test_sum_min_max_mean_median_skip_empty_values():
    assert ev("sum([a], [b], [c])", a="1", c="2.5") == 3.5
    assert ev("sum([a], [b])") is None
    assert ev("min([a], [b], 3)", a="7") == 3
    assert ev("max([a], [b], 3)", a="7") == 7
    assert ev("mean([a], [b], [c])", a="1", b="", c="3") == 2
    assert ev("median(5, 1, [x], 3)") == 3


def test_round_is_half_away_from_zero_like_php():
    assert ev("round(2.5)") == 3
    assert ev("round(-2.5)") == -3
    assert ev("round(1.005, 2)") == 1.01
    assert ev("roundup(1.21, 1)") == 1.3
    assert ev("rounddown(1.29, 1)") == 1.2
    assert ev("rounddown(-1.29, 1)") == -1.2
    assert ev("abs(-3)") == 3
    assert ev("sqrt(16)") == 4
    assert ev("sqrt(-1)") is None


def test_if_chooses_a_branch_by_truth():
    assert ev("if([a] = '1', 'yes', 'no')", a="1") == "yes"
    assert ev("if([a] = '1', 'yes', 'no')") == "no"
    assert ev("if([a], 10, 20)", a="0") == 20


def test_checkbox_option_is_1_when_ticked_and_0_otherwise():
    assert holds("[cb(2)] = '1'", cb=frozenset({"2", "3"}))
    assert holds("[cb(1)] = '0'", cb=frozenset({"2"}))
    assert holds("[cb(1)] = '0'")
    assert holds("[cb(2)] = '1'", cb=("2",))


def test_datediff_in_years_months_days_and_signed():
    assert ev('datediff([a], [b], "d", "ymd")', a="2024-01-01", b="2024-03-01") == 60
    assert ev('datediff([b], [a], "d")', a="2024-01-01", b="2024-03-01") == 60
    assert ev('datediff([b], [a], "d", "ymd", true)', a="2024-01-01", b="2024-03-01") == -60
    years = ev('datediff([dob], "2024-06-15", "y")', dob="2014-06-15")
    assert isinstance(years, float) and abs(years - 10) < 0.01
    assert ev('rounddown(datediff([dob], "today", "y"), 0)', dob="2010-06-16") == 13
    assert ev('datediff([a], [b], "h")', a="2024-01-01 08:00", b="2024-01-01 20:30") == 12.5
    assert ev('datediff([a], [b], "d", "mdy")', a="01/31/2024", b="2024-02-02") == 2
    assert ev('datediff([a], [b], "d")', a="2024-01-01") is None
    assert ev('datediff([a], [b], "weeks")', a="2024-01-01", b="2024-01-08") is None


def test_true_and_false_are_numbers_as_in_redcap():
    assert ev("true + 1") == 2
    assert not holds("false")


def test_evaluation_uses_the_clock_when_now_is_not_given():
    assert parse_expression('datediff("today", "today", "d")').evaluate({}) == 0


# ---------------------------------------------------------------- printing


def test_canonical_form_keeps_needed_parentheses_only():
    cases = {
        "(([a] + 1)) * 2": "([a] + 1) * 2",
        "[a] - ([b] - [c])": "[a] - ([b] - [c])",
        "([a] - [b]) - [c]": "[a] - [b] - [c]",
        "(2 ^ 3) ^ 2": "(2 ^ 3) ^ 2",
        "2 ^ (3 ^ 2)": "2 ^ 3 ^ 2",
        "not ([a] = 1 or [b] = 2)": "not ([a] = 1 or [b] = 2)",
        "(-2) ^ 2": "(-2) ^ 2",
        "if([a]='1',(1+2),3)": "if([a] = '1', 1 + 2, 3)",
    }
    for text, canonical in cases.items():
        assert parse_expression(text).canonical == canonical


_names = st.sampled_from(["a", "bmi", "weight_kg", "x1"])
_leaves: st.SearchStrategy[Node] = st.one_of(
    st.builds(NumberLiteral, st.from_regex(r"\A(0|[1-9][0-9]{0,3})(\.[0-9]{1,3})?\Z")),
    st.builds(
        StringLiteral,
        st.text(st.characters(codec="utf-8", exclude_characters="\"'"), max_size=6),
    ),
    st.builds(FieldRef, _names, st.none() | st.sampled_from(["1", "2", "-1", "a_b"])),
)


def _extend(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    ops = ["or", "and", "=", "<>", "<", ">", "<=", ">=", "+", "-", "*", "/", "^"]
    return st.one_of(
        st.builds(Binary, st.sampled_from(ops), children, children),
        st.builds(Unary, st.sampled_from(["-", "+", "not"]), children),
        st.builds(
            Call,
            st.sampled_from(["sum", "min", "max", "mean", "abs", "round"]),
            st.lists(children, min_size=1, max_size=2).map(tuple),
        ).filter(lambda c: c.name not in ("abs",) or len(c.args) == 1),
        st.builds(lambda a, b, c: Call("if", (a, b, c)), children, children, children),
    )


def _depth(node: Node) -> int:
    if isinstance(node, Unary):
        return 1 + _depth(node.operand)
    if isinstance(node, Binary):
        return 1 + max(_depth(node.left), _depth(node.right))
    if isinstance(node, Call):
        return 1 + max(_depth(a) for a in node.args)
    return 1


_trees = st.recursive(_leaves, _extend, max_leaves=10).filter(lambda t: _depth(t) <= 20)
_quiet = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")


@_quiet
@settings(max_examples=400, deadline=None)
@given(_trees)
def test_printing_then_parsing_gives_the_same_tree(tree):
    text = to_source(tree)
    assert parse_expression(text).tree == tree


@_quiet
@settings(max_examples=200, deadline=None)
@given(_trees, st.dictionaries(_names, st.sampled_from(["", "0", "1", "2.5", "abc", "-3"])))
def test_evaluation_never_raises_on_any_tree_and_values(tree, values):
    expr = parse_expression(to_source(tree))
    expr.evaluate(values, now=NOW)
    expr.is_true(values, now=NOW)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_arbitrary_text_either_parses_or_raises_input_error(text):
    with contextlib.suppress(InputError):
        parse_expression(text)


def test_every_documented_function_parses():
    for name in FUNCTIONS:
        least, _ = FUNCTIONS[name]
        args = ", ".join(["'d'"] * max(least, 1)) if name != "datediff" else "'a', 'b', 'd'"
        parse_expression(f"{name}({args})")


_VALUES_TEXT = st.one_of(
    st.sampled_from(["", "0", "1", "1.0", "01", "-2", "1e3", "nan", "inf", "1_0", " 1", "abc"]),
    st.text(max_size=5),
)
_LITERALS = st.one_of(
    st.from_regex(r"\A[0-9]{1,3}(\.[0-9]{1,2})?\Z").map(NumberLiteral),
    st.sampled_from(["", "0", "1", "1.0", "abc", "nan"]).map(StringLiteral),
)


@settings(max_examples=500, deadline=None)
@given(_VALUES_TEXT, _LITERALS, st.sampled_from(["=", "<>", "<", ">", "<=", ">="]))
def test_the_fast_paths_for_literals_agree_with_the_general_comparison(value, literal, op):
    from careloop.capture.expressions.evaluation import _equal, _order

    fast = parse_expression(to_source(Binary(op, FieldRef("x"), literal))).evaluate({"x": value})
    constant = float(literal.text) if isinstance(literal, NumberLiteral) else literal.value
    v = value or None
    if op == "=":
        slow = _equal(v, constant)
    elif op == "<>":
        slow = not _equal(v, constant)
    else:
        slow = _order(op, v, constant)
    assert fast == slow


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("[event_1_arm_1][weight] > 80", "[event_1_arm_1][weight] > 80"),
        ("[weight][2] <> ''", "[weight][2] <> ''"),
        ("[previous-event-name][weight] = 1", "[previous-event-name][weight] = 1"),
        ("[sex:label] = 'Female'", "[sex:label] = 'Female'"),
        ("[event-name] = 'baseline_arm_1'", "[event-name] = 'baseline_arm_1'"),
        (
            "[survey-duration-completed:form_f2:m]",
            "[survey-duration-completed:form_f2:m]",
        ),
        ("stdev(1, 2, [a])", "stdev(1, 2, [a])"),
    ],
)
def test_what_redcap_allows_beyond_one_response_is_kept_but_not_evaluated(text, canonical):
    # Real dictionaries (tests/data/redcap) use all of these; REDCap accepts them.
    e = parse_expression(text)
    assert e.canonical == canonical
    assert parse_expression(e.canonical) == e
    assert not e.evaluable
    assert e.evaluate({"weight": "90", "sex": "1", "a": "3"}) in (None, False)


def test_field_value_modifier_and_current_instance_are_the_fields_own_value():
    e = parse_expression("[weight:value][current-instance] > 80")
    assert e.evaluable and e.is_true({"weight": "90"}) and not e.is_true({"weight": "70"})


def test_comment_lines_are_ignored_as_redcap_ignores_them():
    # From eipm/bridge2ai-redcap's DataDictionary.csv (tests/data/redcap/SOURCE.md).
    text = '# EARS, NOSE, or MOUTH conditions (yes)\n[a]="yes" or\n  // second note\n  [b]="yes"'
    e = parse_expression(text)
    assert e.canonical == "[a] = 'yes' or [b] = 'yes'" and e.source == text
    assert e.is_true({"b": "yes"}) and not e.is_true({"a": "no"})


def test_javascript_strict_comparisons_read_as_redcap_comparisons():
    assert parse_expression("[a] === 5") == parse_expression("[a] = 5")
    assert parse_expression("[a] !== 5") == parse_expression("[a] <> 5")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("contains([s], 'AD')", True),
        ("not_contain([s], 'x')", True),
        ("starts_with([s], 'r&')", True),
        ("ends_with([s], 'D')", True),
        ("find('&', [s])", 2.0),
        ("length([s])", 4.0),
        ("left([s], 2)", "R&"),
        ("right([s], 1)", "d"),
        ("mid([s], 2, 2)", "&a"),
        ("concat([s], '-', 1)", "R&ad-1"),
        ("upper([s])", "R&AD"),
        ("lower([s])", "r&ad"),
        ("trim('  x ')", "x"),
        ("isnumber('1.5')", True),
        ("isnumber([s])", False),
        ("isinteger('7')", True),
        ("isinteger('7.5')", False),
        ("isblankormissingcode([empty])", True),
        ("mod(7, 3)", 1.0),
        ("year('2024-03-31')", 2024.0),
        ("month('2024-03-31')", 3.0),
        ("day('2024-03-31')", 31.0),
    ],
)
def test_redcaps_text_and_date_functions(text, expected):
    assert parse_expression(text).evaluate({"s": "R&ad", "empty": ""}) == expected
