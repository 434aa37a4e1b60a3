"""Live events over Server-Sent Events: one payment's, or a whole project mode's.

    GET /v1/payments/{payment_id}/events   secret key of the payment's project and mode, or the
                                           payment's client secret (`?client_secret=` — what a
                                           browser's EventSource can send — or `Authorization:
                                           Bearer <client secret>`)
    GET /v1/checkout_sessions/{id}/events  the same for one checkout session (its client secret
                                           or a secret key): checkout_session.completed / .expired
    GET /v1/events/stream                  secret key: every event of its project and mode

Resume with `Last-Event-ID` (the header EventSource sends on reconnecting, or `?last_event_id=`):
every stream's first message carries its resume point. Open streams are capped per credential and
per client address (`MPESA_BRIDGE_SSE_MAX_STREAMS_PER_KEY`, `…_PER_ADDRESS`; 429 past either).
Not in the OpenAPI document: a stream is not a request/response operation (see docs/realtime.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from starlette.responses import Response

from mpesa_bridge.api.bearer import bearer_token
from mpesa_bridge.api.deps import CallerDep, RuntimeDep, get_caller
from mpesa_bridge.api.errors import ApiError
from mpesa_bridge.api.net import address_bucket, client_ip
from mpesa_bridge.api.parts import HttpParts, http_parts
from mpesa_bridge.api.v1.checkout_sessions import readable_session
from mpesa_bridge.core.accounts import Caller
from mpesa_bridge.core.checkout.entity import CHECKOUT_SESSION
from mpesa_bridge.core.checkout.public import event_for_client
from mpesa_bridge.core.errors import NotFound
from mpesa_bridge.core.payments.entity import PAYMENT, Payment, Subject
from mpesa_bridge.realtime.bus import Scope
from mpesa_bridge.realtime.sse import (
    EventStream,
    allowed_origin,
    resume_point,
    sse_response,
)
from mpesa_bridge.runtime import Runtime, stream_options

router = APIRouter(tags=["events"])

LastEventIdQuery = Annotated[
    str | None, Query(description="resume after this event (the Last-Event-ID header wins when both are sent)")
]
NO_CREDENTIALS = (
    "Authenticate with a secret key (Authorization: Bearer sk_…) or, for one payment's events, "
    "with its client secret (?client_secret=…)."
)


@router.get("/v1/payments/{payment_id}/events", include_in_schema=False)
async def payment_events(
    request: Request,
    runtime: RuntimeDep,
    payment_id: str,
    last_event_id: LastEventIdQuery = None,
    client_secret: Annotated[str | None, Query(description="the client secret POST /v1/payments returned")] = None,
) -> Response:
    payment, caller = await _readable_payment(request, runtime, payment_id, client_secret)
    scope = Scope(payment.project_id, payment.mode, Subject(PAYMENT, payment.id))
    return await _subject_stream(request, runtime, scope, caller, last_event_id)


@router.get("/v1/checkout_sessions/{session_id}/events", include_in_schema=False)
async def checkout_session_events(
    request: Request,
    runtime: RuntimeDep,
    session_id: str,
    last_event_id: LastEventIdQuery = None,
    client_secret: Annotated[str | None, Query(description="the session's client secret")] = None,
) -> Response:
    session, caller = await readable_session(request, runtime, session_id, client_secret)
    scope = Scope(session.project_id, session.mode, Subject(CHECKOUT_SESSION, session.id))
    # A browser sees the session as its client secret reads it: without the merchant's metadata.
    return await _subject_stream(request, runtime, scope, caller, last_event_id, client_view=event_for_client)


async def _subject_stream(
    request: Request,
    runtime: Runtime,
    scope: Scope,
    caller: Caller | None,
    last_event_id: str | None,
    *,
    client_view: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> Response:
    """One subject's stream, opened with a secret key (`caller`) or with the subject's client secret
    (then each event is shown through `client_view`, if given)."""
    assert scope.subject is not None
    if caller is None:
        credential = f"client secret:{scope.subject.id}"
        return await _stream(request, runtime, scope, last_event_id, None, credential, shown=client_view)
    return await _stream(request, runtime, scope, last_event_id, _opened_by(request, caller), f"key:{caller.key.id}")


@router.get("/v1/events/stream", include_in_schema=False)
async def project_events(
    request: Request, runtime: RuntimeDep, caller: CallerDep, last_event_id: LastEventIdQuery = None
) -> Response:
    scope = Scope(caller.tenant.project_id, caller.tenant.mode.value)
    return await _stream(request, runtime, scope, last_event_id, _opened_by(request, caller), f"key:{caller.key.id}")


@dataclass(frozen=True)
class _OpenedBy:
    """The secret key a stream was opened with, and whether that request was signed."""

    key: str
    signed: bool


def _opened_by(request: Request, caller: Caller) -> _OpenedBy:
    # get_caller checked a signature exactly when the project required one.
    return _OpenedBy(_bearer(request) or "", signed=caller.project.require_signed_requests)


async def _readable_payment(
    request: Request, runtime: Runtime, payment_id: str, client_secret: str | None
) -> tuple[Payment, Caller | None]:
    """The payment, if the caller may read it, and the key's caller (None for a client secret):
    401 for bad credentials, 404 for someone else's payment."""
    if client_secret is None:
        bearer = _bearer(request)
        if bearer is None:
            raise ApiError(401, "authentication_required", NO_CREDENTIALS)
        if bearer.startswith("sk_"):
            caller = await get_caller(request, runtime)
            return await runtime.payments.get(caller.tenant, payment_id), caller
        client_secret = bearer
    payment = await runtime.payments.authenticate_client_secret(client_secret)
    if payment.id != payment_id:  # a client secret opens its own payment only
        raise NotFound(f"No such payment: '{payment_id}'", param="id")
    return payment, None


