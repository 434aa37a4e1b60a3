"""Webhook endpoints, deliveries and attempts as the API returns them (never a secret)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mpesa_bridge.core.payments.entity import OutboxEvent
from mpesa_bridge.core.payments.public import event_public, iso
from mpesa_bridge.core.webhooks.entity import WebhookAttempt, WebhookDelivery, WebhookEndpoint


def endpoint_public(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "object": "webhook_endpoint",
        "mode": endpoint.mode,
        "url": endpoint.url,
        "enabled_events": list(endpoint.enabled_events),
        "description": endpoint.description,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "disabled_at": iso(endpoint.disabled_at),
        "failing_since": iso(endpoint.failing_since),
        "previous_secret_expires_at": iso(endpoint.previous_secret_expires_at),
        "created_at": iso(endpoint.created_at),
        "updated_at": iso(endpoint.updated_at),
    }


def attempt_public(attempt: WebhookAttempt) -> dict[str, Any]:
    return {
        "id": attempt.id,
        "attempted_at": iso(attempt.attempted_at),
        "succeeded": attempt.succeeded,
        "status_code": attempt.status_code,
        "latency_ms": attempt.latency_ms,
        "response_body": attempt.response_body,
        "error": attempt.error,
    }


def delivery_public(delivery: WebhookDelivery, attempts: Sequence[WebhookAttempt] = ()) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "object": "webhook_delivery",
        "event_id": delivery.event_id,
        "endpoint_id": delivery.endpoint_id,
        "status": str(delivery.status),
        "redelivery": delivery.redelivery,
        "attempt_count": delivery.attempts,
        "next_attempt_at": iso(delivery.next_attempt_at),
        "created_at": iso(delivery.created_at),
        "completed_at": iso(delivery.completed_at),
        "attempts": [attempt_public(a) for a in attempts],
    }


def event_detail_public(
    event: OutboxEvent, deliveries: Sequence[tuple[WebhookDelivery, Sequence[WebhookAttempt]]]
) -> dict[str, Any]:
    """An event as webhooks carry it, plus where it went: its deliveries and their attempts."""
    return {**event_public(event), "deliveries": [delivery_public(d, a) for d, a in deliveries]}
