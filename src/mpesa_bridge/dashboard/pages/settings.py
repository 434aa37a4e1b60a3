"""Project settings (developers and owners): the project, Daraja per mode, callbacks, API keys.

GET  /dashboard/settings                     everything at a glance; the activity list (owners)
POST /dashboard/settings/name                rename the project (owner)
POST /dashboard/settings/time-zone           the zone its days and hours are shown in (owner)
GET  /dashboard/settings/daraja/{mode}       Daraja settings of a mode: the form
POST /dashboard/settings/daraja/{mode}       save them (secrets left blank are kept)
POST /dashboard/settings/daraja/{mode}/test  fetch an OAuth token with them and say what is wrong
POST /dashboard/settings/callbacks           confirm-by-query, require signed requests
POST /dashboard/settings/browser             client-side amounts and allowed origins (owner)
POST /dashboard/settings/publishable-key/rotate   a new publishable key for a mode (owner)
GET  /dashboard/settings/keys                API keys per mode
POST /dashboard/settings/keys/create         a new key for a mode (shown once)
POST /dashboard/settings/keys/rotate         a new key; the mode's other keys stop after a grace period
POST /dashboard/settings/keys/{key_id}/revoke

Secrets are never shown back: a consumer key by its last 4 characters, the rest by when they were
set. A key is shown in full only on the page that answers its creation. Every change is recorded
in the audit trail (`PeopleService.record`), which owners read here as "Activity".
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mpesa_bridge.core.accounts import DarajaSummary
from mpesa_bridge.core.browser import parse_origin_lines
from mpesa_bridge.core.errors import ConfigurationMissing, InvalidRequest
from mpesa_bridge.core.people.entity import AuditEntry, Role
from mpesa_bridge.core.ports import PushNotSent
from mpesa_bridge.core.projects import (
    ALLOWED_ENVIRONMENTS,
    ApiKey,
    DarajaAccount,
    DarajaEnvironment,
    DarajaSettingsInput,
    Mode,
    ShortcodeType,
    Tenant,
)
from mpesa_bridge.dashboard.auth import Viewer, page, runtime_of
from mpesa_bridge.dashboard.pages.access import form_of
from mpesa_bridge.dashboard.web import render
from mpesa_bridge.runtime import Runtime

router = APIRouter()
DeveloperDep = Annotated[Viewer, Depends(page(Role.DEVELOPER))]
OwnerDep = Annotated[Viewer, Depends(page(Role.OWNER))]
HOME = "/dashboard/settings"
KEYS = "/dashboard/settings/keys"
GRACE_CHOICES = (0, 300, 3600, 86_400, 7 * 86_400)
MAX_GRACE = 30 * 86_400
SECRETS = ("consumer_key", "consumer_secret", "passkey")
NOTICES = {
    "renamed": "The project was renamed.",
    "time_zone": "The time zone was changed.",
    "daraja": "The Daraja settings were saved.",
    "callbacks": "The callback options were saved.",
    "revoked": "The key was revoked: it stops working at once.",
    "browser": "The settings for web pages were saved.",
    "publishable": "A new publishable key was made: the old one stopped working. Put the new one in your pages.",
}
# What a failed connection test means, in the words a merchant acts on (codes: DarajaGatewayAdapter).
CONNECTION_PROBLEMS = {
    "daraja_auth_failed": (
        "Daraja refused the consumer key and secret: check them on the Daraja portal and enter them again."
    ),
    "daraja_unreachable": "Daraja could not be reached from this bridge: check its network, or try again later.",
    "daraja_throttled": "Daraja is limiting requests just now: try again in a minute.",
    "environment_unavailable": "This bridge has no address for that Daraja environment: choose another environment.",
    "daraja_error": "Daraja answered with an error: try again later.",
    "mode_not_configured": "This mode has no Daraja settings yet: enter them first.",
}


# --- the settings page ---------------------------------------------------------------------------


@router.get("/settings")
async def settings_page(request: Request, viewer: DeveloperDep) -> Response:
    notice = NOTICES.get(request.query_params.get("done", ""))
    return await _settings(request, viewer, notice=notice)


async def _settings(
    request: Request,
    viewer: Viewer,
    *,
    errors: dict[str, str] | None = None,
    notice: str | None = None,
    tested: tuple[Mode, bool, str] | None = None,
    status: int = 200,
    values: dict[str, str] | None = None,
) -> Response:
    runtime = runtime_of(request)
    project = await _project(runtime, viewer)
    daraja = await runtime.projects.daraja_summaries(project.id)
    activity: Sequence[AuditEntry] = []
    if viewer.can(Role.OWNER):
        activity = await runtime.people.audit(viewer.identity, project.id, limit=50)
    settings = runtime.settings
    browser = {
        "client_side_amounts": "on" if project.client_side_amounts else "off",
        "client_side_amount_max": "" if project.client_side_amount_max is None else str(project.client_side_amount_max),
        "allowed_origins": "\n".join(project.allowed_origins),
    }
    context: dict[str, Any] = {
        "project": project,
        "publishable": await runtime.projects.publishable_keys(project.id),
        "browser": {**browser, **(values or {})},
        "fallback_origins": settings.realtime_origins,
        "max_amount": runtime.limits.max_amount,
        "daraja": daraja,
        "modes": list(Mode),
        "tested": tested,
        "errors": errors or {},
        "notice": notice,
        "values": {"name": project.name, "time_zone": project.time_zone, **(values or {})},
        "allowlist": {"on": settings.callback_allowlist_on, "networks": settings.callback_networks},
        "allowlist_action": settings.callback_allowlist_action,
        "production": settings.production,
        "activity": activity,
        "names": await _names(runtime, viewer),
        "is_owner": viewer.can(Role.OWNER),
    }
    return render(request, "settings.html", context, status=status)


async def _project(runtime: Runtime, viewer: Viewer) -> Any:
    """The project as stored now (the viewer's copy was read before this request's change)."""
    wanted = viewer.tenant.project_id
    return next(p for p in await runtime.projects.list_projects() if p.id == wanted)


async def _names(runtime: Runtime, viewer: Viewer) -> dict[str, str]:
    members = await runtime.people.members(viewer.identity, viewer.tenant.project_id)
    names = {user.id: user.email for _, user in members}
    names[viewer.user.id] = viewer.user.email
    return names


@router.post("/settings/name")
async def rename(request: Request, viewer: OwnerDep) -> Response:
    runtime = runtime_of(request)
    name = (await form_of(request)).get("name", "")
    try:
        project = await runtime.projects.rename_project(viewer.tenant.project_id, name)
    except InvalidRequest as exc:
        return await _settings(request, viewer, errors={"name": str(exc)}, status=400, values={"name": name})
    await runtime.people.record(viewer.identity, "project.renamed", project.id, target=project.id, detail=project.name)
    return _done("renamed")


@router.post("/settings/time-zone")
async def time_zone(request: Request, viewer: OwnerDep) -> Response:
    runtime = runtime_of(request)
    zone = (await form_of(request)).get("time_zone", "")
    try:
        project = await runtime.projects.set_time_zone(viewer.tenant.project_id, zone)
    except InvalidRequest as exc:
        return await _settings(request, viewer, errors={"time_zone": str(exc)}, status=400, values={"time_zone": zone})
    await runtime.people.record(
        viewer.identity, "project.time_zone_changed", project.id, target=project.id, detail=project.time_zone
    )
    return _done("time_zone")


@router.post("/settings/callbacks")
async def callbacks(request: Request, viewer: DeveloperDep) -> Response:
    runtime = runtime_of(request)
    form = await form_of(request)
    confirm, signed = form.get("confirm_by_query") == "on", form.get("require_signed_requests") == "on"
    project, _ = await runtime.projects.update_security(
        viewer.tenant.project_id, confirm_by_query=confirm, require_signed_requests=signed
    )
    detail = f"confirm_by_query={confirm} require_signed_requests={signed}"
    await runtime.people.record(viewer.identity, "project.callbacks_changed", project.id, detail=detail)
    return _done("callbacks")


@router.post("/settings/browser")
async def browser_settings(request: Request, viewer: OwnerDep) -> Response:
    """Client-side amounts and allowed origins: what pages on other sites may do (core/browser.py)."""
    runtime = runtime_of(request)
    form = await form_of(request)
    on = form.get("client_side_amounts") == "on"
    raw_max, raw_origins = form.get("client_side_amount_max", "").strip(), form.get("allowed_origins", "")
    typed = {
        "client_side_amounts": "on" if on else "off",
        "client_side_amount_max": raw_max,
        "allowed_origins": raw_origins,
    }
    try:
        highest = None if not raw_max else _whole(raw_max)
        project = await runtime.projects.update_browser_settings(
            viewer.tenant.project_id,
            client_side_amounts=on,
            client_side_amount_max=highest,
            allowed_origins=parse_origin_lines(raw_origins),
            highest_amount=runtime.limits.max_amount,
        )
    except InvalidRequest as exc:
        return await _settings(request, viewer, errors={exc.param or "browser": str(exc)}, status=400, values=typed)
    detail = (
        f"client_side_amounts={project.client_side_amounts} client_side_amount_max={project.client_side_amount_max} "
        f"allowed_origins={','.join(project.allowed_origins) or '-'}"
    )
    await runtime.people.record(viewer.identity, "project.browser_settings_changed", project.id, detail=detail)
    return _done("browser")


def _whole(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise InvalidRequest(
            "The most a customer may choose is a whole number of shillings, or empty.", param="client_side_amount_max"
        ) from None


@router.post("/settings/publishable-key/rotate")
async def rotate_publishable_key(request: Request, viewer: OwnerDep) -> Response:
    runtime = runtime_of(request)
    mode = _mode((await form_of(request)).get("mode", ""))
    new, old = await runtime.projects.rotate_publishable_key(viewer.tenant.project_id, mode)
    await runtime.people.record(
        viewer.identity,
        "publishable_key.rotated",
        viewer.tenant.project_id,
        target=mode.value,
        detail=f"{old.key} -> {new.key}",
    )
    return _done("publishable")


def _done(what: str) -> Response:
    return RedirectResponse(f"{HOME}?done={what}", status_code=303)


# --- Daraja --------------------------------------------------------------------------------------


def _mode(value: str) -> Mode:
    try:
        return Mode(value)
    except ValueError:
        raise InvalidRequest("Mode is test or live.", param="mode") from None


@router.get("/settings/daraja/{mode}")
async def daraja_form(request: Request, mode: str, viewer: DeveloperDep) -> Response:
    chosen = _mode(mode)
    summary = (await runtime_of(request).projects.daraja_summaries(viewer.tenant.project_id)).get(chosen)
    return _daraja_page(request, chosen, summary, _shown(summary), {})


def _shown(summary: DarajaSummary | None) -> dict[str, str]:
    """The form's values: what may be shown back (never a secret)."""
    if summary is None:
        return {
            "environment": "",
            "shortcode_type": "paybill",
            "short_code": "",
            "till_number": "",
            "initiator_name": "",
        }
    return {
        "environment": summary.environment.value,
        "shortcode_type": summary.shortcode_type.value,
        "short_code": summary.short_code,
        "till_number": summary.till_number or "",
        "initiator_name": summary.initiator_name or "",
    }


