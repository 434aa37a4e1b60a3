"""/v1/c2b: customers paying a till or paybill from their phone (docs/c2b.md).

GET   /v1/c2b/settings                       secret key: the validation rule, merchant URL, default, secret
POST  /v1/c2b/settings                       secret key: change them (only the fields sent)
POST  /v1/c2b/registrations                  secret key: register the URLs for a short code with Daraja
GET   /v1/c2b/registrations                  secret key
GET   /v1/c2b/payments                       secret key: newest first; ?status=unmatched is the review queue
GET   /v1/c2b/payments/{id}                  secret key: with suggestions, validation answers, same-reference payments
POST  /v1/c2b/payments/{id}/match            secret key: match by hand
POST  /v1/c2b/payments/{id}/dismiss          secret key: leave it unmatched for good
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
from mpesa_bridge.api.v1.c2b_schemas import (
    C2BDismiss,
    C2BMatch,
    C2BPaymentDetail,
    C2BPaymentList,
    C2BPaymentPublic,
    C2BRegistrationCreate,
    C2BRegistrationList,
    C2BRegistrationPublic,
    C2BSettingsPublic,
    C2BSettingsUpdate,
)
from mpesa_bridge.core.c2b.public import (
    payment_public,
    registration_public,
    settings_public,
    suggestion_public,
    validation_public,
)
from mpesa_bridge.core.errors import InvalidRequest
from mpesa_bridge.core.ports import IdempotencyBinding

router = APIRouter(tags=["c2b"], route_class=ParsedBodyRoute)

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "invalid request (the `param` names the field)"},
    401: {"model": ErrorResponse, "description": "missing or wrong secret key"},
    404: {"model": ErrorResponse, "description": "no such resource for this key's project and mode"},
    429: RATE_LIMITED,
}
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorResponse, "description": "the payment is already matched or dismissed"}
}


def text_or_none(value: Any, param: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"{param} must be a string.", param=param)
    return value


def flag(value: Any, param: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidRequest(f"{param} must be true or false.", param=param)
    return value


@router.get("/v1/c2b/settings", response_model=C2BSettingsPublic, responses=_ERRORS, summary="Read the C2B settings")
async def get_c2b_settings(runtime: RuntimeDep, tenant: TenantDep) -> JSONResponse:
    """How Daraja's validation calls are answered, and the `signing_secret` that signs the requests
    to `merchant_url` (Standard Webhooks headers; null until the settings are first saved)."""
    settings, secret = await runtime.c2b.settings(tenant)
    return JSONResponse(settings_public(settings, secret))


@router.post(
    "/v1/c2b/settings",
    response_model=C2BSettingsPublic,
    responses={**_ERRORS, **BODY_REFUSED},
    summary="Change the C2B settings",
)
async def update_c2b_settings(
    runtime: RuntimeDep, tenant: TenantDep, body: Annotated[C2BSettingsUpdate, Body()]
) -> JSONResponse:
    """Only the fields sent change. Rule `merchant` needs a `merchant_url`; the bridge asks it and
    waits at most `MPESA_BRIDGE_C2B_VALIDATION_TIMEOUT` seconds before answering by `default_action`."""
    given = body.model_fields_set
    url = text_or_none(body.merchant_url, "merchant_url")
    settings, secret = await runtime.c2b.update_settings(
        tenant,
        validation_rule=text_or_none(body.validation_rule, "validation_rule"),
        merchant_url=url,
        clear_merchant_url="merchant_url" in given and url is None,
        default_action=text_or_none(body.default_action, "default_action"),
        rotate_secret=flag(body.rotate_secret, "rotate_secret"),
    )
    return JSONResponse(settings_public(settings, secret))


@router.post(
    "/v1/c2b/registrations",
    status_code=201,
    response_model=C2BRegistrationPublic,
    responses={
        **_ERRORS,
        **BODY_REFUSED,
        409: {"model": ErrorResponse, "description": "idempotency_key_in_use"},
        422: {"model": ErrorResponse, "description": "idempotency_key_reused"},
        502: {"model": ErrorResponse, "description": "Daraja could not be reached or refused the credentials"},
    },
    summary="Register a short code's C2B URLs with Daraja",
)
async def create_c2b_registration(
    request: Request,
    runtime: RuntimeDep,
    tenant: TenantDep,
    body: Annotated[C2BRegistrationCreate, Body()],
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", description="retry safely: same key, same body, same answer")
    ] = None,
) -> Response:
    """Registers this bridge's own validation and confirmation URLs (each with a fresh secret
    token) for the short code, replacing an earlier registration of it. In production Daraja takes
    a short code's URLs once: delete them on the Daraja portal before registering again."""
    version = body.api_version
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise InvalidRequest("api_version must be 1 or 2.", param="api_version")

    async def create(binding: IdempotencyBinding | None) -> Response:
        registration = await runtime.c2b.register(
            tenant,
            short_code=text_or_none(body.short_code, "short_code"),
            response_type=text_or_none(body.response_type, "response_type") or "Completed",
            validation=flag(body.validation, "validation"),
            api_version=version,
            idempotency=binding,
        )
        return JSONResponse(registration_public(registration), status_code=201)

    async def recover(registration_id: str, _secret: str | None) -> Response:
        registration = await runtime.c2b.registration_by_id(tenant, registration_id)
        return JSONResponse(registration_public(registration), status_code=201)

    scope = f"{tenant.project_id}:{tenant.mode.value}"
    return await idempotent_creation(request, runtime, scope, create, recover)


