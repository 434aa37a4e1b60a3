"""/v1/webhook_endpoints: where the bridge POSTs this project-and-mode's events, signed."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from mpesa_bridge.api.deps import RuntimeDep, TenantDep
from mpesa_bridge.api.idempotency import idempotent
from mpesa_bridge.api.responses import JSONResponse
from mpesa_bridge.api.routing import ParsedBodyRoute
from mpesa_bridge.api.schemas import BODY_REFUSED, RATE_LIMITED, ErrorResponse
from mpesa_bridge.core.webhooks.endpoints import MAX_DESCRIPTION, EndpointChanges
from mpesa_bridge.core.webhooks.entity import EVENT_TYPES
from mpesa_bridge.core.webhooks.public import endpoint_public

router = APIRouter(prefix="/v1/webhook_endpoints", tags=["webhooks"], route_class=ParsedBodyRoute)

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {
        "model": ErrorResponse,
        "description": "invalid request: invalid_url, url_not_allowed, url_unresolvable, invalid_event_type, …",
    },
    401: {"model": ErrorResponse, "description": "missing or wrong secret key"},
    404: {"model": ErrorResponse, "description": "no such webhook endpoint for this key's project and mode"},
    429: RATE_LIMITED,
}
_WRITE_ERRORS = {**_ERRORS, **BODY_REFUSED}
_IDEMPOTENT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorResponse, "description": "idempotency_key_in_use (or too_many_endpoints)"},
    422: {"model": ErrorResponse, "description": "idempotency_key_reused"},
}
_TYPES = ", ".join(f"`{t}`" for t in EVENT_TYPES)
URL_HELP = (
    "http(s) URL the events are POSTed to. Live mode refuses hosts that are, or resolve to, private, loopback "
    "or link-local addresses (IPv4 inside IPv6 included); test mode allows loopback outside production."
)
EVENTS_HELP = f'event types to send: any of {_TYPES}, or `["*"]` for all (present and future)'


class WebhookEndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(description=URL_HELP, examples=["https://shop.example.com/hooks/mpesa"])
    enabled_events: list[str] = Field(description=EVENTS_HELP, examples=[["payment.succeeded", "payment.failed"]])
    description: str | None = Field(None, description=f"your note, ≤ {MAX_DESCRIPTION} characters")
    enabled: bool = Field(True, strict=True, description="false: created switched off (no deliveries until enabled)")


class WebhookEndpointUpdate(BaseModel):
    """Only the fields given change."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(None, description=URL_HELP)
    enabled_events: list[str] | None = Field(None, description=EVENTS_HELP)
    description: str | None = None
    enabled: bool | None = Field(
        None,
        strict=True,
        description="false: pending deliveries are cancelled and nothing is sent; true: starts afresh "
        "(also after the bridge disabled a failing endpoint)",
    )


class SecretRotate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_period_seconds: int | None = Field(
        None,
        ge=0,
        le=7 * 86_400,
        strict=True,
        description="how long the current secret keeps signing beside the new one (default 24 h; 0: stops now)",
    )


class WebhookEndpointPublic(BaseModel):
    id: str = Field(examples=["we_01jz5m3k6q8w2d1c4b7n9p0r5t"])
    object: Literal["webhook_endpoint"]
    mode: Literal["test", "live"]
    url: str
    enabled_events: list[str]
    description: str | None
    enabled: bool
    disabled_reason: str | None = Field(description="`failing` when the bridge disabled it after 3 days of failures")
    disabled_at: str | None
    failing_since: str | None = Field(description="first failed attempt since the last success")
    previous_secret_expires_at: str | None = Field(description="after a rotation: the old secret signs until then")
    created_at: str
    updated_at: str


class WebhookEndpointCreated(WebhookEndpointPublic):
    secret: str = Field(description="the signing secret (`whsec_…`), shown once: store it now")


class WebhookEndpointList(BaseModel):
    object: Literal["list"]
    data: list[WebhookEndpointPublic]


class WebhookEndpointDeleted(BaseModel):
    id: str
    object: Literal["webhook_endpoint"]
    deleted: Literal[True]


