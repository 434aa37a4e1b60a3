"""/v1/payments: start an STK Push, read payments and their daily totals, ask Daraja now."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request
from starlette.responses import Response

from mpesa_bridge.api.deps import CallerDep, RuntimeDep, TenantDep
from mpesa_bridge.api.idempotency import idempotent_creation
from mpesa_bridge.api.pagination import aware, list_page
from mpesa_bridge.api.parts import http_parts
from mpesa_bridge.api.responses import JSONResponse
from mpesa_bridge.api.routing import ParsedBodyRoute
from mpesa_bridge.api.schemas import (
    BODY_REFUSED,
    RATE_LIMITED,
    ErrorResponse,
    EvidenceList,
    PaymentCreate,
    PaymentList,
    PaymentPublic,
    PaymentTotals,
)
from mpesa_bridge.core.errors import RateLimited
from mpesa_bridge.core.payments.public import iso, payment_public
from mpesa_bridge.core.payments.status import PaymentStatus
from mpesa_bridge.core.payments.totals import DEFAULT_DAYS, MAX_DAYS, totals_public
from mpesa_bridge.core.payments.validation import validate_payment_create
from mpesa_bridge.core.phone import normalise_phone
from mpesa_bridge.core.ports import IdempotencyBinding, PaymentFilter
from mpesa_bridge.runtime import Runtime

router = APIRouter(prefix="/v1/payments", tags=["payments"], route_class=ParsedBodyRoute)

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "invalid request (the `param` names the field)"},
    401: {"model": ErrorResponse, "description": "missing or wrong secret key"},
    404: {"model": ErrorResponse, "description": "no such payment for this key's project and mode"},
    429: RATE_LIMITED,
}


@router.post(
    "",
    status_code=201,
    response_model=PaymentPublic,
    responses={
        **_ERRORS,
        409: {"model": ErrorResponse, "description": "duplicate_in_flight, phone_busy or idempotency_key_in_use"},
        413: {"model": ErrorResponse},
        415: {"model": ErrorResponse},
        422: {"model": ErrorResponse, "description": "idempotency_key_reused"},
        429: {"model": ErrorResponse, "description": "rate limited (see Retry-After)"},
    },
    summary="Start an STK Push payment",
)
async def create_payment(
    request: Request,
    caller: CallerDep,
    body: Annotated[PaymentCreate, Body()],
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", description="retry safely: same key, same body, same answer")
    ] = None,
) -> Response:
    """Records the payment, sends the prompt to the customer's phone and returns at once.

    The outcome arrives later (callback or reconciliation); watch `status`. A push Daraja refuses
    returns a `failed` payment with `failure_code`; one whose answer was lost returns `unknown`.
    With an `Idempotency-Key`, a retry of the same request returns the same answer and never
    prompts the customer twice."""
    # The hot route asks FastAPI for one dependency (the caller; the runtime is the app's), not a
    # chain of three: fewer dependencies solved on every payment.
    runtime: Runtime = request.app.state.runtime
    tenant = caller.tenant

    async def create(binding: IdempotencyBinding | None) -> Response:
        # Validated inside, so that a refusal is remembered under the Idempotency-Key too.
        payment_request = validate_payment_create(
            phone=body.phone,
            amount=body.amount,
            account_reference=body.account_reference,
            description=body.description,
            metadata=body.metadata,
            limits=runtime.limits,
        )
        limiter = http_parts(request).rate_limiter
        await limiter.check_phone(tenant.project_id, tenant.mode.value, payment_request.phone)
        payment = await runtime.payments.create(tenant, payment_request, binding)
        # Counted once a push was attempted: refusals (409, 400) do not use up the allowance.
        with contextlib.suppress(RateLimited):
            await limiter.hit_phone(tenant.project_id, tenant.mode.value, payment_request.phone)
        return JSONResponse(payment_public(payment), status_code=201)

    async def recover(payment_id: str, client_secret: str | None) -> Response:
        # The request that created it died before answering: this payment is the answer, as it is now.
        payment = await runtime.payments.get(tenant, payment_id)
        payment.client_secret = client_secret
        return JSONResponse(payment_public(payment), status_code=201)

    scope = f"{tenant.project_id}:{tenant.mode.value}"
    return await idempotent_creation(request, runtime, scope, create, recover)


@router.get("", response_model=PaymentList, responses=_ERRORS, summary="List payments, newest first")
async def list_payments(
    runtime: RuntimeDep,
    tenant: TenantDep,
    status: Annotated[PaymentStatus | None, Query(description="only payments in this status")] = None,
    phone: Annotated[str | None, Query(description="payer phone in any Kenyan form")] = None,
    reference: Annotated[str | None, Query(description="exact account_reference")] = None,
    created_gte: Annotated[datetime | None, Query(description="created at or after (ISO 8601 with zone)")] = None,
    created_lte: Annotated[datetime | None, Query(description="created at or before (ISO 8601 with zone)")] = None,
    starting_after: Annotated[str | None, Query(description="cursor: next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> JSONResponse:
    query = PaymentFilter(
        status=status,
        phone=normalise_phone(phone) if phone is not None else None,
        account_reference=reference,
        created_gte=aware(created_gte, "created_gte"),
        created_lte=aware(created_lte, "created_lte"),
        starting_after=starting_after,
        limit=limit,
    )
    return list_page(list(await runtime.payments.list(tenant, query)), limit, payment_public)


# Declared before /{payment_id}, which would otherwise take "totals" for an id.
@router.get(
    "/totals",
    response_model=PaymentTotals,
    responses={code: _ERRORS[code] for code in (400, 401, 429)},
    summary="Daily totals, by Africa/Nairobi day",
)
async def get_payment_totals(
    runtime: RuntimeDep,
    tenant: TenantDep,
    days: Annotated[
        int | None,
        Query(ge=1, le=MAX_DAYS, description=f"the last N Nairobi days, today included (default {DEFAULT_DAYS})"),
    ] = None,
    created_gte: Annotated[
        datetime | None, Query(description="instead of days: from this time (ISO 8601 with zone)")
    ] = None,
    created_lte: Annotated[
        datetime | None, Query(description="instead of days: up to this time (default: now)")
    ] = None,
) -> JSONResponse:
    """Per Kenyan calendar day (Africa/Nairobi, UTC+3), the payments created that day: how many, how
    many are in each status now, and the sum of the succeeded ones in shillings. Every day of the
    window is listed, oldest first. At most 366 days at a time."""
    window, totals = await runtime.payments.daily_totals(
        tenant,
        days=days,
        created_gte=aware(created_gte, "created_gte"),
        created_lte=aware(created_lte, "created_lte"),
    )
    return JSONResponse(totals_public(window, totals))


@router.get("/{payment_id}", response_model=PaymentPublic, responses=_ERRORS, summary="Read a payment")
async def get_payment(runtime: RuntimeDep, tenant: TenantDep, payment_id: str) -> JSONResponse:
    return JSONResponse(payment_public(await runtime.payments.get(tenant, payment_id)))


@router.post(
    "/{payment_id}/refresh",
    response_model=PaymentPublic,
    responses={**_ERRORS, **BODY_REFUSED},
    summary="Ask Daraja (STK Query) now",
)
async def refresh_payment(runtime: RuntimeDep, tenant: TenantDep, payment_id: str) -> JSONResponse:
    """Queries Daraja for this payment's outcome and applies it under the usual evidence rules
    (a query never overrides a callback). Daraja throttles queries; do not poll this in a loop."""
    return JSONResponse(payment_public(await runtime.payments.refresh(tenant, payment_id)))


@router.get(
    "/{payment_id}/evidence",
    response_model=EvidenceList,
    responses=_ERRORS,
    summary="Every outcome report received for a payment",
)
async def get_payment_evidence(runtime: RuntimeDep, tenant: TenantDep, payment_id: str) -> JSONResponse:
    rows = await runtime.payments.evidence(tenant, payment_id)
    data = [
        {
            "id": e.id,
            "source": e.source,
            "verdict": e.verdict,
            "result_code": e.result_code,
            "result_desc": e.result_desc,
            "callback_id": e.callback_id,
            "note": e.note,
            "created_at": iso(e.created_at),
        }
        for e in rows
    ]
    return JSONResponse({"object": "list", "data": data})
