"""The payment outcome state machine (`core.payments.status`), checked over every combination.

The expectation is written twice, independently of `decide()`:

1. as rules (`expected_by_rules`), read from the module docstring and the product brief:
   - an open payment (pending, unknown) reaches whatever final status is observed → APPLY;
   - the same status again → CONFIRM when the new evidence is strictly stronger, else DUPLICATE;
   - a state set by a CALLBACK never changes → CONFLICT on any different status;
   - SUCCEEDED is never downgraded → CONFLICT on any different status;
   - a weaker final non-success becomes SUCCEEDED only with strictly stronger evidence → CORRECT,
     equal or weaker evidence → CONFLICT;
   - a different non-success over a state not set by a callback → RECORD (hides no money).
   A final status stored without evidence (None) counts as the weakest evidence, OWN_TIMEOUT.

2. as an explicit grid (`GRID`), one line per (final status, held evidence), one column per
   observation. Both must agree with each other and with `decide()` on all 288 combinations.
"""

from __future__ import annotations

import itertools

import pytest

from mpesa_bridge.core.payments.status import (
    FINAL_STATUSES,
    OPEN_STATUSES,
    Evidence,
    Observation,
    PaymentStatus,
    Verdict,
    can_mark_unknown,
    decide,
)

S = PaymentStatus
E = Evidence
V = Verdict

PENDING, UNKNOWN = S.PENDING, S.UNKNOWN
SUCCEEDED, FAILED, CANCELLED, EXPIRED = S.SUCCEEDED, S.FAILED, S.CANCELLED, S.EXPIRED
TIMEOUT, ANSWER, CALLBACK = E.OWN_TIMEOUT, E.DARAJA_ANSWER, E.CALLBACK

ALL_STATUSES = list(PaymentStatus)
FINALS = [SUCCEEDED, FAILED, CANCELLED, EXPIRED]
HELD: list[Evidence | None] = [None, TIMEOUT, ANSWER, CALLBACK]
OBS_EVIDENCE = [TIMEOUT, ANSWER, CALLBACK]

# ---------------------------------------------------------------------------------------------
# 1. The rules, written out.
# ---------------------------------------------------------------------------------------------


def _rank(evidence: Evidence | None) -> int:
    return {None: 1, TIMEOUT: 1, ANSWER: 2, CALLBACK: 3}[evidence]


def expected_by_rules(
    current: PaymentStatus, held: Evidence | None, obs_status: PaymentStatus, obs_ev: Evidence
) -> Verdict:
    if current in (PENDING, UNKNOWN):
        return V.APPLY
    stronger = _rank(obs_ev) > _rank(held)
    if obs_status == current:
        return V.CONFIRM if stronger else V.DUPLICATE
    if held == CALLBACK:
        return V.CONFLICT
    if current == SUCCEEDED:
        return V.CONFLICT
    if obs_status == SUCCEEDED:
        return V.CORRECT if stronger else V.CONFLICT
    return V.RECORD


# ---------------------------------------------------------------------------------------------
# 2. The explicit grid for final current states.
#    Columns: observed status succeeded | failed | cancelled | expired, each by
#    timeout, answer, callback (T A K).
#    Cells: AP=apply, CO=correct, CF=confirm, DU=duplicate, RE=record, XX=conflict.
# ---------------------------------------------------------------------------------------------

_CELL = {"AP": V.APPLY, "CO": V.CORRECT, "CF": V.CONFIRM, "DU": V.DUPLICATE, "RE": V.RECORD, "XX": V.CONFLICT}

#                                  succeeded    failed       cancelled    expired
#                                  T  A  K      T  A  K      T  A  K      T  A  K
GRID: dict[tuple[PaymentStatus, Evidence | None], str] = {
    (SUCCEEDED, None): "           DU CF CF     XX XX XX     XX XX XX     XX XX XX",
    (SUCCEEDED, TIMEOUT): "        DU CF CF     XX XX XX     XX XX XX     XX XX XX",
    (SUCCEEDED, ANSWER): "         DU DU CF     XX XX XX     XX XX XX     XX XX XX",
    (SUCCEEDED, CALLBACK): "       DU DU DU     XX XX XX     XX XX XX     XX XX XX",
    (FAILED, None): "              XX CO CO     DU CF CF     RE RE RE     RE RE RE",
    (FAILED, TIMEOUT): "           XX CO CO     DU CF CF     RE RE RE     RE RE RE",
    (FAILED, ANSWER): "            XX XX CO     DU DU CF     RE RE RE     RE RE RE",
    (FAILED, CALLBACK): "          XX XX XX     DU DU DU     XX XX XX     XX XX XX",
    (CANCELLED, None): "           XX CO CO     RE RE RE     DU CF CF     RE RE RE",
    (CANCELLED, TIMEOUT): "        XX CO CO     RE RE RE     DU CF CF     RE RE RE",
    (CANCELLED, ANSWER): "         XX XX CO     RE RE RE     DU DU CF     RE RE RE",
    (CANCELLED, CALLBACK): "       XX XX XX     XX XX XX     DU DU DU     XX XX XX",
    (EXPIRED, None): "             XX CO CO     RE RE RE     RE RE RE     DU CF CF",
    (EXPIRED, TIMEOUT): "          XX CO CO     RE RE RE     RE RE RE     DU CF CF",
    (EXPIRED, ANSWER): "           XX XX CO     RE RE RE     RE RE RE     DU DU CF",
    (EXPIRED, CALLBACK): "         XX XX XX     XX XX XX     XX XX XX     DU DU DU",
}