@router.post(
    "",
    status_code=201,
    response_model=WebhookEndpointCreated,
    responses={**_WRITE_ERRORS, **_IDEMPOTENT},
    summary="Create a webhook endpoint",
)
async def create_webhook_endpoint(
    request: Request,
    runtime: RuntimeDep,
    tenant: TenantDep,
    body: Annotated[WebhookEndpointCreate, Body()],
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Response:
    """Events of this key's project and mode go to `url`, signed Standard Webhooks style with the
    endpoint's own secret (`secret`, returned only here). At most 16 endpoints per project and mode."""

    async def create() -> Response:
        issued = await runtime.webhook_endpoints.create(
            tenant, body.url, body.enabled_events, description=body.description, enabled=body.enabled
        )
        return JSONResponse({**endpoint_public(issued.endpoint), "secret": issued.secret}, status_code=201)

    return await idempotent(request, runtime, f"{tenant.project_id}:{tenant.mode.value}", create)


@router.get("", response_model=WebhookEndpointList, responses=_ERRORS, summary="List webhook endpoints")
async def list_webhook_endpoints(runtime: RuntimeDep, tenant: TenantDep) -> JSONResponse:
    endpoints = await runtime.webhook_endpoints.list(tenant)
    return JSONResponse({"object": "list", "data": [endpoint_public(e) for e in endpoints]})


@router.get(
    "/{endpoint_id}", response_model=WebhookEndpointPublic, responses=_ERRORS, summary="Read a webhook endpoint"
)
async def get_webhook_endpoint(runtime: RuntimeDep, tenant: TenantDep, endpoint_id: str) -> JSONResponse:
    return JSONResponse(endpoint_public(await runtime.webhook_endpoints.get(tenant, endpoint_id)))


@router.patch(
    "/{endpoint_id}",
    response_model=WebhookEndpointPublic,
    responses=_WRITE_ERRORS,
    summary="Change a webhook endpoint",
)
async def update_webhook_endpoint(
    runtime: RuntimeDep, tenant: TenantDep, endpoint_id: str, body: Annotated[WebhookEndpointUpdate, Body()]
) -> JSONResponse:
    changes = EndpointChanges(
        url=body.url, enabled_events=body.enabled_events, description=body.description, enabled=body.enabled
    )
    return JSONResponse(endpoint_public(await runtime.webhook_endpoints.update(tenant, endpoint_id, changes)))


@router.delete(
    "/{endpoint_id}",
    response_model=WebhookEndpointDeleted,
    responses=_ERRORS,
    summary="Delete a webhook endpoint",
)
async def delete_webhook_endpoint(runtime: RuntimeDep, tenant: TenantDep, endpoint_id: str) -> JSONResponse:
    """Nothing more is sent to it; its pending deliveries are cancelled. Past deliveries stay visible
    on their events."""
    endpoint = await runtime.webhook_endpoints.delete(tenant, endpoint_id)
    return JSONResponse({"id": endpoint.id, "object": "webhook_endpoint", "deleted": True})


@router.post(
    "/{endpoint_id}/rotate_secret",
    response_model=WebhookEndpointCreated,
    responses={**_WRITE_ERRORS, **_IDEMPOTENT},
    summary="Issue a new signing secret",
)
async def rotate_webhook_endpoint_secret(
    request: Request,
    runtime: RuntimeDep,
    tenant: TenantDep,
    endpoint_id: str,
    body: Annotated[SecretRotate | None, Body()] = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Response:
    """Returns the new secret (once). For the grace period (default 24 h,
    `MPESA_BRIDGE_WEBHOOK_SECRET_GRACE`) every request carries two signatures, one per secret, so the
    receiver can switch secrets at its own pace."""
    given = body.grace_period_seconds if body is not None else None
    grace = runtime.settings.webhook_secret_grace if given is None else float(given)

    async def rotate() -> Response:
        issued = await runtime.webhook_endpoints.rotate_secret(tenant, endpoint_id, grace)
        return JSONResponse({**endpoint_public(issued.endpoint), "secret": issued.secret})

    return await idempotent(request, runtime, f"{tenant.project_id}:{tenant.mode.value}", rotate)
