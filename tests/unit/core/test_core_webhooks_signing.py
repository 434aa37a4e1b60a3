"""Webhook secrets and signatures (`core.webhooks.signing`), checked with the standardwebhooks library."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from mpesa_bridge.core.crypto import SecretBox
from mpesa_bridge.core.webhooks.endpoints import secret_context, signing_secrets, validate_event_types
from mpesa_bridge.core.webhooks.entity import WebhookEndpoint
from mpesa_bridge.core.webhooks.errors import InvalidEventType
from mpesa_bridge.core.webhooks.signing import encode_payload, generate_secret, sign_event

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def real_now() -> datetime:
    """standardwebhooks checks timestamps against the real clock (±5 min): read it when signing, not at
    import — a slow suite reaches these tests minutes after collecting them."""
    return datetime.now(UTC).replace(microsecond=0)


def test_secrets_are_whsec_and_32_random_bytes() -> None:
    secrets = {generate_secret() for _ in range(50)}
    assert len(secrets) == 50
    for secret in secrets:
        assert secret.startswith("whsec_") and len(base64.b64decode(secret.removeprefix("whsec_"))) == 32


def test_a_signed_event_verifies_with_the_standard_library() -> None:
    secret = generate_secret()
    body = encode_payload({"id": "evt_1", "object": "event", "data": {"object": {"phone": "2547…", "name": "Wanjirū"}}})
    now = real_now()
    headers = sign_event([secret], "evt_1", now, body)
    assert headers["webhook-id"] == "evt_1" and headers["webhook-timestamp"] == str(int(now.timestamp()))
    assert Webhook(secret).verify(body, headers)["data"]["object"]["name"] == "Wanjirū"
    with pytest.raises(WebhookVerificationError):
        Webhook(generate_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace(b"evt_1", b"evt_2"), headers)
    with pytest.raises(WebhookVerificationError):  # a replayed request, an hour later
        Webhook(secret).verify(body, sign_event([secret], "evt_1", real_now() - timedelta(hours=1), body))


def test_two_secrets_give_two_signatures_each_accepted() -> None:
    old, new = generate_secret(), generate_secret()
    body = encode_payload({"id": "evt_9"})
    headers = sign_event([new, old], "evt_9", real_now(), body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert Webhook(old).verify(body, headers) == Webhook(new).verify(body, headers) == {"id": "evt_9"}
    with pytest.raises(ValueError):
        sign_event([], "evt_9", NOW, body)


def _endpoint(box: SecretBox, current: str, previous: str | None, expires: datetime | None) -> WebhookEndpoint:
    context = secret_context("we_1")
    return WebhookEndpoint(
        id="we_1",
        project_id="proj_1",
        mode="test",
        url="http://127.0.0.1/h",
        enabled_events=["*"],
        description=None,
        enabled=True,
        secret_sealed=box.seal(current, context=context),
        created_at=NOW,
        updated_at=NOW,
        previous_secret_sealed=box.seal(previous, context=context) if previous else None,
        previous_secret_expires_at=expires,
    )


def test_the_previous_secret_signs_only_during_its_grace_period() -> None:
    box = SecretBox([b"k" * 32])
    old, new = generate_secret(), generate_secret()
    endpoint = _endpoint(box, new, old, NOW + timedelta(hours=24))
    assert signing_secrets(endpoint, box, NOW) == [new, old]
    assert signing_secrets(endpoint, box, NOW + timedelta(hours=24)) == [new]
    assert signing_secrets(_endpoint(box, new, None, None), box, NOW) == [new]


@pytest.mark.parametrize(
    ("given", "result"),
    [
        (["*"], ["*"]),
        (["payment.succeeded", "payment.failed", "payment.succeeded"], ["payment.succeeded", "payment.failed"]),
        (["endpoint.disabled"], ["endpoint.disabled"]),
    ],
)
def test_event_type_lists(given: list[str], result: list[str]) -> None:
    assert validate_event_types(given) == result


@pytest.mark.parametrize("given", [[], ["payment.refunded"], ["*", "payment.failed"], ["PAYMENT.SUCCEEDED"]])
def test_bad_event_type_lists(given: list[str]) -> None:
    with pytest.raises(InvalidEventType):
        validate_event_types(given)
