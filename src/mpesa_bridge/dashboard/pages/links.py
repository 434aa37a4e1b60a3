"""Payment links (every member reads; developers and owners change) and the QR codes of links and
checkout sessions.

    GET  /dashboard/links                          the project mode's links, newest first, with their totals; the form
    POST /dashboard/links                          create a link (developer)
    GET  /dashboard/links/{id}                     one link: its facts, totals, QR code, the edit form
    POST /dashboard/links/{id}                     save title, description, active, expiry, maximum payments (developer)
    POST /dashboard/links/{id}/activate|deactivate (developer)
    GET  /dashboard/links/{id}/qr.svg|qr.png       the QR code of the link's public URL
    GET  /dashboard/checkout-sessions/{id}/qr.svg|qr.png   the QR code of a session's hosted page

Everything goes through the services the API uses (`runtime.links`, `runtime.checkout`) and the
API's validation (`validate_link_create`, `validate_link_changes`); a refusal is shown beside its
field, in the person's language (`FIELD_MESSAGES`). Every change is recorded in the audit trail.
"""

from __future__ import annotations

import base64
import functools
import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mpesa_bridge.core.checkout.validation import amounts
from mpesa_bridge.core.errors import InvalidRequest
from mpesa_bridge.core.links.entity import COLLECTABLE, LinkTotals, PaymentLink
from mpesa_bridge.core.links.validation import (
    DESCRIPTION_MAX,
    MAX_PAYMENTS_CAP,
    TITLE_MAX,
    check_collect,
    check_expiry,
    check_max_payments,
    check_text,
    validate_link_changes,
    validate_link_create,
)
from mpesa_bridge.core.payments.validation import PaymentLimits, check_metadata
from mpesa_bridge.core.people.entity import Role
from mpesa_bridge.dashboard.auth import Viewer, page, runtime_of
from mpesa_bridge.dashboard.i18n import translator
from mpesa_bridge.dashboard.web import language_of, render
from mpesa_bridge.qr import QrFormat, qr_response, qr_svg

router = APIRouter()
ViewerDep = Annotated[Viewer, Depends(page())]
DeveloperDep = Annotated[Viewer, Depends(page(Role.DEVELOPER))]
PAGE = 25  # links per page; each row's totals are one read (`PaymentLinkService.get_with_totals`)
THUMBNAIL = 2  # SVG units per module in the list (the detail page shows the full-size image)
NOTICES = {
    "created": "The link was created. Share its address or its QR code.",
    "saved": "Saved.",
    "activated": "The link is active again: its page takes payments.",
    "deactivated": "The link is deactivated: its page now says so, and takes no payment.",
}
# The API's refusals in a merchant's words, by (field, code), then by code alone. The values in
# braces are filled in by `_explain`; tests/unit/test_dashboard_links_words.py checks the Swahili.
FIELD_MESSAGES: dict[tuple[str, str], str] = {
    ("title", "parameter_missing"): "Give the link a title.",
    ("amount", "parameter_missing"): "Enter the amount, or let the customer choose within a range.",
    ("amount_min", "parameter_missing"): "Enter the lowest and the highest amount.",
    ("amount_max", "parameter_missing"): "Enter the lowest and the highest amount.",
    ("amount_min", "amount_range_invalid"): "The lowest amount must not be above the highest.",
    ("amount", "amount_conflict"): "Give either a fixed amount or a range, not both.",
    ("*", "parameter_too_long"): "At most {max} characters.",
    ("*", "invalid_text"): "Use printable text only.",
    ("*", "invalid_amount"): "Enter a whole number of shillings.",
    ("*", "amount_out_of_range"): "Enter an amount from 1 to {max} shillings.",
    ("*", "invalid_expires_at"): "Choose a time between 1 minute and 366 days from now.",
    ("*", "invalid_max_payments"): "Enter a whole number from 1 to {max}, or leave it empty for no limit.",
    ("*", "invalid_collect"): "Choose among the customer's name and a reference.",
    ("*", "invalid_metadata"): "Enter a JSON object, or leave it empty.",
    ("*", "metadata_too_large"): "At most {keys} keys and {size} bytes of JSON.",
    ("*", "*"): "This value is not accepted.",
}
_WHOLE = re.compile(r"-?\d{1,18}")