def _daraja_page(
    request: Request,
    mode: Mode,
    summary: DarajaSummary | None,
    values: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    environments = sorted(e.value for e in ALLOWED_ENVIRONMENTS[mode])
    context = {
        "mode": mode,
        "summary": summary,
        "values": values,
        "errors": errors,
        "environments": environments,
        "types": [t.value for t in ShortcodeType],
    }
    return render(request, "settings_daraja.html", context, status=status)


@router.post("/settings/daraja/{mode}")
async def save_daraja(request: Request, mode: str, viewer: DeveloperDep) -> Response:
    chosen = _mode(mode)
    runtime = runtime_of(request)
    tenant = Tenant(viewer.tenant.project_id, chosen)
    form = await form_of(request)
    summary = (await runtime.projects.daraja_summaries(tenant.project_id)).get(chosen)
    values = {
        name: form.get(name, "").strip()
        for name in ("environment", "shortcode_type", "short_code", "till_number", "initiator_name")
    }
    try:
        given = await _daraja_input(runtime, tenant, summary, values, form)
        await runtime.projects.set_daraja(tenant.project_id, chosen, given)
    except InvalidRequest as exc:
        return _daraja_page(request, chosen, summary, values, {exc.param or "form": str(exc)}, status=400)
    changed = [n for n in (*SECRETS, "initiator_password") if form.get(n, "").strip()]
    detail = f"{chosen.value}: {given.environment.value} {given.shortcode_type.value} {given.short_code}"
    if changed:
        detail += " (new " + ", ".join(changed) + ")"
    await runtime.people.record(
        viewer.identity, "daraja.updated", tenant.project_id, target=chosen.value, detail=detail
    )
    return _done("daraja")


async def _daraja_input(
    runtime: Runtime, tenant: Tenant, summary: DarajaSummary | None, values: dict[str, str], form: dict[str, str]
) -> DarajaSettingsInput:
    """The form as settings; a secret left blank keeps the one stored (entered once, never shown)."""
    try:
        environment = DarajaEnvironment(values["environment"])
    except ValueError:
        raise InvalidRequest("Choose a Daraja environment.", param="environment") from None
    try:
        kind = ShortcodeType(values["shortcode_type"] or "paybill")
    except ValueError:
        raise InvalidRequest("Choose paybill or till.", param="shortcode_type") from None
    kept = await runtime.projects.account(tenant) if summary is not None else None
    secrets = {}
    for name in SECRETS:
        given = form.get(name, "").strip()
        if not given and kept is not None:
            given = getattr(kept, name)
        if not given:
            raise InvalidRequest("Enter this: the mode has none yet.", param=name)
        if len(given) > 500:
            raise InvalidRequest("This is too long.", param=name)
        secrets[name] = given
    return DarajaSettingsInput(
        environment=environment,
        short_code=values["short_code"],
        shortcode_type=kind,
        till_number=(values["till_number"] or None) if kind is ShortcodeType.TILL else None,
        **_initiator_input(values, form, kept),
        **secrets,
    )


def _initiator_input(values: dict[str, str], form: dict[str, str], kept: DarajaAccount | None) -> dict[str, str]:
    """An initiator name cleared removes the initiator; a password left blank keeps the stored one
    (for the same name or a renamed initiator alike)."""
    name = values["initiator_name"]
    if not name:
        return {"initiator_name": ""}
    password = form.get("initiator_password", "")
    if not password and kept is not None and kept.initiator_password:
        password = kept.initiator_password
    if not password:
        raise InvalidRequest("Enter the initiator's password.", param="initiator_password")
    return {"initiator_name": name, "initiator_password": password}


@router.post("/settings/daraja/{mode}/test")
async def test_connection(request: Request, mode: str, viewer: DeveloperDep) -> Response:
    """Fetch a fresh OAuth token with the mode's credentials and say plainly what went wrong."""
    chosen = _mode(mode)
    runtime = runtime_of(request)
    tenant = Tenant(viewer.tenant.project_id, chosen)
    try:
        account = await runtime.projects.account(tenant)
        await runtime.gateway.check_credentials(account)
    except ConfigurationMissing:
        ok, message, code = False, CONNECTION_PROBLEMS["mode_not_configured"], "mode_not_configured"
    except PushNotSent as exc:
        ok, message, code = False, CONNECTION_PROBLEMS.get(exc.code, str(exc)), exc.code
    else:
        ok, message, code = True, "Connected: Daraja gave this bridge a token with these credentials.", "ok"
    await runtime.people.record(viewer.identity, "daraja.tested", tenant.project_id, target=chosen.value, detail=code)
    return await _settings(request, viewer, tested=(chosen, ok, message), status=200 if ok else 422)


# --- API keys ------------------------------------------------------------------------------------


def key_state(key: ApiKey, now: datetime) -> str:
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None:
        return "in grace" if now < key.expires_at else "expired"
    return "active"


@router.get("/settings/keys")
async def keys_page(request: Request, viewer: DeveloperDep) -> Response:
    return await _keys(request, viewer, notice=NOTICES.get(request.query_params.get("done", "")))


async def _keys(
    request: Request,
    viewer: Viewer,
    *,
    notice: str | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    runtime = runtime_of(request)
    now = runtime.clock.now()
    keys = await runtime.projects.list_keys(viewer.tenant.project_id)
    by_mode = {
        mode: [(k, key_state(k, now)) for k in sorted(keys, key=lambda k: k.created_at, reverse=True) if k.mode == mode]
        for mode in Mode
    }
    context = {"by_mode": by_mode, "graces": GRACE_CHOICES, "notice": notice, "errors": errors or {}}
    return render(request, "settings_keys.html", context, status=status)


@router.post("/settings/keys/create")
async def create_key(request: Request, viewer: DeveloperDep) -> Response:
    runtime = runtime_of(request)
    mode = _mode((await form_of(request)).get("mode", ""))
    issued = await runtime.projects.issue_key(viewer.tenant.project_id, mode)
    await runtime.people.record(
        viewer.identity, "key.created", viewer.tenant.project_id, target=issued.key.id, detail=issued.key.display
    )
    return render(request, "settings_key.html", {"issued": issued, "old": [], "grace": None})


@router.post("/settings/keys/rotate")
async def rotate_keys(request: Request, viewer: DeveloperDep) -> Response:
    runtime = runtime_of(request)
    form = await form_of(request)
    mode = _mode(form.get("mode", ""))
    try:
        grace = _grace(form)
    except InvalidRequest as exc:
        return await _keys(request, viewer, errors={"grace": str(exc)}, status=400)
    issued, old = await runtime.projects.rotate_mode_keys(viewer.tenant.project_id, mode, grace)
    detail = f"{mode.value}: {issued.key.display}; {len(old)} older key(s) stop after {grace} s"
    await runtime.people.record(
        viewer.identity, "key.rotated", viewer.tenant.project_id, target=issued.key.id, detail=detail
    )
    return render(request, "settings_key.html", {"issued": issued, "old": old, "grace": grace})


def _grace(form: dict[str, str]) -> int:
    """Seconds: the custom field when filled, else the chosen preset."""
    raw = form.get("grace_seconds", "").strip() or form.get("grace", "").strip()
    try:
        grace = int(raw)
    except ValueError:
        raise InvalidRequest("The grace period is a whole number of seconds.", param="grace") from None
    if not 0 <= grace <= MAX_GRACE:
        raise InvalidRequest(f"The grace period is 0 to {MAX_GRACE} seconds (30 days).", param="grace")
    return grace


@router.post("/settings/keys/{key_id}/revoke")
async def revoke_key(request: Request, key_id: str, viewer: DeveloperDep) -> Response:
    runtime = runtime_of(request)
    key = await runtime.projects.revoke_key(key_id, viewer.tenant.project_id)
    await runtime.people.record(viewer.identity, "key.revoked", key.project_id, target=key.id, detail=key.display)
    return RedirectResponse(f"{KEYS}?done=revoked", status_code=303)
