"""The earlier system's two payment calls, for clients that have not moved to /v1 yet.

    POST /api/v1/transactions/stk-push        x-api-key: sk_… (or pk_… where the project allows
                                              client-side amounts); {phoneNumber, amount, description}
    GET  /api/v1/transactions/status/{id}     x-api-key: sk_… (or the pk_… whose push made it)

Off for every project until its owner turns `legacy_api` on (`PATCH /v1/project`, the dashboard's
settings): until then both answer 404, as for a route that does not exist. The work is the /v1
routes' — the same validation, rate limits, guards and outbox events; a push through here is a
payment like any other — only the words differ: the body's camelCase names, the `x-api-key`
header, and answers of the shape `{"success": true, "message": …, "data": {…}}` with the payment's
`transactionId` and an upper-case `status` (PENDING, COMPLETED, FAILED, CANCELLED, EXPIRED). Errors
keep the bridge's error object and add the earlier `success: false` and `message` beside it.
docs/migrating.md puts the two systems side by side.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Header, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from mpesa_bridge.api.bearer import bearer_token
from mpesa_bridge.api.deps import check_signature
from mpesa_bridge.api.errors import ApiError, render_api_error, render_bridge_error, render_validation_error
from mpesa_bridge.api.parts import http_parts
from mpesa_bridge.api.responses import JSONResponse
from mpesa_bridge.api.routing import ParsedBodyRoute
from mpesa_bridge.api.schemas import RATE_LIMITED, CheckoutSessionCreate, ErrorResponse, PaymentPublic
from mpesa_bridge.api.v1.checkout_sessions import open_client_side
from mpesa_bridge.core.errors import BridgeError, InvalidRequest, NotFound, RateLimited
from mpesa_bridge.core.payments.entity import Payment
from mpesa_bridge.core.payments.public import iso, payment_public
from mpesa_bridge.core.payments.status import PaymentStatus
from mpesa_bridge.core.payments.validation import validate_payment_create
from mpesa_bridge.core.phone import mask_phone
from mpesa_bridge.core.projects import Project, Tenant
from mpesa_bridge.runtime import Runtime

PREFIX = "/api/v1/transactions"


class LegacyRoute(ParsedBodyRoute):
    """Errors as the bridge renders them everywhere, with the earlier `success: false` and
    `message` added beside the error object (its clients read those two)."""

    def get_route_handler(self):  # type: ignore[no-untyped-def]
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except BridgeError as exc:
                return _legacy_error(render_bridge_error(request, exc))
            except ApiError as exc:
                return _legacy_error(render_api_error(request, exc))
            except RequestValidationError as exc:  # a body that is not a JSON object
                return _legacy_error(await render_validation_error(request, exc))

        return answer


def _legacy_error(response: Response) -> Response:
    body = orjson.loads(response.body)
    body = {"success": False, "message": body["error"]["message"], **body}
    headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "content-type")}
    return Response(
        orjson.dumps(body), status_code=response.status_code, media_type="application/json", headers=headers
    )


router = APIRouter(prefix=PREFIX, tags=["earlier system"], route_class=LegacyRoute)

# The earlier system's upper-case statuses. `unknown` (the push's answer was lost) is still
# PENDING to its clients: the outcome is not known yet, and reconciliation settles it.
LEGACY_STATUS = {
    PaymentStatus.PENDING: "PENDING",
    PaymentStatus.UNKNOWN: "PENDING",
    PaymentStatus.SUCCEEDED: "COMPLETED",
    PaymentStatus.FAILED: "FAILED",
    PaymentStatus.CANCELLED: "CANCELLED",
    PaymentStatus.EXPIRED: "EXPIRED",
}
DEFAULT_REFERENCE = "Online"  # what the earlier system's pushes showed; a body may send accountReference
DEFAULT_DESCRIPTION = "Payment"
NOT_FOUND_MESSAGE = "Unrecognized request URL."
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "invalid request (`param` names the field, in the earlier names)"},
    401: {"model": ErrorResponse, "description": "missing or wrong x-api-key"},
    403: {"model": ErrorResponse, "description": "a publishable key where client-side amounts are off"},
    404: {"model": ErrorResponse, "description": "no such payment, or the project has not turned legacy_api on"},
    429: RATE_LIMITED,
}
# The earlier names of the fields a refusal may name.
_PARAMS = {"phone": "phoneNumber", "account_reference": "accountReference"}
# x-api-key as the earlier clients send it, or the bridge's own bearer header.
_SECURITY: dict[str, Any] = {"security": [{"ApiKeyHeader": []}, {"SecretKey": []}, {"PublishableKey": []}]}


class LegacyPushRequest(BaseModel):
    """The earlier system's body."""

    model_config = ConfigDict(extra="ignore")  # its clients sent more than it read

    # Required, but checked by the route (api/legacy.py `_require`) so that a missing one is refused in
    # the earlier names with the earlier fields, as every other refusal here.
    phoneNumber: Any = Field(
        None, description="required: the payer's phone, in any Kenyan form", examples=["0708374149"]
    )
    amount: Any = Field(None, description="required: whole shillings", examples=[10])
    description: Any = Field(None, description="≤ 13 characters; default 'Payment'", examples=["Order 42"])
    accountReference: Any = Field(None, description="≤ 12 characters; default 'Online'", examples=["INV001"])


