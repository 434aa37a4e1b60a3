"""The Python SDK's models: typed fields from the API's JSON, aware UTC datetimes, nested objects,
unknown fields kept in `raw`."""

from __future__ import annotations

from datetime import UTC, datetime

from mpesa_bridge_sdk import ApiKey, CheckoutSession, Event, Payment


def test_a_payment_parses_times_and_keeps_unknown_fields() -> None:
    payment = Payment.from_dict(
        {
            "id": "pay_1",
            "status": "succeeded",
            "amount": 10,
            "created_at": "2026-11-26T06:53:43.434858Z",
            "transaction_date": "2026-11-26T06:53:50Z",
            "completed_at": None,
            "added_by_a_newer_bridge": 1,
        }
    )
    assert payment.created_at == datetime(2026, 11, 26, 6, 53, 43, 434858, tzinfo=UTC)
    assert payment.transaction_date is not None and payment.transaction_date.tzinfo is not None
    assert payment.completed_at is None and payment.is_final
    assert payment.raw["added_by_a_newer_bridge"] == 1
    assert not Payment.from_dict({"id": "pay_2", "status": "unknown"}).is_final


def test_nested_objects_become_models() -> None:
    session = CheckoutSession.from_dict(
        {"id": "cs_1", "status": "open", "payment": {"id": "pay_1", "status": "failed", "amount": 5}}
    )
    assert session.payment is not None and session.payment.is_final and session.payment.amount == 5
    event = Event.from_dict(
        {
            "id": "evt_1",
            "type": "payment.succeeded",
            "created": "2026-01-01T00:00:00Z",
            "data": {"object": {"id": "pay_1"}},
            "deliveries": [{"id": "whd_1", "attempts": [{"id": "att_1", "status_code": 204}]}],
        }
    )
    assert event.created == datetime(2026, 1, 1, tzinfo=UTC) and event.subject == {"id": "pay_1"}
    assert event.deliveries is not None and event.deliveries[0].attempts[0].status_code == 204
    key = ApiKey.from_dict({"id": "key_2", "previous_key": {"id": "key_1", "expires_at": "2026-01-01T00:00:00Z"}})
    assert key.previous_key is not None and key.previous_key.expires_at == datetime(2026, 1, 1, tzinfo=UTC)
