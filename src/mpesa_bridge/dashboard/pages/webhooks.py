"""Webhooks (developer and up): the project mode's endpoints and their delivery log.

    GET  /dashboard/webhooks                          endpoints (warnings), add, resend-since
    POST /dashboard/webhooks                          add an endpoint; its secret is shown once
    GET  /dashboard/webhooks/deliveries               every delivery (?endpoint=, ?state=undelivered|failing, ?after=)
    POST /dashboard/webhooks/deliveries/{id}/resend   send one delivery again
    POST /dashboard/webhooks/resend                   resend everything that failed since a time
    GET  /dashboard/webhooks/{id}                     one endpoint: edit, disable/enable, rotate, delete; its deliveries
    POST /dashboard/webhooks/{id}                     save URL, events, description
    POST /dashboard/webhooks/{id}/enable|disable|rotate|delete

Every action is recorded in the audit trail (`PeopleService.record`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mpesa_bridge.core.errors import InvalidRequest
from mpesa_bridge.core.people.entity import Role
from mpesa_bridge.core.webhooks.alerts import disabled_around, failing_for_long
from mpesa_bridge.core.webhooks.endpoints import EndpointChanges
from mpesa_bridge.core.webhooks.entity import EVENT_TYPES, WebhookEndpoint
from mpesa_bridge.core.webhooks.log import delivery_log
from mpesa_bridge.core.webhooks.ports import DeliveryFilter
from mpesa_bridge.core.webhooks.resend import ResendReport, ResendService
from mpesa_bridge.dashboard.auth import Viewer, page, runtime_of
from mpesa_bridge.dashboard.pages.access import form_of
from mpesa_bridge.dashboard.web import render
from mpesa_bridge.storage.webhooks import WebhookStorage

router = APIRouter()
DeveloperDep = Annotated[Viewer, Depends(page(Role.DEVELOPER))]
STATES = ("undelivered", "failing")
BODY_EXCERPT = 300  # characters of an answer shown in the log (the bridge keeps up to 1 KiB)


def _resender(request: Request) -> ResendService:
    runtime = runtime_of(request)
    return ResendService(WebhookStorage(runtime.db), runtime.clock)


async def _record(request: Request, viewer: Viewer, action: str, target: str, detail: str | None = None) -> None:
    project_id = viewer.project.id if viewer.project else None
    await runtime_of(request).people.record(viewer.identity, action, project_id, target=target, detail=detail)


def _events_of(form: Any) -> list[str]:
    """The ticked event types; "every event" wins over single ones. None ticked is refused by the
    service (`validate_event_types`), beside the boxes."""
    chosen = [v for v in form.getlist("events") if isinstance(v, str)]
    return ["*"] if "*" in chosen else chosen


def _field_errors(exc: InvalidRequest) -> dict[str, str]:
    """The service's refusal, beside the field it is about."""
    if exc.param == "enabled_events":
        return {"enabled_events": "Tick at least one event type, or every event."}
    return {"description" if exc.param == "description" else "url": str(exc)}


def _endpoint_view(endpoint: WebhookEndpoint, now: datetime) -> dict[str, Any]:
    return {
        "e": endpoint,
        "warn": failing_for_long(endpoint, now),
        "disabled_around": disabled_around(endpoint),
    }


async def _list_page(
    request: Request,
    viewer: Viewer,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    notice: str | None = None,
    status: int = 200,
) -> Response:
    runtime = runtime_of(request)
    now = runtime.clock.now()
    endpoints = await runtime.webhook_endpoints.list(viewer.tenant)
    context = {
        "endpoints": [_endpoint_view(e, now) for e in endpoints],
        "event_types": EVENT_TYPES,
        "errors": errors or {},
        "values": values or {"url": "", "description": "", "events": ["*"]},
        "notice": notice or request.query_params.get("notice"),
    }
    return render(request, "webhooks.html", context, status=status)


@router.get("/webhooks")
async def endpoints_page(request: Request, viewer: DeveloperDep) -> Response:
    return await _list_page(request, viewer)


@router.post("/webhooks")
async def add_endpoint(request: Request, viewer: DeveloperDep) -> Response:
    form = await request.form()
    url = str(form.get("url", "")).strip()
    description = str(form.get("description", "")).strip() or None
    events = _events_of(form)
    try:
        issued = await runtime_of(request).webhook_endpoints.create(viewer.tenant, url, events, description=description)
    except InvalidRequest as exc:
        errors = _field_errors(exc)
        values = {"url": url, "description": description or "", "events": events}
        return await _list_page(request, viewer, errors=errors, values=values, status=400)
    await _record(request, viewer, "webhook.endpoint_created", issued.endpoint.id, issued.endpoint.url)
    return render(
        request, "webhooks_secret.html", {"endpoint": issued.endpoint, "secret": issued.secret, "rotated": False}
    )


@router.get("/webhooks/deliveries")
async def deliveries_page(request: Request, viewer: DeveloperDep) -> Response:
    return await _deliveries(request, viewer, None)


async def _deliveries(request: Request, viewer: Viewer, endpoint: WebhookEndpoint | None) -> Response:
    runtime = runtime_of(request)
    query = request.query_params
    state = query.get("state") if query.get("state") in STATES else None
    endpoint_id = endpoint.id if endpoint is not None else (query.get("endpoint") or None)
    after = query.get("after") or None
    log = await delivery_log(
        WebhookStorage(runtime.db),
        viewer.tenant,
        DeliveryFilter(endpoint_id=endpoint_id, state=state, starting_after=after, limit=25),
    )
    endpoints = await runtime.webhook_endpoints.list(viewer.tenant)
    kept = {"state": state or "", "endpoint": "" if endpoint is not None else (endpoint_id or "")}
    context = {
        "keep": "".join(f"{k}={quote(v)}&" for k, v in kept.items() if v),
        "back": request.url.path + (f"?state={state}" if state else ""),
        "log": log,
        "state": state,
        "endpoint_id": endpoint_id,
        "endpoints": {e.id: e for e in endpoints},
        "excerpt": BODY_EXCERPT,
        "notice": query.get("notice"),
    }
    if endpoint is None:
        return render(request, "webhooks_deliveries.html", context)
    now = runtime.clock.now()
    context.update({"view": _endpoint_view(endpoint, now), "event_types": EVENT_TYPES, "errors": {}, "values": None})
    return render(request, "webhooks_endpoint.html", context)