async def _record(request: Request, viewer: Viewer, action: str, target: str, detail: str | None = None) -> None:
    await runtime_of(request).people.record(
        viewer.identity, action, viewer.tenant.project_id, target=target, detail=detail
    )


def _zone(viewer: Viewer) -> ZoneInfo:
    return ZoneInfo(viewer.project.time_zone if viewer.project else "Africa/Nairobi")


def _number(text: str) -> int | str | None:
    """A form's number: empty → None, digits → int, anything else as typed (the validator refuses it)."""
    text = text.strip().replace(",", "")
    if not text:
        return None
    return int(text) if _WHOLE.fullmatch(text) else text


def _expiry_text(text: str, zone: ZoneInfo) -> str | None:
    """A `datetime-local` value, read in the project's zone, as the API's ISO 8601 with a zone;
    something else as typed (the validator refuses it)."""
    text = text.strip()
    if not text:
        return None
    try:
        local = datetime.fromisoformat(text)
        if local.tzinfo is None:
            local = local.replace(tzinfo=zone)
        return local.astimezone(UTC).isoformat()
    except (ValueError, OverflowError):
        return text


def _local_input(at: datetime | None, zone: ZoneInfo) -> str:
    return "" if at is None else at.astimezone(zone).strftime("%Y-%m-%dT%H:%M")


def _explain(exc: InvalidRequest, limits: PaymentLimits, t: Callable[..., str]) -> tuple[str, str]:
    """(field, message in the person's language) for a refusal of the API's validation."""
    field = exc.param or "title"
    code = exc.code or ""
    text = FIELD_MESSAGES.get((field, code)) or FIELD_MESSAGES.get(("*", code)) or FIELD_MESSAGES[("*", "*")]
    values = {
        "max": {
            "title": TITLE_MAX,
            "description": DESCRIPTION_MAX,
            "max_payments": MAX_PAYMENTS_CAP,
        }.get(field, limits.max_amount),
        "keys": limits.metadata_max_keys,
        "size": limits.metadata_max_bytes,
    }
    return field, t(text, **{k: v for k, v in values.items() if "{" + k + "}" in text})


def _errors(checks: Mapping[str, Callable[[], object]], limits: PaymentLimits, t: Callable[..., str]) -> dict[str, str]:
    """Every field's refusal at once (the API stops at the first), each beside its field."""
    errors: dict[str, str] = {}
    for check in checks.values():
        try:
            check()
        except InvalidRequest as exc:
            field, message = _explain(exc, limits, t)
            errors.setdefault(field, message)
    return errors


def _metadata(text: str) -> object:
    """The metadata field's JSON; what is not a JSON object a database can store comes back as the
    text typed, which `check_metadata` refuses as "not a JSON object"."""
    text = text.strip()
    if not text:
        return None
    try:
        value = json.loads(text, parse_constant=_no_constant)
        stored = json.dumps(value, ensure_ascii=False).encode("utf-8")  # a lone surrogate fails here
    except (ValueError, UnicodeEncodeError, RecursionError):
        return text
    # PostgreSQL refuses NUL in text, as the API's edge does (api/inputs.py)
    return text if b"\\u0000" in stored or b"\x00" in stored else value


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _form_values(form: FormData) -> dict[str, Any]:
    """What was typed, to show the form again as it was."""
    got: dict[str, Any] = {
        k: str(form.get(k, "")) for k in ("title", "description", "amount", "amount_min", "amount_max")
    }
    got |= {k: str(form.get(k, "")) for k in ("expires_at", "max_payments", "metadata")}
    got["pricing"] = "range" if form.get("pricing") == "range" else "fixed"
    got["active"] = form.get("active") is not None
    got["collect"] = [v for v in form.getlist("collect") if isinstance(v, str)]
    return got


