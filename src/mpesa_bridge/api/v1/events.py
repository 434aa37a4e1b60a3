"""/v1/events: what happened in this project and mode, where each event was sent, and redelivery."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from mpesa_bridge.api.deps import RuntimeDep, TenantDep
from mpesa_bridge.api.idempotency import idempotent
from mpesa_bridge.api.pagination import aware, list_page
from mpesa_bridge.api.responses import JSONResponse
from mpesa_bridge.api.routing import ParsedBodyRoute
from mpesa_bridge.api.schemas import BODY_REFUSED, RATE_LIMITED, ErrorResponse
from mpesa_bridge.core.errors import InvalidRequest
from mpesa_bridge.core.payments.entity import PAYMENT, Subject
from mpesa_bridge.core.payments.public import event_public
from mpesa_bridge.core.webhooks.ports import EventFilter
from mpesa_bridge.core.webhooks.public import delivery_public, event_detail_public

router = APIRouter(prefix="/v1/events", tags=["events"], route_class=ParsedBodyRoute)

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "invalid request (the `param` names the field)"},
    401: {"model": ErrorResponse, "description": "missing or wrong secret key"},
    404: {"model": ErrorResponse, "description": "no such event (or endpoint) for this key's project and mode"},
    429: RATE_LIMITED,
}


class EventPublic(BaseModel):
    """An event, exactly as webhooks carry it (the body of a delivery)."""

    id: str = Field(examples=["evt_01jz5m3k6q8w2d1c4b7n9p0r5t"])
    object: Literal["event"]
    type: str = Field(examples=["payment.succeeded"])
    created: str
    mode: Literal["test", "live"]
    late_correction: bool = Field(description="true when stronger evidence overturned an earlier final status")
    data: dict[str, Any] = Field(description='{"object": the payment (or webhook endpoint) as it was then}')


class EventList(BaseModel):
    object: Literal["list"]
    data: list[EventPublic]
    has_more: bool
    next_cursor: str | None = Field(description="pass as starting_after to get the next page")


class AttemptPublic(BaseModel):
    id: str
    attempted_at: str
    succeeded: bool
    status_code: int | None
    latency_ms: int
    response_body: str | None = Field(
        description="the first 1 KB of the answer; null when the endpoint's address is not public (loopback, "
        "private): what a private service answers is never kept"
    )
    error: str | None = Field(description="why no usable answer came (timeout, connect_error, url_not_allowed, …)")


class DeliveryPublic(BaseModel):
    id: str
    object: Literal["webhook_delivery"]
    event_id: str
    endpoint_id: str
    status: Literal["pending", "succeeded", "failed", "cancelled"]
    redelivery: bool
    attempt_count: int
    next_attempt_at: str | None
    created_at: str
    completed_at: str | None
    attempts: list[AttemptPublic]


class EventDetail(EventPublic):
    deliveries: list[DeliveryPublic]


class DeliveryList(BaseModel):
    object: Literal["list"]
    data: list[DeliveryPublic]


class Redeliver(BaseModel):
    model_config = ConfigDict(extra="forbid")

    endpoint_id: str | None = Field(
        None, description="one endpoint (enabled, subscribed or not); omitted: every enabled endpoint subscribed"
    )


@router.get("", response_model=EventList, responses=_ERRORS, summary="List events, newest first")
async def list_events(
    runtime: RuntimeDep,
    tenant: TenantDep,
    type: Annotated[str | None, Query(description="only events of this type, e.g. payment.succeeded")] = None,
    subject: Annotated[
        str | None, Query(description="only events about this subject, by its id (pay_… for a payment)")
    ] = None,
    payment: Annotated[str | None, Query(description="only events about this payment id (alias of subject)")] = None,
    created_gte: Annotated[datetime | None, Query(description="created at or after (ISO 8601 with zone)")] = None,
    created_lte: Annotated[datetime | None, Query(description="created at or before (ISO 8601 with zone)")] = None,
    starting_after: Annotated[str | None, Query(description="cursor: next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> JSONResponse:
    """Events are kept 30 days (`MPESA_BRIDGE_EVENT_RETENTION_DAYS`)."""
    query = EventFilter(
        type=type,
        subject=_subject(subject, payment),
        created_gte=aware(created_gte, "created_gte"),
        created_lte=aware(created_lte, "created_lte"),
        starting_after=starting_after,
        limit=limit,
    )
    return list_page(list(await runtime.events.list(tenant, query)), limit, event_public)


def _subject(subject_id: str | None, payment_id: str | None) -> Subject | None:
    """The subject filter: `subject=` names any subject by its prefixed id, `payment=` a payment."""
    if subject_id is not None and payment_id is not None and subject_id != payment_id:
        raise InvalidRequest("Give subject or payment, not two different ids", param="subject")
    if payment_id is not None:
        return Subject(PAYMENT, payment_id)
    if subject_id is None:
        return None
    found = Subject.of_id(subject_id)
    if found is None:
        raise InvalidRequest(f"'{subject_id}' is not the id of an event subject (pay_…)", param="subject")
    return found


@router.get(
    "/{event_id}",
    response_model=EventDetail,
    responses=_ERRORS,
    summary="Read an event, with its deliveries and their attempts",
)
async def get_event(runtime: RuntimeDep, tenant: TenantDep, event_id: str) -> JSONResponse:
    detail = await runtime.events.get(tenant, event_id)
    return JSONResponse(event_detail_public(detail.event, detail.deliveries))


@router.post(
    "/{event_id}/redeliver",
    status_code=201,
    response_model=DeliveryList,
    responses={
        **_ERRORS,
        **BODY_REFUSED,
        200: {
            "model": DeliveryList,
            "description": "nothing new queued: every endpoint asked for already has a pending redelivery of this "
            "event (listed), or no enabled endpoint subscribes to it (empty list)",
        },
        409: {"model": ErrorResponse, "description": "endpoint_disabled, or idempotency_key_in_use"},
        422: {"model": ErrorResponse, "description": "idempotency_key_reused"},
    },
    summary="Send an event again",
)
async def redeliver_event(
    request: Request,
    runtime: RuntimeDep,
    tenant: TenantDep,
    event_id: str,
    body: Annotated[Redeliver | None, Body()] = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Response:
    """Creates new deliveries, sent soon (in order with the payment's other pending deliveries),
    with the same `webhook-id` as the first time, so receivers that de-duplicate skip it if they
    already processed it. At most one redelivery per event and endpoint is pending: an endpoint
    that has one gets no second one, and the list shows the pending one instead. `201` when this
    call queued at least one delivery, `200` when it queued none. The list is empty when no enabled
    endpoint subscribes to the event."""
    endpoint_id = body.endpoint_id if body is not None else None

    async def redeliver() -> Response:
        redelivery = await runtime.events.redeliver(tenant, event_id, endpoint_id)
        data = [delivery_public(d) for d in redelivery.deliveries]
        return JSONResponse({"object": "list", "data": data}, status_code=201 if redelivery.queued else 200)

    return await idempotent(request, runtime, f"{tenant.project_id}:{tenant.mode.value}", redeliver)
