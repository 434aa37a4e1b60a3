"""Reversals and balance queries in the core, over the in-memory ports: refusals, the send and its
three answers, never a second send, the Result and queue-timeout handlers and their defences, the
stranded sweep, balances in whole shillings. The Result bodies are read by the Daraja adapter's real
reader (`daraja/initiator_results.py`); the gateway is a scripted fake of the port."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from mpesa_bridge.core.accounts import ProjectService
from mpesa_bridge.core.balances.entity import BalanceQueryStatus, shillings
from mpesa_bridge.core.balances.ports import BalanceCommand
from mpesa_bridge.core.balances.results import BalanceResultHandler, BalanceTimeoutHandler
from mpesa_bridge.core.balances.service import BalanceQueryService
from mpesa_bridge.core.clock import ManualClock
from mpesa_bridge.core.errors import Conflict, InvalidRequest, NotFound
from mpesa_bridge.core.payments.entity import InboundCallback, Payment
from mpesa_bridge.core.payments.status import Evidence, PaymentStatus
from mpesa_bridge.core.payouts.policy import PayoutPolicy
from mpesa_bridge.core.payouts.ports import StatusResult
from mpesa_bridge.core.ports import InitiatorUnavailable, PushOutcomeUnknown, PushRejected
from mpesa_bridge.core.projects import DarajaAccount, DarajaEnvironment, Mode, Tenant
from mpesa_bridge.core.reversals.entity import Reversal, ReversalStatus
from mpesa_bridge.core.reversals.ports import InitiatorQueued, ReversalCommand
from mpesa_bridge.core.reversals.reconcile import ReversalReconciler
from mpesa_bridge.core.reversals.results import ReversalResultHandler, ReversalTimeoutHandler
from mpesa_bridge.core.reversals.service import ReversalService
from mpesa_bridge.core.reversals.settle import settle_by_status
from mpesa_bridge.daraja.initiator_results import DarajaResultReader
from tests.fixtures.memory import MemoryDatabase

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
SHOP = Tenant("proj_shop", Mode.TEST)
OTHER = Tenant("proj_other", Mode.TEST)
ACCOUNT = DarajaAccount(
    DarajaEnvironment.SIMULATOR, "ck", "cs", "174379", "pk", initiator_name="testapi", initiator_password="pw"
)
RECEIPT = "UL6PCI5HE9"


class Projects:
    def __init__(self, account: DarajaAccount = ACCOUNT) -> None:
        self.account_ = account

    async def account(self, tenant: Tenant) -> DarajaAccount:
        return self.account_


class Gateway:
    """The reversal and balance gateway port, scripted: each call answers with the next of `answers`."""

    def __init__(self, *answers: InitiatorQueued | Exception) -> None:
        self.answers = list(answers) or [InitiatorQueued("AG_1", "ORIG_1")]
        self.reversals: list[ReversalCommand] = []
        self.balances: list[BalanceCommand] = []

    def _next(self) -> InitiatorQueued:
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def reverse(self, command: ReversalCommand) -> InitiatorQueued:
        self.reversals.append(command)
        return self._next()

    async def account_balance(self, command: BalanceCommand) -> InitiatorQueued:
        self.balances.append(command)
        return self._next()


def paid(payment_id: str = "pay_1", tenant: Tenant = SHOP, status: PaymentStatus = PaymentStatus.SUCCEEDED) -> Payment:
    return Payment(
        id=payment_id,
        project_id=tenant.project_id,
        mode=tenant.mode.value,
        status=status,
        amount=100,
        phone="254708374149",
        account_reference="INV1",
        description="Order",
        metadata={},
        business_short_code="174379",
        party_b="174379",
        transaction_type="CustomerPayBillOnline",
        daraja_environment="simulator",
        callback_token_hash=f"h-{payment_id}",
        created_at=T0,
        updated_at=T0,
        evidence=Evidence.CALLBACK,
        mpesa_receipt_number=RECEIPT if status is PaymentStatus.SUCCEEDED else None,
    )


URLS: list[tuple[str, str]] = []


def url(kind: str, token: str) -> str:
    URLS.append((kind, token))
    return f"https://bridge.test/v1/callbacks/daraja/{kind}/{token}"


def service(
    db: MemoryDatabase, gateway: Gateway, clock: ManualClock, projects: Projects | None = None
) -> ReversalService:
    return ReversalService(db, gateway, cast(ProjectService, projects or Projects()), clock, url)


def result_body(code: int | str = 0, conversation: str = "AG_1", **params: Any) -> bytes:
    result: dict[str, Any] = {
        "ResultType": 0,
        "ResultCode": code,
        "ResultDesc": "The service request is processed successfully."
        if code == 0
        else "The transaction has already been reversed.",
        "OriginatorConversationID": "ORIG_1",
        "ConversationID": conversation,
        "TransactionID": "UL7REVERSE1" if code == 0 else "UL70000000",
    }
    if params:
        result["ResultParameters"] = {"ResultParameter": [{"Key": k, "Value": v} for k, v in params.items()]}
    return json.dumps({"Result": result}).encode()


def callback(kind: str, token: str, body: bytes, n: int = 1) -> InboundCallback:
    return InboundCallback(
        id=f"cb_{n}", kind=kind, received_at=T0, body=body, token_hash=hashlib.sha256(token.encode()).hexdigest()
    )


async def apply(db: MemoryDatabase, handler: Any, *callbacks: InboundCallback) -> list[InboundCallback]:
    async with db.write() as uow:
        await handler.apply(uow, list(callbacks), T0)
    return list(callbacks)


def token_of(kind: str) -> str:
    return next(t for k, t in reversed(URLS) if k == kind)


async def test_a_reversal_is_recorded_then_sent_and_a_second_is_refused() -> None:
    db, gateway, clock = MemoryDatabase([paid()]), Gateway(), ManualClock(T0)
    reversal = await service(db, gateway, clock).create(SHOP, "pay_1", "Order cancelled")
    assert reversal.status is ReversalStatus.SENT and reversal.conversation_id == "AG_1"
    (sent,) = gateway.reversals
    assert (sent.original_receipt, sent.amount, sent.short_code, sent.remarks) == (
        RECEIPT,
        100,
        "174379",
        "Order cancelled",
    )
    assert "/reversal_result/" in sent.result_url and "/reversal_timeout/" in sent.queue_timeout_url
    assert db.payment("pay_1").reversal_id == reversal.id
    with pytest.raises(Conflict) as refused:
        await service(db, gateway, clock).create(SHOP, "pay_1")
    assert refused.value.code == "reversal_in_flight" and len(gateway.reversals) == 1


@pytest.mark.parametrize(
    ("payment", "tenant", "error", "code"),
    [
        (paid(status=PaymentStatus.FAILED), SHOP, Conflict, "payment_not_succeeded"),
        (paid(), OTHER, NotFound, "resource_missing"),
    ],
)
async def test_refusals_send_nothing(payment: Payment, tenant: Tenant, error: type[Exception], code: str) -> None:
    db, gateway = MemoryDatabase([payment]), Gateway()
    with pytest.raises(error) as refused:
        await service(db, gateway, ManualClock(T0)).create(tenant, "pay_1")
    assert getattr(refused.value, "code", None) == code and gateway.reversals == []
    assert db.committed.reversals == {}


async def test_no_initiator_and_bad_remarks_are_refused_before_anything_is_recorded() -> None:
    db, gateway = MemoryDatabase([paid()]), Gateway()
    bare = Projects(DarajaAccount(DarajaEnvironment.SIMULATOR, "ck", "cs", "174379", "pk"))
    with pytest.raises(InitiatorUnavailable):
        await service(db, gateway, ManualClock(T0), bare).create(SHOP, "pay_1")
    with pytest.raises(InvalidRequest):
        await service(db, gateway, ManualClock(T0)).create(SHOP, "pay_1", "x")
    assert db.committed.reversals == {} and gateway.reversals == []


async def test_a_lost_answer_is_unknown_and_never_sent_again() -> None:
    db, clock = MemoryDatabase([paid()]), ManualClock(T0)
    gateway = Gateway(PushOutcomeUnknown("no answer", code="daraja_no_answer"))
    reversal = await service(db, gateway, clock).create(SHOP, "pay_1")
    assert reversal.status is ReversalStatus.UNKNOWN and reversal.failure_code == "daraja_no_answer"
    with pytest.raises(Conflict):
        await service(db, gateway, clock).create(SHOP, "pay_1")
    assert len(gateway.reversals) == 1
    # Its Result, when it comes, still settles it.
    await apply(
        db,
        ReversalResultHandler(DarajaResultReader()),
        callback("reversal_result", token_of("reversal_result"), result_body(0, "")),
    )
    assert db.committed.reversals[reversal.id].status is ReversalStatus.SUCCEEDED


async def test_a_refused_reversal_fails_with_its_event_and_the_payment_may_be_reversed_again() -> None:
    db, clock = MemoryDatabase([paid()]), ManualClock(T0)
    gateway = Gateway(
        PushRejected("Bad Request - Invalid Remarks", code="invalid_for_daraja"), InitiatorQueued("AG_2", "O2")
    )
    failed = await service(db, gateway, clock).create(SHOP, "pay_1")
    assert failed.status is ReversalStatus.FAILED and failed.failure_code == "invalid_for_daraja"
    assert [e.type for e in db.events] == ["reversal.failed"] and db.events[0].subject_id == failed.id
    again = await service(db, gateway, clock).create(SHOP, "pay_1")
    assert again.status is ReversalStatus.SENT and len(gateway.reversals) == 2


async def test_the_result_succeeds_once_and_its_copies_and_forgeries_change_nothing() -> None:
    db, clock = MemoryDatabase([paid()]), ManualClock(T0)
    reversal = await service(db, Gateway(), clock).create(SHOP, "pay_1")
    token = token_of("reversal_result")
    good = result_body(0, Amount=100.0, OriginalTransactionID=RECEIPT)
    handler = ReversalResultHandler(DarajaResultReader())
    states = await apply(
        db,
        handler,
        callback("reversal_result", token, good, 1),
        callback("reversal_result", token, good, 2),
        callback("reversal_result", "guessed", good, 3),
        callback("reversal_result", token, result_body("R000001", "AG_forged"), 4),
        callback("reversal_result", token, b"{", 5),
    )
    assert [(c.state, c.flag_reason) for c in states] == [
        ("applied", None),
        ("duplicate", None),
        ("flagged", "unknown_token"),
        ("flagged", "conversation_id_mismatch"),
        ("flagged", "malformed"),
    ]
    done = db.committed.reversals[reversal.id]
    assert done.status is ReversalStatus.SUCCEEDED and done.receipt == "UL7REVERSE1"
    payment = db.payment("pay_1")
    assert payment.reversed_at == T0 and payment.status is PaymentStatus.SUCCEEDED
    assert [e.type for e in db.events] == ["payment.reversed"]
    assert db.events[0].data["reversal"]["id"] == reversal.id
    assert [(e.source, e.verdict) for e in db.evidence] == [("reversal", "reversed")]


@pytest.mark.parametrize(
    ("params", "problem"),
    [({"Amount": 99.0}, "amount_mismatch"), ({"OriginalTransactionID": "ULOTHER999"}, "original_transaction_mismatch")],
)
async def test_a_success_about_another_transaction_is_flagged(params: dict[str, Any], problem: str) -> None:
    db = MemoryDatabase([paid()])
    reversal = await service(db, Gateway(), ManualClock(T0)).create(SHOP, "pay_1")
    (cb,) = await apply(
        db,
        ReversalResultHandler(DarajaResultReader()),
        callback("reversal_result", token_of("reversal_result"), result_body(0, **params)),
    )
    assert (cb.state, cb.flag_reason) == ("flagged", problem)
    assert db.committed.reversals[reversal.id].status is ReversalStatus.SENT


async def test_already_reversed_is_a_clear_failure() -> None:
    db = MemoryDatabase([paid()])
    reversal = await service(db, Gateway(), ManualClock(T0)).create(SHOP, "pay_1")
    await apply(
        db,
        ReversalResultHandler(DarajaResultReader()),
        callback("reversal_result", token_of("reversal_result"), result_body("R000001")),
    )
    failed = db.committed.reversals[reversal.id]
    assert (failed.status, failed.failure_code, failed.result_code) == (
        ReversalStatus.FAILED,
        "already_reversed",
        "R000001",
    )
    assert failed.failure_message == "The transaction has already been reversed."
    assert db.payment("pay_1").reversed_at is None


async def test_a_queue_timeout_makes_it_unknown_and_a_late_one_is_recorded() -> None:
    db = MemoryDatabase([paid()])
    reversal = await service(db, Gateway(), ManualClock(T0)).create(SHOP, "pay_1")
    token = token_of("reversal_timeout")
    notice = json.dumps({"Result": {"ResultCode": 1037, "ResultDesc": "timed out", "ConversationID": "AG_1"}}).encode()
    handler = ReversalTimeoutHandler(DarajaResultReader())
    first, second = await apply(
        db, handler, callback("reversal_timeout", token, notice, 1), callback("reversal_timeout", token, b"", 2)
    )
    assert (first.state, second.state) == ("applied", "recorded")
    unknown = db.committed.reversals[reversal.id]
    assert unknown.status is ReversalStatus.UNKNOWN and unknown.failure_code == "queue_timeout"
    (spoofed,) = await apply(db, handler, callback("reversal_timeout", "guessed", notice, 3))
    assert (spoofed.state, spoofed.flag_reason) == ("flagged", "unknown_token")


async def test_a_reversal_stranded_while_sending_becomes_unknown() -> None:
    db, clock = MemoryDatabase([paid()]), ManualClock(T0)

    class Crash(Gateway):
        async def reverse(self, command: ReversalCommand) -> InitiatorQueued:
            raise KeyboardInterrupt  # the process dies between the commit and the answer

    with pytest.raises(KeyboardInterrupt):
        await service(db, Crash(), clock).create(SHOP, "pay_1")
    (stranded,) = db.committed.reversals.values()
    assert stranded.status is ReversalStatus.SENDING
    assert await service(db, Gateway(), clock).sweep_stranded() == 0  # not yet
    clock.advance(360)
    assert await service(db, Gateway(), clock).sweep_stranded() == 1
    assert db.committed.reversals[stranded.id].status is ReversalStatus.UNKNOWN


def test_balances_are_whole_shillings_rounded_down() -> None:
    assert [shillings(c) for c in (22803750, 22803799, 0, -154050, -154000)] == [228037, 228037, 0, -1541, -1540]


async def test_a_balance_query_waits_for_its_result_and_ignores_copies() -> None:
    db, gateway, clock = MemoryDatabase(), Gateway(), ManualClock(T0)
    queries = BalanceQueryService(db, gateway, cast(ProjectService, Projects()), clock, url)
    query = await queries.create(SHOP)
    assert query.status is BalanceQueryStatus.PENDING and gateway.balances[0].short_code == "174379"
    accounts = "&".join(
        [
            "Working Account|KES|700000.00|700000.00|0.00|0.00",
            "Utility Account|KES|228037.50|228037.50|0.00|0.00",
            "Charges Paid Account|KES|-1540.50|-1540.50|0.00|0.00",
        ]
    )
    body = result_body(0, AccountBalance=accounts, BOCompletedTime="20261205120000")
    token = token_of("balance_result")
    handler = BalanceResultHandler(DarajaResultReader())
    first, copy_, spoofed = await apply(
        db,
        handler,
        callback("balance_result", token, body, 1),
        callback("balance_result", token, body, 2),
        callback("balance_result", "x", body, 3),
    )
    assert [c.state for c in (first, copy_, spoofed)] == ["applied", "duplicate", "flagged"]
    done = await queries.get(SHOP, query.id)
    assert done.status is BalanceQueryStatus.COMPLETED
    assert [(a.name, a.available) for a in done.account_balances()] == [
        ("Working Account", 700000),
        ("Utility Account", 228037),
        ("Charges Paid Account", -1541),
    ]
    assert done.balances_at == datetime(2026, 12, 5, 9, 0, tzinfo=UTC)  # 12:00 in Nairobi
    assert [e.type for e in db.events] == ["balance_query.completed"]
    with pytest.raises(NotFound):
        await queries.get(OTHER, query.id)
    with pytest.raises(InvalidRequest):
        await queries.create(SHOP, wait=31)


async def test_a_balance_query_times_out_in_the_queue() -> None:
    db, clock = MemoryDatabase(), ManualClock(T0)
    queries = BalanceQueryService(db, Gateway(), cast(ProjectService, Projects()), clock, url)
    query = await queries.create(SHOP)
    (cb,) = await apply(
        db,
        BalanceTimeoutHandler(DarajaResultReader()),
        callback("balance_timeout", token_of("balance_timeout"), b"not json"),
    )
    assert cb.state == "applied"
    failed = await queries.get(SHOP, query.id)
    assert (failed.status, failed.failure_code) == (BalanceQueryStatus.FAILED, "queue_timeout")
    assert [e.type for e in db.events] == ["balance_query.failed"]


# Settlement by Transaction Status (core.reversals.reconcile, core.reversals.settle.settle_by_status)


class Asker:
    """The Transaction Status port of the reconciler: records whom it was asked about."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def ask_for_reversal(self, reversal: Reversal) -> None:
        self.asked.append(reversal.id)


