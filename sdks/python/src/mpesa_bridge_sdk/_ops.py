"""Each API operation as a `Call`: the one place that knows paths, methods and bodies, used by both
the sync and the async client."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mpesa_bridge_sdk._core import Call, drop_none, new_idempotency_key, path_segment

_UNSET: Any = object()
"""A PATCH field left out (None would clear it)."""


def keyed_post(path: str, body: dict[str, Any], idempotency_key: str | None) -> Call:
    """A creating POST with an `Idempotency-Key` (the caller's, or a new one), reused on its retries."""
    return Call("POST", path, body=body, idempotency_key=idempotency_key or new_idempotency_key())


def _patch(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not _UNSET}


def create_payment(
    phone: str,
    amount: int,
    account_reference: str,
    description: str | None,
    metadata: dict[str, Any] | None,
    idempotency_key: str | None,
) -> Call:
    body = drop_none(
        {
            "phone": phone,
            "amount": amount,
            "account_reference": account_reference,
            "description": description,
            "metadata": metadata,
        }
    )
    return keyed_post("/v1/payments", body, idempotency_key)


def get_payment(payment_id: str) -> Call:
    return Call("GET", f"/v1/payments/{path_segment(payment_id)}")


def list_payments(
    status: str | None,
    phone: str | None,
    reference: str | None,
    created_gte: datetime | None,
    created_lte: datetime | None,
    limit: int | None,
    starting_after: str | None,
) -> Call:
    params = {
        "status": status,
        "phone": phone,
        "reference": reference,
        "created_gte": created_gte,
        "created_lte": created_lte,
        "limit": limit,
        "starting_after": starting_after,
    }
    return Call("GET", "/v1/payments", params=params)


def payment_totals(days: int | None, created_gte: datetime | None, created_lte: datetime | None) -> Call:
    return Call(
        "GET", "/v1/payments/totals", params={"days": days, "created_gte": created_gte, "created_lte": created_lte}
    )


def refresh_payment(payment_id: str) -> Call:
    return Call("POST", f"/v1/payments/{path_segment(payment_id)}/refresh")


def payment_evidence(payment_id: str) -> Call:
    return Call("GET", f"/v1/payments/{path_segment(payment_id)}/evidence")


def payment_stream(payment_id: str, last_event_id: str | None) -> Call:
    return Call(
        "GET", f"/v1/payments/{path_segment(payment_id)}/events", params={"last_event_id": last_event_id}, stream=True
    )


def create_checkout_session(fields: dict[str, Any], idempotency_key: str | None) -> Call:
    return keyed_post("/v1/checkout_sessions", drop_none(fields), idempotency_key)


def get_checkout_session(session_id: str, client_secret: str | None) -> Call:
    return Call("GET", f"/v1/checkout_sessions/{path_segment(session_id)}", bearer=client_secret)


def list_checkout_sessions(limit: int | None, starting_after: str | None) -> Call:
    return Call("GET", "/v1/checkout_sessions", params={"limit": limit, "starting_after": starting_after})


def expire_checkout_session(session_id: str) -> Call:
    return Call("POST", f"/v1/checkout_sessions/{path_segment(session_id)}/expire")


def pay_checkout_session(session_id: str, phone: str, amount: int | None, client_secret: str) -> Call:
    body = drop_none({"phone": phone, "amount": amount})
    return Call("POST", f"/v1/checkout_sessions/{path_segment(session_id)}/pay", body=body, bearer=client_secret)


def checkout_session_qr(session_id: str, format: str) -> Call:
    return Call("GET", f"/v1/checkout_sessions/{path_segment(session_id)}/qr", params={"format": format})


def create_payment_link(fields: dict[str, Any], idempotency_key: str | None) -> Call:
    return keyed_post("/v1/payment_links", drop_none(fields), idempotency_key)


def get_payment_link(link_id: str) -> Call:
    return Call("GET", f"/v1/payment_links/{path_segment(link_id)}")


def list_payment_links(limit: int | None, starting_after: str | None) -> Call:
    return Call("GET", "/v1/payment_links", params={"limit": limit, "starting_after": starting_after})


def update_payment_link(link_id: str, fields: dict[str, Any]) -> Call:
    return Call("PATCH", f"/v1/payment_links/{path_segment(link_id)}", body=_patch(fields))


def payment_link_qr(link_id: str, format: str) -> Call:
    return Call("GET", f"/v1/payment_links/{path_segment(link_id)}/qr", params={"format": format})


def create_webhook_endpoint(fields: dict[str, Any], idempotency_key: str | None) -> Call:
    return keyed_post("/v1/webhook_endpoints", drop_none(fields), idempotency_key)


def list_webhook_endpoints() -> Call:
    return Call("GET", "/v1/webhook_endpoints")


def get_webhook_endpoint(endpoint_id: str) -> Call:
    return Call("GET", f"/v1/webhook_endpoints/{path_segment(endpoint_id)}")


def update_webhook_endpoint(endpoint_id: str, fields: dict[str, Any]) -> Call:
    return Call("PATCH", f"/v1/webhook_endpoints/{path_segment(endpoint_id)}", body=_patch(fields))


def delete_webhook_endpoint(endpoint_id: str) -> Call:
    return Call("DELETE", f"/v1/webhook_endpoints/{path_segment(endpoint_id)}")


def rotate_webhook_secret(endpoint_id: str, grace_period_seconds: int | None, idempotency_key: str | None) -> Call:
    return keyed_post(
        f"/v1/webhook_endpoints/{path_segment(endpoint_id)}/rotate_secret",
        drop_none({"grace_period_seconds": grace_period_seconds}),
        idempotency_key,
    )


def list_events(
    type: str | None,
    subject: str | None,
    created_gte: datetime | None,
    created_lte: datetime | None,
    limit: int | None,
    starting_after: str | None,
) -> Call:
    params = {
        "type": type,
        "subject": subject,
        "created_gte": created_gte,
        "created_lte": created_lte,
        "limit": limit,
        "starting_after": starting_after,
    }
    return Call("GET", "/v1/events", params=params)


def get_event(event_id: str) -> Call:
    return Call("GET", f"/v1/events/{path_segment(event_id)}")


def redeliver_event(event_id: str, endpoint_id: str | None, idempotency_key: str | None) -> Call:
    return keyed_post(
        f"/v1/events/{path_segment(event_id)}/redeliver", drop_none({"endpoint_id": endpoint_id}), idempotency_key
    )


def list_keys() -> Call:
    return Call("GET", "/v1/keys")


def rotate_key(grace_period_seconds: int | None, idempotency_key: str | None) -> Call:
    return keyed_post("/v1/keys/rotate", drop_none({"grace_period_seconds": grace_period_seconds}), idempotency_key)


def revoke_key(key_id: str) -> Call:
    return Call("POST", f"/v1/keys/{path_segment(key_id)}/revoke")


def get_project() -> Call:
    return Call("GET", "/v1/project")


def update_project(fields: dict[str, Any]) -> Call:
    return Call("PATCH", "/v1/project", body=_patch(fields))


def rotate_publishable_key() -> Call:
    return Call("POST", "/v1/project/publishable_key/rotate")


def create_qr_code(fields: dict[str, Any]) -> Call:
    return Call("POST", "/v1/qr_codes", body=drop_none(fields))


UNSET = _UNSET


def get_c2b_settings() -> Call:
    return Call("GET", "/v1/c2b/settings")


def update_c2b_settings(fields: dict[str, Any]) -> Call:
    return Call("POST", "/v1/c2b/settings", body=_patch(fields))


def create_c2b_registration(fields: dict[str, Any], idempotency_key: str | None) -> Call:
    return keyed_post("/v1/c2b/registrations", drop_none(fields), idempotency_key)


def list_c2b_registrations() -> Call:
    return Call("GET", "/v1/c2b/registrations")


def list_c2b_payments(status: str | None, reference: str | None, limit: int | None, starting_after: str | None) -> Call:
    params = {"status": status, "reference": reference, "limit": limit, "starting_after": starting_after}
    return Call("GET", "/v1/c2b/payments", params=params)


def get_c2b_payment(payment_id: str) -> Call:
    return Call("GET", f"/v1/c2b/payments/{path_segment(payment_id)}")


def match_c2b_payment(payment_id: str, target_type: str, target_id: str) -> Call:
    body = {"type": target_type, "id": target_id}
    return Call("POST", f"/v1/c2b/payments/{path_segment(payment_id)}/match", body=body)


def dismiss_c2b_payment(payment_id: str, note: str | None) -> Call:
    return Call("POST", f"/v1/c2b/payments/{path_segment(payment_id)}/dismiss", body=drop_none({"note": note}))


def create_expected_payment(fields: dict[str, Any], idempotency_key: str | None) -> Call:
    return keyed_post("/v1/expected_payments", drop_none(fields), idempotency_key)


def get_expected_payment(expected_id: str) -> Call:
    return Call("GET", f"/v1/expected_payments/{path_segment(expected_id)}")


def list_expected_payments(status: str | None, limit: int | None, starting_after: str | None) -> Call:
    return Call(
        "GET", "/v1/expected_payments", params={"status": status, "limit": limit, "starting_after": starting_after}
    )


def cancel_expected_payment(expected_id: str) -> Call:
    return Call("POST", f"/v1/expected_payments/{path_segment(expected_id)}/cancel")


def create_reversal(payment_id: str, remarks: str | None, idempotency_key: str | None) -> Call:
    return keyed_post(
        f"/v1/payments/{path_segment(payment_id)}/reversals", drop_none({"remarks": remarks}), idempotency_key
    )


def get_reversal(reversal_id: str) -> Call:
    return Call("GET", f"/v1/reversals/{path_segment(reversal_id)}")


def list_reversals(payment_id: str | None, limit: int | None, starting_after: str | None) -> Call:
    return Call(
        "GET", "/v1/reversals", params={"payment_id": payment_id, "limit": limit, "starting_after": starting_after}
    )


def create_balance_query(wait: float | None, idempotency_key: str | None) -> Call:
    return keyed_post("/v1/balance_queries", drop_none({"wait": wait}), idempotency_key)


def get_balance_query(query_id: str) -> Call:
    return Call("GET", f"/v1/balance_queries/{path_segment(query_id)}")


def list_balance_queries(limit: int | None, starting_after: str | None) -> Call:
    return Call("GET", "/v1/balance_queries", params={"limit": limit, "starting_after": starting_after})


def create_payout(fields: dict[str, Any], idempotency_key: str | None) -> Call:
    return keyed_post("/v1/payouts", drop_none(fields), idempotency_key)


def get_payout(payout_id: str) -> Call:
    return Call("GET", f"/v1/payouts/{path_segment(payout_id)}")


def list_payouts(status: str | None, limit: int | None, starting_after: str | None) -> Call:
    return Call("GET", "/v1/payouts", params={"status": status, "limit": limit, "starting_after": starting_after})


def approve_payout(payout_id: str) -> Call:
    return Call("POST", f"/v1/payouts/{path_segment(payout_id)}/approve")


def reject_payout(payout_id: str, reason: str | None) -> Call:
    return Call("POST", f"/v1/payouts/{path_segment(payout_id)}/reject", body=drop_none({"reason": reason}))


def payout_settings() -> Call:
    return Call("GET", "/v1/payouts/settings")


def create_transaction_status_query(fields: dict[str, Any], wait: float | None, idempotency_key: str | None) -> Call:
    call = keyed_post("/v1/transaction_status_queries", drop_none(fields), idempotency_key)
    return Call(call.method, call.path, body=call.body, params={"wait": wait}, idempotency_key=call.idempotency_key)


def get_transaction_status_query(query_id: str, wait: float | None) -> Call:
    return Call("GET", f"/v1/transaction_status_queries/{path_segment(query_id)}", params={"wait": wait})


def list_transaction_status_queries(limit: int | None, starting_after: str | None) -> Call:
    return Call("GET", "/v1/transaction_status_queries", params={"limit": limit, "starting_after": starting_after})
