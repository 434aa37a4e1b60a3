"""One payment: a timeline of everything that happened to it, and "ask Daraja now".

GET  /dashboard/payments/{id}           created, pushed, Daraja's answer, every callback as it arrived,
                                        every STK Query and evidence row with its verdict, every event and
                                        every webhook delivery attempt with its response; the checkout
                                        session that started it (its QR code: pages/links.py) and its link
POST /dashboard/payments/{id}/refresh   developer: STK Query now (PaymentService.refresh)
POST /dashboard/payments/{id}/reverse   developer: reverse a succeeded payment, once confirmed (ReversalService.create)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mpesa_bridge.core.errors import BridgeError
from mpesa_bridge.core.payments.history import PaymentHistory, payment_history
from mpesa_bridge.core.payments.status import PaymentStatus
from mpesa_bridge.core.people.entity import Role
from mpesa_bridge.core.phone import mask_phone
from mpesa_bridge.core.reversals.entity import BLOCKING_STATUSES
from mpesa_bridge.dashboard.auth import Viewer, page, runtime_of
from mpesa_bridge.dashboard.web import render

router = APIRouter()
ViewerDep = Annotated[Viewer, Depends(page())]
DeveloperDep = Annotated[Viewer, Depends(page(Role.DEVELOPER))]
RAW_LIMIT = 20_000  # characters of a raw callback shown


@dataclass
class Entry:
    at: datetime
    kind: str  # created | pushed | evidence | callback | event | completed
    title: str
    facts: dict[str, Any] = field(default_factory=dict)
    raw: str | None = None
    deliveries: list[dict[str, Any]] = field(default_factory=list)


def _pretty(body: bytes, limit: int = RAW_LIMIT) -> str:
    try:
        text = json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        text = body.decode("utf-8", errors="replace")
    return text if len(text) <= limit else text[:limit] + "\n…"


def timeline(history: PaymentHistory, *, full: bool) -> list[Entry]:
    """The history in time order. `full`: developers see raw callbacks and whole phone numbers."""
    p = history.payment
    phone = p.phone if full else mask_phone(p.phone)
    entries = [
        Entry(
            p.created_at,
            "created",
            "Created",
            {"Amount": f"KES {p.amount:,}", "Phone": phone, "Reference": p.account_reference},
        )
    ]
    if p.checkout_request_id is not None:  # Daraja accepted the push (a refused push is an evidence row)
        daraja = {"CheckoutRequestID": p.checkout_request_id, "MerchantRequestID": p.merchant_request_id}
        entries.append(Entry(p.created_at, "pushed", "Sent to Daraja: accepted, the prompt is on the phone", daraja))
    for e in history.evidence:
        facts = {"Verdict": e.verdict, "Result code": e.result_code, "Result": e.result_desc, "Note": e.note}
        entries.append(Entry(e.created_at, "evidence", f"evidence.{e.source}", {k: v for k, v in facts.items() if v}))
    for c in history.callbacks:
        attempts = str(c.attempts) if c.attempts else None
        facts = {"State": c.state, "Flag": c.flag_reason, "From": c.source_ip, "Attempts": attempts}
        raw = _pretty(c.body) if full else None
        entries.append(
            Entry(c.received_at, "callback", f"callback.{c.kind}", {k: v for k, v in facts.items() if v}, raw)
        )
    for ev in history.events:
        entries.append(Entry(ev.created_at, "event", ev.type, {"Event": ev.id}))
    if p.completed_at is not None:
        entries.append(Entry(p.completed_at, "completed", "Final", {"Status": p.status.value}))
    return sorted(
        entries,
        key=lambda entry: (
            entry.at,
            ("created", "pushed", "evidence", "callback", "event", "completed").index(entry.kind),
        ),
    )


@router.get("/payments/{payment_id}")
async def payment_page(request: Request, viewer: ViewerDep, payment_id: str) -> Response:
    runtime = runtime_of(request)
    history = await payment_history(runtime.db, viewer.tenant, payment_id)
    full = viewer.can(Role.DEVELOPER)
    entries = timeline(history, full=full)
    for entry in entries:
        if entry.kind == "event":
            detail = await runtime.events.get(viewer.tenant, entry.facts["Event"])
            entry.deliveries = [{"delivery": d, "attempts": attempts} for d, attempts in detail.deliveries]
    session = None
    if history.payment.checkout_session_id is not None:
        session = await runtime.checkout.get(viewer.tenant, history.payment.checkout_session_id)
    reversals = list(reversed(await runtime.reversals.for_payment(payment_id)))  # newest first
    reversible = (
        history.payment.status is PaymentStatus.SUCCEEDED
        and bool(history.payment.mpesa_receipt_number)
        and not any(r.status in BLOCKING_STATUSES for r in reversals)
    )
    context = {
        "p": history.payment,
        "entries": entries,
        "full": full,
        "refreshed": request.query_params.get("asked"),
        "session": session,
        "reversals": reversals,
        "reversible": reversible,
        "reversal_asked": request.query_params.get("reversal"),
        "reversal_error": request.query_params.get("reversal_error"),
    }
    return render(request, "payment.html", context)


@router.post("/payments/{payment_id}/reverse")
async def reverse(request: Request, viewer: DeveloperDep, payment_id: str) -> Response:
    """Send Daraja a Reversal of the whole amount, only when the confirmation box was ticked."""
    runtime = runtime_of(request)
    form = await request.form()
    if form.get("confirm") != "yes":
        return RedirectResponse(f"/dashboard/payments/{payment_id}?reversal_error=not_confirmed", status_code=303)
    try:
        reversal = await runtime.reversals.create(viewer.tenant, payment_id, "Reversed from the dashboard")
    except BridgeError as exc:
        return RedirectResponse(f"/dashboard/payments/{payment_id}?reversal_error={exc.code}", status_code=303)
    await runtime.people.record(
        viewer.identity, "payment.reversal_sent", viewer.tenant.project_id, target=payment_id, detail=reversal.id
    )
    return RedirectResponse(f"/dashboard/payments/{payment_id}?reversal=1", status_code=303)


@router.post("/payments/{payment_id}/refresh")
async def refresh(request: Request, viewer: DeveloperDep, payment_id: str) -> Response:
    runtime = runtime_of(request)
    payment = await runtime.payments.refresh(viewer.tenant, payment_id)
    await runtime.people.record(
        viewer.identity, "payment.queried", viewer.tenant.project_id, target=payment.id, detail=payment.status.value
    )
    return RedirectResponse(f"/dashboard/payments/{payment.id}?asked=1", status_code=303)
