"""One error envelope: the exception handlers (a Response) and the ASGI middleware (raw messages)
render it with the same function, so the JSON and the headers cannot drift apart."""

from __future__ import annotations

import orjson
from starlette.requests import Request

from mpesa_bridge.api.errors import error_body, error_reply
from mpesa_bridge.api.ratelimit import refusal_messages
from mpesa_bridge.core.errors import RateLimited


def request_with_id(request_id: str) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "headers": [], "state": {"request_id": request_id}})


def raw_headers(start: dict[str, object]) -> dict[bytes, bytes]:
    headers = start["headers"]
    assert isinstance(headers, list)
    return dict(headers)


def test_the_handler_and_the_middleware_render_the_same_body_and_headers() -> None:
    response = error_body(request_with_id("req_1"), 401, type_="authentication_error", code="c", message="m", param="p")
    start, body = error_reply(401, "c", "m", "req_1", "authentication_error", param="p")
    assert body["body"] == response.body
    assert orjson.loads(response.body) == {
        "error": {"type": "authentication_error", "code": "c", "message": "m", "param": "p", "request_id": "req_1"}
    }
    sent = raw_headers(start)
    assert sent[b"www-authenticate"] == response.headers["www-authenticate"].encode() == b"Bearer"
    assert sent[b"content-type"] == response.headers["content-type"].encode() == b"application/json"
    assert sent[b"content-length"] == response.headers["content-length"].encode()


def test_the_rate_limit_refusal_is_the_same_envelope_with_its_headers() -> None:
    exc = RateLimited("slow down", retry_after=3, limit=5, remaining=0, reset=3)
    start, body = refusal_messages(exc, "req_2")
    response = error_body(request_with_id("req_2"), 429, type_="rate_limit_error", code=exc.code, message="slow down")
    assert body["body"] == response.body
    sent = raw_headers(start)
    assert (sent[b"retry-after"], sent[b"ratelimit-limit"], sent[b"ratelimit-remaining"]) == (b"3", b"5", b"0")
    assert start["status"] == 429
