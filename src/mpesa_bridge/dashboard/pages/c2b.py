"""C2B: customers' till and paybill payments, and the review queue (docs/c2b.md).

    GET  /dashboard/c2b                           payments (?status=), registrations, validation settings
    POST /dashboard/c2b/registrations             register a short code's URLs with Daraja (developer)
    POST /dashboard/c2b/settings                  the validation rule, merchant URL and default (developer)
    GET  /dashboard/c2b/review                    the unmatched payments, with suggestions
    GET  /dashboard/c2b/{id}                      one payment: what Daraja sent, validation answers, same reference
    POST /dashboard/c2b/{id}/match                match by hand (developer)
    POST /dashboard/c2b/{id}/dismiss              dismiss, with a note (developer)

A customer who paid one account number twice is shown in the review queue, marked as a second
payment; nothing is hidden or merged. Every action is in the audit trail.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mpesa_bridge.core.c2b.entity import C2BStatus, DefaultAction, MatchTarget, ValidationRule
from mpesa_bridge.core.errors import BridgeError
from mpesa_bridge.core.people.entity import Role
from mpesa_bridge.dashboard.auth import Viewer, page, runtime_of
from mpesa_bridge.dashboard.pages.access import form_of
from mpesa_bridge.dashboard.web import render

router = APIRouter()
ViewerDep = Annotated[Viewer, Depends(page(Role.VIEWER))]
DeveloperDep = Annotated[Viewer, Depends(page(Role.DEVELOPER))]
LIST_LIMIT = 100
# The words the pages show for the C2B codes (each translated through t(); Kiswahili in locales/sw/c2b.json).
WORDS = {
    "unmatched": "unmatched",
    "matched": "matched",
    "dismissed": "dismissed",
    "accept_all": "Accept every payment",
    "known_references": "Accept known account numbers only",
    "merchant": "Ask your server",
    "accept": "Accept",
    "reject": "Reject",
    "expected_payment": "Expected payment",
    "checkout_session": "Checkout session",
    "payment_link": "Payment link",
    "same_reference": "same account number",
    "similar_reference": "similar account number",
    "same_amount": "same amount",
    "same_phone": "same phone",
    "auto": "automatically",
    "manual": "by hand",
    "known_account": "known account number",
    "unknown_account": "unknown account number",
    "merchant_late": "your server was late: the default answered",
    "merchant_error": "your server failed: the default answered",
    "validation_off": "validation off",
    "unknown_token": "unknown URL",
    "malformed": "unreadable body",
    "source_refused": "refused source address",
}


def word(code: str) -> str:
    return WORDS.get(code, code)


async def _record(request: Request, viewer: Viewer, action: str, target: str, detail: str | None = None) -> None:
    project_id = viewer.project.id if viewer.project else None
    await runtime_of(request).people.record(viewer.identity, action, project_id, target=target, detail=detail)


async def _list(request: Request, viewer: Viewer, error: str | None = None, status: int = 200) -> Response:
    runtime = runtime_of(request)
    wanted = request.query_params.get("status") or None
    if wanted not in (None, *(s.value for s in C2BStatus)):
        wanted = None
    rows = await runtime.c2b.payments(viewer.tenant, status=wanted, limit=LIST_LIMIT)
    settings, _secret = await runtime.c2b.settings(viewer.tenant)
    context: dict[str, Any] = {
        "payments": rows[:LIST_LIMIT],
        "wanted": wanted,
        "statuses": [s.value for s in C2BStatus],
        "registrations": await runtime.c2b.registrations(viewer.tenant),
        "settings": settings,
        "rules": [r.value for r in ValidationRule],
        "defaults": [d.value for d in DefaultAction],
        "may_act": viewer.can(Role.DEVELOPER),
        "word": word,
        "error": error,
        "notice": request.query_params.get("notice"),
    }
    return render(request, "c2b.html", context, status=status)


@router.get("/c2b")
async def c2b_page(request: Request, viewer: ViewerDep) -> Response:
    return await _list(request, viewer)


@router.post("/c2b/registrations")
async def register_page(request: Request, viewer: DeveloperDep) -> Response:
    form = await form_of(request)
    try:
        registration = await runtime_of(request).c2b.register(
            viewer.tenant,
            short_code=form.get("short_code") or None,
            response_type=form.get("response_type") or "Completed",
            validation=form.get("validation") == "on",
        )
    except BridgeError as exc:
        return await _list(request, viewer, exc.message, status=400)
    await _record(request, viewer, "c2b.registered", registration.short_code)
    return RedirectResponse("/dashboard/c2b?notice=registered", status_code=303)


@router.post("/c2b/settings")
async def settings_page(request: Request, viewer: DeveloperDep) -> Response:
    form = await form_of(request)
    url = form.get("merchant_url", "").strip()
    try:
        await runtime_of(request).c2b.update_settings(
            viewer.tenant,
            validation_rule=form.get("validation_rule") or None,
            merchant_url=url or None,
            clear_merchant_url=not url,
            default_action=form.get("default_action") or None,
        )
    except BridgeError as exc:
        return await _list(request, viewer, exc.message, status=400)
    await _record(request, viewer, "c2b.settings_changed", form.get("validation_rule", ""))
    return RedirectResponse("/dashboard/c2b?notice=saved", status_code=303)


@router.get("/c2b/review")
async def review_page(request: Request, viewer: ViewerDep) -> Response:
    runtime = runtime_of(request)
    rows = await runtime.c2b.payments(viewer.tenant, status=C2BStatus.UNMATCHED.value, limit=LIST_LIMIT)
    items = [await runtime.c2b.payment_details(viewer.tenant, p.id) for p in rows[:LIST_LIMIT]]
    context: dict[str, Any] = {
        "items": items,
        "targets": [t.value for t in MatchTarget],
        "may_act": viewer.can(Role.DEVELOPER),
        "word": word,
        "notice": request.query_params.get("notice"),
        "error": request.query_params.get("error"),
    }
    return render(request, "c2b_review.html", context)


@router.get("/c2b/{payment_id}")
async def detail_page(request: Request, viewer: ViewerDep, payment_id: str) -> Response:
    payment, suggestions, validations, same = await runtime_of(request).c2b.payment_details(viewer.tenant, payment_id)
    context: dict[str, Any] = {
        "p": payment,
        "suggestions": suggestions,
        "validations": validations,
        "same": same,
        "targets": [t.value for t in MatchTarget],
        "may_act": viewer.can(Role.DEVELOPER),
        "word": word,
    }
    return render(request, "c2b_payment.html", context)


@router.post("/c2b/{payment_id}/match")
async def match_page(request: Request, viewer: DeveloperDep, payment_id: str) -> Response:
    form = await form_of(request)
    try:
        await runtime_of(request).c2b.match(viewer.tenant, payment_id, form.get("type", ""), form.get("id", "").strip())
    except BridgeError as exc:
        return RedirectResponse(f"/dashboard/c2b/review?error={exc.code}#{payment_id}", status_code=303)
    await _record(request, viewer, "c2b.matched", payment_id, f"{form.get('type')} {form.get('id')}")
    return RedirectResponse("/dashboard/c2b/review?notice=matched", status_code=303)


@router.post("/c2b/{payment_id}/dismiss")
async def dismiss_page(request: Request, viewer: DeveloperDep, payment_id: str) -> Response:
    note = (await form_of(request)).get("note", "")
    try:
        await runtime_of(request).c2b.dismiss(viewer.tenant, payment_id, note)
    except BridgeError as exc:
        return RedirectResponse(f"/dashboard/c2b/review?error={exc.code}#{payment_id}", status_code=303)
    await _record(request, viewer, "c2b.dismissed", payment_id, note)
    return RedirectResponse("/dashboard/c2b/review?notice=dismissed", status_code=303)
