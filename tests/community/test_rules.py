"""Decision rules on hand-counted ballots: each expected outcome is counted in the comment."""

from __future__ import annotations

from careloop.community.rules import Ballot, RuleSpec, decide, may_vote

MEMBERS = [1, 2, 3, 4, 5, 6]


def spec(rule: str, *, quorum: float = 0.5, approvers=(), reviewer: bool = False) -> RuleSpec:
    return RuleSpec(rule, quorum, tuple(approvers), reviewer)  # type: ignore[arg-type]


def b(user: int, choice: str, *roles: str) -> Ballot:
    return Ballot(user, choice, roles or ("clinician",))  # type: ignore[arg-type]


def test_a_majority_passes_with_more_yes_than_no_once_the_quorum_has_voted():
    # 6 members, quorum 0.5 → 3 must vote; 2 yes, 1 no → passes.
    out = decide(spec("majority"), [b(1, "yes"), b(2, "yes"), b(3, "no")], MEMBERS)
    assert out.passed and out.needed_to_vote == 3 and out.tally == {"yes": 2, "no": 1, "abstain": 0}


def test_a_majority_fails_without_its_quorum_and_on_a_tie():
    # 2 of 6 voted: under the quorum of 3.
    assert not decide(spec("majority"), [b(1, "yes"), b(2, "yes")], MEMBERS).passed
    # 4 voted, 2 yes 2 no: a tie is no majority.
    tie = [b(1, "yes"), b(2, "yes"), b(3, "no"), b(4, "no")]
    out = decide(spec("majority"), tie, MEMBERS)
    assert not out.passed and "No majority" in out.reason


def test_a_quorum_share_rounds_up_to_whole_members():
    # 6 members × 0.6 = 3.6 → 4 must vote; 3 votes are not enough.
    votes = [b(1, "yes"), b(2, "yes"), b(3, "yes")]
    assert not decide(spec("majority", quorum=0.6), votes, MEMBERS).passed
    assert decide(spec("majority", quorum=0.6), [*votes, b(4, "abstain")], MEMBERS).passed


def test_consensus_fails_on_a_single_no_and_counts_abstentions_as_taking_part():
    votes = [b(1, "yes"), b(2, "abstain"), b(3, "abstain")]
    assert decide(spec("consensus"), votes, MEMBERS).passed
    out = decide(spec("consensus"), [*votes, b(4, "no")], MEMBERS)
    assert not out.passed and "1 member(s) voted no" in out.reason


def test_named_approvers_must_all_vote_yes_and_only_they_vote():
    rule = spec("named_approvers", approvers=[2, 5])
    assert not decide(rule, [b(2, "yes")], MEMBERS).passed
    assert decide(rule, [b(2, "yes"), b(5, "yes")], MEMBERS).passed
    # A non-approver's no is not counted (the service refuses it before it is stored).
    assert decide(rule, [b(2, "yes"), b(5, "yes"), b(1, "no")], MEMBERS).passed
    assert not may_vote(rule, 1, ("clinician",))


def test_a_required_patient_reviewer_must_vote_yes_and_their_votes_are_grouped():
    rule = spec("majority", reviewer=True)
    staff = [b(1, "yes"), b(2, "yes"), b(3, "yes")]
    out = decide(rule, staff, MEMBERS)
    assert not out.passed and "patient or carer" in out.reason
    out = decide(rule, [*staff, b(4, "yes", "carer"), b(5, "no", "patient")], MEMBERS)
    assert out.passed
    assert out.patients_and_carers == {"yes": 1, "no": 1, "abstain": 0}
    assert out.others == {"yes": 3, "no": 0, "abstain": 0}


def test_votes_of_people_who_left_do_not_count():
    # Members 1–3 remain; 4 and 5 left after voting no.
    out = decide(spec("majority"), [b(1, "yes"), b(2, "yes"), b(4, "no"), b(5, "no")], [1, 2, 3])
    assert out.passed and out.tally["no"] == 0
