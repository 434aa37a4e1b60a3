"""/v1/payouts: B2C payouts (secret key), with two-person approval; and the admin's payout settings.

    POST  /v1/payouts                          secret key, Idempotency-Key required
    GET   /v1/payouts                          secret key: newest first, cursor pages
    GET   /v1/payouts/settings                 secret key: the rules that apply (read-only)
    GET   /v1/payouts/{id}                     secret key
    POST  /v1/payouts/{id}/approve             secret key: another key than the one that created it
    POST  /v1/payouts/{id}/reject              secret key
    PUT   /v1/admin/projects/{id}/payout_settings/{mode}   admin token: approval and limits

The actor of a payout (`created_by`, `approved_by`) is `key:<api key id>` here, `person:<id>` in the
dashboard: the creator cannot approve, so approval needs a second key or a person.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request
from starlette.responses import Response

from mpesa_bridge.api.deps import AdminDep, CallerDep, RuntimeDep, TenantDep
from mpesa_bridge.api.idempotency import idempotent_creation
from mpesa_bridge.api.pagination import list_page
from mpesa_bridge.api.responses import JSONResponse
from mpesa_bridge.api.routing import ParsedBodyRoute
from mpesa_bridge.api.schemas import BODY_REFUSED, RATE_LIMITED, ErrorResponse
from mpesa_bridge.api.schemas_payouts import (
    PayoutCreate,
    PayoutList,
    PayoutPublic,
    PayoutReject,
    PayoutSettingsInput,
    PayoutSettingsPublic,
)
from mpesa_bridge.core.errors import InvalidRequest
from mpesa_bridge.core.payouts.entity import actor_of_key
from mpesa_bridge.core.payouts.ports import PayoutFilter
from mpesa_bridge.core.payouts.public import payout_public, payout_settings_public
from mpesa_bridge.core.payouts.status import PayoutStatus
from mpesa_bridge.core.payouts.validation import validate_payout_create
from mpesa_bridge.core.ports import IdempotencyBinding
from mpesa_bridge.core.projects import Mode, Tenant

router = APIRouter(tags=["payouts"], route_class=ParsedBodyRoute)

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "invalid request (the `param` names the field)"},
    401: {"model": ErrorResponse, "description": "missing or wrong secret key"},
    404: {"model": ErrorResponse, "description": "no such payout for this key's project and mode"},
    429: RATE_LIMITED,
}
_DECIDE: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    403: {"model": ErrorResponse, "description": "approver_is_creator: another key or person must approve"},
    409: {"model": ErrorResponse, "description": "payout_not_pending: it was approved or rejected already"},
}


@router.post(
    "/v1/payouts",
    status_code=201,
    response_model=PayoutPublic,
    responses={
        **_ERRORS,
        **BODY_REFUSED,
        409: {"model": ErrorResponse, "description": "idempotency_key_in_use"},
        422: {
            "model": ErrorResponse,
            "description": "payout_limit_exceeded, daily_payout_limit_exceeded or idempotency_key_reused",
        },
    },
    summary="Send a payout (B2C)",
)
async def create_payout(
    request: Request,
    caller: CallerDep,
    body: Annotated[PayoutCreate, Body()],
    idempotency_key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", description="required: a retry with the same key never pays twice"),
    ] = None,
) -> Response:
    """Records the payout and sends it at once — or, when the project requires approval, holds it
    `pending_approval` until another key or person approves it. The outcome arrives later (Result
    callback, or Transaction Status for an `unknown` one): watch `status` or the `payout.*` events.
    A payout is never sent twice: a lost answer makes it `unknown`, settled by Transaction Status."""
    if idempotency_key is None:
        raise InvalidRequest(
            "An Idempotency-Key header is required to create a payout.",
            code="idempotency_key_required",
            param="Idempotency-Key",
        )
    runtime = request.app.state.runtime
    tenant = caller.tenant

    async def create(binding: IdempotencyBinding | None) -> Response:
        payout_request = validate_payout_create(
            phone=body.phone,
            amount=body.amount,
            command_id=body.command_id,
            remarks=body.remarks,
            occasion=body.occasion,
            metadata=body.metadata,
            limits=runtime.limits,
        )
        payout = await runtime.payouts.create(tenant, actor_of_key(caller.key.id), payout_request, binding)
        return JSONResponse(payout_public(payout), status_code=201)

    async def recover(payout_id: str, _secret: str | None) -> Response:
        return JSONResponse(payout_public(await runtime.payouts.get(tenant, payout_id)), status_code=201)

    scope = f"{tenant.project_id}:{tenant.mode.value}"
    return await idempotent_creation(request, runtime, scope, create, recover)


@router.get("/v1/payouts", response_model=PayoutList, responses=_ERRORS, summary="List payouts, newest first")
async def list_payouts(
    runtime: RuntimeDep,
    tenant: TenantDep,
    status: Annotated[PayoutStatus | None, Query(description="only payouts in this status")] = None,
    starting_after: Annotated[str | None, Query(description="cursor: next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> JSONResponse:
    rows = await runtime.payouts.list(tenant, PayoutFilter(status, starting_after, limit))
    return list_page(list(rows), limit, payout_public)


# Declared before /{payout_id}, which would otherwise take "settings" for an id.
@router.get(
    "/v1/payouts/settings",
    response_model=PayoutSettingsPublic,
    responses={code: _ERRORS[code] for code in (401, 429)},
    summary="The payout rules of this project mode",
)
async def get_payout_settings(runtime: RuntimeDep, tenant: TenantDep) -> JSONResponse:
    rules, settings = await runtime.payouts.rules(tenant)
    return JSONResponse(payout_settings_public(rules, settings))


@router.get("/v1/payouts/{payout_id}", response_model=PayoutPublic, responses=_ERRORS, summary="Read a payout")
async def get_payout(runtime: RuntimeDep, tenant: TenantDep, payout_id: str) -> JSONResponse:
    return JSONResponse(payout_public(await runtime.payouts.get(tenant, payout_id)))


@router.post(
    "/v1/payouts/{payout_id}/approve",
    response_model=PayoutPublic,
    responses={**_DECIDE, **BODY_REFUSED},
    summary="Approve a payout (and send it)",
)
async def approve_payout(runtime: RuntimeDep, caller: CallerDep, payout_id: str) -> JSONResponse:
    """Only a payout `pending_approval`, and only by another key (or a dashboard person) than the one
    that created it. It is sent at once."""
    payout = await runtime.payouts.approve(caller.tenant, payout_id, actor_of_key(caller.key.id))
    return JSONResponse(payout_public(payout))


@router.post(
    "/v1/payouts/{payout_id}/reject",
    response_model=PayoutPublic,
    responses={**_DECIDE, **BODY_REFUSED},
    summary="Reject a payout waiting for approval",
)
async def reject_payout(
    runtime: RuntimeDep, caller: CallerDep, payout_id: str, body: Annotated[PayoutReject | None, Body()] = None
) -> JSONResponse:
    """A payout `pending_approval` becomes `rejected` and is never sent (its creator may withdraw it too)."""
    reason = body.reason if body is not None else None
    payout = await runtime.payouts.reject(caller.tenant, payout_id, actor_of_key(caller.key.id), reason)
    return JSONResponse(payout_public(payout))


@router.put(
    "/v1/admin/projects/{project_id}/payout_settings/{mode}",
    response_model=PayoutSettingsPublic,
    responses={
        400: {"model": ErrorResponse, "description": "invalid settings (the `param` names the field)"},
        401: {"model": ErrorResponse, "description": "missing or wrong admin token"},
        404: {"model": ErrorResponse, "description": "no such project"},
        **BODY_REFUSED,
    },
    dependencies=[AdminDep],
    tags=["admin"],
    summary="Set a project mode's payout approval and limits",
)
async def put_payout_settings(
    runtime: RuntimeDep, project_id: str, mode: Mode, body: Annotated[PayoutSettingsInput, Body()]
) -> JSONResponse:
    rules, settings = await runtime.payouts.put_settings(
        Tenant(project_id, mode),
        approval_required=body.approval_required,
        max_amount=body.max_amount,
        daily_limit=body.daily_limit,
    )
    return JSONResponse(payout_settings_public(rules, settings))
