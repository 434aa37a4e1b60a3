"""The Python SDK's signatures: request signing checked against the bridge's own `verify`
(`core/signing.py`), and `webhooks.verify` against Standard Webhooks vectors."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from mpesa_bridge.core.errors import AuthenticationFailed
from mpesa_bridge.core.signing import MemoryReplayGuard, verify
from mpesa_bridge_sdk import Client, WebhookVerificationError, sign_request, webhooks

KEY = "sk_test_" + "B" * 32
NOW = 1_767_225_600


def test_sign_request_is_the_readme_formula() -> None:
    expected = hmac.new(b"mbsig_x", b"1700000000\nPOST\n/v1/payments?a=1\n{}", hashlib.sha256).hexdigest()
    assert sign_request("mbsig_x", "1700000000", "post", "/v1/payments?a=1", b"{}") == f"v1={expected}"


def sent(**options: Any) -> list[httpx.Request]:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "POST":
            return httpx.Response(201, json={"id": "we_1", "object": "webhook_endpoint"})
        return httpx.Response(200, json={"object": "list", "data": [], "has_more": False, "next_cursor": None})

    http = httpx.Client(transport=httpx.MockTransport(answer))
    with Client(KEY, base_url="http://bridge.test", http_client=http, **options) as sdk:
        sdk.payments.list(status="failed", phone="+254 708 374149", limit=5)
        sdk.webhook_endpoints.create(url="https://shop.example/h", enabled_events=["*"])
    http.close()
    return seen


@pytest.mark.parametrize(
    ("options", "secret"),
    [({"signing_secret": "mbsig_abc"}, "mbsig_abc"), ({"sign_requests": True}, KEY)],
    ids=["signing_secret", "secret_key"],
)
async def test_signed_requests_pass_the_bridges_own_verification(options: dict[str, Any], secret: str) -> None:
    guard = MemoryReplayGuard()
    for request in sent(**options):
        path = request.url.raw_path.decode()
        timestamp = int(request.headers["mb-timestamp"])
        headers = {k.lower(): v for k, v in request.headers.items()}
        await verify(secret, headers, request.method, path, request.content, now=timestamp, tolerance=300, replay=guard)
    # and a tampered body does not
    request = sent(**options)[1]
    headers = {k.lower(): v for k, v in request.headers.items()}
    with pytest.raises(AuthenticationFailed):
        await verify(
            secret,
            headers,
            "POST",
            request.url.raw_path.decode(),
            request.content + b" ",
            now=int(headers["mb-timestamp"]),
            tolerance=300,
            replay=MemoryReplayGuard(),
        )


def test_unsigned_by_default_and_never_when_told() -> None:
    for request in sent() + sent(sign_requests=False):
        assert "mb-signature" not in request.headers


def test_the_client_starts_signing_when_the_bridge_asks_for_signatures() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if "mb-signature" not in request.headers:
            error = {"type": "authentication_error", "code": "signature_missing", "message": "m", "request_id": "r"}
            return httpx.Response(401, json={"error": error})
        return httpx.Response(200, json={"id": "pay_1", "object": "payment"})

    http = httpx.Client(transport=httpx.MockTransport(answer))
    with Client(KEY, base_url="http://b.test", http_client=http) as sdk:
        sdk.payments.retrieve("pay_1")
        sdk.payments.retrieve("pay_1")
    http.close()
    assert ["mb-signature" in r.headers for r in seen] == [False, True, True]


SECRET = "whsec_" + base64.b64encode(b"a secret of thirty-two bytes!!!!").decode()
BODY = json.dumps({"id": "evt_1", "object": "event", "type": "payment.succeeded", "data": {"object": {"id": "pay_1"}}})


def signed_headers(secret: str = SECRET, timestamp: int = NOW, body: str = BODY) -> dict[str, str]:
    signature = Webhook(secret).sign("evt_1", datetime.fromtimestamp(timestamp, UTC), body)
    return {"Webhook-Id": "evt_1", "Webhook-Timestamp": str(timestamp), "Webhook-Signature": signature}


def test_verify_accepts_what_standard_webhooks_signs_and_returns_the_event() -> None:
    event = webhooks.verify(BODY.encode(), signed_headers(), SECRET, now=lambda: NOW)
    assert event.id == "evt_1" and event.type == "payment.succeeded" and event.subject == {"id": "pay_1"}
    assert webhooks.sign(SECRET, "evt_1", NOW, BODY) == signed_headers()["Webhook-Signature"]


def test_sign_and_verify_the_standard_webhooks_published_vector() -> None:
    # The example of the Standard Webhooks specification (secret, id, timestamp, body -> signature).
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = '{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert webhooks.sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == expected
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": expected,
    }
    with pytest.raises(WebhookVerificationError, match="not an event"):  # signed right, but no event id
        webhooks.verify(body, headers, secret, now=lambda: 1614265330.0)
    headers["webhook-signature"] = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OF="
    with pytest.raises(WebhookVerificationError, match="no matching signature"):
        webhooks.verify(body, headers, secret, now=lambda: 1614265330.0)


def test_verify_during_a_rotation_accepts_either_secret() -> None:
    other = "whsec_" + base64.b64encode(b"another secret of 32 bytes!!!!!!").decode()
    headers = signed_headers()
    headers["Webhook-Signature"] = signed_headers(other)["Webhook-Signature"] + " " + headers["Webhook-Signature"]
    assert webhooks.verify(BODY, headers, SECRET, now=lambda: NOW).id == "evt_1"
    assert webhooks.verify(BODY, headers, other, now=lambda: NOW).id == "evt_1"


@pytest.mark.parametrize(
    ("change", "now"),
    [
        ("body", NOW),
        ("secret", NOW),
        ("stale", NOW + 301),
        ("future", NOW - 301),
        ("missing", NOW),
        ("bad_timestamp", NOW),
        ("wrong_version", NOW),
    ],
)
def test_verify_refuses(change: str, now: int) -> None:
    headers = signed_headers()
    body, secret = BODY, SECRET
    if change == "body":
        body = BODY.replace("succeeded", "failed")
    elif change == "secret":
        secret = "whsec_" + base64.b64encode(b"x" * 32).decode()
    elif change == "missing":
        del headers["Webhook-Signature"]
    elif change == "bad_timestamp":
        headers["Webhook-Timestamp"] = "1e9"
    elif change == "wrong_version":
        headers["Webhook-Signature"] = headers["Webhook-Signature"].replace("v1,", "v2,")
    with pytest.raises(WebhookVerificationError):
        webhooks.verify(body, headers, secret, now=lambda: now)


def test_the_timestamp_window_is_inclusive_and_configurable() -> None:
    assert webhooks.verify(BODY, signed_headers(), SECRET, now=lambda: NOW + 300).id == "evt_1"
    with pytest.raises(WebhookVerificationError):
        webhooks.verify(BODY, signed_headers(), SECRET, now=lambda: NOW + 61, tolerance=60)
