"""/v1/project: the caller's project as browsers meet it — its publishable key for the key's mode,
client-side amounts and allowed origins (core/browser.py).

    GET   /v1/project                          the settings and this mode's publishable key
    PATCH /v1/project                          change client_side_amounts, client_side_amount_max,
                                               allowed_origins, legacy_api (only the fields sent)
    POST  /v1/project/publishable_key/rotate   a new publishable key for this mode; the old one
                                               stops at once

Every change is written to the project's audit trail (by `key:<key id>`), which owners read in the
dashboard's settings page.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body
from pydantic import BaseModel, ConfigDict, Field

from mpesa_bridge.api.deps import CallerDep, RuntimeDep
from mpesa_bridge.api.responses import JSONResponse
from mpesa_bridge.api.routing import ParsedBodyRoute
from mpesa_bridge.api.schemas import BODY_REFUSED, RATE_LIMITED, ErrorResponse
from mpesa_bridge.core.accounts import Caller
from mpesa_bridge.core.projects import Project
from mpesa_bridge.runtime import Runtime

router = APIRouter(prefix="/v1/project", tags=["project"], route_class=ParsedBodyRoute)
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "invalid request (the `param` names the field)"},
    401: {"model": ErrorResponse},
    429: RATE_LIMITED,
}


class ProjectBrowserSettings(BaseModel):
    object: str = "project"
    id: str
    name: str
    mode: str = Field(description="the mode of the key that asked")
    publishable_key: str = Field(
        description="this mode's publishable key (pk_test_… or pk_live_…): no secret, for your web pages"
    )
    client_side_amounts: bool = Field(
        description="whether the publishable key may open a checkout session for an amount chosen in the browser"
    )
    client_side_amount_max: int | None = Field(description="the most such an amount may be (null: the payment limit)")
    allowed_origins: list[str] = Field(
        description="the sites whose pages may call the browser routes; empty: the server-wide "
        "MPESA_BRIDGE_REALTIME_CORS_ORIGINS"
    )
    legacy_api: bool = Field(
        description="whether the earlier system's payment calls (/api/v1/transactions/…) are answered "
        "(docs/migrating.md)"
    )


class ProjectBrowserUpdate(BaseModel):
    """Only the fields sent change."""

    model_config = ConfigDict(extra="forbid")

    client_side_amounts: bool | None = Field(
        None,
        strict=True,
        description="true lets anyone who has the publishable key — every visitor of a page that carries it — "
        "start a payment of any amount they choose (within the limits) to any phone. Off by default.",
    )
    client_side_amount_max: Any = Field(
        None,
        description="whole shillings, or null for the payment limit",
        json_schema_extra={"type": ["integer", "null"], "minimum": 1},
    )
    allowed_origins: Any = Field(
        None,
        description="exact origins such as https://shop.example (scheme, host, optional port; no path, no wildcard)",
        json_schema_extra={"type": "array", "items": {"type": "string"}, "maxItems": 20},
    )
    legacy_api: bool | None = Field(
        None,
        strict=True,
        description="true answers the earlier system's POST /api/v1/transactions/stk-push and GET "
        "/api/v1/transactions/status/{id} for this project (its clients keep working while they move). Off by default.",
    )


class PublishableKeyRotated(BaseModel):
    object: str = "publishable_key"
    mode: str
    publishable_key: str = Field(description="the new key: put it in your pages")
    previous_publishable_key: str = Field(description="the old key: it stopped working")


async def _shown(runtime: Runtime, caller: Caller, project: Project) -> dict[str, Any]:
    keys = await runtime.projects.publishable_keys(project.id)
    return {
        "object": "project",
        "id": project.id,
        "name": project.name,
        "mode": caller.tenant.mode.value,
        "publishable_key": keys[caller.tenant.mode].key,
        "client_side_amounts": project.client_side_amounts,
        "client_side_amount_max": project.client_side_amount_max,
        "allowed_origins": list(project.allowed_origins),
        "legacy_api": project.legacy_api,
    }


@router.get("", response_model=ProjectBrowserSettings, responses=_ERRORS, summary="Read the project's browser settings")
async def get_project(runtime: RuntimeDep, caller: CallerDep) -> JSONResponse:
    return JSONResponse(await _shown(runtime, caller, caller.project))


@router.patch(
    "",
    response_model=ProjectBrowserSettings,
    responses={**_ERRORS, **BODY_REFUSED},
    summary="Change client-side amounts and allowed origins",
)
async def update_project(
    runtime: RuntimeDep, caller: CallerDep, body: Annotated[ProjectBrowserUpdate, Body()]
) -> JSONResponse:
    """Client-side amounts let a publishable key open a checkout session for an amount the browser
    chose (`POST /v1/checkout_sessions` with `pk_…`): anyone with the page can then start a payment of
    any amount within the limits, to any phone, bounded only by the rate limits. Allowed origins are
    the sites whose pages may call the browser routes (CORS); others are refused with 403."""
    sent = body.model_fields_set
    changes: dict[str, Any] = {name: getattr(body, name) for name in sent}
    project = await runtime.projects.update_browser_settings(
        caller.tenant.project_id, highest_amount=runtime.limits.max_amount, **changes
    )
    if changes:
        detail = ", ".join(f"{name}={changes[name]}" for name in sorted(changes))
        await runtime.people.record_by_key(caller.key.id, "project.browser_settings_changed", project.id, detail=detail)
    return JSONResponse(await _shown(runtime, caller, project))


@router.post(
    "/publishable_key/rotate",
    status_code=201,
    response_model=PublishableKeyRotated,
    responses={**_ERRORS, **BODY_REFUSED},
    summary="Rotate this mode's publishable key",
)
async def rotate_publishable_key(runtime: RuntimeDep, caller: CallerDep) -> JSONResponse:
    """A new publishable key for the calling key's mode. The old one stops at once: update your pages."""
    new, old = await runtime.projects.rotate_publishable_key(caller.tenant.project_id, caller.tenant.mode)
    await runtime.people.record_by_key(
        caller.key.id,
        "publishable_key.rotated",
        caller.tenant.project_id,
        target=caller.tenant.mode.value,
        detail=f"{old.key} -> {new.key}",
    )
    out = {
        "object": "publishable_key",
        "mode": caller.tenant.mode.value,
        "publishable_key": new.key,
        "previous_publishable_key": old.key,
    }
    return JSONResponse(out, status_code=201)
