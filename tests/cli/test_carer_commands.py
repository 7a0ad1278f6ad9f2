"""`careloop patient carers`, `carer-scopes` and `handover`: clear refusals that change nothing."""

from __future__ import annotations

from datetime import UTC, datetime

from typer.testing import CliRunner

from careloop.cli.main import app
from careloop.trust import carers, identity, patients
from careloop.trust.installation import open_registry
from careloop.trust.principal import Principal
from tests.foundation import PASSWORD, build_installation, make_settings


def _installation(tmp_path):
    settings = make_settings(tmp_path, None)
    inst = build_installation(settings, with_users=False)
    pid = patients.register_patient(
        inst.registry,
        inst.operator,
        site="A",
        local_id="H-16",
        given_name="Sam",
        family_name="Young",
        birth_date="2009-06-15",
        consent_state="improvement_and_research",
    ).id
    identity.add_user(
        inst.registry,
        inst.operator,
        email="dad@example.org",
        display_name="Dad",
        password=PASSWORD,
        roles=[("carer", "A")],
    )
    patients.link_carer(
        inst.registry, inst.operator, pid, carer_email="dad@example.org", relationship="father"
    )
    inst.registry.close()
    return settings, pid


def _scopes(settings, pid: int) -> tuple[str, ...]:
    registry = open_registry(settings)
    try:
        [carer] = carers.list_carers(registry, _operator(), pid).carers
        return carer.scopes
    finally:
        registry.close()


def _operator() -> Principal:
    return Principal.operator("tester")


def _out(result) -> str:
    """The command's output with the console's line wrapping undone."""
    return " ".join(result.output.split())


def _run(settings, *args: str):
    return CliRunner().invoke(app, [*args, "--data-dir", str(settings.data_dir)])


def test_the_operator_lists_and_changes_a_carers_scopes(tmp_path):
    settings, pid = _installation(tmp_path)
    listed = _run(settings, "patient", "carers", "H-16", "--site", "A")
    assert listed.exit_code == 0, listed.output
    assert "dad@example.org (father): fill_forms, see_results, manage_consent" in _out(listed)
    changed = _run(
        settings,
        *("patient", "carer-scopes", "H-16", "--site", "A", "--carer", "dad@example.org"),
        *("--revoke", "manage_consent", "--revoke", "see_results"),
    )
    assert changed.exit_code == 0, changed.output
    assert "may now: fill_forms (was: fill_forms, see_results, manage_consent)" in _out(changed)
    assert _scopes(settings, pid) == ("fill_forms",)


def test_an_unknown_carer_or_scope_is_refused_clearly_and_changes_nothing(tmp_path):
    settings, pid = _installation(tmp_path)
    base = ("patient", "carer-scopes", "H-16", "--site", "A")
    unknown_carer = _run(settings, *base, "--carer", "mum@example.org", "--grant", "fill_forms")
    assert unknown_carer.exit_code != 0
    assert "mum@example.org is not a carer of patient H-16 at A" in _out(unknown_carer)
    assert "Traceback" not in _out(unknown_carer)
    unknown_scope = _run(settings, *base, "--carer", "dad@example.org", "--revoke", "everything")
    assert unknown_scope.exit_code != 0
    assert "everything" in _out(unknown_scope) and "see_results" in _out(unknown_scope)
    both = _run(
        settings,
        *base,
        "--carer",
        "dad@example.org",
        "--grant",
        "see_results",
        "--revoke",
        "see_results",
    )
    assert both.exit_code != 0 and "both given and taken back" in _out(both)
    nothing = _run(settings, *base, "--carer", "dad@example.org")
    assert nothing.exit_code != 0 and "Nothing to change" in _out(nothing)
    unknown_patient = _run(
        settings,
        "patient",
        "carer-scopes",
        "H-99",
        "--site",
        "A",
        "--carer",
        "dad@example.org",
        "--revoke",
        "see_results",
    )
    assert unknown_patient.exit_code != 0 and "no patient 'H-99' at site A" in _out(unknown_patient)
    assert _scopes(settings, pid) == ("fill_forms", "see_results", "manage_consent")


def test_the_handover_job_lapses_child_time_scopes_once_and_lists_who_to_invite(tmp_path):
    settings, pid = _installation(tmp_path)
    # The link was made today, after Sam turned 16 (2025-06-15): as made, it holds.
    registry = open_registry(settings)
    try:
        link = carers.list_carers(registry, _operator(), pid).carers[0].link_id
        for scopes in ([], ["fill_forms", "see_results", "manage_consent"]):
            carers.set_carer_scopes(
                registry,
                _operator(),
                link,
                scopes,
                now=datetime(2025, 1, 1, tzinfo=UTC),
            )
    finally:
        registry.close()
    bad_day = _run(settings, "patient", "handover", "--now", "15/06/2025")
    assert bad_day.exit_code != 0 and "YYYY-MM-DD" in _out(bad_day)
    dry = _run(settings, "patient", "handover", "--site", "A", "--now", "2025-06-15", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "dad@example.org would lapse" in _out(dry)
    assert "A H-16 Sam Young, 16 on 2025-06-15" in _out(dry)
    assert _scopes(settings, pid) == ()  # lapsed by the rule already (today is past 16) ...
    done = _run(settings, "patient", "handover", "--now", "2025-06-15")
    assert done.exit_code == 0 and "1 carer link(s) lapsed" in _out(done)
    again = _run(settings, "patient", "handover", "--now", "2025-06-15")
    assert again.exit_code == 0 and "0 carer link(s) lapsed" in _out(again)
    assert "H-16 Sam Young" in _out(again)  # still no account of their own: invite them