class LegacyTransaction(BaseModel):
    transactionId: str = Field(description="the payment's id (pay_…): GET /v1/payments/{id} reads it too")
    status: str = Field(description="PENDING, COMPLETED, FAILED, CANCELLED or EXPIRED")
    amount: int
    phoneNumber: str = Field(description="masked: 2547****4149")
    description: str
    accountReference: str
    checkoutRequestId: str | None
    merchantRequestId: str | None
    mpesaReceiptNumber: str | None
    resultCode: str | None
    resultDesc: str | None
    createdAt: str
    updatedAt: str


class LegacyAnswer(BaseModel):
    success: bool
    message: str
    data: LegacyTransaction
    payment: PaymentPublic = Field(description="the same payment as /v1 shows it (what to read once you move)")


def legacy_transaction(payment: Payment) -> dict[str, Any]:
    return {
        "transactionId": payment.id,
        "status": LEGACY_STATUS[PaymentStatus(payment.status)],
        "amount": payment.amount,
        "phoneNumber": mask_phone(payment.phone),
        "description": payment.description,
        "accountReference": payment.account_reference,
        "checkoutRequestId": payment.checkout_request_id,
        "merchantRequestId": payment.merchant_request_id,
        "mpesaReceiptNumber": payment.mpesa_receipt_number,
        "resultCode": payment.result_code,
        "resultDesc": payment.result_desc,
        "createdAt": iso(payment.created_at),
        "updatedAt": iso(payment.updated_at),
    }


def _answer(payment: Payment, message: str, *, status_code: int = 200, for_browser: bool = False) -> JSONResponse:
    shown = payment_public(payment)
    if for_browser:  # what a page may see (as the checkout routes show it): no metadata
        shown["metadata"] = None
    body = {"success": True, "message": message, "data": legacy_transaction(payment), "payment": shown}
    return JSONResponse(body, status_code=status_code)


def _key_of(request: Request, x_api_key: str | None) -> str:
    key = (x_api_key or "").strip() or bearer_token(request.headers.get("authorization"))
    if not key:
        raise ApiError(401, "invalid_api_key", "Send your key in the x-api-key header.")
    return key


async def _secret_caller(request: Request, runtime: Runtime, key: str) -> tuple[Tenant, Project]:
    caller = await runtime.projects.authenticate_key(key)
    if caller.project.require_signed_requests:
        await check_signature(request, runtime, caller, key)
    _require_switch(caller.project)
    return caller.tenant, caller.project


def _require_switch(project: Project) -> None:
    # As for a route that does not exist: nothing tells a caller that the project exists.
    if not project.legacy_api:
        raise ApiError(404, "resource_missing", NOT_FOUND_MESSAGE)


@router.post(
    "/stk-push",
    response_model=LegacyAnswer,
    responses={**_ERRORS, 409: {"model": ErrorResponse, "description": "duplicate_in_flight or phone_busy"}},
    summary="The earlier system's STK push (legacy_api projects only)",
    deprecated=True,
    openapi_extra=_SECURITY,
)
async def legacy_stk_push(
    request: Request,
    body: Annotated[LegacyPushRequest, Body()],
    x_api_key: Annotated[str | None, Header(alias="x-api-key", description="sk_… or pk_…")] = None,
) -> JSONResponse:
    """Start an STK Push as `POST /v1/payments` does (a publishable key as `POST /v1/checkout_sessions`
    with `pk_…` and `phone` does: only where client-side amounts are on). Answers 200 with the
    payment, whose outcome arrives later: poll the status route, or watch `transaction:{id}` on
    Socket.IO as before. No Idempotency-Key: the earlier system had none (the duplicate guard and
    the phone lock still refuse a second prompt in flight)."""
    runtime: Runtime = request.app.state.runtime
    key = _key_of(request, x_api_key)
    _require(body)
    try:
        if key.startswith("pk_"):
            payment = await _push_with_publishable_key(request, runtime, key, body)
            return _answer(payment, "STK push sent: the customer is asked for their M-Pesa PIN.", for_browser=True)
        tenant, _ = await _secret_caller(request, runtime, key)
        payment = await _push(request, runtime, tenant, body)
    except InvalidRequest as exc:
        if exc.param in _PARAMS:
            exc.param = _PARAMS[exc.param]
        raise
    return _answer(payment, "STK push sent: the customer is asked for their M-Pesa PIN.")