@router.get(
    "/v1/c2b/registrations",
    response_model=C2BRegistrationList,
    responses=_ERRORS,
    summary="List the short codes' C2B registrations",
)
async def list_c2b_registrations(runtime: RuntimeDep, tenant: TenantDep) -> JSONResponse:
    rows = await runtime.c2b.registrations(tenant)
    return JSONResponse({"object": "list", "data": [registration_public(r) for r in rows]})


@router.get(
    "/v1/c2b/payments",
    response_model=C2BPaymentList,
    responses=_ERRORS,
    summary="List C2B payments, newest first (status=unmatched: the review queue)",
)
async def list_c2b_payments(
    runtime: RuntimeDep,
    tenant: TenantDep,
    status: Annotated[str | None, Query(description="unmatched, matched or dismissed")] = None,
    reference: Annotated[str | None, Query(description="the account number (case and spaces ignored)")] = None,
    starting_after: Annotated[str | None, Query(description="cursor: next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> JSONResponse:
    rows = await runtime.c2b.payments(
        tenant, status=status, reference=reference, starting_after=starting_after, limit=limit
    )
    return list_page(list(rows), limit, payment_public)


@router.get(
    "/v1/c2b/payments/{payment_id}",
    response_model=C2BPaymentDetail,
    responses=_ERRORS,
    summary="Read a C2B payment, with suggestions and its validation answers",
)
async def get_c2b_payment(runtime: RuntimeDep, tenant: TenantDep, payment_id: str) -> JSONResponse:
    """`same_reference` lists every payment of its account number: a customer who paid twice shows
    here (the second one has `duplicate_of`)."""
    payment, suggestions, validations, same = await runtime.c2b.payment_details(tenant, payment_id)
    return JSONResponse(
        {
            **payment_public(payment),
            "suggestions": [suggestion_public(s) for s in suggestions],
            "validations": [validation_public(v) for v in validations],
            "same_reference": [p.id for p in same],
        }
    )


@router.post(
    "/v1/c2b/payments/{payment_id}/match",
    response_model=C2BPaymentPublic,
    responses={**_ERRORS, **BODY_REFUSED, **_CONFLICT},
    summary="Match an unmatched C2B payment by hand",
)
async def match_c2b_payment(
    runtime: RuntimeDep, tenant: TenantDep, payment_id: str, body: Annotated[C2BMatch, Body()]
) -> JSONResponse:
    """Ties the payment to an open expected payment (which becomes `paid`), checkout session or
    payment link; `c2b_payment.matched` is sent."""
    target_type = text_or_none(body.type, "type") or ""
    target_id = text_or_none(body.id, "id") or ""
    payment = await runtime.c2b.match(tenant, payment_id, target_type, target_id)
    return JSONResponse(payment_public(payment))


@router.post(
    "/v1/c2b/payments/{payment_id}/dismiss",
    response_model=C2BPaymentPublic,
    responses={**_ERRORS, **BODY_REFUSED, **_CONFLICT},
    summary="Dismiss an unmatched C2B payment from the review queue",
)
async def dismiss_c2b_payment(
    runtime: RuntimeDep, tenant: TenantDep, payment_id: str, body: Annotated[C2BDismiss | None, Body()] = None
) -> JSONResponse:
    note = text_or_none(body.note, "note") if body is not None else None
    payment = await runtime.c2b.dismiss(tenant, payment_id, note)
    return JSONResponse(payment_public(payment))
