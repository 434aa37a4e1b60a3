"""Payouts over the in-memory ports: the state machine, limits, two-person approval, sending once,
Results and queue timeouts, and settlement by Transaction Status."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from mpesa_bridge.core.callbacks.handlers import CallbackHandlers, register_payout_handlers
from mpesa_bridge.core.clock import ManualClock
from mpesa_bridge.core.errors import Conflict, InvalidRequest, PermissionDenied, Unprocessable
from mpesa_bridge.core.ids import new_id
from mpesa_bridge.core.payments.entity import InboundCallback
from mpesa_bridge.core.payments.stk import token_hash
from mpesa_bridge.core.payments.validation import PaymentLimits
from mpesa_bridge.core.payouts.entity import PayoutSettings
from mpesa_bridge.core.payouts.policy import PayoutPolicy
from mpesa_bridge.core.payouts.ports import B2cCommand, InitiatorAck, StatusQueryCommand
from mpesa_bridge.core.payouts.reconcile import PayoutReconciler
from mpesa_bridge.core.payouts.service import PayoutService
from mpesa_bridge.core.payouts.status import PayoutStatus, can_transition
from mpesa_bridge.core.payouts.validation import PayoutRules, check_limits, validate_payout_create
from mpesa_bridge.core.ports import PushOutcomeUnknown, PushRejected
from mpesa_bridge.core.projects import DarajaAccount, DarajaEnvironment, Mode, Tenant
from mpesa_bridge.core.status_queries.entity import StatusQueryStatus
from mpesa_bridge.core.status_queries.service import StatusQueryService
from mpesa_bridge.daraja.payouts import ResultReader
from tests.fixtures.memory import MemoryDatabase
from tests.fixtures.payouts import b2c_result, status_result

START = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
TENANT = Tenant("prj_01test", Mode.TEST)
ALICE, BOB = "key:key_alice", "person:usr_bob"
POLICY = PayoutPolicy(send_grace=60.0, result_wait=300.0, query_backoff=(5.0, 30.0), not_found_limit=2)


class FakeProjects:
    async def account(self, tenant: Tenant) -> DarajaAccount:
        return DarajaAccount(DarajaEnvironment.SIMULATOR, "key", "secret", "600000", "passkey")


@dataclass
class FakeInitiator:
    db: MemoryDatabase
    b2c: list[B2cCommand]
    queries: list[StatusQueryCommand]
    fail_with: Exception | None = None
    seen_status: list[PayoutStatus] | None = None

    async def b2c_payment(self, command: B2cCommand) -> InitiatorAck:
        # What the database holds while the request is on the wire: `sending`, committed.
        payout = next(iter(self.db.committed.payouts.values()))
        (self.seen_status if self.seen_status is not None else []).append(payout.status)
        self.b2c.append(command)
        if self.fail_with is not None:
            raise self.fail_with
        return InitiatorAck(f"AG_{len(self.b2c)}", command.originator_conversation_id)

    async def transaction_status(self, command: StatusQueryCommand) -> InitiatorAck:
        self.queries.append(command)
        return InitiatorAck(f"AG_status_{len(self.queries)}", "sim-status-1")


class World:
    def __init__(self) -> None:
        self.db = MemoryDatabase()
        self.clock = ManualClock(START)
        self.gateway = FakeInitiator(self.db, [], [], seen_status=[])
        self.urls: list[str] = []
        projects = FakeProjects()
        self.service = PayoutService(self.db, self.gateway, projects, self.clock, self._url, POLICY)  # type: ignore[arg-type]
        self.queries = StatusQueryService(self.db, self.gateway, projects, self.clock, self._url)  # type: ignore[arg-type]
        self.reconciler = PayoutReconciler(self.db, self.service, self.queries, self.clock, POLICY)
        self.handlers = CallbackHandlers()
        register_payout_handlers(self.handlers, ResultReader(), POLICY)

    def _url(self, kind: str, token: str) -> str:
        url = f"http://bridge/v1/callbacks/daraja/{kind}/{token}"
        self.urls.append(url)
        return url

    def token(self, kind: str) -> str:
        return next(u for u in reversed(self.urls) if f"/{kind}/" in u).rsplit("/", 1)[1]

    async def deliver(self, kind: str, token: str, body: bytes) -> InboundCallback:
        callback = InboundCallback(new_id("cb", self.clock.now()), kind, self.clock.now(), body, token_hash(token))
        async with self.db.write() as uow:
            await self.handlers.handler(kind).apply(uow, [callback], self.clock.now())
        return callback

    async def create(self, amount: int = 100, actor: str = ALICE, phone: str = "0708374149") -> str:
        request = validate_payout_create(
            phone=phone,
            amount=amount,
            command_id="BusinessPayment",
            remarks="Refund 42",
            occasion=None,
            metadata={"order": 42},
            limits=PaymentLimits(),
        )
        return (await self.service.create(TENANT, actor, request)).id

    def status(self, payout_id: str) -> PayoutStatus:
        return self.db.committed.payouts[payout_id].status

    async def require_approval(self, *, max_amount: int | None = None, daily: int | None = None) -> None:
        async with self.db.write() as uow:
            await uow.payouts.put_settings(PayoutSettings(TENANT.project_id, "test", True, max_amount, daily, START))


@pytest.fixture
def world() -> World:
    return World()


def test_the_state_machine_allows_only_its_transitions() -> None:
    assert can_transition(PayoutStatus.PENDING_APPROVAL, PayoutStatus.APPROVED)
    assert can_transition(PayoutStatus.QUEUED, PayoutStatus.SENDING)
    assert can_transition(PayoutStatus.SENDING, PayoutStatus.UNKNOWN)
    assert can_transition(PayoutStatus.UNKNOWN, PayoutStatus.SUCCEEDED)
    assert can_transition(PayoutStatus.FAILED, PayoutStatus.SUCCEEDED)  # late correction only
    assert not can_transition(PayoutStatus.PENDING_APPROVAL, PayoutStatus.SENDING)  # never sent unapproved
    assert not can_transition(PayoutStatus.UNKNOWN, PayoutStatus.SENDING)  # never sent twice
    assert not can_transition(PayoutStatus.SENT, PayoutStatus.SENDING)
    assert not can_transition(PayoutStatus.SUCCEEDED, PayoutStatus.FAILED)
    assert not can_transition(PayoutStatus.REJECTED, PayoutStatus.APPROVED)


def test_limits_are_checked_with_clear_codes() -> None:
    rules = PayoutRules(False, max_amount=1000, daily_limit=5000)
    check_limits(1000, rules, 4000)
    with pytest.raises(Unprocessable) as one:
        check_limits(1001, rules, 0)
    assert one.value.code == "payout_limit_exceeded"
    with pytest.raises(Unprocessable) as day:
        check_limits(500, rules, 4600)
    assert day.value.code == "daily_payout_limit_exceeded"
    assert "400 left" in day.value.message


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("amount", 9, "amount_out_of_range"),
        ("amount", 250_001, "amount_out_of_range"),
        ("command_id", "Salary", "invalid_command_id"),
        ("remarks", "x", "too_short"),
        ("phone", "12", "invalid_phone"),
    ],
)
def test_validation_refuses_what_daraja_would(field: str, value: object, code: str) -> None:
    fields: dict[str, object] = {
        "phone": "0708374149",
        "amount": 100,
        "command_id": "BusinessPayment",
        "remarks": "Refund",
        "occasion": None,
        "metadata": None,
    }
    fields[field] = value
    with pytest.raises(InvalidRequest) as refused:
        validate_payout_create(limits=PaymentLimits(), **fields)  # type: ignore[arg-type]
    assert refused.value.code == code


async def test_a_payout_is_marked_sending_before_its_one_request_leaves(world: World) -> None:
    payout_id = await world.create()
    assert world.gateway.seen_status == [PayoutStatus.SENDING]
    assert len(world.gateway.b2c) == 1
    assert world.status(payout_id) is PayoutStatus.SENT
    payout = world.db.committed.payouts[payout_id]
    assert world.gateway.b2c[0].originator_conversation_id == payout.originator_conversation_id
    assert payout.callback_token_hash == token_hash(world.token("b2c_result"))
    assert [e.type for e in world.db.events] == ["payout.created", "payout.sent"]
    assert {e.subject_type for e in world.db.events} == {"payout"}


async def test_a_lost_answer_is_unknown_and_never_sent_again(world: World) -> None:
    world.gateway.fail_with = PushOutcomeUnknown("no answer", code="daraja_no_answer")
    payout_id = await world.create()
    assert world.status(payout_id) is PayoutStatus.UNKNOWN
    world.gateway.fail_with = None
    world.clock.advance(600)
    await world.reconciler.run_once()
    assert len(world.gateway.b2c) == 1, "a second B2C request"
    assert len(world.gateway.queries) == 1
    assert (
        world.gateway.queries[0].original_conversation_id
        == world.db.committed.payouts[payout_id].originator_conversation_id
    )
    await world.deliver(
        "status_result", world.token("status_result"), status_result(world.gateway.queries[0].original_conversation_id)
    )
    payout = world.db.committed.payouts[payout_id]
    assert payout.status is PayoutStatus.SUCCEEDED
    assert payout.receipt == "SG632NMUAB"
    query = next(iter(world.db.committed.status_queries.values()))
    assert query.status is StatusQueryStatus.COMPLETED
    assert query.result is not None and query.result["transaction_status"] == "Completed"


async def test_a_refusal_fails_the_payout(world: World) -> None:
    world.gateway.fail_with = PushRejected("Invalid Amount", code="daraja_rejected")
    payout_id = await world.create()
    assert world.status(payout_id) is PayoutStatus.FAILED
    assert world.db.committed.payouts[payout_id].failure_code == "daraja_rejected"


async def test_approval_needs_a_second_person(world: World) -> None:
    await world.require_approval()
    payout_id = await world.create(actor=ALICE)
    assert world.status(payout_id) is PayoutStatus.PENDING_APPROVAL
    assert world.gateway.b2c == []
    with pytest.raises(PermissionDenied) as refused:
        await world.service.approve(TENANT, payout_id, ALICE)
    assert refused.value.code == "approver_is_creator"
    assert world.gateway.b2c == []
    approved = await world.service.approve(TENANT, payout_id, BOB)
    assert approved.status is PayoutStatus.SENT
    assert approved.approved_by == BOB and approved.created_by == ALICE
    assert len(world.gateway.b2c) == 1
    with pytest.raises(Conflict):
        await world.service.approve(TENANT, payout_id, "key:key_carol")


async def test_a_rejected_payout_is_never_sent(world: World) -> None:
    await world.require_approval()
    payout_id = await world.create()
    rejected = await world.service.reject(TENANT, payout_id, BOB, "wrong phone")
    assert rejected.status is PayoutStatus.REJECTED and rejected.rejection_reason == "wrong phone"
    world.clock.advance(3600)
    await world.reconciler.run_once()
    assert world.gateway.b2c == []


async def test_limits_per_payout_and_per_day(world: World) -> None:
    await world.require_approval(max_amount=1000, daily=1500)
    await world.create(amount=1000)
    with pytest.raises(Unprocessable) as too_big:
        await world.create(amount=1001)
    assert too_big.value.code == "payout_limit_exceeded"
    with pytest.raises(Unprocessable) as day:
        await world.create(amount=600)
    assert day.value.code == "daily_payout_limit_exceeded"
    rejected = next(iter(world.db.committed.payouts))
    await world.service.reject(TENANT, rejected, BOB)
    await world.create(amount=600)  # a rejected payout no longer counts


async def test_results_replayed_duplicated_and_spoofed(world: World) -> None:
    payout_id = await world.create()
    payout = world.db.committed.payouts[payout_id]
    token = world.token("b2c_result")
    spoof = await world.deliver("b2c_result", token, b2c_result("someone-else"))
    assert (spoof.state, spoof.flag_reason) == ("flagged", "originator_mismatch")
    wrong_token = await world.deliver("b2c_result", "guessed", b2c_result(payout.originator_conversation_id))
    assert (wrong_token.state, wrong_token.flag_reason) == ("flagged", "unknown_token")
    other = await world.deliver("b2c_result", token, b2c_result(payout.originator_conversation_id, conversation="AG_9"))
    assert other.flag_reason == "conversation_mismatch"
    short = await world.deliver(
        "b2c_result", token, b2c_result(payout.originator_conversation_id, amount=10, conversation="AG_1")
    )
    assert short.flag_reason == "amount_mismatch"
    body = b2c_result(payout.originator_conversation_id, conversation="AG_1")
    assert (await world.deliver("b2c_result", token, body)).state == "applied"
    assert world.status(payout_id) is PayoutStatus.SUCCEEDED
    assert (await world.deliver("b2c_result", token, body)).state == "duplicate"
    contradicting = await world.deliver(
        "b2c_result", token, b2c_result(payout.originator_conversation_id, code=1, conversation="AG_1")
    )
    assert contradicting.flag_reason == "contradicts_settled_state"
    assert world.status(payout_id) is PayoutStatus.SUCCEEDED
    malformed = await world.deliver("b2c_result", token, b'{"Result": {"ResultDesc": "\\u0000"}}')
    assert malformed.flag_reason == "malformed"
    assert [e.type for e in world.db.events].count("payout.succeeded") == 1


async def test_a_failure_result_names_the_cause(world: World) -> None:
    payout_id = await world.create()
    ocid = world.db.committed.payouts[payout_id].originator_conversation_id
    await world.deliver("b2c_result", world.token("b2c_result"), b2c_result(ocid, code=2001, conversation="AG_1"))
    payout = world.db.committed.payouts[payout_id]
    assert (payout.status, payout.failure_code, payout.result_code) == (
        PayoutStatus.FAILED,
        "initiator_invalid",
        "2001",
    )


async def test_a_queue_timeout_is_unknown_then_settled_by_status(world: World) -> None:
    payout_id = await world.create()
    ocid = world.db.committed.payouts[payout_id].originator_conversation_id
    notice = await world.deliver(
        "b2c_timeout", world.token("b2c_timeout"), b2c_result(ocid, code=1037, conversation="AG_1")
    )
    assert notice.state == "applied"
    assert world.status(payout_id) is PayoutStatus.UNKNOWN
    assert (
        await world.deliver("b2c_timeout", world.token("b2c_timeout"), b2c_result(ocid, code=1037, conversation="AG_1"))
    ).state == "duplicate"
    world.clock.advance(10)
    await world.reconciler.run_once()
    assert len(world.gateway.queries) == 1 and len(world.gateway.b2c) == 1
    await world.deliver("status_result", world.token("status_result"), status_result(ocid))
    assert world.status(payout_id) is PayoutStatus.SUCCEEDED


async def test_a_payout_daraja_never_received_fails_after_repeated_not_found(world: World) -> None:
    world.gateway.fail_with = PushOutcomeUnknown("no answer", code="daraja_no_answer")
    payout_id = await world.create()
    for n in range(1, POLICY.not_found_limit + 1):
        world.clock.advance(60)
        await world.reconciler.run_once()
        body = status_result("x", code=25, conversation=f"AG_status_{n}")
        await world.deliver("status_result", world.token("status_result"), body)
    payout = world.db.committed.payouts[payout_id]
    assert (payout.status, payout.failure_code) == (PayoutStatus.FAILED, "not_found_at_daraja")
    assert len(world.gateway.b2c) == 1


async def test_a_crash_while_sending_leaves_sending_which_becomes_unknown(world: World) -> None:
    stuck: list[Callable[[], None]] = []
    await world.require_approval()
    payout_id = await world.create()
    # The process died after committing `sending`, before recording Daraja's answer.
    async with world.db.write() as uow:
        payout = await uow.payouts.lock(payout_id)
        assert payout is not None
        payout.status, payout.updated_at = PayoutStatus.SENDING, world.clock.now()
        payout.originator_conversation_id = payout.originator_conversation_id or "x"
        await uow.payouts.save(payout)
    world.clock.advance(POLICY.send_grace + 1)
    report = await world.reconciler.run_once()
    assert report.stranded == 1 and not stuck
    assert world.status(payout_id) is PayoutStatus.UNKNOWN
    assert world.gateway.b2c == []  # never sent by the reconciler
    assert len(world.gateway.queries) == 1
