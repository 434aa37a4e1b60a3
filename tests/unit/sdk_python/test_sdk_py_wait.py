"""`payments.wait` over `httpx.MockTransport`: the stream read, resumed after it ends, and the polling
fallback when it cannot be opened; and signed requests that repeat within one second."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from mpesa_bridge.core.signing import MemoryReplayGuard, verify
from mpesa_bridge_sdk import AsyncClient, Client, WaitTimeoutError

KEY = "sk_test_" + "C" * 32
SSE = {"content-type": "text/event-stream; charset=utf-8"}


def payment(status: str) -> dict[str, Any]:
    return {"id": "pay_1", "object": "payment", "status": status, "amount": 10}


def message(event_id: str, status: str) -> bytes:
    event = {"id": event_id, "object": "event", "type": f"payment.{status}", "data": {"object": payment(status)}}
    return f"id: {event_id}\nevent: payment.{status}\ndata: {json.dumps(event)}\n\n".encode()


class Bridge:
    """Answers GET /v1/payments/pay_1 with `reads` in turn and the stream with `streams` in turn."""

    def __init__(self, reads: list[str], streams: list[httpx.Response]) -> None:
        self.reads, self.streams = reads, streams
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path.endswith("/events"):
            return self.streams.pop(0)
        status = self.reads.pop(0) if len(self.reads) > 1 else self.reads[0]
        return httpx.Response(200, json=payment(status))

    def paths(self) -> list[str]:
        return [r.url.path + ("?" + r.url.query.decode() if r.url.query else "") for r in self.requests]


def test_wait_reads_the_stream_and_resumes_it_after_it_ends() -> None:
    bridge = Bridge(
        ["pending"],
        [
            httpx.Response(
                200, headers=SSE, content=b"id: 0\nretry: 2000\n\n" + message("evt_a", "created") + b"retry: 200\n\n"
            ),
            httpx.Response(200, headers=SSE, content=b": heartbeat\n\n" + message("evt_b", "succeeded")),
        ],
    )
    http = httpx.Client(transport=httpx.MockTransport(bridge))
    with Client(KEY, base_url="http://b.test", http_client=http) as sdk:
        started = time.monotonic()
        final = sdk.payments.wait("pay_1", timeout=5, poll_interval=1000)
        paused = time.monotonic() - started
    http.close()
    assert final.status == "succeeded"
    assert paused >= 0.2  # it reconnected after the server's last `retry:` hint, not at once
    assert bridge.paths() == [
        "/v1/payments/pay_1",
        "/v1/payments/pay_1/events",
        "/v1/payments/pay_1/events?last_event_id=evt_a",  # resumed after the last event seen
    ]
    assert bridge.requests[1].headers["accept"] == "text/event-stream"


def test_wait_returns_at_once_when_already_final() -> None:
    bridge = Bridge(["failed"], [])
    http = httpx.Client(transport=httpx.MockTransport(bridge))
    with Client(KEY, base_url="http://b.test", http_client=http) as sdk:
        assert sdk.payments.wait("pay_1").status == "failed"
    http.close()
    assert bridge.paths() == ["/v1/payments/pay_1"]


@pytest.mark.parametrize(
    "refusal",
    [
        httpx.Response(429, json={"error": {"code": "too_many_streams"}}, headers={"Retry-After": "2"}),
        httpx.Response(200, json={"buffered": "by a proxy"}),  # not an event stream
    ],
    ids=["429", "not_event_stream"],
)
def test_wait_polls_when_the_stream_is_refused(refusal: httpx.Response) -> None:
    bridge = Bridge(["pending", "pending", "pending", "succeeded"], [refusal])
    http = httpx.Client(transport=httpx.MockTransport(bridge))
    with Client(KEY, base_url="http://b.test", http_client=http) as sdk:
        assert sdk.payments.wait("pay_1", timeout=5, poll_interval=0.01).status == "succeeded"
    http.close()
    assert bridge.paths().count("/v1/payments/pay_1") == 4


def test_wait_raises_a_timeout_with_the_last_payment() -> None:
    bridge = Bridge(["pending"], [httpx.Response(503)])
    http = httpx.Client(transport=httpx.MockTransport(bridge))
    with Client(KEY, base_url="http://b.test", http_client=http) as sdk, pytest.raises(WaitTimeoutError) as caught:
        sdk.payments.wait("pay_1", timeout=0.2, poll_interval=0.05)
    http.close()
    assert caught.value.last.status == "pending" and isinstance(caught.value, TimeoutError)


async def test_async_wait_reads_the_stream_and_falls_back_to_polling() -> None:
    bridge = Bridge(["pending"], [httpx.Response(200, headers=SSE, content=message("evt_b", "cancelled"))])
    http = httpx.AsyncClient(transport=httpx.MockTransport(bridge))
    async with AsyncClient(KEY, base_url="http://b.test", http_client=http) as sdk:
        assert (await sdk.payments.wait("pay_1", timeout=5, poll_interval=1000)).status == "cancelled"
        bridge.reads = ["pending", "expired"]
        bridge.streams = [httpx.Response(429)]
        assert (await sdk.payments.wait("pay_1", timeout=5, poll_interval=0.01)).status == "expired"
    await http.aclose()


async def test_the_same_signed_request_twice_in_one_second_passes_the_replay_guard() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=payment("pending"))

    http = httpx.Client(transport=httpx.MockTransport(answer))
    sdk = Client(KEY, base_url="http://b.test", http_client=http, sign_requests=True)
    sdk._options.clock = lambda: 1_767_225_600.4  # the clock stands still
    for _ in range(3):
        sdk.payments.retrieve("pay_1")
    sdk.close()
    http.close()
    guard = MemoryReplayGuard()
    stamps = [int(r.headers["mb-timestamp"]) for r in seen]
    assert stamps == [1_767_225_600, 1_767_225_601, 1_767_225_602]
    for request in seen:
        headers = {k.lower(): v for k, v in request.headers.items()}
        await verify(
            KEY, headers, "GET", request.url.raw_path.decode(), b"", now=1_767_225_600, tolerance=300, replay=guard
        )


def test_a_replayed_signature_is_signed_again_and_sent_once_more() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            return httpx.Response(
                401, json={"error": {"code": "signature_replayed", "message": "Invalid request signature."}}
            )
        return httpx.Response(200, json=payment("pending"))

    http = httpx.Client(transport=httpx.MockTransport(answer))
    with Client(KEY, base_url="http://b.test", http_client=http, sign_requests=True) as sdk:
        sdk.payments.retrieve("pay_1")
    http.close()
    assert len(seen) == 2 and seen[0].headers["mb-signature"] != seen[1].headers["mb-signature"]