def _blank_form() -> dict[str, Any]:
    return {
        "title": "",
        "description": "",
        "pricing": "fixed",
        "amount": "",
        "amount_min": "",
        "amount_max": "",
        "active": True,
        "expires_at": "",
        "max_payments": "",
        "collect": [],
        "metadata": "",
    }


def _view(link: PaymentLink, totals: LinkTotals, now: datetime) -> dict[str, Any]:
    if not link.active:
        state = "inactive"
    elif link.expired(now):
        state = "expired"
    elif link.max_payments is not None and totals.payments >= link.max_payments:
        state = "used up"
    else:
        state = "active"
    return {"link": link, "totals": totals, "state": state}


# --- the list and the create form ----------------------------------------------------------------


async def _list_page(
    request: Request,
    viewer: Viewer,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    runtime = runtime_of(request)
    after = request.query_params.get("after") or None
    rows = list(await runtime.links.list(viewer.tenant, after, PAGE))
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    now = runtime.clock.now()
    views = []
    for row in rows:
        link, totals = await runtime.links.get_with_totals(viewer.tenant, row.id)
        view = _view(link, totals, now)
        view["thumbnail"] = "data:image/svg+xml;base64," + base64.b64encode(qr_svg(link.url, scale=THUMBNAIL)).decode()
        views.append(view)
    context = {
        "views": views,
        "next_url": f"/dashboard/links?after={rows[-1].id}" if more and rows else None,
        "first_url": "/dashboard/links" if after else None,
        "errors": errors or {},
        "values": values or _blank_form(),
        "collectable": COLLECTABLE,
        "notice": NOTICES.get(request.query_params.get("done", "")),
        "can_change": viewer.can(Role.DEVELOPER),
    }
    return render(request, "links.html", context, status=status)


@router.get("/links")
async def links_page(request: Request, viewer: ViewerDep) -> Response:
    return await _list_page(request, viewer)


@router.post("/links")
async def create_link(request: Request, viewer: DeveloperDep) -> Response:
    runtime = runtime_of(request)
    form = await request.form()
    typed = _form_values(form)
    t = translator(language_of(request))
    limits, now = runtime.limits, runtime.clock.now()
    ranged = typed["pricing"] == "range"
    fields: dict[str, object] = {
        "title": typed["title"],
        "description": typed["description"],
        "amount": None if ranged else _number(typed["amount"]),
        "amount_min": _number(typed["amount_min"]) if ranged else None,
        "amount_max": _number(typed["amount_max"]) if ranged else None,
        "active": typed["active"],
        "expires_at": _expiry_text(typed["expires_at"], _zone(viewer)),
        "max_payments": _number(typed["max_payments"]),
        "collect": typed["collect"],
        "metadata": _metadata(typed["metadata"]),
    }
    errors = _errors(
        {
            "title": lambda: check_text(fields["title"], "title", TITLE_MAX, required=True),
            "description": lambda: check_text(fields["description"], "description", DESCRIPTION_MAX, required=False),
            "amount": lambda: amounts(fields["amount"], fields["amount_min"], fields["amount_max"], limits),
            "expires_at": lambda: check_expiry(fields["expires_at"], now),
            "max_payments": lambda: check_max_payments(fields["max_payments"]),
            "collect": lambda: check_collect(fields["collect"]),
            "metadata": lambda: check_metadata(fields["metadata"], limits),
            # the API's own validation last: whatever it refuses is refused here too
            "all": lambda: validate_link_create(**fields, limits=limits, now=now),
        },
        limits,
        t,
    )
    if errors:
        return await _list_page(request, viewer, errors=errors, values=typed, status=400)
    link = await runtime.links.create(viewer.tenant, validate_link_create(**fields, limits=limits, now=now))
    await _record(request, viewer, "payment_link.created", link.id, f"{link.title} {link.url}")
    return RedirectResponse(f"/dashboard/links/{link.id}?done=created", status_code=303)


# --- one link ---------------------------------------------------------------------------------


async def _detail(
    request: Request,
    viewer: Viewer,
    link_id: str,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    runtime = runtime_of(request)
    link, totals = await runtime.links.get_with_totals(viewer.tenant, link_id)
    zone = _zone(viewer)
    shown = values or {
        "title": link.title,
        "description": link.description,
        "active": link.active,
        "expires_at": _local_input(link.expires_at, zone),
        "max_payments": "" if link.max_payments is None else str(link.max_payments),
    }
    context = {
        "view": _view(link, totals, runtime.clock.now()),
        "errors": errors or {},
        "values": shown,
        "notice": NOTICES.get(request.query_params.get("done", "")),
        "can_change": viewer.can(Role.DEVELOPER),
    }
    return render(request, "link.html", context, status=status)


@router.get("/links/{link_id}")
async def link_page(request: Request, viewer: ViewerDep, link_id: str) -> Response:
    return await _detail(request, viewer, link_id)


@router.post("/links/{link_id}")
async def edit_link(request: Request, viewer: DeveloperDep, link_id: str) -> Response:
    runtime = runtime_of(request)
    link = await runtime.links.get(viewer.tenant, link_id)
    form = await request.form()
    zone = _zone(viewer)
    typed: dict[str, Any] = {
        "title": str(form.get("title", "")),
        "description": str(form.get("description", "")),
        "active": form.get("active") is not None,
        "expires_at": str(form.get("expires_at", "")).strip(),
        "max_payments": str(form.get("max_payments", "")).strip(),
    }
    # Only what changed is sent, as a PATCH would: an expiry already past is kept, not refused.
    given: dict[str, object] = {}
    if typed["title"].strip() != link.title:
        given["title"] = typed["title"]
    if typed["description"].strip() != link.description:
        given["description"] = typed["description"]
    if typed["active"] != link.active:
        given["active"] = typed["active"]
    if typed["expires_at"] != _local_input(link.expires_at, zone):
        given["expires_at"] = _expiry_text(typed["expires_at"], zone)
    if _number(typed["max_payments"]) != link.max_payments:
        given["max_payments"] = _number(typed["max_payments"])
    limits, now = runtime.limits, runtime.clock.now()
    t = translator(language_of(request))
    checks = {name: functools.partial(validate_link_changes, {name: value}, now) for name, value in given.items()}
    errors = _errors(checks, limits, t)
    if errors:
        return await _detail(request, viewer, link_id, errors=errors, values=typed, status=400)
    if given:
        changes = validate_link_changes(given, now)
        link, _ = await runtime.links.update(viewer.tenant, link_id, changes)
        await _record(request, viewer, "payment_link.updated", link.id, ", ".join(sorted(given)))
    return RedirectResponse(f"/dashboard/links/{link.id}?done=saved", status_code=303)


@router.post("/links/{link_id}/{action}")
async def link_action(request: Request, viewer: DeveloperDep, link_id: str, action: str) -> Response:
    if action not in ("activate", "deactivate"):
        return render(request, "error.html", {"title": "Not found", "message": "There is no such page."}, status=404)
    runtime = runtime_of(request)
    changes = validate_link_changes({"active": action == "activate"}, runtime.clock.now())
    link, _ = await runtime.links.update(viewer.tenant, link_id, changes)
    await _record(request, viewer, f"payment_link.{action}d", link.id)
    return RedirectResponse(f"/dashboard/links/{link.id}?done={action}d", status_code=303)


# --- QR codes -------------------------------------------------------------------------------------


def _format(name: str) -> QrFormat:
    if name == "qr.svg":
        return "svg"
    if name == "qr.png":
        return "png"
    raise InvalidRequest("The QR code comes as qr.svg or qr.png.", param="format")


@router.get("/links/{link_id}/{name}")
async def link_qr(request: Request, viewer: ViewerDep, link_id: str, name: str) -> Response:
    fmt = _format(name)
    link = await runtime_of(request).links.get(viewer.tenant, link_id)
    return qr_response(link.url, fmt, filename=f"{link.id}-qr")


@router.get("/checkout-sessions/{session_id}/{name}")
async def session_qr(request: Request, viewer: ViewerDep, session_id: str, name: str) -> Response:
    fmt = _format(name)
    session = await runtime_of(request).checkout.get(viewer.tenant, session_id)
    return qr_response(session.url, fmt, filename=f"{session.id}-qr")
