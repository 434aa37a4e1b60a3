"""Explicit persistence (issue 10 part 1): lookups return values, Daraja's ids are adopted by one
conditional UPDATE, and a read unit of work refuses to write. On SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from mpesa_bridge.core.callbacks.stk import StkHandler
from mpesa_bridge.core.clock import ManualClock
from mpesa_bridge.core.payments.entity import EventType, InboundCallback, Payment, PaymentEvidence
from mpesa_bridge.core.payments.outcomes import write_event
from mpesa_bridge.core.payments.policy import ReconcilePolicy
from mpesa_bridge.core.payments.status import Evidence, PaymentStatus
from mpesa_bridge.core.payments.stk import PaymentService
from mpesa_bridge.core.ports import PushAccepted
from mpesa_bridge.core.projects import Project
from mpesa_bridge.storage import tables
from mpesa_bridge.storage.db import Database
from tests.fixtures.database import Statements
from tests.integration.test_callbacks_inbox import success_body

T0 = datetime(2026, 11, 26, 7, 20, tzinfo=UTC)
PHONE = "254708374149"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _payment(n: int, **overrides: object) -> Payment:
    fields: dict[str, object] = {
        "id": f"pay_01persist{n:04d}",
        "project_id": "prj_01persist",
        "mode": "test",
        "status": PaymentStatus.PENDING,
        "amount": 500,
        "phone": PHONE,
        "account_reference": "INV1",
        "description": "Payment",
        "metadata": {},
        "business_short_code": "174379",
        "party_b": "174379",
        "transaction_type": "CustomerPayBillOnline",
        "daraja_environment": "sandbox",
        "callback_token_hash": _hash(f"tok_{n}"),
        "created_at": T0,
        "updated_at": T0,
    }
    fields.update(overrides)
    return Payment(**fields)  # type: ignore[arg-type]


async def _seed(db: Database, *payments: Payment) -> None:
    async with db.write() as uow:
        await uow.projects.add(Project(id="prj_01persist", name="Shop", created_at=T0))
        for payment in payments:
            await uow.payments.add(payment)


async def _current(db: Database, payment_id: str) -> Payment:
    async with db.read() as uow:
        payment = await uow.payments.find(payment_id)
    assert payment is not None
    return payment


async def test_lock_by_callback_tokens_returns_the_payments_by_token(database: Database) -> None:
    one, two = _payment(1), _payment(2)
    await _seed(database, one, two)

    async with database.write() as uow:
        found = await uow.payments.lock_by_callback_tokens([_hash("tok_2"), _hash("tok_1"), _hash("tok_x")])

    assert {token: payment.id for token, payment in found.items()} == {
        _hash("tok_1"): one.id,
        _hash("tok_2"): two.id,
    }


async def test_adopt_daraja_ids_fills_what_the_push_answer_brings(database: Database) -> None:
    await _seed(database, _payment(1))
    at = T0 + timedelta(seconds=2)

    async with database.write() as uow:
        adopted = await uow.payments.adopt_daraja_ids("pay_01persist0001", "m-push", "ws_CO_push", at)

    assert adopted is not None
    assert (adopted.merchant_request_id, adopted.checkout_request_id, adopted.updated_at) == (
        "m-push",
        "ws_CO_push",
        at,
    )
    stored = await _current(database, "pay_01persist0001")
    assert (stored.merchant_request_id, stored.checkout_request_id) == ("m-push", "ws_CO_push")
    assert stored.status is PaymentStatus.PENDING


async def test_adopt_daraja_ids_of_no_payment_is_none(database: Database) -> None:
    async with database.write() as uow:
        assert await uow.payments.adopt_daraja_ids("pay_01nobody", "m", "ws_CO", T0) is None


async def test_a_callback_applied_before_the_push_answer_keeps_its_ids_and_status(database: Database) -> None:
    """The callback can land (and be applied) before `_after_push` records Daraja's answer: the
    answer then fills nothing in and changes no status."""
    await _seed(database, _payment(1))
    callback = InboundCallback(
        id="cb_01persist0001",
        kind="stk",
        received_at=T0 + timedelta(seconds=5),
        body=success_body("ws_CO_from_callback", amount=500.0),
        token_hash=_hash("tok_1"),
    )
    async with database.write() as uow:
        await uow.callbacks.add_many([callback])
    async with database.write() as uow:
        [locked] = await uow.callbacks.lock_many([callback.id])
        await StkHandler(ReconcilePolicy()).apply(uow, [locked], T0 + timedelta(seconds=6))

    service = PaymentService(
        database,
        daraja=None,  # type: ignore[arg-type]
        projects=None,  # type: ignore[arg-type]
        clock=ManualClock(T0 + timedelta(seconds=7)),
        callback_url=lambda token: token,
    )
    answered = await service._after_push(
        "pay_01persist0001", accepted=PushAccepted(merchant_request_id="m-late", checkout_request_id="ws_CO_late")
    )

    for payment in (answered, await _current(database, "pay_01persist0001")):
        assert payment.checkout_request_id == "ws_CO_from_callback"
        assert payment.merchant_request_id == "29115-34620561-1"
        assert payment.status is PaymentStatus.SUCCEEDED
        assert payment.evidence is Evidence.CALLBACK
        assert payment.mpesa_receipt_number == "SKL4X9Q2ZB"


@pytest.mark.parametrize("verb", ["payments.add", "projects.add", "callbacks.add_many", "events.add"])
async def test_a_read_unit_of_work_has_no_write_verbs(database: Database, verb: str) -> None:
    payment = _payment(1)
    await _seed(database)
    callback = InboundCallback(id="cb_01readonly", kind="stk", received_at=T0, body=b"{}", token_hash="x")
    with pytest.raises(AttributeError):
        async with database.read() as uow:
            if verb == "payments.add":
                await uow.payments.add(payment)  # type: ignore[attr-defined]
            elif verb == "projects.add":
                await uow.projects.add(Project(id="prj_01other", name="Other", created_at=T0))  # type: ignore[attr-defined]
            elif verb == "callbacks.add_many":
                await uow.callbacks.add_many([callback])  # type: ignore[attr-defined]
            else:
                await write_event(uow, payment, EventType.CREATED, T0)  # type: ignore[arg-type]

    async with database.read() as uow:
        assert await uow.payments.find(payment.id) is None
        assert await uow.projects.get("prj_01other") is None
        assert await uow.events.for_payment(payment.id) == []


@pytest.mark.parametrize("statement", ["insert", "update", "delete"])
async def test_the_database_refuses_a_write_inside_a_read_unit_of_work(database: Database, statement: str) -> None:
    """Past the types: SQL written on a reader's own connection fails (PostgreSQL: a READ ONLY
    transaction; SQLite: `query_only` reader connections) and changes nothing."""
    await _seed(database, _payment(1))
    payments = tables.payments
    sql = {
        "insert": sa.insert(tables.projects).values(id="prj_01other", name="Other", created_at=T0),
        "update": sa.update(payments).where(payments.c.id == "pay_01persist0001").values(amount=1),
        "delete": sa.delete(payments).where(payments.c.id == "pay_01persist0001"),
    }[statement]
    with pytest.raises(sa.exc.DBAPIError, match=r"(?i)read-only|readonly"):
        async with database.read() as uow:
            await uow.connection.execute(sql)

    payment = await _current(database, "pay_01persist0001")
    assert payment.amount == 500


async def test_a_change_that_is_not_saved_is_not_written(database: Database) -> None:
    await _seed(database, _payment(1))
    async with database.write() as uow:
        payment = await uow.payments.lock("pay_01persist0001")
        assert payment is not None
        payment.status = PaymentStatus.SUCCEEDED  # and no save

    assert (await _current(database, "pay_01persist0001")).status is PaymentStatus.PENDING


async def test_save_writes_the_changed_columns_only_and_nothing_when_none_changed(database: Database) -> None:
    await _seed(database, _payment(1), _payment(2))
    with Statements(database.write_engine) as statements:
        async with database.write() as uow:
            one, two = await uow.payments.lock_many(["pay_01persist0001", "pay_01persist0002"])
            await uow.payments.save(two)  # unchanged: no statement
            one.needs_attention, one.attention_reason = True, "late_success"
            await uow.payments.save(one)
            await uow.payments.save(one)  # saved already: nothing more to write

    [(update, _)] = statements.starting("UPDATE payments")
    assert "needs_attention" in update and "attention_reason" in update
    assert "status" not in update.split(" WHERE ")[0] and "amount" not in update
    stored = await _current(database, "pay_01persist0001")
    assert (stored.needs_attention, stored.attention_reason) == (True, "late_success")


async def test_a_batch_of_saves_with_the_same_changes_is_one_batched_update(database: Database) -> None:
    payments = [_payment(n) for n in range(1, 6)]
    await _seed(database, *payments)
    with Statements(database.write_engine) as statements:
        async with database.write() as uow:
            locked = await uow.payments.lock_many([p.id for p in payments])
            for payment in locked:
                payment.next_query_at = T0 + timedelta(minutes=1)
            await uow.payments.save_many(locked)

    updates = statements.starting("UPDATE payments")
    assert len(updates) == 1 and updates[0][1] is True  # one executemany
    for payment in payments:
        assert (await _current(database, payment.id)).next_query_at == T0 + timedelta(minutes=1)


async def test_events_and_evidence_are_written_as_one_insert_each_at_commit(database: Database) -> None:
    payments = [_payment(n) for n in range(1, 4)]
    await _seed(database, *payments)
    with Statements(database.write_engine) as statements:
        async with database.write() as uow:
            for payment in payments:
                await write_event(uow, payment, EventType.CREATED, T0)
                await uow.evidence.add(
                    PaymentEvidence(
                        id=f"evd_{payment.id}", payment_id=payment.id, source="push", created_at=T0, verdict="apply"
                    )
                )
            assert statements.starting("INSERT INTO outbox_events") == []  # nothing before the commit

    assert len(statements.starting("INSERT INTO outbox_events")) == 1
    assert len(statements.starting("INSERT INTO payment_evidence")) == 1
    async with database.read() as uow:
        for payment in payments:
            assert [e.type for e in await uow.events.for_payment(payment.id)] == [EventType.CREATED]
            assert [e.id for e in await uow.evidence.for_payment(payment.id)] == [f"evd_{payment.id}"]


async def test_events_added_are_seen_by_a_read_in_the_same_unit_of_work(database: Database) -> None:
    await _seed(database, _payment(1))
    async with database.write() as uow:
        await write_event(uow, _payment(1), EventType.CREATED, T0)
        assert [e.type for e in await uow.events.for_payment("pay_01persist0001")] == [EventType.CREATED]


async def test_the_commit_listeners_hear_of_the_events_once_committed_and_never_after_a_rollback(
    database: Database,
) -> None:
    await _seed(database, _payment(1), _payment(2))
    heard: list[list[str]] = []
    database.on_commit(lambda events: heard.append([e.subject_id or "" for e in events]))

    with pytest.raises(RuntimeError):
        async with database.write() as uow:
            await write_event(uow, _payment(1), EventType.CREATED, T0)
            raise RuntimeError("rolled back")
    async with database.write() as uow:
        await write_event(uow, _payment(2), EventType.CREATED, T0)

    assert heard == [["pay_01persist0002"]]
