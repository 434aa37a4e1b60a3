"""Giving up the queries whose Result never came (`core.result_deadline`), over the in-memory ports
with a manual clock: a Transaction Status or balance query pending past the deadline becomes
`failed` (`no_result`) with its event; one within the deadline, or already final, is left alone; a
Result that comes afterwards is kept as `recorded` / `late_result` and changes nothing; a payout
whose query was given up is asked about again on its backoff."""

from __future__ import annotations

from typing import Any, cast

import pytest
from pydantic import ValidationError

from mpesa_bridge.config import Settings
from mpesa_bridge.core.accounts import ProjectService
from mpesa_bridge.core.balances.entity import BalanceQueryStatus
from mpesa_bridge.core.balances.results import BalanceResultHandler, BalanceTimeoutHandler
from mpesa_bridge.core.balances.service import BalanceQueryService
from mpesa_bridge.core.clock import ManualClock
from mpesa_bridge.core.payouts.status import PayoutStatus
from mpesa_bridge.core.ports import PushOutcomeUnknown
from mpesa_bridge.core.result_deadline import BATCH, LATE_RESULT, NO_RESULT
from mpesa_bridge.core.status_queries.entity import StatusQueryStatus
from mpesa_bridge.core.status_queries.validation import StatusQueryCreate
from mpesa_bridge.daraja.initiator_results import DarajaResultReader
from tests.fixtures.memory import MemoryDatabase
from tests.fixtures.payouts import status_result
from tests.unit.core.test_core_payouts import TENANT, World
from tests.unit.core.test_core_reversals import SHOP, T0, Gateway, Projects, apply, callback, result_body, token_of, url

DEADLINE = 600.0
ACCOUNTS = "Working Account|KES|700000.00|700000.00|0.00|0.00&Utility Account|KES|228037.50|228037.50|0.00|0.00"


@pytest.fixture
def world() -> World:
    return World()


def status_tokens(world: World) -> list[str]:
    return [u.rsplit("/", 1)[1] for u in world.urls if "/status_result/" in u]


def events_of(db: MemoryDatabase, subject_id: str) -> list[dict[str, Any]]:
    return [{"type": e.type, **e.data["object"]} for e in db.events if e.subject_id == subject_id]


async def test_a_status_query_past_the_deadline_fails_with_no_result_and_its_event(world: World) -> None:
    asked = StatusQueryCreate("SG632NMUAB", "")
    old = await world.queries.create(TENANT, asked)
    world.clock.advance(500)
    recent = await world.queries.create(TENANT, asked)
    answered = await world.queries.create(TENANT, asked)
    await world.deliver("status_result", status_tokens(world)[2], status_result("x", conversation="AG_status_3"))
    world.clock.advance(100)
    assert await world.queries.give_up_unanswered(DEADLINE) == 0  # exactly at the deadline: not yet
    world.clock.advance(1)

    assert await world.queries.give_up_unanswered(DEADLINE) == 1
    given_up = world.db.committed.status_queries[old.id]
    assert (given_up.status, given_up.failure_code) == (StatusQueryStatus.FAILED, NO_RESULT)
    assert given_up.failure_message is not None and "600 seconds" in given_up.failure_message
    assert given_up.completed_at == given_up.updated_at == world.clock.now()
    assert (given_up.result_code, given_up.result_desc, given_up.result) == (None, None, None)
    [event] = events_of(world.db, old.id)
    assert (event["type"], event["status"], event["failure_code"]) == (
        "transaction_status_query.failed",
        "failed",
        NO_RESULT,
    )
    assert world.db.committed.status_queries[recent.id].status is StatusQueryStatus.PENDING
    assert world.db.committed.status_queries[answered.id].status is StatusQueryStatus.COMPLETED
    assert await world.queries.give_up_unanswered(DEADLINE) == 0  # once only: no second event
    assert len(events_of(world.db, old.id)) == 1

    world.clock.advance(5)
    late = await world.deliver("status_result", status_tokens(world)[0], status_result("x", conversation="AG_status_1"))
    assert (late.state, late.flag_reason) == ("recorded", LATE_RESULT)
    after = world.db.committed.status_queries[old.id]
    assert (after.status, after.failure_code, after.result, after.updated_at) == (
        StatusQueryStatus.FAILED,
        NO_RESULT,
        None,
        given_up.updated_at,
    )
    assert len(events_of(world.db, old.id)) == 1


async def test_a_late_timeout_notice_for_a_query_given_up_changes_nothing(world: World) -> None:
    query = await world.queries.create(TENANT, StatusQueryCreate("SG632NMUAB", ""))
    timeout_token = world.token("status_timeout")
    world.clock.advance(DEADLINE + 1)
    assert await world.queries.give_up_unanswered(DEADLINE) == 1
    notice = await world.deliver("status_timeout", timeout_token, status_result("x", code=1037))
    assert (notice.state, notice.flag_reason) == ("recorded", LATE_RESULT)
    after = world.db.committed.status_queries[query.id]
    assert (after.status, after.failure_code) == (StatusQueryStatus.FAILED, NO_RESULT)
    assert [e["type"] for e in events_of(world.db, query.id)] == ["transaction_status_query.failed"]