def _resent_notice(report: ResendReport) -> str:
    if report.total == 0:
        return "nothing"
    return "more" if report.more else "resent"


@router.post("/webhooks/deliveries/{delivery_id}/resend")
async def resend_one(request: Request, viewer: DeveloperDep, delivery_id: str) -> Response:
    form = await form_of(request)
    report = await _resender(request).resend_one(viewer.tenant, delivery_id)
    await _record(
        request, viewer, "webhook.delivery_resent", delivery_id, f"queued={report.queued} now={report.retried_now}"
    )
    back = form.get("back", "")
    target = back if back.startswith("/dashboard/webhooks") and "//" not in back else "/dashboard/webhooks/deliveries"
    sep = "&" if "?" in target else "?"
    return RedirectResponse(f"{target}{sep}notice={_resent_notice(report)}", status_code=303)


def _parse_since(text: str, zone: str) -> datetime:
    try:
        local = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidRequest("Give a date and time, like 2026-12-05T09:00.", param="since") from None
    if local.tzinfo is None:
        local = local.replace(tzinfo=ZoneInfo(zone))
    return local.astimezone(UTC)


@router.post("/webhooks/resend")
async def resend_since(request: Request, viewer: DeveloperDep) -> Response:
    form = await form_of(request)
    zone = viewer.project.time_zone if viewer.project else "Africa/Nairobi"
    since = _parse_since(form.get("since", ""), zone)
    if since > runtime_of(request).clock.now():
        raise InvalidRequest("That time is in the future.", param="since")
    report = await _resender(request).resend_failed_since(viewer.tenant, since)
    detail = f"since={since.isoformat()} queued={report.queued} now={report.retried_now} more={report.more}"
    await _record(request, viewer, "webhook.failed_resent", viewer.tenant.project_id, detail)
    return RedirectResponse(f"/dashboard/webhooks/deliveries?notice={_resent_notice(report)}", status_code=303)


@router.get("/webhooks/{endpoint_id}")
async def endpoint_page(request: Request, viewer: DeveloperDep, endpoint_id: str) -> Response:
    endpoint = await runtime_of(request).webhook_endpoints.get(viewer.tenant, endpoint_id)
    return await _deliveries(request, viewer, endpoint)


@router.post("/webhooks/{endpoint_id}")
async def edit_endpoint(request: Request, viewer: DeveloperDep, endpoint_id: str) -> Response:
    runtime = runtime_of(request)
    form = await request.form()
    url = str(form.get("url", "")).strip()
    description = str(form.get("description", "")).strip()
    changes = EndpointChanges(url=url, enabled_events=_events_of(form), description=description)
    try:
        endpoint = await runtime.webhook_endpoints.update(viewer.tenant, endpoint_id, changes)
    except InvalidRequest as exc:
        endpoint = await runtime.webhook_endpoints.get(viewer.tenant, endpoint_id)
        context = {
            "view": _endpoint_view(endpoint, runtime.clock.now()),
            "event_types": EVENT_TYPES,
            "errors": _field_errors(exc),
            "values": {"url": url, "description": description, "events": changes.enabled_events},
            "log": None,
            "keep": "",
            "back": "",
            "state": None,
            "endpoint_id": endpoint_id,
            "endpoints": {},
            "excerpt": BODY_EXCERPT,
            "notice": None,
        }
        return render(request, "webhooks_endpoint.html", context, status=400)
    await _record(request, viewer, "webhook.endpoint_updated", endpoint.id, endpoint.url)
    return RedirectResponse(f"/dashboard/webhooks/{endpoint.id}?notice=saved", status_code=303)


@router.post("/webhooks/{endpoint_id}/{action}")
async def endpoint_action(request: Request, viewer: DeveloperDep, endpoint_id: str, action: str) -> Response:
    runtime = runtime_of(request)
    endpoints = runtime.webhook_endpoints
    if action in ("enable", "disable"):
        endpoint = await endpoints.update(viewer.tenant, endpoint_id, EndpointChanges(enabled=action == "enable"))
        await _record(request, viewer, f"webhook.endpoint_{action}d", endpoint.id)
        return RedirectResponse(f"/dashboard/webhooks/{endpoint.id}?notice={action}d", status_code=303)
    if action == "rotate":
        grace = runtime.settings.webhook_secret_grace
        issued = await endpoints.rotate_secret(viewer.tenant, endpoint_id, grace)
        await _record(request, viewer, "webhook.secret_rotated", endpoint_id)
        context = {"endpoint": issued.endpoint, "secret": issued.secret, "rotated": True, "grace_hours": grace / 3600}
        return render(request, "webhooks_secret.html", context)
    if action == "delete":
        endpoint = await endpoints.delete(viewer.tenant, endpoint_id)
        await _record(request, viewer, "webhook.endpoint_deleted", endpoint.id, endpoint.url)
        return RedirectResponse("/dashboard/webhooks?notice=deleted", status_code=303)
    return render(request, "error.html", {"title": "Not found", "message": "There is no such page."}, status=404)
