"""/v1/expected_payments: payments a merchant expects customers to make to its paybill (docs/c2b.md).

POST /v1/expected_payments               secret key (Idempotency-Key)
GET  /v1/expected_payments               secret key: newest first, ?status=
GET  /v1/expected_payments/{id}          secret key
POST /v1/expected_payments/{id}/cancel   secret key: an open one only
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
from mpesa_bridge.api.v1.c2b import text_or_none
from mpesa_bridge.api.v1.c2b_schemas import ExpectedPaymentCreate, ExpectedPaymentList, ExpectedPaymentPublic
from mpesa_bridge.core.c2b.public import expected_public
from mpesa_bridge.core.c2b.service import ExpectedCreate
from mpesa_bridge.core.errors import InvalidRequest
from mpesa_bridge.core.ports import IdempotencyBinding

router = APIRouter(tags=["expected payments"], route_class=ParsedBodyRoute)

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "invalid request (the `param` names the field)"},
    401: {"model": ErrorResponse, "description": "missing or wrong secret key"},
    404: {"model": ErrorResponse, "description": "no such expected payment for this key's project and mode"},
    429: RATE_LIMITED,
}


@router.post(
    "/v1/expected_payments",
    status_code=201,
    response_model=ExpectedPaymentPublic,
    responses={
        **_ERRORS,
        **BODY_REFUSED,
        409: {"model": ErrorResponse, "description": "idempotency_key_in_use"},
        422: {"model": ErrorResponse, "description": "idempotency_key_reused"},
    },
    summary="Expect a payment",
)
async def create_expected_payment(
    request: Request,
    runtime: RuntimeDep,
    tenant: TenantDep,
    body: Annotated[ExpectedPaymentCreate, Body()],
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", description="retry safely: same key, same body, same answer")
    ] = None,
) -> Response:
    """The first C2B payment with this account number and amount (and a compatible payer, when
    `phone` is given) is matched to it: it becomes `paid`, and `c2b_payment.matched` is sent. An
    unmatched payment that came first is matched at once."""
    reference = text_or_none(body.reference, "reference") or ""
    amount = body.amount
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidRequest("amount must be a whole number of shillings.", param="amount")
    metadata = body.metadata
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidRequest("metadata must be an object.", param="metadata")
    wanted = ExpectedCreate(
        reference=reference,
        amount=amount,
        phone=text_or_none(body.phone, "phone"),
        description=text_or_none(body.description, "description") or "",
        metadata=metadata,
    )

    async def create(binding: IdempotencyBinding | None) -> Response:
        expected = await runtime.c2b.expect(tenant, wanted, binding)
        return JSONResponse(expected_public(expected), status_code=201)

    async def recover(expected_id: str, _secret: str | None) -> Response:
        return JSONResponse(expected_public(await runtime.c2b.expected(tenant, expected_id)), status_code=201)

    scope = f"{tenant.project_id}:{tenant.mode.value}"
    return await idempotent_creation(request, runtime, scope, create, recover)


@router.get(
    "/v1/expected_payments",
    response_model=ExpectedPaymentList,
    responses=_ERRORS,
    summary="List expected payments, newest first",
)
async def list_expected_payments(
    runtime: RuntimeDep,
    tenant: TenantDep,
    status: Annotated[str | None, Query(description="open, paid or cancelled")] = None,
    starting_after: Annotated[str | None, Query(description="cursor: next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> JSONResponse:
    rows = await runtime.c2b.expected_list(tenant, status=status, starting_after=starting_after, limit=limit)
    return list_page(list(rows), limit, expected_public)


@router.get(
    "/v1/expected_payments/{expected_id}",
    response_model=ExpectedPaymentPublic,
    responses=_ERRORS,
    summary="Read an expected payment",
)
async def get_expected_payment(runtime: RuntimeDep, tenant: TenantDep, expected_id: str) -> JSONResponse:
    return JSONResponse(expected_public(await runtime.c2b.expected(tenant, expected_id)))


@router.post(
    "/v1/expected_payments/{expected_id}/cancel",
    response_model=ExpectedPaymentPublic,
    responses={**_ERRORS, 409: {"model": ErrorResponse, "description": "not open (paid or cancelled)"}},
    summary="Cancel an open expected payment",
)
async def cancel_expected_payment(runtime: RuntimeDep, tenant: TenantDep, expected_id: str) -> JSONResponse:
    return JSONResponse(expected_public(await runtime.c2b.cancel_expected(tenant, expected_id)))
