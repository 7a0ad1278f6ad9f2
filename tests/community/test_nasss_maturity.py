"""The NASSS-CAT profile and the maturity profile: numbers checked by hand, evidence from careloop."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from careloop.community import (
    CycleInput,
    CycleMeasureInput,
    NassView,
    add_cycle,
    record_act,
    record_decision,
    record_nasss,
)
from careloop.community.log import NASSS_DOMAINS
from careloop.community.maturity import (
    REQUIRED,
    DomainRating,
    Evidence,
    MaturityRatingView,
    evidence,
    maturity_profile,
    profile,
    record_maturity,
)
from careloop.community.nasss import nasss_profile, nasss_profile_of
from careloop.core.errors import PermissionDenied, ValidationFailed
from careloop.store.models import Community
from careloop.trust.provenance import record_provenance
from tests.community.helpers import KNOWN_MEASURES, audit_rows, make_community, principal


def nasss(i: int, by: str, when: datetime, **rated: str) -> NassView:
    ratings = {d: {"rating": rated.get(d, "simple"), "note": ""} for d in NASSS_DOMAINS}
    return NassView(i, 1, "ko", ratings, by, when)


JAN = datetime(2024, 1, 10, tzinfo=UTC)
JUN = datetime(2024, 6, 3, tzinfo=UTC)


def test_the_nasss_profile_counts_ratings_and_shows_their_spread():
    # By hand: condition rated simple, complicated, complex -> one each, median
    # complicated (the middle of three), spread 2 steps, 1/3 at the mode: disagreement.
    # value_proposition: complicated, complicated, complex -> median complicated,
    # spread 1, agreement 2/3, no disagreement. technology: simple x3 -> spread 0.
    rounds = nasss_profile(
        [
            nasss(1, "a", JAN, condition="simple", value_proposition="complicated"),
            nasss(2, "b", JAN, condition="complicated", value_proposition="complicated"),
            nasss(3, "c", JAN, condition="complex", value_proposition="complex"),
        ]
    )
    assert len(rounds) == 1 and rounds[0].round == "2024-01" and rounds[0].raters == ["a", "b", "c"]
    by = {d.domain: d for d in rounds[0].domains}
    assert by["condition"].counts == {"simple": 1, "complicated": 1, "complex": 1}
    assert (by["condition"].median, by["condition"].spread) == ("complicated", 2)
    assert by["condition"].agreement == pytest.approx(1 / 3, abs=1e-4)
    assert by["condition"].disagreement is True
    vp = by["value_proposition"]
    assert (vp.median, vp.spread, vp.disagreement) == ("complicated", 1, False)
    assert vp.agreement == pytest.approx(2 / 3, abs=1e-4)
    assert (by["technology"].spread, by["technology"].agreement) == (0, 1.0)
    assert rounds[0].complex_domains == 0


def test_a_tie_takes_the_more_complex_rating_and_a_later_rating_replaces_an_earlier_one():
    rounds = nasss_profile(
        [
            nasss(1, "a", JAN, condition="complex"),
            nasss(2, "b", JAN, condition="complex"),
            nasss(3, "b", JAN.replace(day=20), condition="simple"),  # b changes their mind
            nasss(4, "a", JUN, condition="simple"),
        ]
    )
    assert [r.round for r in rounds] == ["2024-01", "2024-06"]
    first = {d.domain: d for d in rounds[0].domains}["condition"]
    # a: complex, b: simple (the later one) -> two raters, upper median complex, agreement 1/2.
    assert first.raters == 2 and first.counts["simple"] == 1 and first.median == "complex"
    assert first.disagreement is True and rounds[0].complex_domains == 1
    assert {d.domain: d for d in rounds[1].domains}["condition"].median == "simple"


def test_the_nasss_profile_is_for_members_only(installation):
    inst = installation
    cid = make_community(inst).community.id
    ratings = {d: ("complicated", "") for d in NASSS_DOMAINS}
    record_nasss(inst.registry, principal(inst, "carer@B"), cid, subject="ko-x", ratings=ratings)
    got = nasss_profile_of(inst.registry, principal(inst, "analyst"), cid)
    assert got[0].subject == "ko-x" and got[0].domains[0].counts["complicated"] == 1
    with pytest.raises(PermissionDenied):
        nasss_profile_of(inst.registry, principal(inst, "site_lead@B"), cid)
    assert audit_rows(inst, "community.nasss_read")[-1][:2] == (
        inst.emails["site_lead@B"],
        "denied",
    )


def test_members_disagreeing_in_the_registry_show_in_the_aggregated_profile(installation):
    inst = installation
    cid = make_community(inst).community.id
    for key, condition in (("carer@B", "simple"), ("analyst", "complex"), ("patient@A", "complex")):
        ratings = {d: ("complicated", "") for d in NASSS_DOMAINS}
        ratings["condition"] = (condition, f"{key} says {condition}")
        record_nasss(inst.registry, principal(inst, key), cid, subject="ko-d", ratings=ratings)
    (got,) = nasss_profile_of(inst.registry, principal(inst, "clinician@B"), cid, subject="ko-d")
    condition = {d.domain: d for d in got.domains}["condition"]
    # simple, complex, complex: two steps apart -> disagreement although 2 of 3 agree.
    assert condition.counts == {"simple": 1, "complicated": 0, "complex": 2}
    assert (condition.median, condition.spread, condition.disagreement) == ("complex", 2, True)
    assert len(condition.notes) == 3 and len(got.raters) == 3 and got.complex_domains == 1
    assert {d.domain: d for d in got.domains}["technology"].disagreement is False


def test_a_bad_or_outside_nasss_rating_changes_nothing_and_is_audited(installation):
    inst = installation
    cid = make_community(inst).community.id
    good = {d: ("simple", "") for d in NASSS_DOMAINS}
    for bad, where in (
        ({**good, "condition": ("very hard", "")}, "ratings.condition"),
        ({k: v for k, v in good.items() if k != "wider_system"}, "ratings.wider_system"),
        ({**good, "weather": ("simple", "")}, "ratings.weather"),
    ):
        with pytest.raises(ValidationFailed) as caught:
            record_nasss(inst.registry, principal(inst, "carer@B"), cid, subject="k", ratings=bad)
        assert where in [d.location for d in caught.value.details]
    assert audit_rows(inst, "community.nasss")[-1][1] == "failure"
    with pytest.raises(PermissionDenied):
        record_nasss(inst.registry, principal(inst, "site_lead@B"), cid, subject="k", ratings=good)
    assert audit_rows(inst, "community.nasss")[-1][:2] == (inst.emails["site_lead@B"], "denied")
    assert nasss_profile_of(inst.registry, principal(inst, "carer@B"), cid) == []


def rating(by: str, when: datetime, **levels: int) -> MaturityRatingView:
    return MaturityRatingView(0, 1, "r", {k: DomainRating(v) for k, v in levels.items()}, by, when)


def test_the_maturity_score_averages_members_and_evidence_by_hand():
    rounds = {
        "2024-01": [
            rating("a", JAN, leadership=2, data_and_analytics=1, research=1),
            rating("b", JAN, leadership=4, data_and_analytics=2, research=1),
        ],
        "2024-06": [rating("a", JUN, leadership=4, data_and_analytics=3, research=2)],
    }
    ev = {
        "2024-01": {"data_and_analytics": Evidence(3, ["x"])},
        "2024-06": {"data_and_analytics": Evidence(5, ["y"])},
    }
    got = profile(rounds, ev, 1)
    first = {d.domain: d for d in got.rounds[0].domains}
    # leadership: (2 + 4) / 2 = 3, no evidence -> 3. data: members 1.5, evidence 3 -> 2.25.
    assert (first["leadership"].mean, first["leadership"].score) == (3.0, 3.0)
    assert (first["leadership"].low, first["leadership"].high) == (2, 4)
    assert (first["data_and_analytics"].mean, first["data_and_analytics"].score) == (1.5, 2.25)
    assert first["quality_improvement"].score is None
    # June: leadership 4 (change +1); data (3 + 5) / 2 = 4 (change +1.75); research 2 - 1 = +1.
    assert got.change["leadership"] == 1.0
    assert got.change["data_and_analytics"] == 1.75
    assert got.change["research"] == 1.0
    assert got.change["quality_improvement"] is None
    # Lowest of June: research 2, then leadership 4 and data 4 (grid order breaks the tie).
    assert [s["domain"] for s in got.next_steps] == ["research", "leadership", "data_and_analytics"]


def test_evidence_counts_the_months_the_data_quality_checks_ran(installation):
    inst = installation
    # Checks in three distinct months of 2019 (two in March), none in 2018: by hand 3 months -> level 2.
    for day in (date(2019, 3, 1), date(2019, 3, 20), date(2019, 5, 2), date(2019, 11, 30)):
        moment = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
        record_provenance(
            inst.registry, inst.operator, activity="warehouse.check", target="w",
            started_at=moment, ended_at=moment,
        )  # fmt: skip
    cid = make_community(inst).community.id
    with inst.registry.transaction() as session:
        community = session.get(Community, cid)
        december = evidence(session, community, datetime(2019, 12, 31, tzinfo=UTC))
        april = evidence(session, community, datetime(2019, 4, 30, tzinfo=UTC))
    assert december["data_and_analytics"].level == 2
    assert december["data_and_analytics"].reasons == [
        "The data-quality checks ran in 3 of the last 12 months."
    ]
    assert april["data_and_analytics"].reasons[0].startswith("The data-quality checks ran in 1 ")


def test_evidence_of_quality_improvement_and_governance_comes_from_the_record(installation):
    inst = installation
    cid = make_community(inst).community.id  # 5 members, a patient and a carer among them
    lead = principal(inst, "clinician@A")
    now = datetime.now(UTC)
    with inst.registry.transaction() as session:
        before = evidence(session, session.get(Community, cid), now)
    # Nothing recorded: QI level 1; governance 1; engagement: 5 members and partners, no votes -> 3.
    assert before["quality_improvement"].level == 1
    assert before["governance_and_management"].level == 1
    assert before["community_building_and_engagement"].level == 3
    ids = []
    for n in range(3):
        ids.append(
            add_cycle(
                inst.registry, lead, cid,
                CycleInput(title=f"c{n}", kind="process", do_start=date(2024, 1 + 2 * n, 1),
                           do_end=date(2024, 1 + 2 * n, 20),
                           measures=(CycleMeasureInput("remission-prevalence"),)),
                known_measures=KNOWN_MEASURES,
            ).id
        )  # fmt: skip
    record_act(inst.registry, lead, ids[0], decision="adapt", rationale="r")
    record_decision(inst.registry, lead, cid, title="t", did_not_work="the huddle", why="no time")
    with inst.registry.transaction() as session:
        after = evidence(session, session.get(Community, cid), datetime.now(UTC))
    # Cycles recorded, one with Study, one Act, not three -> 1 + 3 = 4.
    assert after["quality_improvement"].level == 4
    assert after["quality_improvement"].reasons[0] == "3 cycles recorded."
    # Governance: no proposal decided, log kept, no knowledge approval, failure discussed -> 3.
    assert after["governance_and_management"].level == 3


def test_members_rate_maturity_in_rounds_and_bad_ratings_are_refused(installation):
    inst = installation
    cid = make_community(inst).community.id
    six = {
        "leadership": (3, "a lead"),
        "governance_and_management": (2, ""),
        "quality_improvement": (2, ""),
        "community_building_and_engagement": (4, ""),
        "data_and_analytics": (1, ""),
        "research": (1, ""),
    }
    record_maturity(
        inst.registry, principal(inst, "carer@B"), cid, round_name="2024-06", ratings=six
    )
    again = {**six, "leadership": (5, "")}
    record_maturity(
        inst.registry, principal(inst, "carer@B"), cid, round_name="2024-06", ratings=again
    )
    record_maturity(
        inst.registry, inst.operator, cid, round_name="2024-06",
        ratings={**six, "learning_culture": (2, "")}, on_behalf_of=inst.emails["analyst"],
    )  # fmt: skip
    got = maturity_profile(inst.registry, principal(inst, "clinician@B"), cid)
    lead = {d.domain: d for d in got.rounds[0].domains}["leadership"]
    assert (
        lead.ratings == [3, 5] and lead.mean == 4.0
    )  # the carer's second rating replaced the first
    assert got.rounds[0].raters == sorted([inst.emails["carer@B"], inst.emails["analyst"]])
    for bad, where in (
        ({**six, "leadership": (6, "")}, "ratings.leadership"),
        ({k: v for k, v in six.items() if k != "research"}, "ratings.research"),
        ({**six, "charisma": (3, "")}, "ratings.charisma"),
    ):
        with pytest.raises(ValidationFailed) as caught:
            record_maturity(
                inst.registry, principal(inst, "carer@B"), cid, round_name="x", ratings=bad
            )
        assert where in [d.location for d in caught.value.details]
    with pytest.raises(PermissionDenied):
        record_maturity(
            inst.registry, principal(inst, "site_lead@B"), cid, round_name="x", ratings=six
        )
    with pytest.raises(PermissionDenied):
        maturity_profile(inst.registry, principal(inst, "site_lead@B"), cid)
    assert audit_rows(inst, "community.maturity")[-1][1] == "denied"


def test_re_rating_an_old_round_keeps_the_rounds_in_the_order_they_were_begun(installation):
    inst = installation
    cid = make_community(inst).community.id
    carer = principal(inst, "carer@B")
    six = {d: (2, "") for d in REQUIRED}
    record_maturity(inst.registry, carer, cid, round_name="2024-01", ratings=six)
    record_maturity(
        inst.registry, carer, cid, round_name="2024-06", ratings={**six, "leadership": (4, "")}
    )
    record_maturity(
        inst.registry, carer, cid, round_name="2024-01", ratings={**six, "leadership": (1, "")}
    )
    got = maturity_profile(inst.registry, carer, cid)
    assert [r.round for r in got.rounds] == ["2024-01", "2024-06"]
    assert got.change["leadership"] == 3.0  # June's 4 minus January's corrected 1
