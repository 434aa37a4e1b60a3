"""observability/errors.py's before_send: what a Sentry event may still hold after scrubbing."""

from __future__ import annotations

import orjson

from mpesa_bridge.observability.errors import scrub_breadcrumb, scrub_event

SECRETS = (
    "254712345678",
    "0712345678",
    "sk_live_9d8c7b6a5f4e3d2c1b0a",
    "pk_test_1a2b3c4d5e6f7a8b9c0d",
    "whsec_c2VjcmV0LWtleQ==",
    "Zm9vYmFyLXNlY3VyaXR5LWNyZWRlbnRpYWw",
    "hunter2hunter2",
    "bfb279f9aa9bdbcf158e97dd71a467cd",
    "opaque-bearer-credential",
)


def event() -> dict[str, object]:
    return {
        "message": "payment for 0712345678 failed, password=hunter2hunter2",
        "exception": {
            "values": [
                {
                    "type": "RuntimeError",
                    "value": "push to 254712345678 with sk_live_9d8c7b6a5f4e3d2c1b0a: "
                    "passkey bfb279f9aa9bdbcf158e97dd71a467cd",
                    "stacktrace": {"frames": [{"context_line": "    key = 'pk_test_1a2b3c4d5e6f7a8b9c0d'"}]},
                }
            ]
        },
        "request": {
            "url": "https://bridge.example/v1/payments",
            "method": "POST",
            "headers": {"Authorization": "Bearer opaque-bearer-credential", "X-Note": "call 254712345678"},
            "data": {"phone": "254712345678", "SecurityCredential": "Zm9vYmFyLXNlY3VyaXR5LWNyZWRlbnRpYWw"},
            "cookies": {"session": "whsec_c2VjcmV0LWtleQ=="},
            "query_string": "phone=254712345678",
        },
        "extra": {"consumer_secret": "hunter2hunter2", "phone_number": 254712345678},
    }


def test_nothing_secret_is_left_in_an_event() -> None:
    scrubbed = orjson.dumps(scrub_event(event())).decode()  # type: ignore[arg-type]
    for secret in SECRETS:
        assert secret not in scrubbed, secret
    assert "2547****5678" in scrubbed
    assert "RuntimeError" in scrubbed and "https://bridge.example/v1/payments" in scrubbed


def test_request_bodies_cookies_and_query_strings_are_dropped() -> None:
    request = scrub_event(event())["request"]  # type: ignore[arg-type]
    assert set(request) == {"url", "method", "headers"}
    assert request["headers"]["Authorization"] == "[redacted]"


def test_breadcrumbs_are_scrubbed_too() -> None:
    crumb = scrub_breadcrumb({"message": "GET /v1/payments?phone=0712345678", "data": {"token": "abc"}})
    assert "0712345678" not in crumb["message"] and crumb["data"]["token"] == "[redacted]"