def _bearer(request: Request) -> str | None:
    return bearer_token(request.headers.get("authorization"))


def _key_check(runtime: Runtime, opened_by: _OpenedBy) -> Callable[[], Awaitable[bool]]:
    """Whether the key that opened a stream may keep it open (`ProjectService.key_still_valid`)."""

    async def still_valid() -> bool:
        return await runtime.projects.key_still_valid(opened_by.key, signed=opened_by.signed)

    return still_valid


def stream_counts(app: FastAPI) -> dict[str, int]:
    """The app's open streams per credential and per address (empty when none is open)."""
    parts: HttpParts | None = getattr(app.state, "http", None)
    return parts.streams.open.counts() if parts is not None else {}


async def _stream(
    request: Request,
    runtime: Runtime,
    scope: Scope,
    last_event_id: str | None,
    opened_by: _OpenedBy | None,
    credential: str,
    *,
    shown: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> Response:
    settings = runtime.settings
    options = stream_options(settings)
    start = await resume_point(runtime.db, scope, request.headers.get("last-event-id") or last_event_id)
    still_valid = _key_check(runtime, opened_by) if opened_by is not None else None
    parts = http_parts(request)
    shared = parts.streams
    # IPv6 clients count per network (MPESA_BRIDGE_RATE_LIMIT_IPV6_PREFIX), like every per-address limit.
    proxies = parts.networks.trusted_proxies
    address = address_bucket(client_ip(request.scope, proxies) or "unknown", settings.rate_limit_ipv6_prefix)
    # Browsers are for client secrets: a stream opened with a secret key gets no CORS header.
    origin = allowed_origin(settings.realtime_origins, request.headers.get("origin")) if opened_by is None else None
    stream = EventStream(
        runtime.db,
        runtime.realtime.bus,
        scope,
        start.cursor,
        options,
        still_valid=still_valid,
        tails=shared.tails,
        resume_id=start.id,
        shown=shown,
    )
    release = shared.open.admit(credential, address)  # last: a refused or failed request holds no place
    return sse_response(stream, options, origin=origin, on_close=release)