def status(code: str = "0", state: str | None = "Completed", amount: int | None = 100, **kw: Any) -> StatusResult:
    return StatusResult(
        result_code=code,
        result_desc="ok",
        originator_conversation_id="TSQ_1",
        conversation_id="AG_TSQ",
        receipt=kw.get("receipt", "UL7REVERSE1"),
        transaction_status=state,
        amount=amount,
        looked_up_originator_id=kw.get("looked_up", "ORIG_1"),
    )


async def unknown_reversal(db: MemoryDatabase, clock: ManualClock) -> str:
    reversal = await service(db, Gateway(), clock).create(SHOP, "pay_1")
    token = token_of("reversal_timeout")
    notice = json.dumps({"Result": {"ResultCode": 1037, "ResultDesc": "timed out", "ConversationID": "AG_1"}}).encode()
    await apply(db, ReversalTimeoutHandler(DarajaResultReader()), callback("reversal_timeout", token, notice))
    return reversal.id


async def settle_with(db: MemoryDatabase, reversal_id: str, result: StatusResult) -> str:
    async with db.write() as uow:
        reversal = await uow.reversals.lock(reversal_id)
        assert reversal is not None
        done = await settle_by_status(uow, reversal, result, T0, PayoutPolicy(not_found_limit=2))
        await uow.reversals.save(reversal)
    return done


