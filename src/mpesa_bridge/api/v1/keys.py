"""/v1/keys: the caller's secret keys — list, rotate with a grace period, revoke at once. The list also
names the mode's publishable key (rotated with POST /v1/project/publishable_key/rotate)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from mpesa_bridge.api.deps import CallerDep, RuntimeDep
from mpesa_bridge.api.idempotency import idempotent
from mpesa_bridge.api.responses import JSONResponse
from mpesa_bridge.api.routing import ParsedBodyRoute
from mpesa_bridge.api.schemas import BODY_REFUSED, RATE_LIMITED, ErrorResponse
from mpesa_bridge.core.errors import NotFound
from mpesa_bridge.core.payments.public import iso
from mpesa_bridge.core.projects import ApiKey

router = APIRouter(prefix="/v1/keys", tags=["keys"], route_class=ParsedBodyRoute)
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse},
    401: {"model": ErrorResponse},
    404: {"model": ErrorResponse},
    429: RATE_LIMITED,
}


class KeyPublic(BaseModel):
    object: str = "api_key"
    id: str
    mode: str
    display: str = Field(description="the key's first characters and last four, to recognise it")
    created_at: str
    last_used_at: str | None
    expires_at: str | None = Field(description="set by a rotation: the key stops working at this time")
    revoked_at: str | None


class KeyList(BaseModel):
    object: str = "list"
    data: list[KeyPublic]
    publishable_key: str = Field(
        description="this mode's publishable key (pk_…): no secret, for web pages; see GET /v1/project"
    )


class KeyRotate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Strict: how long a key outlives its rotation is a JSON integer, never "10", 10.0 or true.
    grace_period_seconds: int | None = Field(
        None,
        ge=0,
        le=30 * 86_400,
        strict=True,
        description="how long the calling key keeps working (default 24 h; 0: at once)",
    )


class KeyRotated(BaseModel):
    object: str = "api_key"
    id: str
    mode: str
    secret_key: str = Field(description="the new key, shown once")
    previous_key: KeyPublic


def key_public(key: ApiKey) -> dict[str, Any]:
    return {
        "object": "api_key",
        "id": key.id,
        "mode": str(key.mode),
        "display": key.display,
        "created_at": iso(key.created_at),
        "last_used_at": iso(key.last_used_at),
        "expires_at": iso(key.expires_at),
        "revoked_at": iso(key.revoked_at),
    }


@router.get("", response_model=KeyList, responses=_ERRORS, summary="List this project's keys for this mode")
async def list_keys(runtime: RuntimeDep, caller: CallerDep) -> JSONResponse:
    keys = await runtime.projects.list_keys(caller.tenant.project_id, caller.tenant.mode)
    publishable = (await runtime.projects.publishable_keys(caller.tenant.project_id))[caller.tenant.mode]
    return JSONResponse({"object": "list", "data": [key_public(k) for k in keys], "publishable_key": publishable.key})


@router.post(
    "/rotate",
    status_code=201,
    response_model=KeyRotated,
    responses={
        **_ERRORS,
        **BODY_REFUSED,
        409: {"model": ErrorResponse, "description": "idempotency_key_in_use"},
        422: {"model": ErrorResponse, "description": "idempotency_key_reused"},
    },
    summary="Rotate the key",
)
async def rotate_key(
    request: Request,
    runtime: RuntimeDep,
    caller: CallerDep,
    body: Annotated[KeyRotate | None, Body()] = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Response:
    """Issues a new secret key for this mode. The key that made this call keeps working for the
    grace period (default 24 h, `MPESA_BRIDGE_KEY_ROTATION_GRACE`), then stops."""
    grace = body.grace_period_seconds if body and body.grace_period_seconds is not None else None
    seconds = runtime.settings.key_rotation_grace if grace is None else float(grace)

    async def rotate() -> Response:
        issued, old = await runtime.projects.rotate_key(caller, seconds)
        out = {
            "object": "api_key",
            "id": issued.key.id,
            "mode": caller.tenant.mode.value,
            "secret_key": issued.secret,
            "previous_key": key_public(old),
        }
        return JSONResponse(out, status_code=201)

    return await idempotent(request, runtime, f"{caller.tenant.project_id}:{caller.tenant.mode.value}", rotate)


@router.post(
    "/{key_id}/revoke", response_model=KeyPublic, responses={**_ERRORS, **BODY_REFUSED}, summary="Revoke a key now"
)
async def revoke_key(runtime: RuntimeDep, caller: CallerDep, key_id: str) -> JSONResponse:
    keys = await runtime.projects.list_keys(caller.tenant.project_id, caller.tenant.mode)
    if not any(k.id == key_id for k in keys):
        raise NotFound(f"No such key: '{key_id}'", param="key_id")
    return JSONResponse(key_public(await runtime.projects.revoke_key(key_id, caller.tenant.project_id)))