def _grid_expected() -> dict[tuple[PaymentStatus, Evidence | None, PaymentStatus, Evidence], Verdict]:
    table: dict[tuple[PaymentStatus, Evidence | None, PaymentStatus, Evidence], Verdict] = {}
    for (current, held), line in GRID.items():
        cells = line.split()
        assert len(cells) == 12, (current, held)
        for cell, (obs_status, obs_ev) in zip(cells, itertools.product(FINALS, OBS_EVIDENCE), strict=True):
            table[(current, held, obs_status, obs_ev)] = _CELL[cell]
    for current in (PENDING, UNKNOWN):
        for held, obs_status, obs_ev in itertools.product(HELD, FINALS, OBS_EVIDENCE):
            table[(current, held, obs_status, obs_ev)] = V.APPLY
    return table


EXPECTED = _grid_expected()
ALL_CASES = list(itertools.product(ALL_STATUSES, HELD, FINALS, OBS_EVIDENCE))


def _case_id(case: tuple[PaymentStatus, Evidence | None, PaymentStatus, Evidence]) -> str:
    current, held, obs_status, obs_ev = case
    held_name = held.name if held is not None else "NONE"
    return f"{current.value}@{held_name}+{obs_status.value}@{obs_ev.name}"


def test_the_grid_covers_every_combination_exactly_once() -> None:
    assert len(ALL_CASES) == 6 * 4 * 4 * 3 == 288
    assert set(EXPECTED) == set(ALL_CASES)


def test_the_grid_and_the_written_rules_agree() -> None:
    disagreements = [_case_id(case) for case in ALL_CASES if EXPECTED[case] is not expected_by_rules(*case)]
    assert disagreements == []


@pytest.mark.parametrize("case", ALL_CASES, ids=_case_id)
def test_decide_matches_the_table(case: tuple[PaymentStatus, Evidence | None, PaymentStatus, Evidence]) -> None:
    current, held, obs_status, obs_ev = case
    assert decide(current, held, Observation(obs_status, obs_ev)) is EXPECTED[case]


# ---------------------------------------------------------------------------------------------
# Spot rows: the cases that matter most for money, spelled out one by one.
# ---------------------------------------------------------------------------------------------

