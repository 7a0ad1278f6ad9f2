from datetime import date

import pandas as pd

from careloop.capture.examples import example_file
from careloop.capture.native_yaml import read_forms_yaml
from careloop.capture.records_csv import read_records_csv
from careloop.demo.load import VISIT_FORM, records_csv


def _visit_form():
    return next(f for f in read_forms_yaml(example_file("yaml")).forms if f.name == VISIT_FORM)


def test_records_csv_writes_redcaps_shape_with_a_column_per_checkbox_choice():
    form = _visit_form()
    rows = pd.DataFrame(
        {
            "local_id": ["P1", "P2"],
            "event_date": [date(2024, 3, 1), date(2024, 4, 2)],
            "visit_date": ["2024-03-01", "2024-04-02"],
            "pga": ["2", None],
            "medications": [["1", "4"], []],
        },
        index=[10, 20],
    )
    text = records_csv(form, rows).decode()
    header, first, second = (line.split(",") for line in text.splitlines())
    assert header[:2] == ["record_id", "event_date"]
    p1, p2 = dict(zip(header, first, strict=True)), dict(zip(header, second, strict=True))
    assert (p1["record_id"], p1["event_date"], p1["pga"]) == ("P1", "2024-03-01", "2")
    assert p2["pga"] == ""
    ticked = {c for c in header if c.startswith("medications___") and p1[c] == "1"}
    assert ticked == {"medications___1", "medications___4"}
    assert all(p2[c] == "0" for c in header if c.startswith("medications___"))
    # The capture layer reads it back as the same values.
    records = read_records_csv(text.encode(), form, key_columns=["record_id", "event_date"])
    assert tuple(records.rows[0].values["medications"]) == ("1", "4")
    assert records.rows[0].values["pga"] == "2"
    assert "pga" not in records.rows[1].values or records.rows[1].values["pga"] in (None, "")