def _require(body: LegacyPushRequest) -> None:
    for name in ("phoneNumber", "amount"):
        if getattr(body, name) is None:
            raise InvalidRequest(f"{name} is required", code="parameter_missing", param=name)


async def _push(request: Request, runtime: Runtime, tenant: Tenant, body: LegacyPushRequest) -> Payment:
    wanted = validate_payment_create(
        phone=body.phoneNumber,
        amount=body.amount,
        account_reference=DEFAULT_REFERENCE if body.accountReference is None else body.accountReference,
        description=DEFAULT_DESCRIPTION if body.description is None else body.description,
        metadata={"created_by": "legacy_api"},
        limits=runtime.limits,
    )
    limiter = http_parts(request).rate_limiter
    await limiter.check_phone(tenant.project_id, tenant.mode.value, wanted.phone)
    payment = await runtime.payments.create(tenant, wanted, None)
    with contextlib.suppress(RateLimited):  # counted once a push was attempted, as /v1/payments does
        await limiter.hit_phone(tenant.project_id, tenant.mode.value, wanted.phone)
    return payment


async def _push_with_publishable_key(request: Request, runtime: Runtime, key: str, body: LegacyPushRequest) -> Payment:
    caller = await runtime.projects.authenticate_publishable(key)
    _require_switch(caller.project)
    wanted = CheckoutSessionCreate(
        amount=body.amount, phone=body.phoneNumber, description=body.description, reference=body.accountReference
    )
    _, payment = await open_client_side(request, runtime, key, wanted)
    assert payment is not None  # a phone was given: the push went out (or its refusal was raised)
    return payment


@router.get(
    "/status/{transaction_id}",
    response_model=LegacyAnswer,
    responses=_ERRORS,
    summary="The earlier system's status call (legacy_api projects only)",
    deprecated=True,
    openapi_extra=_SECURITY,
)
async def legacy_transaction_status(
    request: Request,
    transaction_id: str,
    x_api_key: Annotated[str | None, Header(alias="x-api-key", description="sk_… or pk_…")] = None,
) -> JSONResponse:
    """The payment as it stands now (`GET /v1/payments/{id}`), in the earlier shape. A publishable
    key reads only the payments pushed with it through a browser (client-side amounts)."""
    runtime: Runtime = request.app.state.runtime
    key = _key_of(request, x_api_key)
    if key.startswith("pk_"):
        caller = await runtime.projects.authenticate_publishable(key)
        _require_switch(caller.project)
        payment = await _browser_payment(runtime, caller.tenant, transaction_id)
        return _answer(payment, _status_message(payment), for_browser=True)
    tenant, _ = await _secret_caller(request, runtime, key)
    try:
        payment = await runtime.payments.get(tenant, transaction_id)
    except NotFound:
        raise ApiError(404, "resource_missing", f"No such transaction: '{transaction_id}'", param="id") from None
    return _answer(payment, _status_message(payment))


async def _browser_payment(runtime: Runtime, tenant: Tenant, payment_id: str) -> Payment:
    """A payment a publishable key may read: one of a browser-opened session of its project mode."""
    missing = ApiError(404, "resource_missing", f"No such transaction: '{payment_id}'", param="id")
    try:
        payment = await runtime.payments.get(tenant, payment_id)
    except NotFound:
        raise missing from None
    if payment.checkout_session_id is None:
        raise missing
    try:
        session = await runtime.checkout.get(tenant, payment.checkout_session_id)
    except NotFound:
        raise missing from None
    if not session.client_side:
        raise missing
    return payment


def _status_message(payment: Payment) -> str:
    status = PaymentStatus(payment.status)
    if status is PaymentStatus.SUCCEEDED:
        return "The payment was completed."
    if status.is_final:
        return payment.failure_message or payment.result_desc or "The payment did not complete."
    return "Waiting for the customer to answer the prompt."
