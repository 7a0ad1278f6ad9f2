"""`careloop forms …` and `careloop records …` end to end on a SQLite installation."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from careloop.capture import example_file
from careloop.cli.main import app
from tests.capture.registry_helpers import VISIT, records_csv, visit_rows
from tests.foundation import build_installation, make_settings


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    inst = build_installation(make_settings(tmp, None), with_users=False)
    inst.registry.close()
    return str(inst.settings.data_dir)


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    """Tables 250 characters wide, whatever the terminal (a pytest-xdist worker's is 80)."""
    from careloop.cli.output import console

    monkeypatch.setattr(console, "_width", 250)  # restored as it was (None: measured) afterwards


def _run(*args):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "250"})


def test_forms_import_list_show_and_export(data_dir, tmp_path):
    dictionary = tmp_path / "ibd.yaml"
    dictionary.write_bytes(example_file("yaml"))
    first = _run("forms", "import", str(dictionary), "--data-dir", data_dir)
    assert first.exit_code == 0, first.output
    assert "ibd_visit: new form" in first.output
    again = _run("forms", "import", str(dictionary), "--data-dir", data_dir)
    assert "ibd_visit: unchanged" in again.output
    listed = _run("forms", "list", "--data-dir", data_dir)
    assert "ibd_symptoms_prom" in listed.output and "yes" in listed.output
    shown = _run("forms", "show", VISIT, "--data-dir", data_dir)
    assert shown.exit_code == 0 and "pucai_pain" in shown.output and "versions" in shown.output
    out = tmp_path / "visit.json"
    exported = _run(
        "forms",
        "export",
        VISIT,
        "--format",
        "questionnaire",
        "-o",
        str(out),
        "--data-dir",
        data_dir,
    )
    assert exported.exit_code == 0 and json.loads(out.read_text())["name"] == VISIT
    wrong = _run("forms", "export", VISIT, "--format", "xml", "--data-dir", data_dir)
    assert wrong.exit_code != 0 and "Error: --format must be one of" in wrong.output


def test_records_import_reports_rejections_and_exits_non_zero(data_dir, tmp_path):
    _run(
        "forms",
        "import",
        "--format",
        "yaml",
        _write(tmp_path, "f.yaml", example_file("yaml")),
        "--data-dir",
        data_dir,
    )
    rows = visit_rows(30, prefix="CLI", patients=5)
    rows[3]["pga"] = "8"
    csv_file = _write(tmp_path, "visits.csv", records_csv(VISIT, rows))
    report = tmp_path / "report.json"
    refused = _run(
        "records",
        "import",
        VISIT,
        csv_file,
        "--site",
        "A",
        "--report",
        str(report),
        "--data-dir",
        data_dir,
    )
    assert refused.exit_code == 1
    assert "nothing was written" in refused.output
    data = json.loads(report.read_text())
    assert data["written"] is False
    assert data["problems"] == [
        {"row": 5, "field": "pga", "value": "8", "reason": data["problems"][0]["reason"]}
    ]
    partial = _run(
        "records",
        "import",
        VISIT,
        csv_file,
        "--site",
        "A",
        "--mode",
        "row-level",
        "--report",
        str(tmp_path / "report.csv"),
        "--data-dir",
        data_dir,
    )
    assert partial.exit_code == 1 and "created 29" in partial.output
    assert (tmp_path / "report.csv").read_text().splitlines()[1].startswith("5,pga,8,")
    rows[3]["pga"] = "2"
    fixed = _write(tmp_path, "fixed.csv", records_csv(VISIT, rows))
    done = _run("records", "import", VISIT, fixed, "--site", "A", "--data-dir", data_dir)
    assert done.exit_code == 0, done.output
    assert "created 1" in done.output and "unchanged 29" in done.output


def test_a_bad_header_is_an_error_naming_the_column_and_the_report_says_so(data_dir, tmp_path):
    _run(
        "forms",
        "import",
        "--format",
        "yaml",
        _write(tmp_path, "f.yaml", example_file("yaml")),
        "--data-dir",
        data_dir,
    )
    data = records_csv(VISIT, visit_rows(2, prefix="HDRCLI")).replace(b"pga,", b"pgaa,", 1)
    report = tmp_path / "r.json"
    result = _run(
        "records",
        "import",
        VISIT,
        _write(tmp_path, "bad.csv", data),
        "--site",
        "A",
        "--report",
        str(report),
        "--data-dir",
        data_dir,
    )
    assert result.exit_code == 2 and "Error:" in result.output and "bad.csv:1:pgaa" in result.output
    assert json.loads(report.read_text())["written"] is False