SPOT_ROWS = [
    # a late success callback corrects our own timeout verdict
    (EXPIRED, TIMEOUT, SUCCEEDED, CALLBACK, V.CORRECT),
    # a callback beats a Daraja query answer
    (FAILED, ANSWER, SUCCEEDED, CALLBACK, V.CORRECT),
    (CANCELLED, ANSWER, SUCCEEDED, CALLBACK, V.CORRECT),
    # a query answer beats our own timeout
    (EXPIRED, TIMEOUT, SUCCEEDED, ANSWER, V.CORRECT),
    # but equal evidence never flips a final state
    (FAILED, ANSWER, SUCCEEDED, ANSWER, V.CONFLICT),
    (EXPIRED, TIMEOUT, SUCCEEDED, TIMEOUT, V.CONFLICT),
    # nor does weaker evidence
    (FAILED, CALLBACK, SUCCEEDED, ANSWER, V.CONFLICT),
    # success is never downgraded, whatever the evidence
    (SUCCEEDED, ANSWER, FAILED, CALLBACK, V.CONFLICT),
    (SUCCEEDED, TIMEOUT, CANCELLED, CALLBACK, V.CONFLICT),
    (SUCCEEDED, CALLBACK, EXPIRED, TIMEOUT, V.CONFLICT),
    # a state set by a callback never changes, not even to success
    (CANCELLED, CALLBACK, SUCCEEDED, CALLBACK, V.CONFLICT),
    (FAILED, CALLBACK, CANCELLED, CALLBACK, V.CONFLICT),
    (EXPIRED, CALLBACK, FAILED, ANSWER, V.CONFLICT),
    # same outcome: stronger evidence confirms, the rest is a duplicate
    (SUCCEEDED, ANSWER, SUCCEEDED, CALLBACK, V.CONFIRM),
    (SUCCEEDED, CALLBACK, SUCCEEDED, CALLBACK, V.DUPLICATE),
    (FAILED, CALLBACK, FAILED, ANSWER, V.DUPLICATE),
    (EXPIRED, TIMEOUT, EXPIRED, TIMEOUT, V.DUPLICATE),
    (EXPIRED, None, EXPIRED, TIMEOUT, V.DUPLICATE),
    (EXPIRED, None, EXPIRED, ANSWER, V.CONFIRM),
    # a different non-success that hides no money is only recorded
    (EXPIRED, TIMEOUT, FAILED, ANSWER, V.RECORD),
    (FAILED, ANSWER, CANCELLED, CALLBACK, V.RECORD),
    (CANCELLED, TIMEOUT, EXPIRED, TIMEOUT, V.RECORD),
    # a final state stored without evidence counts as the weakest
    (FAILED, None, SUCCEEDED, ANSWER, V.CORRECT),
    (FAILED, None, SUCCEEDED, TIMEOUT, V.CONFLICT),
    # open payments take whatever comes first
    (PENDING, None, SUCCEEDED, TIMEOUT, V.APPLY),
    (PENDING, None, EXPIRED, TIMEOUT, V.APPLY),
    (UNKNOWN, None, CANCELLED, CALLBACK, V.APPLY),
    (UNKNOWN, CALLBACK, FAILED, TIMEOUT, V.APPLY),
]


@pytest.mark.parametrize(
    ("current", "held", "obs_status", "obs_ev", "verdict"),
    SPOT_ROWS,
    ids=[f"{r[0].value}@{r[1].name if r[1] else 'NONE'}+{r[2].value}@{r[3].name}" for r in SPOT_ROWS],
)
def test_spot_rows(
    current: PaymentStatus, held: Evidence | None, obs_status: PaymentStatus, obs_ev: Evidence, verdict: Verdict
) -> None:
    assert decide(current, held, Observation(obs_status, obs_ev)) is verdict
    assert EXPECTED[(current, held, obs_status, obs_ev)] is verdict


# ---------------------------------------------------------------------------------------------
# Invariants that follow from the table, stated separately.
# ---------------------------------------------------------------------------------------------


def test_nothing_ever_leaves_succeeded() -> None:
    for held, obs_status, obs_ev in itertools.product(HELD, FINALS, OBS_EVIDENCE):
        verdict = decide(SUCCEEDED, held, Observation(obs_status, obs_ev))
        assert verdict in (V.CONFIRM, V.DUPLICATE, V.CONFLICT)


def test_only_success_can_change_a_final_status() -> None:
    changing = {V.APPLY, V.CORRECT}
    for current, held, obs_status, obs_ev in ALL_CASES:
        verdict = decide(current, held, Observation(obs_status, obs_ev))
        if current.is_final and verdict in changing:
            assert verdict is V.CORRECT
            assert obs_status is SUCCEEDED


def test_evidence_ranks_are_ordered() -> None:
    assert TIMEOUT < ANSWER < CALLBACK


def test_statuses_split_into_open_and_final() -> None:
    assert frozenset(PaymentStatus) == OPEN_STATUSES | FINAL_STATUSES
    assert not OPEN_STATUSES & FINAL_STATUSES
    assert frozenset({PENDING, UNKNOWN}) == OPEN_STATUSES
    for status in PaymentStatus:
        assert status.is_final is (status in FINAL_STATUSES)


@pytest.mark.parametrize("status", [PENDING, UNKNOWN])
@pytest.mark.parametrize("evidence", list(Evidence))
def test_an_observation_refuses_non_final_statuses(status: PaymentStatus, evidence: Evidence) -> None:
    with pytest.raises(ValueError, match="final status"):
        Observation(status, evidence)


@pytest.mark.parametrize("status", FINALS)
def test_an_observation_accepts_final_statuses(status: PaymentStatus) -> None:
    obs = Observation(status, CALLBACK)
    assert obs.status is status
    assert obs.evidence is CALLBACK


@pytest.mark.parametrize("status", ALL_STATUSES)
def test_can_mark_unknown_only_from_pending(status: PaymentStatus) -> None:
    assert can_mark_unknown(status) is (status is PENDING)
