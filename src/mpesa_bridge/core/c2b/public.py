"""C2B resources as the API, the webhooks and the dashboard show them."""

from __future__ import annotations

from typing import Any

from mpesa_bridge.core.c2b.entity import (
    C2BPayment,
    C2BRegistration,
    C2BSettings,
    C2BValidation,
    ExpectedPayment,
    Suggestion,
)


def _at(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def payment_public(p: C2BPayment) -> dict[str, Any]:
    return {
        "id": p.id,
        "object": "c2b_payment",
        "status": p.status.value,
        "trans_id": p.trans_id,
        "transaction_type": p.transaction_type,
        "trans_time": _at(p.trans_time),
        "amount": p.amount,
        "short_code": p.short_code,
        "bill_ref_number": p.bill_ref_number,
        "invoice_number": p.invoice_number,
        "org_account_balance": p.org_account_balance,
        "third_party_trans_id": p.third_party_trans_id,
        "msisdn": p.msisdn,
        "msisdn_kind": p.msisdn_kind,
        "customer_name": p.customer_name,
        "matched": (
            {"type": p.matched_type.value, "id": p.matched_id, "by": p.matched_by, "at": _at(p.matched_at)}
            if p.matched_type is not None
            else None
        ),
        "duplicate_of": p.duplicate_of,
        "note": p.note,
        "created_at": _at(p.created_at),
        "updated_at": _at(p.updated_at),
    }


def suggestion_public(s: Suggestion) -> dict[str, Any]:
    c = s.candidate
    return {
        "type": c.type.value,
        "id": c.id,
        "reference": c.reference,
        "amount": c.amount,
        "amount_min": c.amount_min,
        "amount_max": c.amount_max,
        "score": s.score,
        "reasons": list(s.reasons),
    }


def validation_public(v: C2BValidation) -> dict[str, Any]:
    return {
        "id": v.id,
        "accepted": v.accepted,
        "result_code": v.result_code,
        "decided_by": v.decided_by.value,
        "latency_ms": v.latency_ms,
        "created_at": _at(v.created_at),
    }


def expected_public(e: ExpectedPayment) -> dict[str, Any]:
    return {
        "id": e.id,
        "object": "expected_payment",
        "status": e.status.value,
        "reference": e.reference,
        "amount": e.amount,
        "phone": e.phone,
        "description": e.description,
        "metadata": e.metadata,
        "c2b_payment_id": e.c2b_payment_id,
        "paid_at": _at(e.paid_at),
        "cancelled_at": _at(e.cancelled_at),
        "created_at": _at(e.created_at),
    }


def registration_public(r: C2BRegistration) -> dict[str, Any]:
    return {
        "id": r.id,
        "object": "c2b_registration",
        "short_code": r.short_code,
        "response_type": r.response_type,
        "validation": r.validation,
        "api_version": r.api_version,
        "validation_url": r.validation_url,
        "confirmation_url": r.confirmation_url,
        "status": r.status,
        "created_at": _at(r.created_at),
        "updated_at": _at(r.updated_at),
    }


def settings_public(s: C2BSettings, secret: str | None) -> dict[str, Any]:
    return {
        "object": "c2b_settings",
        "validation_rule": s.validation_rule.value,
        "merchant_url": s.merchant_url,
        "default_action": s.default_action.value,
        "signing_secret": secret,
        "updated_at": _at(s.updated_at),
    }
