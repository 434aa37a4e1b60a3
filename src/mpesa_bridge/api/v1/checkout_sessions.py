"""/v1/checkout_sessions: what a merchant's server opens (secret key), and what a browser holding the
session's client secret may do with it — read it, pay it, watch it (api/v1/stream.py), nothing else.

    POST /v1/checkout_sessions                 secret key (Idempotency-Key supported), or a publishable
                                               key of a project with client-side amounts on: an
                                               amount chosen in the browser (core/browser.py)
    GET  /v1/checkout_sessions                 secret key: newest first, cursor pages
    GET  /v1/checkout_sessions/{id}            secret key, or the session's client secret
    POST /v1/checkout_sessions/{id}/expire     secret key
    POST /v1/checkout_sessions/{id}/pay        the session's client secret only

A client secret goes in `?client_secret=` or `Authorization: Bearer <client secret>`; a publishable
key in `Authorization: Bearer pk_…` or `X-Api-Key: pk_…` (the earlier system's header). A publishable
key opens this one route and nothing else.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request
from starlette.responses import Response

from mpesa_bridge.api.bearer import bearer_token
from mpesa_bridge.api.deps import RuntimeDep, TenantDep, get_caller
from mpesa_bridge.api.errors import ApiError
from mpesa_bridge.api.idempotency import idempotent_creation
from mpesa_bridge.api.net import client_ip
from mpesa_bridge.api.pagination import list_page
from mpesa_bridge.api.parts import http_parts
from mpesa_bridge.api.ratelimit import RateLimiter
from mpesa_bridge.api.responses import JSONResponse
from mpesa_bridge.api.routing import ParsedBodyRoute
from mpesa_bridge.api.schemas import (
    BODY_REFUSED,
    RATE_LIMITED,
    CheckoutSessionCreate,
    CheckoutSessionList,
    CheckoutSessionPay,
    CheckoutSessionPublic,
    ErrorResponse,
)
from mpesa_bridge.core.accounts import Caller
from mpesa_bridge.core.browser import check_client_side_amount
from mpesa_bridge.core.checkout.entity import CheckoutSession
from mpesa_bridge.core.checkout.public import session_for_client, session_public
from mpesa_bridge.core.checkout.validation import validate_checkout_create
from mpesa_bridge.core.errors import InvalidRequest, NotFound, RateLimited
from mpesa_bridge.core.payments.entity import Payment
from mpesa_bridge.core.phone import normalise_phone
from mpesa_bridge.core.ports import IdempotencyBinding
from mpesa_bridge.runtime import Runtime

router = APIRouter(prefix="/v1/checkout_sessions", tags=["checkout sessions"], route_class=ParsedBodyRoute)

NO_CREDENTIALS = (
    "Authenticate with a secret key (Authorization: Bearer sk_…) or with the checkout session's client secret "
    "(?client_secret=… or Authorization: Bearer <client secret>)."
)
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "invalid request (the `param` names the field)"},
    401: {"model": ErrorResponse, "description": "missing or wrong secret key"},
    404: {"model": ErrorResponse, "description": "no such checkout session for this key's project and mode"},
    429: RATE_LIMITED,
}
ClientSecretQuery = Annotated[
    str | None,
    Query(description="the session's client secret (or send it as Authorization: Bearer <client secret>)"),
]


@router.post(
    "",
    status_code=201,
    response_model=CheckoutSessionPublic,
    responses={
        **_ERRORS,
        **BODY_REFUSED,
        403: {
            "model": ErrorResponse,
            "description": "client_side_amounts_disabled (a publishable key, for a project that did not turn on "
            "client-side amounts), or origin_not_allowed (a page on a site not in the project's allowed_origins)",
        },
        409: {"model": ErrorResponse, "description": "idempotency_key_in_use"},
        422: {"model": ErrorResponse, "description": "idempotency_key_reused"},
    },
    summary="Open a checkout session (secret key, or publishable key with client-side amounts)",
    openapi_extra={"security": [{"SecretKey": []}, {"PublishableKey": []}, {"PublishableKeyHeader": []}]},
)
async def create_checkout_session(
    request: Request,
    body: Annotated[CheckoutSessionCreate, Body()],
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", description="retry safely: same key, same body, same answer")
    ] = None,
) -> Response:
    """Returns the session with its `client_secret` (shown once) and the hosted page's `url`. Give the
    client secret to the customer's browser: it may read this session, pay it and watch it.

    **With a publishable key** (`Authorization: Bearer pk_…` or `X-Api-Key: pk_…`), from a browser:
    only for a project whose owner turned on *client-side amounts* (else 403
    `client_side_amounts_disabled`). Send `amount` (the browser's choice, within the payment limits
    and the project's `client_side_amount_max`), optionally `reference`, `description` and `phone`
    (the prompt goes out at once). The answer is what a browser may see: no `metadata`. Rate-limited
    per client address and, for the prompt, per phone (429 with `Retry-After`)."""
    runtime: Runtime = request.app.state.runtime
    publishable = publishable_key_of(request)
    if publishable is not None:
        return await _create_client_side(request, runtime, publishable, body, idempotency_key)
    if body.phone is not None:
        raise InvalidRequest(
            "phone is only for a publishable key: open the session, then pay it (POST …/pay) from the browser.",
            code="parameter_not_allowed",
            param="phone",
        )
    caller = await get_caller(request, runtime)
    tenant = caller.tenant

    async def create(binding: IdempotencyBinding | None) -> Response:
        checkout = validate_checkout_create(
            amount=body.amount,
            amount_min=body.amount_min,
            amount_max=body.amount_max,
            reference=body.reference,
            description=body.description,
            metadata=body.metadata,
            expires_at=body.expires_at,
            success_url=body.success_url,
            cancel_url=body.cancel_url,
            limits=runtime.limits,
            now=runtime.clock.now(),
        )
        session = await runtime.checkout.create(tenant, checkout, binding)
        return JSONResponse(session_public(session), status_code=201)

    async def recover(session_id: str, client_secret: str | None) -> Response:
        session = await runtime.checkout.get(tenant, session_id)
        session.client_secret = client_secret
        return JSONResponse(session_public(session), status_code=201)

    scope = f"{tenant.project_id}:{tenant.mode.value}"
    return await idempotent_creation(request, runtime, scope, create, recover)


def publishable_key_of(request: Request) -> str | None:
    """The publishable key a request carries (`Authorization: Bearer pk_…` or `X-Api-Key: pk_…`), if any."""
    bearer = bearer_token(request.headers.get("authorization"))
    if bearer is not None:
        return bearer if bearer.startswith("pk_") else None
    header = request.headers.get("x-api-key", "").strip()
    return header if header.startswith("pk_") else None


_SECRET_KEY_ONLY = ("amount_min", "amount_max", "metadata", "expires_at", "success_url", "cancel_url")
CLIENT_SIDE_REFERENCE = "Online"


async def _create_client_side(
    request: Request, runtime: Runtime, key: str, body: CheckoutSessionCreate, idempotency_key: str | None
) -> Response:
    """The earlier system's call: a publishable key and an amount chosen in the browser."""
    if idempotency_key is not None:
        raise InvalidRequest(
            "Idempotency-Key is for secret keys: a browser opens a new session per try.",
            code="parameter_not_allowed",
            param="Idempotency-Key",
        )
    for name in _SECRET_KEY_ONLY:
        if getattr(body, name) is not None:
            raise InvalidRequest(
                f"{name} needs a secret key: with a publishable key send amount, reference, description and phone.",
                code="parameter_not_allowed",
                param=name,
            )
    if body.amount is None:
        raise InvalidRequest("amount is required", code="parameter_missing", param="amount")
    session, payment = await open_client_side(request, runtime, key, body)
    secret = session.client_secret
    shown = session_for_client(session, payment)
    shown["client_secret"] = secret
    return JSONResponse(shown, status_code=201)


async def open_client_side(
    request: Request, runtime: Runtime, key: str, body: CheckoutSessionCreate
) -> tuple[CheckoutSession, Payment | None]:
    """Open a checkout session for the browser's amount with a publishable key and, given a phone,
    push at once: (the session, its payment or None). Also the earlier system's stk-push route's
    publishable path (api/legacy.py)."""
    caller = await runtime.projects.authenticate_publishable(key)
    now = runtime.clock.now()
    checkout = validate_checkout_create(
        amount=body.amount,
        amount_min=None,
        amount_max=None,
        reference=CLIENT_SIDE_REFERENCE if body.reference is None else body.reference,
        description=body.description,
        metadata=None,
        expires_at=None,
        success_url=None,
        cancel_url=None,
        limits=runtime.limits,
        now=now,
    )
    assert checkout.amount is not None  # a fixed amount: the browser's choice
    check_client_side_amount(caller.project, checkout.amount)
    phone = normalise_phone(body.phone) if body.phone is not None else None
    parts = http_parts(request)
    limiter = parts.rate_limiter
    address = client_ip(request.scope, parts.networks.trusted_proxies) or "unknown"
    if phone is not None:  # refuse before opening anything when the prompt could not go out
        await _check_phone_limits(limiter, caller.tenant.project_id, caller.tenant.mode.value, phone, client_side=True)
    await limiter.hit_browser_create(address)
    session = await runtime.checkout.create(caller.tenant, checkout, client_side=True)
    secret = session.client_secret
    payment = None
    if phone is not None:
        pushed = await runtime.checkout.pay(session, phone=phone, amount=None)
        await _count_phone(limiter, session, phone)
        session, payment = await runtime.checkout.reread_with_payment(session, pushed.id)
        session.client_secret = secret
    return session, payment


async def _check_phone_limits(
    limiter: RateLimiter, project_id: str, mode: str, phone: str, *, client_side: bool
) -> None:
    await limiter.check_phone(project_id, mode, phone)
    if client_side:
        await limiter.check_browser_phone(project_id, mode, phone)


async def _count_phone(limiter: RateLimiter, session: CheckoutSession, phone: str) -> None:
    """Counted once a push was attempted, as POST /v1/payments does."""
    with contextlib.suppress(RateLimited):
        await limiter.hit_phone(session.project_id, session.mode, phone)
    if session.client_side:
        with contextlib.suppress(RateLimited):
            await limiter.hit_browser_phone(session.project_id, session.mode, phone)


@router.get("", response_model=CheckoutSessionList, responses=_ERRORS, summary="List checkout sessions, newest first")
async def list_checkout_sessions(
    runtime: RuntimeDep,
    tenant: TenantDep,
    starting_after: Annotated[str | None, Query(description="cursor: next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> JSONResponse:
    rows = await runtime.checkout.list(tenant, starting_after, limit)
    return list_page(list(rows), limit, session_public)


@router.get(
    "/{session_id}",
    response_model=CheckoutSessionPublic,
    responses={**_ERRORS, 401: {"model": ErrorResponse, "description": "missing or wrong key or client secret"}},
    summary="Read a checkout session (secret key or client secret)",
    openapi_extra={"security": [{"SecretKey": []}, {"ClientSecret": []}]},  # either one
)
async def get_checkout_session(
    request: Request, runtime: RuntimeDep, session_id: str, client_secret: ClientSecretQuery = None
) -> JSONResponse:
    """With a secret key: the session as the merchant sees it. With its client secret: the same
    without `metadata`. Both carry the latest payment's status, its phone masked."""
    found, caller = await readable_session(request, runtime, session_id, client_secret)
    session, payment = await runtime.checkout.with_latest_payment(found)
    render = session_public if caller is not None else session_for_client
    return JSONResponse(render(session, payment))


@router.post(
    "/{session_id}/expire",
    response_model=CheckoutSessionPublic,
    responses={
        **_ERRORS,
        **BODY_REFUSED,
        409: {
            "model": ErrorResponse,
            "description": "checkout_session_not_open, or checkout_session_payment_in_progress",
        },
    },
    summary="Expire an open checkout session now",
)
async def expire_checkout_session(runtime: RuntimeDep, tenant: TenantDep, session_id: str) -> JSONResponse:
    """No payment can be started for it any more; `checkout_session.expired` goes out. Refused while a
    payment of the session is in flight (its outcome is awaited first)."""
    return JSONResponse(session_public(await runtime.checkout.expire(tenant, session_id)))


@router.post(
    "/{session_id}/pay",
    response_model=CheckoutSessionPublic,
    responses={
        **_ERRORS,
        **BODY_REFUSED,
        401: {"model": ErrorResponse, "description": "missing or wrong client secret"},
        409: {
            "model": ErrorResponse,
            "description": "checkout_session_payment_in_progress, checkout_session_complete, "
            "checkout_session_expired, duplicate_in_flight or phone_busy",
        },
    },
    summary="Pay a checkout session (client secret): an STK Push to the customer's phone",
    openapi_extra={"security": [{"ClientSecret": []}]},
)
async def pay_checkout_session(
    request: Request,
    runtime: RuntimeDep,
    session_id: str,
    body: Annotated[CheckoutSessionPay, Body()],
    client_secret: ClientSecretQuery = None,
) -> JSONResponse:
    """Sends the prompt and answers at once with the session and its new payment; watch the session
    (`GET …/events`, or read it again) for the outcome. After a failed or cancelled payment, pay
    again; while one is in flight, or once the session is complete or expired, this is refused."""
    session = await _session_of_client_secret(request, runtime, session_id, client_secret)
    phone = normalise_phone(body.phone)
    limiter = http_parts(request).rate_limiter
    await _check_phone_limits(limiter, session.project_id, session.mode, phone, client_side=session.client_side)
    payment = await runtime.checkout.pay(session, phone=phone, amount=body.amount)
    await _count_phone(limiter, session, phone)
    return JSONResponse(session_for_client(*await runtime.checkout.reread_with_payment(session, payment.id)))


async def readable_session(
    request: Request, runtime: Runtime, session_id: str, client_secret: str | None
) -> tuple[CheckoutSession, Caller | None]:
    """The session, if the caller may read it, and the key's caller (None for a client secret):
    401 for bad credentials, 404 for someone else's session."""
    if client_secret is None:
        bearer = bearer_token(request.headers.get("authorization"))
        if bearer is None:
            raise ApiError(401, "authentication_required", NO_CREDENTIALS)
        if bearer.startswith("sk_"):
            caller = await get_caller(request, runtime)
            return await runtime.checkout.get(caller.tenant, session_id), caller
        client_secret = bearer
    return await _by_client_secret(runtime, session_id, client_secret), None


async def _session_of_client_secret(
    request: Request, runtime: Runtime, session_id: str, client_secret: str | None
) -> CheckoutSession:
    secret = client_secret or bearer_token(request.headers.get("authorization"))
    if secret is None:
        raise ApiError(401, "authentication_required", "Authenticate with the checkout session's client secret.")
    return await _by_client_secret(runtime, session_id, secret)


async def _by_client_secret(runtime: Runtime, session_id: str, secret: str) -> CheckoutSession:
    session = await runtime.checkout.authenticate_client_secret(secret)
    if session.id != session_id:  # a client secret opens its own session only
        raise NotFound(f"No such checkout session: '{session_id}'", param="id")
    return session
