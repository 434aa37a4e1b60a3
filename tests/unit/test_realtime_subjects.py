"""Events keyed by subject: Socket.IO names and rooms, stream scopes (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime

from mpesa_bridge.core.payments.entity import PAYMENT, OutboxEvent, Subject
from mpesa_bridge.realtime.bus import Notice, Scope
from mpesa_bridge.realtime.socketio import emits_for, payment_room, rooms_for

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def event(subject_type: str | None, subject_id: str | None) -> OutboxEvent:
    data = {"object": {"id": subject_id}}
    return OutboxEvent("evt_1", "proj_1", "test", "x.y", subject_type, subject_id, data, T0)


def test_a_payment_event_keeps_its_room_and_socket_names() -> None:
    payment = event(PAYMENT, "pay_1")

    assert rooms_for(payment) == ["tenant:proj_1:test", "payment:pay_1"]
    assert payment_room("pay_1") == "payment:pay_1"
    assert [name for name, _ in emits_for(payment)] == ["payment.updated", "transaction:pay_1", "transaction-updated"]
    assert emits_for(payment)[1][1] == {"id": "pay_1"}


def test_another_subject_type_gets_its_own_room_and_no_payment_names() -> None:
    payout = event("payout", "po_1")

    assert rooms_for(payout) == ["tenant:proj_1:test", "payout:po_1"]
    assert [name for name, _ in emits_for(payout)] == ["payout.updated"]


def test_an_event_about_no_subject_is_not_emitted() -> None:
    assert emits_for(event(None, None)) == []


def test_a_subject_scope_covers_its_subject_only() -> None:
    scope = Scope("proj_1", "test", Subject(PAYMENT, "pay_1"))

    assert scope.covers(Notice.of(event(PAYMENT, "pay_1")))
    assert not scope.covers(Notice.of(event("payout", "pay_1")))  # same id, another type
    assert not scope.covers(Notice.of(event(None, None)))
    assert Scope("proj_1", "test").covers(Notice.of(event(None, None)))


def test_a_subject_is_known_by_its_id_prefix() -> None:
    assert Subject.of_id("pay_01abc") == Subject(PAYMENT, "pay_01abc")
    assert Subject.of_id("po_1") == Subject("payout", "po_1")  # core/payouts registered its prefix
    assert Subject.of_id("tsq_1") == Subject("transaction_status_query", "tsq_1")
    assert Subject.of_id("zz_1") is None
    assert Subject.of_id("pay") is None
    assert Subject.of_id("") is None
