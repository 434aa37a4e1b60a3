"""/v1/balance_queries: ask Daraja for the short code's balances (Account Balance), read the answers."""

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
from mpesa_bridge.core.balances.public import balance_query_public
from mpesa_bridge.core.balances.service import MAX_WAIT
from mpesa_bridge.core.ports import IdempotencyBinding

router = APIRouter(prefix="/v1/balance_queries", tags=["balance queries"], route_class=ParsedBodyRoute)

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "invalid request (the `param` names the field)"},
    401: {"model": ErrorResponse, "description": "missing or wrong secret key"},
    404: {"model": ErrorResponse, "description": "no such balance query for this key's project and mode"},
    429: RATE_LIMITED,
}


class BalanceQueryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    wait: float | None = Field(
        None,
        ge=0,
        le=MAX_WAIT,
        description=f"wait up to this many seconds (0 to {MAX_WAIT:g}) for Daraja's Result before answering",
        examples=[10],
    )


class AccountBalancePublic(BaseModel):
    name: str = Field(examples=["Utility Account"])
    currency: str = Field(examples=["KES"])
    available: int = Field(description="whole shillings, cents dropped (rounded down)")
    amounts: list[int] = Field(description="the four amounts Daraja sends for the account, whole shillings")


class BalanceQueryPublic(BaseModel):
    id: str = Field(examples=["bq_01jz5m3k6q8w2d1c4b7n9p0r5t"])
    object: Literal["balance_query"]
    mode: Literal["test", "live"]
    status: Literal["pending", "completed", "failed"]
    short_code: str
    accounts: list[AccountBalancePublic]
    failure_code: str | None
    failure_message: str | None
    result_code: str | None
    result_desc: str | None
    conversation_id: str | None
    balances_at: str | None = Field(description="when Daraja read the balances")
    created_at: str
    updated_at: str
    completed_at: str | None


class BalanceQueryList(BaseModel):
    object: Literal["list"]
    data: list[BalanceQueryPublic]
    has_more: bool
    next_cursor: str | None


@router.post(
    "",
    status_code=201,
    response_model=BalanceQueryPublic,
    responses={
        **_ERRORS,
        **BODY_REFUSED,
        409: {"model": ErrorResponse, "description": "idempotency_key_in_use"},
        422: {"model": ErrorResponse, "description": "idempotency_key_reused"},
    },
    summary="Ask Daraja for the short code's balances",
)
async def create_balance_query(
    request: Request,
    runtime: RuntimeDep,
    tenant: TenantDep,
    body: Annotated[BalanceQueryCreate | None, Body()] = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Response:
    """Sends an Account Balance query. Without `wait` it answers at once with a `pending` query;
    the Result completes it later (`balance_query.completed`). With `wait`, it answers as soon as
    the Result came, or after `wait` seconds with the query as it then is."""
    wait = body.wait if body is not None else None

    async def create(binding: IdempotencyBinding | None) -> Response:
        query = await runtime.balance_queries.create(tenant, wait, binding)
        return JSONResponse(balance_query_public(query), status_code=201)

    async def recover(query_id: str, _secret: str | None) -> Response:
        return JSONResponse(balance_query_public(await runtime.balance_queries.get(tenant, query_id)), status_code=201)

    return await idempotent_creation(request, runtime, f"{tenant.project_id}:{tenant.mode.value}", create, recover)


@router.get("", response_model=BalanceQueryList, responses=_ERRORS, summary="List balance queries, newest first")
async def list_balance_queries(
    runtime: RuntimeDep,
    tenant: TenantDep,
    starting_after: Annotated[str | None, Query(description="cursor: next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> JSONResponse:
    rows = await runtime.balance_queries.list(tenant, starting_after, limit)
    return list_page(list(rows), limit, balance_query_public)


@router.get("/{balance_query_id}", response_model=BalanceQueryPublic, responses=_ERRORS, summary="Read a balance query")
async def get_balance_query(runtime: RuntimeDep, tenant: TenantDep, balance_query_id: str) -> JSONResponse:
    return JSONResponse(balance_query_public(await runtime.balance_queries.get(tenant, balance_query_id)))
