"""Verify the webhooks the bridge sends (Standard Webhooks: `webhook-id`, `webhook-timestamp`,
`webhook-signature`), on the raw body, before trusting or parsing it."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from mpesa_bridge_sdk.errors import WebhookVerificationError
from mpesa_bridge_sdk.models import Event

DEFAULT_TOLERANCE = 300
"""Seconds a delivery's `webhook-timestamp` may be away from this machine's clock (5 minutes)."""


def _key(secret: str) -> bytes:
    encoded = secret.removeprefix("whsec_")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WebhookVerificationError("the webhook secret is not a whsec_… secret") from exc


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    raise WebhookVerificationError(f"missing header {name}")


def sign(secret: str, webhook_id: str, timestamp: int, payload: bytes | str) -> str:
    """The `v1,<base64>` signature the bridge puts in `webhook-signature` for this delivery."""
    body = payload.encode() if isinstance(payload, str) else payload
    message = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(_key(secret), message, hashlib.sha256).digest()).decode()


def verify(
    payload: bytes | str,
    headers: Mapping[str, str],
    secret: str,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: Callable[[], float] = time.time,
) -> Event:
    """Check a delivery and return its event.

    `payload` is the raw request body (bytes as received: do not parse and re-serialise it),
    `headers` the request's headers (any case), `secret` the endpoint's `whsec_…` secret. Raises
    `WebhookVerificationError` when a header is missing, the timestamp is more than `tolerance`
    seconds from `now()` (either way: replays), or no signature in `webhook-signature` matches (during
    a secret rotation it carries one per secret; one match is enough).
    """
    webhook_id = _header(headers, "webhook-id")
    timestamp_text = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature")
    if not (timestamp_text.isascii() and timestamp_text.isdigit()):
        raise WebhookVerificationError("webhook-timestamp is not a number of seconds")
    timestamp = int(timestamp_text)
    if abs(now() - timestamp) > tolerance:
        raise WebhookVerificationError("webhook-timestamp is outside the tolerance window")
    expected = sign(secret, webhook_id, timestamp, payload).encode()
    for candidate in signatures.split(" "):
        if candidate.startswith("v1,") and hmac.compare_digest(expected, candidate.encode("utf-8", "replace")):
            break
    else:
        raise WebhookVerificationError("no matching signature")
    try:
        data: Any = json.loads(payload)
    except ValueError as exc:
        raise WebhookVerificationError("the payload is not JSON") from exc
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        raise WebhookVerificationError("the payload is not an event")
    return Event.from_dict(data)


class Webhooks:
    """`client.webhooks`: the same `verify` as `mpesa_bridge_sdk.webhooks.verify`."""

    @staticmethod
    def verify(
        payload: bytes | str,
        headers: Mapping[str, str],
        secret: str,
        *,
        tolerance: float = DEFAULT_TOLERANCE,
        now: Callable[[], float] = time.time,
    ) -> Event:
        """Check a delivery's Standard Webhooks signature and timestamp; return its event."""
        return verify(payload, headers, secret, tolerance=tolerance, now=now)

    @staticmethod
    def sign(secret: str, webhook_id: str, timestamp: int, payload: bytes | str) -> str:
        """The `v1,<base64>` signature of a delivery (to test your own receiver)."""
        return sign(secret, webhook_id, timestamp, payload)
