"""Payouts (every member reads; developers and owners send, approve and reject).

    GET  /dashboard/payouts                 the project mode's payouts, newest first; the send form
    POST /dashboard/payouts                 send a payout (or hold it for approval)
    GET  /dashboard/payouts/{id}            one payout: its facts, who created and approved it, the approval step
    POST /dashboard/payouts/{id}/approve    approve and send it: never by the person who created it
    POST /dashboard/payouts/{id}/reject     reject it: never sent

Everything goes through the service the API uses (`runtime.payouts`) and the API's validation; the
actor is the person (`person:<id>`), so a payout a person created needs another person — or an API
key — to approve it. Every change is recorded in the audit trail.

The send form carries a token made when the page was drawn, used as the payout's Idempotency-Key
(scope `dashboard-payout:<project>:<mode>`, bound in the payout's own transaction): a double click,
a resent form or a retry after a lost answer shows the payout the first submission made and never
sends a second.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mpesa_bridge.core.errors import BridgeError, InvalidRequest
from mpesa_bridge.core.ids import new_token
from mpesa_bridge.core.payouts.entity import Payout, actor_of_person
from mpesa_bridge.core.payouts.ports import PayoutFilter
from mpesa_bridge.core.payouts.status import PayoutStatus
from mpesa_bridge.core.payouts.validation import COMMAND_IDS, validate_payout_create
from mpesa_bridge.core.people.entity import Role
from mpesa_bridge.core.ports import IdempotencyBinding
from mpesa_bridge.core.sealing import idempotency_context, idempotency_secret_context
from mpesa_bridge.dashboard.auth import Viewer, page, runtime_of
from mpesa_bridge.dashboard.i18n import translator
from mpesa_bridge.dashboard.web import language_of, render
from mpesa_bridge.storage import idempotency

router = APIRouter()
ViewerDep = Annotated[Viewer, Depends(page())]
DeveloperDep = Annotated[Viewer, Depends(page(Role.DEVELOPER))]
PAGE = 25
NOTICES = {
    "sent": "The payout was sent. Its outcome appears here when Daraja answers.",
    "held": "The payout waits for approval by another person.",
    "approved": "Approved and sent.",
    "rejected": "Rejected: it will not be sent.",
}
FORM_SCOPE = "dashboard-payout"
_SUBMISSION = re.compile(r"[A-Za-z0-9_-]{16,64}")
STALE_FORM = "This form was already used for another payout, or is out of date: check the list, then send again."
BEING_SENT = "This payout is being sent already: it appears in the list below."
FIELD_MESSAGES = {
    "phone": "Enter a Kenyan M-Pesa number, such as 0712 345 678.",
    "amount": "Enter a whole number of shillings, from 10 to 250,000.",
    "command_id": "Choose the kind of payment.",
    "remarks": "Remarks are 2 to 100 characters.",
    "occasion": "At most 100 characters.",
    "*": "This value is not accepted.",
}


def _actor(viewer: Viewer) -> str:
    return actor_of_person(viewer.user.id)


def _blank() -> dict[str, str]:
    return {"phone": "", "amount": "", "command_id": "BusinessPayment", "remarks": "", "occasion": ""}


async def _record(request: Request, viewer: Viewer, action: str, target: str, detail: str | None = None) -> None:
    await runtime_of(request).people.record(
        viewer.identity, action, viewer.tenant.project_id, target=target, detail=detail
    )


def _may_decide(viewer: Viewer, payout: Payout) -> bool:
    return (
        viewer.can(Role.DEVELOPER)
        and payout.status is PayoutStatus.PENDING_APPROVAL
        and payout.created_by != _actor(viewer)
    )


async def _list_page(
    request: Request,
    viewer: Viewer,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    problem: str | None = None,
    status: int = 200,
) -> Response:
    runtime = runtime_of(request)
    after = request.query_params.get("after") or None
    rows = list(await runtime.payouts.list(viewer.tenant, PayoutFilter(None, after, PAGE)))
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    rules, _ = await runtime.payouts.rules(viewer.tenant)
    context: dict[str, Any] = {
        "payouts": [{"payout": p, "may_decide": _may_decide(viewer, p)} for p in rows],
        "next_url": f"/dashboard/payouts?after={rows[-1].id}" if more and rows else None,
        "first_url": "/dashboard/payouts" if after else None,
        "errors": errors or {},
        "values": values or _blank(),
        "commands": COMMAND_IDS,
        "rules": rules,
        "notice": NOTICES.get(request.query_params.get("done", "")),
        "problem": problem,
        "can_change": viewer.can(Role.DEVELOPER),
        "submission": new_token(),  # the send form's Idempotency-Key (module docstring)
    }
    return render(request, "payouts.html", context, status=status)


@router.get("/payouts")
async def payouts_page(request: Request, viewer: ViewerDep) -> Response:
    return await _list_page(request, viewer)


@router.post("/payouts")
async def create_payout(request: Request, viewer: DeveloperDep) -> Response:
    runtime = runtime_of(request)
    form = await request.form()
    typed = {k: str(form.get(k, "")).strip() for k in _blank()}
    t = translator(language_of(request))
    amount: object = int(typed["amount"]) if typed["amount"].isdigit() else typed["amount"]
    try:
        asked = validate_payout_create(
            phone=typed["phone"],
            amount=amount,
            command_id=typed["command_id"],
            remarks=typed["remarks"] or None,
            occasion=typed["occasion"] or None,
            metadata=None,
            limits=runtime.limits,
        )
    except InvalidRequest as exc:
        field = exc.param if exc.param in FIELD_MESSAGES else "*"
        errors = {exc.param or "phone": t(FIELD_MESSAGES[field])}
        return await _list_page(request, viewer, errors=errors, values=typed, status=400)
    submission = str(form.get("submission", ""))
    if not _SUBMISSION.fullmatch(submission):
        return await _list_page(request, viewer, values=typed, problem=t(STALE_FORM), status=409)
    scope = f"{FORM_SCOPE}:{viewer.tenant.project_id}:{viewer.tenant.mode.value}"
    asked_hash = hashlib.sha256(json.dumps([_actor(viewer), typed], sort_keys=True).encode()).hexdigest()
    now = runtime.clock.now()
    settings = runtime.settings
    claim = await idempotency.claim(
        runtime.db,
        scope,
        submission,
        asked_hash,
        now,
        ttl=settings.idempotency_ttl,
        lock_timeout=settings.idempotency_lock_timeout,
    )
    if claim.outcome == "replay":
        made = runtime.box.open((claim.body or b"").decode(), context=idempotency_context(scope, submission))
        return RedirectResponse(f"/dashboard/payouts/{made}", status_code=303)
    if claim.outcome in ("reused", "in_progress"):
        problem = t(STALE_FORM) if claim.outcome == "reused" else t(BEING_SENT)
        return await _list_page(request, viewer, values=typed, problem=problem, status=409)
    owner = claim.owner or ""
    if claim.outcome == "recover":  # the first submission created it and died before answering
        return await _answered(runtime, scope, submission, owner, claim.resource_id or "")
    binding = IdempotencyBinding(
        scope,
        submission,
        owner,
        seal=lambda text: runtime.box.seal(text, context=idempotency_secret_context(scope, submission)),
    )
    try:
        payout = await runtime.payouts.create(viewer.tenant, _actor(viewer), asked, binding)
    except BridgeError as exc:  # a limit, or the mode's Daraja settings
        await idempotency.release(runtime.db, scope, submission, owner)
        return await _list_page(request, viewer, values=typed, problem=exc.message, status=422)
    except BaseException:
        await idempotency.release(runtime.db, scope, submission, owner)
        raise
    await _record(request, viewer, "payout.created", payout.id, f"{payout.amount}")
    done = "held" if payout.status is PayoutStatus.PENDING_APPROVAL else "sent"
    return await _answered(runtime, scope, submission, owner, payout.id, done)


async def _answered(runtime: Any, scope: str, key: str, owner: str, payout_id: str, done: str = "") -> Response:
    """Remember the answer under the form's key (sealed, as the API's answers are), then show it."""
    sealed = runtime.box.seal(payout_id, context=idempotency_context(scope, key)).encode()
    await idempotency.complete(runtime.db, scope, key, owner, 303, sealed)
    query = f"?done={done}" if done else ""
    return RedirectResponse(f"/dashboard/payouts/{payout_id}{query}", status_code=303)


@router.get("/payouts/{payout_id}")
async def payout_page(request: Request, viewer: ViewerDep, payout_id: str) -> Response:
    payout = await runtime_of(request).payouts.get(viewer.tenant, payout_id)
    return _detail(request, viewer, payout)


def _detail(
    request: Request, viewer: Viewer, payout: Payout, problem: str | None = None, status: int = 200
) -> Response:
    context = {
        "payout": payout,
        "may_decide": _may_decide(viewer, payout),
        "own": payout.created_by == _actor(viewer),
        "notice": NOTICES.get(request.query_params.get("done", "")),
        "problem": problem,
    }
    return render(request, "payout.html", context, status=status)


@router.post("/payouts/{payout_id}/approve")
async def approve_payout(request: Request, viewer: DeveloperDep, payout_id: str) -> Response:
    runtime = runtime_of(request)
    try:
        payout = await runtime.payouts.approve(viewer.tenant, payout_id, _actor(viewer))
    except BridgeError as exc:
        if exc.code == "resource_missing":
            raise
        held = await runtime.payouts.get(viewer.tenant, payout_id)
        return _detail(
            request, viewer, held, problem=exc.message, status=403 if exc.code == "approver_is_creator" else 409
        )
    await _record(request, viewer, "payout.approved", payout.id)
    return RedirectResponse(f"/dashboard/payouts/{payout.id}?done=approved", status_code=303)


@router.post("/payouts/{payout_id}/reject")
async def reject_payout(request: Request, viewer: DeveloperDep, payout_id: str) -> Response:
    runtime = runtime_of(request)
    form = await request.form()
    reason = str(form.get("reason", "")).strip() or None
    try:
        payout = await runtime.payouts.reject(viewer.tenant, payout_id, _actor(viewer), reason)
    except BridgeError as exc:
        if exc.code == "resource_missing":
            raise
        held = await runtime.payouts.get(viewer.tenant, payout_id)
        return _detail(request, viewer, held, problem=exc.message, status=409)
    await _record(request, viewer, "payout.rejected", payout.id, reason)
    return RedirectResponse(f"/dashboard/payouts/{payout.id}?done=rejected", status_code=303)