def test_records_export_writes_each_format(data_dir, tmp_path):
    _run(
        "forms",
        "import",
        "--format",
        "yaml",
        _write(tmp_path, "f.yaml", example_file("yaml")),
        "--data-dir",
        data_dir,
    )
    _run(
        "records",
        "import",
        VISIT,
        _write(tmp_path, "v.csv", records_csv(VISIT, visit_rows(4, prefix="EXP", patients=2))),
        "--site",
        "B",
        "--data-dir",
        data_dir,
    )
    as_csv = _run("records", "export", VISIT, "--site", "B", "--data-dir", data_dir)
    assert as_csv.exit_code == 0 and as_csv.output.startswith("record_id,event_date,")
    assert "EXP-0" in as_csv.output
    out = tmp_path / "out.ndjson"
    fhir = _run(
        "records", "export", VISIT, "--format", "fhir", "-o", str(out), "--data-dir", data_dir
    )
    assert fhir.exit_code == 0
    lines = out.read_text().splitlines()
    assert lines and all(
        json.loads(line)["resourceType"] == "QuestionnaireResponse" for line in lines
    )


def _write(tmp_path, name, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_records_export_filters_by_consent(data_dir, tmp_path):
    _run(
        "forms",
        "import",
        "--format",
        "yaml",
        _write(tmp_path, "f.yaml", example_file("yaml")),
        "--data-dir",
        data_dir,
    )
    _run(
        "records",
        "import",
        VISIT,
        _write(tmp_path, "c.csv", records_csv(VISIT, visit_rows(2, prefix="CON", patients=2))),
        "--site",
        "A",
        "--data-dir",
        data_dir,
    )
    research = _run(
        "records",
        "export",
        VISIT,
        "--format",
        "json",
        "--consent",
        "improvement_and_research",
        "--data-dir",
        data_dir,
    )
    assert research.exit_code == 0 and "CON-" not in research.output
    care = _run(
        "records",
        "export",
        VISIT,
        "--format",
        "json",
        "--consent",
        "direct_care_only",
        "--data-dir",
        data_dir,
    )
    assert "CON-0" in care.output
    for purpose, shown in (("research", False), ("direct_care", True)):
        by_purpose = _run(
            "records", "export", VISIT, "--format", "json", "--purpose", purpose,
            "--data-dir", data_dir,
        )  # fmt: skip
        assert by_purpose.exit_code == 0 and ("CON-0" in by_purpose.output) is shown, purpose


def test_records_import_of_a_real_redcap_export_prints_its_notes(tmp_path, test_data):
    inst = build_installation(make_settings(tmp_path, None), with_users=False)
    inst.registry.close()
    d = ["--data-dir", str(inst.settings.data_dir)]
    folder = test_data / "redcap_records" / "redcapr_repeating_instruments"
    assert _run("forms", "import", str(folder / "dictionary.csv"), *d).exit_code == 0
    data = str(folder / "data.csv")
    refused = _run("records", "import", "bp", data, "--site", "A", *d)
    assert refused.exit_code == 2 and refused.output.startswith("Error: data.csv gives no")
    assert "--event-date-field FIELD" in refused.output and "Traceback" not in refused.output
    done = _run("records", "import", "bp", data, "--site", "A", "--event-date-field",
                "date_bp", *d)  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "created 4" in done.output and "skipped 2" in done.output
    assert "Note: Event dates from field date_bp (--event-date-field)." in done.output


def _run_limited(*args):
    env = {"COLUMNS": "250", "CARELOOP_MAX_INPUT_MB": "1"}
    return CliRunner().invoke(app, list(args), env=env)


def test_records_and_forms_larger_than_the_input_limit_are_refused_with_the_setting_to_raise(
    data_dir, tmp_path
):
    big = tmp_path / "visits.csv"
    big.write_bytes(b"record_id,event_date\n" + b"1,2024-01-01\n" * 100_000)  # 1.3 MB
    result = _run_limited(
        "records", "import", VISIT, str(big), "--site", "A", "--data-dir", data_dir
    )
    assert result.exit_code != 0
    assert "Error: " in result.output and "larger than 1 MB" in result.output
    assert "CARELOOP_MAX_INPUT_MB" in result.output
    assert "Traceback" not in result.output
    dictionary = tmp_path / "big.yaml"
    dictionary.write_bytes(b"# " + b"x" * (1024 * 1024) + b"\nforms: []\n")
    result = _run_limited("forms", "import", str(dictionary), "--data-dir", data_dir)
    assert result.exit_code != 0 and "CARELOOP_MAX_INPUT_MB" in result.output


def test_records_import_of_an_endless_input_stops_at_the_limit(data_dir):
    # /dev/zero never ends: before the limit this import grew until it was killed.
    result = _run_limited(
        "records", "import", VISIT, "/dev/zero", "--site", "A", "--data-dir", data_dir
    )
    assert result.exit_code != 0
    assert "/dev/zero is larger than 1 MB" in result.output