async def test_a_payout_whose_query_is_given_up_is_asked_again_and_settled_by_the_next(world: World) -> None:
    world.gateway.fail_with = PushOutcomeUnknown("no answer", code="daraja_no_answer")
    payout_id = await world.create()
    world.gateway.fail_with = None
    world.clock.advance(600)
    await world.reconciler.run_once()
    [first] = world.db.committed.status_queries.values()
    assert first.payout_id == payout_id
    world.clock.advance(DEADLINE + 1)

    assert await world.queries.give_up_unanswered(DEADLINE) == 1
    assert world.status(payout_id) is PayoutStatus.UNKNOWN  # a query given up says nothing of the payout
    await world.reconciler.run_once()
    assert len(world.gateway.queries) == 2 and len(world.gateway.b2c) == 1  # asked again, never re-sent
    ocid = world.db.committed.payouts[payout_id].originator_conversation_id
    first_token, second_token = status_tokens(world)
    late = await world.deliver("status_result", first_token, status_result(ocid, conversation="AG_status_1"))
    assert (late.state, late.flag_reason) == ("recorded", LATE_RESULT)
    assert world.status(payout_id) is PayoutStatus.UNKNOWN  # the late Result settles nothing
    await world.deliver("status_result", second_token, status_result(ocid, conversation="AG_status_2"))
    assert world.status(payout_id) is PayoutStatus.SUCCEEDED
    assert world.db.committed.status_queries[first.id].failure_code == NO_RESULT


async def test_a_balance_query_past_the_deadline_fails_with_no_result_and_its_event() -> None:
    db, clock = MemoryDatabase(), ManualClock(T0)
    queries = BalanceQueryService(db, Gateway(), cast(ProjectService, Projects()), clock, url)
    old = await queries.create(SHOP)
    old_result, old_timeout = token_of("balance_result"), token_of("balance_timeout")
    clock.advance(500)
    recent = await queries.create(SHOP)
    answered = await queries.create(SHOP)
    body = result_body(0, AccountBalance=ACCOUNTS, BOCompletedTime="20261205120000")
    handler = BalanceResultHandler(DarajaResultReader())
    (applied,) = await apply(db, handler, callback("balance_result", token_of("balance_result"), body))
    assert applied.state == "applied"
    clock.advance(101)

    assert await queries.give_up_unanswered(DEADLINE) == 1
    given_up = db.committed.balance_queries[old.id]
    assert (given_up.status, given_up.failure_code) == (BalanceQueryStatus.FAILED, NO_RESULT)
    assert given_up.failure_message is not None and "600 seconds" in given_up.failure_message
    assert (given_up.result_code, given_up.result_desc) == (None, None)  # Daraja said nothing
    assert given_up.completed_at == clock.now()
    [event] = events_of(db, old.id)
    assert (event["type"], event["status"], event["failure_code"]) == ("balance_query.failed", "failed", NO_RESULT)
    assert db.committed.balance_queries[recent.id].status is BalanceQueryStatus.PENDING
    assert db.committed.balance_queries[answered.id].status is BalanceQueryStatus.COMPLETED
    assert await queries.give_up_unanswered(DEADLINE) == 0

    (late,) = await apply(db, handler, callback("balance_result", old_result, body, 2))
    timeouts = BalanceTimeoutHandler(DarajaResultReader())
    (notice,) = await apply(db, timeouts, callback("balance_timeout", old_timeout, b"{}", 3))
    assert (late.state, late.flag_reason) == ("recorded", LATE_RESULT)
    assert (notice.state, notice.flag_reason) == ("recorded", LATE_RESULT)
    after = db.committed.balance_queries[old.id]
    assert (after.status, after.failure_code, after.accounts, after.updated_at) == (
        BalanceQueryStatus.FAILED,
        NO_RESULT,
        [],
        given_up.updated_at,
    )
    assert len(events_of(db, old.id)) == 1


async def test_every_stale_query_is_given_up_in_batches() -> None:
    db, clock = MemoryDatabase(), ManualClock(T0)
    queries = BalanceQueryService(db, Gateway(), cast(ProjectService, Projects()), clock, url)
    for _ in range(BATCH + 3):
        await queries.create(SHOP)
    clock.advance(DEADLINE + 1)
    assert await queries.give_up_unanswered(DEADLINE) == BATCH + 3
    assert {q.failure_code for q in db.committed.balance_queries.values()} == {NO_RESULT}
    assert len(db.events) == BATCH + 3


def test_the_deadline_is_a_positive_number_of_seconds() -> None:
    assert Settings(_env_file=None).query_result_deadline == 600.0  # type: ignore[call-arg]
    for bad in (0, -1, float("inf")):
        with pytest.raises(ValidationError):
            Settings(_env_file=None, query_result_deadline=bad)  # type: ignore[call-arg]