async def test_a_sent_reversal_is_asked_about_after_the_result_wait_then_on_the_backoff() -> None:
    db, clock, asker = MemoryDatabase([paid()]), ManualClock(T0), Asker()
    policy = PayoutPolicy(result_wait=300, query_backoff=(5.0, 30.0))
    reversal = await ReversalService(
        db, Gateway(), cast(ProjectService, Projects()), clock, url, result_wait=300
    ).create(SHOP, "pay_1")
    assert reversal.status is ReversalStatus.SENT
    reconciler = ReversalReconciler(db, asker, clock, policy)
    assert await reconciler.run_once() == 0  # its Result may still come
    clock.advance(300)
    assert await reconciler.run_once() == 1 and asker.asked == [reversal.id]
    assert await reconciler.run_once() == 0  # not again before the backoff
    clock.advance(30)
    assert await reconciler.run_once() == 1
    assert db.committed.reversals[reversal.id].query_attempts == 2


async def test_a_queue_timeout_is_asked_about_at_once_and_a_lost_answer_never() -> None:
    db, clock, asker = MemoryDatabase([paid(), paid("pay_2")]), ManualClock(T0), Asker()
    timed_out = await unknown_reversal(db, clock)
    lost = await service(db, Gateway(PushOutcomeUnknown("no answer", code="daraja_no_answer")), clock).create(
        SHOP, "pay_2"
    )
    assert lost.status is ReversalStatus.UNKNOWN and lost.next_query_at is None  # no id to name it by
    reconciler = ReversalReconciler(db, asker, clock, PayoutPolicy())
    assert await reconciler.run_once() == 1 and asker.asked == [timed_out]
    clock.advance(86_400)
    await reconciler.run_once()
    assert lost.id not in asker.asked


