"""Standard Webhooks signatures: how every delivery is signed.

Each request carries

    webhook-id:        the event id (evt_…) — the same on every retry and redelivery: de-duplicate on it
    webhook-timestamp: when this attempt was signed, in Unix seconds
    webhook-signature: "v1,<base64 HMAC-SHA256 of '<id>.<timestamp>.<body>'>", one per live secret

and receivers verify with any Standard Webhooks library, e.g. `Webhook(secret).verify(body, headers)`.
During a secret rotation's grace period both the new and the previous secret sign, space-separated,
so a receiver holding either one accepts the request.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def generate_secret() -> str:
    """`whsec_` + base64 of 32 random bytes: the format Standard Webhooks libraries accept."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def encode_payload(payload: dict[str, Any]) -> bytes:
    """The body exactly as signed and sent: compact JSON, UTF-8."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def sign_event(signing_secrets: Sequence[str], event_id: str, at: datetime, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt, signed with every given secret."""
    if not signing_secrets:
        raise ValueError("at least one secret signs a webhook")
    text = body.decode()
    signatures = [Webhook(secret).sign(msg_id=event_id, timestamp=at, data=text) for secret in signing_secrets]
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": " ".join(signatures),
    }
