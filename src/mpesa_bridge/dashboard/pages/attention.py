"""The attention queue: what a person should look at (viewers read it; developers act).

    GET  /dashboard/attention                          flagged payments and callbacks, with what the bridge knows
    POST /dashboard/attention/payments/{id}/refresh    ask Daraja now (STK Query)
    POST /dashboard/attention/payments/{id}/review     mark reviewed, with a note
    POST /dashboard/attention/callbacks/{id}/review    mark a flagged or failed callback reviewed

A payment is flagged `needs_attention` by the evidence rules (a late success after expiry,
callbacks that contradict each other, an `unknown` outcome); a callback by the inbox (`flagged`, or
`failed` once its handler gave up). Marking reviewed takes the item out of the queue; its history
(an evidence row with who and the note) stays on the payment. Every action is in the audit trail.
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mpesa_bridge.core.errors import InvalidRequest
from mpesa_bridge.core.payments.entity import InboundCallback
from mpesa_bridge.core.payments.review import MAX_NOTE, ReviewService
from mpesa_bridge.core.people.entity import Role
from mpesa_bridge.core.phone import mask_phone
from mpesa_bridge.dashboard.auth import Viewer, page, runtime_of
from mpesa_bridge.dashboard.pages.access import form_of
from mpesa_bridge.dashboard.web import render
from mpesa_bridge.storage.attention import AttentionQueue

router = APIRouter()
ViewerDep = Annotated[Viewer, Depends(page(Role.VIEWER))]
DeveloperDep = Annotated[Viewer, Depends(page(Role.DEVELOPER))]
QUEUE_LIMIT = 100
RAW_LIMIT = 4000  # characters of a raw callback shown
# As the logs mask them (logging.py): phone numbers, and the payer's digits that end a CheckoutRequestID.
_MSISDN = re.compile(r"(?<![0-9])(?:(?:00)?254|0)([17][0-9]{8})(?![0-9])")
_CHECKOUT = re.compile(r"\b(ws_CO_[0-9]*?)([0-9]{5})([0-9]{4})\b")


def _reviews(request: Request) -> ReviewService:
    runtime = runtime_of(request)
    return ReviewService(runtime.db, runtime.clock)


def raw_body(callback: InboundCallback) -> str:
    """The callback as it arrived, pretty-printed when it is JSON, phone numbers masked, bounded."""
    text = callback.body.decode("utf-8", errors="replace")
    with contextlib.suppress(ValueError):  # not JSON: shown as it came
        text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    text = _CHECKOUT.sub(lambda m: f"{m.group(1)}*****{m.group(3)}", text)
    text = _MSISDN.sub(lambda m: mask_phone("254" + m.group(1)), text)
    return text if len(text) <= RAW_LIMIT else text[:RAW_LIMIT] + "\n…"


async def _queue(request: Request, viewer: Viewer, errors: dict[str, str] | None = None, status: int = 200) -> Response:
    runtime = runtime_of(request)
    reviews = _reviews(request)
    payments = await AttentionQueue(runtime.db).payments(viewer.tenant, QUEUE_LIMIT)
    known = await reviews.what_we_know([p.id for p in payments])
    callbacks = await reviews.flagged_callbacks(viewer.tenant, QUEUE_LIMIT)
    context: dict[str, Any] = {
        "payments": payments,
        "known": known,
        "callbacks": callbacks,
        "raw": raw_body,
        "may_act": viewer.can(Role.DEVELOPER),
        "max_note": MAX_NOTE,
        "errors": errors or {},
        "notice": request.query_params.get("notice"),
    }
    return render(request, "attention.html", context, status=status)


@router.get("/attention")
async def attention_page(request: Request, viewer: ViewerDep) -> Response:
    return await _queue(request, viewer)


async def _record(request: Request, viewer: Viewer, action: str, target: str, detail: str | None = None) -> None:
    project_id = viewer.project.id if viewer.project else None
    await runtime_of(request).people.record(viewer.identity, action, project_id, target=target, detail=detail)


@router.post("/attention/payments/{payment_id}/refresh")
async def ask_daraja(request: Request, viewer: DeveloperDep, payment_id: str) -> Response:
    payment = await runtime_of(request).payments.refresh(viewer.tenant, payment_id)
    await _record(request, viewer, "payment.refreshed", payment.id, payment.status.value)
    return RedirectResponse(f"/dashboard/attention?notice=asked#{payment.id}", status_code=303)


@router.post("/attention/payments/{payment_id}/review")
async def review_payment(request: Request, viewer: DeveloperDep, payment_id: str) -> Response:
    note = (await form_of(request)).get("note", "")
    try:
        await _reviews(request).review_payment(viewer.tenant, payment_id, note, viewer.user.email)
    except InvalidRequest as exc:
        return await _queue(request, viewer, {payment_id: str(exc)}, status=400)
    await _record(request, viewer, "payment.reviewed", payment_id, note)
    return RedirectResponse("/dashboard/attention?notice=reviewed", status_code=303)


@router.post("/attention/callbacks/{callback_id}/review")
async def review_callback(request: Request, viewer: DeveloperDep, callback_id: str) -> Response:
    note = (await form_of(request)).get("note", "")
    try:
        await _reviews(request).review_callback(viewer.tenant, callback_id, note, viewer.user.email)
    except InvalidRequest as exc:
        return await _queue(request, viewer, {callback_id: str(exc)}, status=400)
    await _record(request, viewer, "callback.reviewed", callback_id, note)
    return RedirectResponse("/dashboard/attention?notice=reviewed", status_code=303)
