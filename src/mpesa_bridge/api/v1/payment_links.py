"""/v1/payment_links: reusable public URLs that open a checkout session per customer (secret key),
and the QR codes of links and checkout sessions.

    POST  /v1/payment_links                    secret key
    GET   /v1/payment_links                    secret key: newest first, cursor pages
    GET   /v1/payment_links/{id}               secret key: with the link's totals
    PATCH /v1/payment_links/{id}               secret key: title, description, active, expires_at, max_payments
    GET   /v1/payment_links/{id}/qr            secret key: the QR of the link's public URL (svg or png)
    GET   /v1/checkout_sessions/{id}/qr        secret key: the QR of the session's hosted page (svg or png)

The public page itself (`/l/{slug}`) is the checkout adapter's (`checkout/app.py`).
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
from mpesa_bridge.api.schemas import (
    BODY_REFUSED,
    RATE_LIMITED,
    ErrorResponse,
    PaymentLinkCreate,
    PaymentLinkList,
    PaymentLinkPublic,
    PaymentLinkUpdate,
)
from mpesa_bridge.core.links.public import link_public
from mpesa_bridge.core.links.validation import validate_link_changes, validate_link_create
from mpesa_bridge.core.ports import IdempotencyBinding
from mpesa_bridge.qr import QrFormat, qr_response

router = APIRouter(tags=["payment links"], route_class=ParsedBodyRoute)

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "invalid request (the `param` names the field)"},
    401: {"model": ErrorResponse, "description": "missing or wrong secret key"},
    404: {"model": ErrorResponse, "description": "no such payment link for this key's project and mode"},
    429: RATE_LIMITED,
}
_QR: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            "image/svg+xml": {"schema": {"type": "string"}},
            "image/png": {"schema": {"type": "string", "format": "binary"}},
        },
        "description": "the QR code of the public URL",
    }
}
FormatQuery = Annotated[QrFormat, Query(description="svg (default) or png")]


@router.post(
    "/v1/payment_links",
    status_code=201,
    response_model=PaymentLinkPublic,
    responses={
        **_ERRORS,
        **BODY_REFUSED,
        409: {"model": ErrorResponse, "description": "idempotency_key_in_use"},
        422: {"model": ErrorResponse, "description": "idempotency_key_reused"},
    },
    summary="Create a payment link",
)
async def create_payment_link(
    request: Request,
    runtime: RuntimeDep,
    tenant: TenantDep,
    body: Annotated[PaymentLinkCreate, Body()],
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", description="retry safely: same key, same body, same answer")
    ] = None,
) -> Response:
    """Returns the link with its public `url`: share it (or its QR code). Its page shows the link's
    form; each customer who sends it gets a checkout session and the payment prompt. With an
    `Idempotency-Key`, a retry answers with the same link and never creates a second one."""

    async def create(binding: IdempotencyBinding | None) -> Response:
        link_request = validate_link_create(
            title=body.title,
            description=body.description,
            amount=body.amount,
            amount_min=body.amount_min,
            amount_max=body.amount_max,
            active=body.active,
            expires_at=body.expires_at,
            max_payments=body.max_payments,
            collect=body.collect,
            metadata=body.metadata,
            limits=runtime.limits,
            now=runtime.clock.now(),
        )
        link = await runtime.links.create(tenant, link_request, binding)
        return JSONResponse(link_public(link), status_code=201)

    async def recover(link_id: str, _secret: str | None) -> Response:
        # The request that created it died before answering: this link is the answer, as it is now.
        return JSONResponse(link_public(await runtime.links.get(tenant, link_id)), status_code=201)

    scope = f"{tenant.project_id}:{tenant.mode.value}"
    return await idempotent_creation(request, runtime, scope, create, recover)


@router.get(
    "/v1/payment_links", response_model=PaymentLinkList, responses=_ERRORS, summary="List payment links, newest first"
)
async def list_payment_links(
    runtime: RuntimeDep,
    tenant: TenantDep,
    starting_after: Annotated[str | None, Query(description="cursor: next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> JSONResponse:
    rows = await runtime.links.list(tenant, starting_after, limit)
    return list_page(list(rows), limit, link_public)


@router.get(
    "/v1/payment_links/{link_id}",
    response_model=PaymentLinkPublic,
    responses=_ERRORS,
    summary="Read a payment link, with its totals",
)
async def get_payment_link(runtime: RuntimeDep, tenant: TenantDep, link_id: str) -> JSONResponse:
    """`payments_succeeded` and `amount_collected` count the succeeded payments of the sessions the
    link opened. The payments themselves: `GET /v1/checkout_sessions` shows each session's
    `payment_link_id`, and each payment its `checkout_session_id`."""
    link, totals = await runtime.links.get_with_totals(tenant, link_id)
    return JSONResponse(link_public(link, totals))


@router.patch(
    "/v1/payment_links/{link_id}",
    response_model=PaymentLinkPublic,
    responses={**_ERRORS, **BODY_REFUSED},
    summary="Change a payment link",
)
async def update_payment_link(
    runtime: RuntimeDep, tenant: TenantDep, link_id: str, body: Annotated[PaymentLinkUpdate, Body()]
) -> JSONResponse:
    """Only the fields sent change. `active: false` deactivates the link (its page then says so);
    sessions it already opened are not touched."""
    given = {name: getattr(body, name) for name in sorted(body.model_fields_set)}
    changes = validate_link_changes(given, runtime.clock.now())
    link, totals = await runtime.links.update(tenant, link_id, changes)
    return JSONResponse(link_public(link, totals))


@router.get(
    "/v1/payment_links/{link_id}/qr",
    response_class=Response,
    responses={**_ERRORS, **_QR},
    summary="The QR code of a payment link's public URL",
)
async def get_payment_link_qr(
    runtime: RuntimeDep, tenant: TenantDep, link_id: str, format: FormatQuery = "svg"
) -> Response:
    link = await runtime.links.get(tenant, link_id)
    return qr_response(link.url, format, filename=link.id)


@router.get(
    "/v1/checkout_sessions/{session_id}/qr",
    response_class=Response,
    responses={
        **_ERRORS,
        404: {"model": ErrorResponse, "description": "no such checkout session for this key's project and mode"},
        **_QR,
    },
    summary="The QR code of a checkout session's hosted page",
    tags=["checkout sessions"],
)
async def get_checkout_session_qr(
    runtime: RuntimeDep,
    tenant: TenantDep,
    session_id: str,
    format: FormatQuery = "svg",
) -> Response:
    session = await runtime.checkout.get(tenant, session_id)
    return qr_response(session.url, format, filename=session.id)
