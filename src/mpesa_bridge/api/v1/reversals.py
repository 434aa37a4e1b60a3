"""/v1/payments/{id}/reversals and /v1/reversals: reverse a succeeded payment, read reversals."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from mpesa_bridge.api.deps import RuntimeDep, TenantDep
from mpesa_bridge.api.idempotency import idempotent_creation
from mpesa_bridge.api.pagination import list_page
from mpesa_bridge.api.responses import JSONResponse
from mpesa_bridge.api.routing import ParsedBodyRoute
from mpesa_bridge.api.schemas import BODY_REFUSED, RATE_LIMITED, ErrorResponse
from mpesa_bridge.core.ports import IdempotencyBinding
from mpesa_bridge.core.reversals.ports import ReversalFilter
from mpesa_bridge.core.reversals.public import reversal_public

router = APIRouter(prefix="/v1", tags=["reversals"], route_class=ParsedBodyRoute)

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "invalid request (the `param` names the field)"},
    401: {"model": ErrorResponse, "description": "missing or wrong secret key"},
    404: {"model": ErrorResponse, "description": "no such payment or reversal for this key's project and mode"},
    429: RATE_LIMITED,
}


class ReversalCreate(BaseModel):
    """Reverse the whole amount of a succeeded payment (Daraja's Reversal API)."""

    model_config = ConfigDict(extra="forbid")

    remarks: str | None = Field(None, description="2 to 100 characters sent to Daraja", examples=["Order cancelled"])


class ReversalPublic(BaseModel):
    id: str = Field(examples=["rev_01jz5m3k6q8w2d1c4b7n9p0r5t"])
    object: Literal["reversal"]
    mode: Literal["test", "live"]
    payment_id: str
    status: Literal["sending", "sent", "succeeded", "failed", "unknown"]
    amount: int
    currency: Literal["KES"]
    original_receipt: str = Field(description="the payment's M-Pesa receipt")
    receipt: str | None = Field(description="the reversal's own M-Pesa receipt, once it succeeded")
    remarks: str
    failure_code: str | None = Field(description="already_reversed, initiator_invalid, insufficient_balance, …")
    failure_message: str | None
    result_code: str | None
    result_desc: str | None
    conversation_id: str | None
    originator_conversation_id: str | None
    created_at: str
    updated_at: str
    sent_at: str | None
    completed_at: str | None


class ReversalList(BaseModel):
    object: Literal["list"]
    data: list[ReversalPublic]
    has_more: bool
    next_cursor: str | None


@router.post(
    "/payments/{payment_id}/reversals",
    status_code=201,
    response_model=ReversalPublic,
    responses={
        **_ERRORS,
        **BODY_REFUSED,
        409: {
            "model": ErrorResponse,
            "description": "payment_not_succeeded, reversal_in_flight, payment_already_reversed or "
            "idempotency_key_in_use",
        },
        422: {"model": ErrorResponse, "description": "idempotency_key_reused"},
    },
    summary="Reverse a succeeded payment",
)
async def create_reversal(
    request: Request,
    runtime: RuntimeDep,
    tenant: TenantDep,
    payment_id: str,
    body: Annotated[ReversalCreate | None, Body()] = None,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", description="retry safely: same key, same body, same answer")
    ] = None,
) -> Response:
    """Sends Daraja a Reversal of the payment's whole amount and answers at once: `sent` (queued),
    `failed` (refused, or never sent) or `unknown` (sent, answer lost: never sent again). The Result
    comes later: `payment.reversed` (the payment then shows `reversed_at`) or `reversal.failed`."""
    remarks = body.remarks if body is not None else None

    async def create(binding: IdempotencyBinding | None) -> Response:
        reversal = await runtime.reversals.create(tenant, payment_id, remarks, binding)
        return JSONResponse(reversal_public(reversal), status_code=201)

    async def recover(reversal_id: str, _secret: str | None) -> Response:
        return JSONResponse(reversal_public(await runtime.reversals.get(tenant, reversal_id)), status_code=201)

    return await idempotent_creation(request, runtime, f"{tenant.project_id}:{tenant.mode.value}", create, recover)


@router.get("/reversals", response_model=ReversalList, responses=_ERRORS, summary="List reversals, newest first")
async def list_reversals(
    runtime: RuntimeDep,
    tenant: TenantDep,
    payment_id: Annotated[str | None, Query(description="only this payment's reversals")] = None,
    starting_after: Annotated[str | None, Query(description="cursor: next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> JSONResponse:
    query = ReversalFilter(payment_id=payment_id, starting_after=starting_after, limit=limit)
    return list_page(list(await runtime.reversals.list(tenant, query)), limit, reversal_public)


@router.get("/reversals/{reversal_id}", response_model=ReversalPublic, responses=_ERRORS, summary="Read a reversal")
async def get_reversal(runtime: RuntimeDep, tenant: TenantDep, reversal_id: str) -> JSONResponse:
    return JSONResponse(reversal_public(await runtime.reversals.get(tenant, reversal_id)))
