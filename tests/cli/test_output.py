"""What every CLI command's JSON looks like: strict JSON, whatever the numbers."""

from __future__ import annotations

import json
import math

from careloop.cli.output import print_json


def test_json_output_writes_missing_and_infinite_numbers_as_null(capsys):
    print_json({"a": math.nan, "rows": [{"b": math.inf, "c": 1.5}, (2, -math.inf)], "d": "x"})
    text = capsys.readouterr().out
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"a": None, "rows": [{"b": None, "c": 1.5}, [2, None]], "d": "x"}
