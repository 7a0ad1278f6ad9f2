"""careloop.analysis._frames: one check, one message, for a column the data lacks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest

from careloop.analysis import funnel, its, matching, rdd, spc, trials
from careloop.analysis._frames import numeric_column, require_columns
from careloop.analysis.qualitative import krippendorff_alpha
from careloop.analysis.risk import fit_risk_model
from careloop.core.errors import InputError

DATA = pd.DataFrame({"a": [1, 2, 3, 4], "b": [0, 1, 0, 1]})


def test_a_present_column_passes_and_a_name_of_none_is_not_asked_for():
    require_columns(DATA, {"numerator": "a", "unit": None})
    require_columns(DATA, ["a", "b"])


def test_every_missing_column_is_named_with_its_role_in_one_error():
    with pytest.raises(InputError) as caught:
        require_columns(DATA, [("covariate", "x"), ("outcome", "a"), ("covariate", "y")])
    error = caught.value
    assert error.message == (
        "Columns 'x' (covariate), 'y' (covariate) not found: they are not in the data, "
        "whose columns are a, b. Check the spelling, or rename the column."
    )
    assert [(d.location, d.value) for d in error.details] == [
        ("covariate", "x"),
        ("covariate", "y"),
    ]


def test_a_bare_name_is_its_own_role_and_a_wide_frame_is_listed_in_part():
    wide = pd.DataFrame({f"c{i}": [0] for i in range(45)})
    with pytest.raises(InputError) as caught:
        require_columns(wide, ["z"], what="the extract")
    message = caught.value.message
    assert message.startswith(
        "Column 'z' not found: it is not in the extract, whose columns are c0, c1,"
    )
    assert "c29 and 15 more." in message and "c30" not in message


# Each method that takes a data frame refuses a missing column through the one helper.
METHODS: dict[str, Callable[[pd.DataFrame], Any]] = {
    "funnel": lambda d: funnel.funnel(d, numerator="nope", denominator="b", unit="a"),
    "its": lambda d: its.segmented_regression(d, outcome="nope", time="a", intervention="b"),
    "matching": lambda d: matching.cem(d, treatment="nope"),
    "rdd": lambda d: rdd.estimate(d, outcome="nope", running="a"),
    "spc": lambda d: spc.qic("nope", data=d),
    "spc by": lambda d: spc.qic_by(d, by="nope", y="a"),
    "trials": lambda d: trials.regression(d, outcome="nope", arm="b"),
    "qualitative": lambda d: krippendorff_alpha(d, unit="a", coder="b", value="nope"),
    "risk": lambda d: fit_risk_model(d, outcome="nope", predictors=["a"]),
}


@pytest.mark.parametrize("method", sorted(METHODS))
def test_each_method_names_the_missing_column_and_the_columns_there_are(method: str):
    with pytest.raises(
        InputError,
        match=r"'nope' \(\w+( by)?\) not found: it is not in the data, whose columns are a, b\.",
    ):
        METHODS[method](DATA)


def test_numeric_column_refuses_the_first_value_that_is_not_a_number():
    data = pd.DataFrame({"n": ["3", None, "x", "y"]})
    with pytest.raises(InputError) as caught:
        numeric_column(data, "n", allow_missing=True)
    assert caught.value.message == "Column 'n' must be numeric; row 2 has 'x'."
    assert [(d.location, d.value) for d in caught.value.details] == [("row 2:n", "x")]


def test_numeric_column_keeps_a_missing_value_only_when_asked():
    data = pd.DataFrame({"n": ["3", None, "4.5"]})
    kept = numeric_column(data, "n", allow_missing=True)
    assert kept.iloc[0] == 3.0 and pd.isna(kept.iloc[1]) and kept.iloc[2] == 4.5
    with pytest.raises(InputError) as caught:
        numeric_column(data, "n", allow_missing=False)
    assert caught.value.message.startswith("Column 'n' must be numeric; row 1 has ")