async def test_completed_settles_it_with_the_receipt_and_the_payment_shows_it() -> None:
    db, clock = MemoryDatabase([paid()]), ManualClock(T0)
    reversal_id = await unknown_reversal(db, clock)
    assert await settle_with(db, reversal_id, status()) == "succeeded"
    settled = db.committed.reversals[reversal_id]
    assert (settled.status, settled.receipt, settled.next_query_at) == (ReversalStatus.SUCCEEDED, "UL7REVERSE1", None)
    assert db.committed.payments["pay_1"].reversed_at is not None
    assert await settle_with(db, reversal_id, status(state="Declined")) == "already_settled"


@pytest.mark.parametrize(
    ("result", "done"),
    [
        (status(state="Authorised"), "in_progress"),  # not final yet: asked again later
        (status(looked_up="ORIG_OTHER"), "mismatch"),
        (status(amount=99), "amount_mismatch"),
        (status(code="2001", state=None), "unchanged"),
    ],
)
async def test_what_does_not_settle_it_leaves_it_unknown(result: StatusResult, done: str) -> None:
    db, clock = MemoryDatabase([paid()]), ManualClock(T0)
    reversal_id = await unknown_reversal(db, clock)
    assert await settle_with(db, reversal_id, result) == done
    assert db.committed.reversals[reversal_id].status is ReversalStatus.UNKNOWN


async def test_declined_fails_it_and_not_found_fails_it_only_after_the_limit() -> None:
    db, clock = MemoryDatabase([paid(), paid("pay_2")]), ManualClock(T0)
    declined = await unknown_reversal(db, clock)
    assert await settle_with(db, declined, status(state="Declined")) == "failed"
    assert db.committed.reversals[declined].failure_code == "declined"
    missing = (await service(db, Gateway(InitiatorQueued("AG_2", "ORIG_2")), clock).create(SHOP, "pay_2")).id
    assert await settle_with(db, missing, status(code="25", state=None)) == "not_found"
    assert db.committed.reversals[missing].status is ReversalStatus.SENT
    assert await settle_with(db, missing, status(code="25", state=None)) == "failed_not_found"
    assert db.committed.reversals[missing].failure_code == "not_found_at_daraja"
