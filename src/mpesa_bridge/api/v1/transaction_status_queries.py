"""/v1/transaction_status_queries: ask Daraja (Transaction Status) about a transaction (secret key).

    POST  /v1/transaction_status_queries        secret key: by receipt or OriginatorConversationID;
                                               `?wait=N` waits up to N seconds for the Result
    GET   /v1/transaction_status_queries        secret key: newest first, cursor pages
    GET   /v1/transaction_status_queries/{id}   secret key; `?wait=N` too

The Result comes asynchronously to the `status_result` callback; the query is then `completed`
with its parsed `result` (event `transaction_status_query.completed`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request
from starlette.responses import Response

from mpesa_bridge.api.deps import RuntimeDep, TenantDep
from mpesa_bridge.api.idempotency import idempotent_creation
from mpesa_bridge.api.pagination import list_page
from mpesa_bridge.api.responses import JSONResponse
from mpesa_bridge.api.routing import ParsedBodyRoute
from mpesa_bridge.api.schemas import BODY_REFUSED, RATE_LIMITED, ErrorResponse
from mpesa_bridge.api.schemas_payouts import StatusQueryCreate, StatusQueryList, StatusQueryPublic
from mpesa_bridge.core.ports import IdempotencyBinding
from mpesa_bridge.core.status_queries.public import status_query_public
from mpesa_bridge.core.status_queries.service import MAX_WAIT
from mpesa_bridge.core.status_queries.validation import validate_status_query_create

router = APIRouter(tags=["transaction status"], route_class=ParsedBodyRoute)

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "invalid request (the `param` names the field)"},
    401: {"model": ErrorResponse, "description": "missing or wrong secret key"},
    404: {"model": ErrorResponse, "description": "no such query for this key's project and mode"},
    429: RATE_LIMITED,
}
WaitQuery = Annotated[
    float, Query(ge=0, le=MAX_WAIT, description=f"seconds (≤ {MAX_WAIT:g}) to wait for the Result before answering")
]


@router.post(
    "/v1/transaction_status_queries",
    status_code=201,
    response_model=StatusQueryPublic,
    responses={
        **_ERRORS,
        **BODY_REFUSED,
        409: {"model": ErrorResponse, "description": "idempotency_key_in_use"},
        422: {"model": ErrorResponse, "description": "idempotency_key_reused"},
    },
    summary="Ask for a transaction's status",
)
async def create_transaction_status_query(
    request: Request,
    runtime: RuntimeDep,
    tenant: TenantDep,
    body: Annotated[StatusQueryCreate, Body()],
    wait: WaitQuery = 0.0,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", description="retry safely: same key, same body, same answer")
    ] = None,
) -> Response:
    """Asks Daraja's Transaction Status API; the answer arrives asynchronously. The query is `pending`
    until then — or pass `wait` to have this request wait (a few seconds) for it."""

    async def create(binding: IdempotencyBinding | None) -> Response:
        asked = validate_status_query_create(
            transaction_id=body.transaction_id, originator_conversation_id=body.originator_conversation_id
        )
        query = await runtime.status_queries.create(tenant, asked, binding)
        if wait > 0 and not query.status.is_final:
            query = await runtime.status_queries.wait(tenant, query.id, wait)
        return JSONResponse(status_query_public(query), status_code=201)

    async def recover(query_id: str, _secret: str | None) -> Response:
        return JSONResponse(status_query_public(await runtime.status_queries.get(tenant, query_id)), status_code=201)

    scope = f"{tenant.project_id}:{tenant.mode.value}"
    return await idempotent_creation(request, runtime, scope, create, recover)


@router.get(
    "/v1/transaction_status_queries",
    response_model=StatusQueryList,
    responses=_ERRORS,
    summary="List Transaction Status queries, newest first",
)
async def list_transaction_status_queries(
    runtime: RuntimeDep,
    tenant: TenantDep,
    starting_after: Annotated[str | None, Query(description="cursor: next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> JSONResponse:
    return list_page(list(await runtime.status_queries.list(tenant, starting_after, limit)), limit, status_query_public)


@router.get(
    "/v1/transaction_status_queries/{status_query_id}",
    response_model=StatusQueryPublic,
    responses=_ERRORS,
    summary="Read a Transaction Status query",
)
async def get_transaction_status_query(
    runtime: RuntimeDep, tenant: TenantDep, status_query_id: str, wait: WaitQuery = 0.0
) -> JSONResponse:
    if wait > 0:
        return JSONResponse(status_query_public(await runtime.status_queries.wait(tenant, status_query_id, wait)))
    return JSONResponse(status_query_public(await runtime.status_queries.get(tenant, status_query_id)))
