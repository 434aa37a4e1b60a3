"""The Python SDK's transport over `httpx.MockTransport`: which failures it retries, how long it waits,
that a create's Idempotency-Key is the same on every retry, and how answers become exceptions."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from mpesa_bridge_sdk import (
    APIConnectionError,
    APIServerError,
    AsyncClient,
    AuthenticationError,
    Client,
    ConflictError,
    IdempotencyError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    SignatureError,
)
from mpesa_bridge_sdk.errors import APIError, APITimeoutError

KEY = "sk_test_" + "A" * 32
PAYMENT = {"id": "pay_1", "object": "payment", "status": "pending", "amount": 10, "currency": "KES"}
Handler = Callable[[httpx.Request], httpx.Response]


def envelope(
    status: int, code: str, *, request_id: str = "req_abc", headers: dict[str, str] | None = None
) -> httpx.Response:
    body = {
        "error": {"type": "x", "code": code, "message": f"{code} happened", "param": None, "request_id": request_id}
    }
    return httpx.Response(status, json=body, headers=headers)


class Script:
    """Answers requests in order; remembers every request it saw."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


@contextmanager
def client(script: Handler, **options: Any) -> Iterator[tuple[Client, list[float]]]:
    sleeps: list[float] = []
    http = httpx.Client(transport=httpx.MockTransport(script))
    sdk = Client(
        KEY, base_url="http://bridge.test", http_client=http, sleep=sleeps.append, jitter=lambda: 1.0, **options
    )
    try:
        yield sdk, sleeps
    finally:
        sdk.close()
        http.close()


def create(sdk: Client, **extra: Any) -> Any:
    return sdk.payments.create(phone="0708374149", amount=10, account_reference="INV1", **extra)


def test_a_create_sends_one_idempotency_key_and_reuses_it_on_every_retry() -> None:
    script = Script(httpx.ConnectError("refused"), envelope(503, "unavailable"), httpx.Response(201, json=PAYMENT))
    with client(script) as (sdk, sleeps):
        payment = create(sdk)
    assert payment.id == "pay_1"
    keys = [r.headers["idempotency-key"] for r in script.requests]
    assert len(keys) == 3 and len(set(keys)) == 1 and keys[0].startswith("sdk-py-")
    bodies = {r.content for r in script.requests}
    assert len(bodies) == 1  # the same bytes each time: the bridge compares bodies byte for byte
    assert sleeps == [0.5, 1.0]


def test_a_payment_link_create_is_keyed_and_retried_with_its_key() -> None:
    link = {"id": "plink_1", "object": "payment_link", "title": "Fees", "amount": 10, "slug": "abcdefgh23"}
    script = Script(envelope(503, "unavailable"), httpx.Response(201, json=link))
    with client(script) as (sdk, _):
        assert sdk.payment_links.create(title="Fees", amount=10).id == "plink_1"
    keys = [r.headers["idempotency-key"] for r in script.requests]
    assert len(keys) == 2 and len(set(keys)) == 1


def test_two_creates_get_different_keys_and_a_given_key_is_used_as_is() -> None:
    script = Script(*(httpx.Response(201, json=PAYMENT) for _ in range(3)))
    with client(script) as (sdk, _):
        create(sdk)
        create(sdk)
        create(sdk, idempotency_key="order-42")
    keys = [r.headers["idempotency-key"] for r in script.requests]
    assert keys[0] != keys[1] and keys[2] == "order-42"


def test_backoff_doubles_and_is_capped_and_jittered() -> None:
    script = Script(*(envelope(500, "boom") for _ in range(6)), httpx.Response(200, json=PAYMENT))
    with client(script, max_retries=6, backoff_base=1.0, backoff_max=5.0) as (sdk, sleeps):
        sdk.payments.retrieve("pay_1")
    assert sleeps == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    half: list[float] = []
    http = httpx.Client(transport=httpx.MockTransport(Script(envelope(500, "boom"), httpx.Response(200, json=PAYMENT))))
    with Client(KEY, base_url="http://b.test", http_client=http, sleep=half.append, jitter=lambda: 0.0) as sdk:
        sdk.payments.retrieve("pay_1")
    http.close()
    assert half == [0.25]  # the jitter takes 50-100 % of the capped delay


def test_retries_stop_at_max_retries_and_raise_the_last_answer() -> None:
    script = Script(*(envelope(502, "bad_gateway", request_id="req_last") for _ in range(3)))
    with client(script, max_retries=2) as (sdk, sleeps), pytest.raises(APIServerError) as caught:
        sdk.payments.retrieve("pay_1")
    assert len(script.requests) == 3 and len(sleeps) == 2
    assert caught.value.status == 502 and caught.value.code == "bad_gateway" and caught.value.request_id == "req_last"


def test_429_waits_for_retry_after_even_for_requests_that_are_not_idempotent() -> None:
    script = Script(envelope(429, "rate_limited", headers={"Retry-After": "3"}), httpx.Response(200, json=PAYMENT))
    with client(script) as (sdk, sleeps):
        sdk.payments.refresh("pay_1")  # a POST without an Idempotency-Key: a 429 ran nothing
    assert sleeps == [3.0]
    assert len(script.requests) == 2


def test_a_retry_after_past_the_cap_is_raised_at_once_with_its_wait() -> None:
    script = Script(envelope(429, "phone_rate_limited", headers={"Retry-After": "600"}))
    with client(script, max_retry_after=60) as (sdk, sleeps), pytest.raises(RateLimitError) as caught:
        create(sdk)
    assert sleeps == [] and caught.value.retry_after == 600 and caught.value.code == "phone_rate_limited"


def test_a_429_without_retry_after_backs_off() -> None:
    script = Script(envelope(429, "rate_limited"), httpx.Response(200, json=PAYMENT))
    with client(script) as (sdk, sleeps):
        sdk.payments.retrieve("pay_1")
    assert sleeps == [0.5]


def test_a_retry_after_http_date_is_understood() -> None:
    script = Script(
        envelope(429, "rate_limited", headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}),
        httpx.Response(200, json=PAYMENT),
    )
    with client(script) as (sdk, sleeps):
        sdk.payments.retrieve("pay_1")
    assert sleeps == [0.0]  # a date in the past: retry now


@pytest.mark.parametrize(
    "call",
    [
        lambda sdk: sdk.payments.refresh("pay_1"),
        lambda sdk: sdk.checkout_sessions.expire("cs_1"),
        lambda sdk: sdk.project.rotate_publishable_key(),
        lambda sdk: sdk.webhook_endpoints.update("we_1", enabled=False),
    ],
    ids=["refresh", "expire", "rotate_publishable_key", "patch"],
)
def test_a_5xx_is_not_retried_for_requests_that_are_not_idempotent(call: Callable[[Client], Any]) -> None:
    script = Script(envelope(500, "boom"))
    with client(script) as (sdk, sleeps), pytest.raises(APIServerError):
        call(sdk)
    assert len(script.requests) == 1 and sleeps == []


def test_a_read_timeout_is_retried_only_when_idempotent() -> None:
    script = Script(httpx.ReadTimeout("slow"), httpx.Response(201, json=PAYMENT))
    with client(script) as (sdk, _):
        create(sdk)  # carries an Idempotency-Key
    assert len(script.requests) == 2
    script = Script(httpx.ReadTimeout("slow"))
    with client(script) as (sdk, _), pytest.raises(APITimeoutError):
        sdk.payments.refresh("pay_1")
    assert len(script.requests) == 1


def test_a_connection_refused_before_sending_is_retried_for_any_request() -> None:
    script = Script(httpx.ConnectError("refused"), httpx.Response(200, json=PAYMENT))
    with client(script) as (sdk, sleeps):
        sdk.payments.refresh("pay_1")
    assert len(script.requests) == 2 and sleeps == [0.5]


def test_connection_errors_after_the_retries_are_api_connection_errors() -> None:
    script = Script(*(httpx.ConnectError("refused") for _ in range(3)))
    with client(script) as (sdk, _), pytest.raises(APIConnectionError):
        sdk.payments.retrieve("pay_1")
    assert len(script.requests) == 3


def test_max_retries_zero_sends_once() -> None:
    script = Script(envelope(503, "x"))
    with client(script, max_retries=0) as (sdk, sleeps), pytest.raises(APIServerError):
        sdk.payments.retrieve("pay_1")
    assert len(script.requests) == 1 and sleeps == []


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (400, "invalid_phone", InvalidRequestError),
        (404, "resource_missing", NotFoundError),
        (422, "idempotency_key_reused", IdempotencyError),
        (401, "invalid_api_key", AuthenticationError),
        (401, "signature_invalid", SignatureError),
        (403, "origin_not_allowed", PermissionDeniedError),
        (409, "phone_busy", ConflictError),
        (415, "unsupported_media_type", InvalidRequestError),
    ],
)
def test_error_answers_become_the_documented_exceptions(status: int, code: str, kind: type[APIError]) -> None:
    script = Script(envelope(status, code, request_id="req_0123"))
    with client(script, sign_requests=False) as (sdk, _), pytest.raises(kind) as caught:
        create(sdk)
    error = caught.value
    assert type(error) is kind
    assert (error.status, error.code, error.request_id) == (status, code, "req_0123")
    assert error.message == f"{code} happened" and "req_0123" in str(error)


def test_an_error_without_an_envelope_keeps_the_status_and_the_header_request_id() -> None:
    script = Script(httpx.Response(404, text="nope", headers={"X-Request-Id": "req_hdr"}))
    with client(script) as (sdk, _), pytest.raises(NotFoundError) as caught:
        sdk.payments.retrieve("pay_1")
    assert caught.value.request_id == "req_hdr" and caught.value.code is None


def test_requests_carry_the_key_json_and_exact_paths() -> None:
    script = Script(httpx.Response(201, json=PAYMENT), httpx.Response(200, json=PAYMENT))
    with client(script) as (sdk, _):
        create(sdk, metadata={"order_id": "42"})
        sdk.payments.retrieve("pay_1/../x")
    first, second = script.requests
    assert first.headers["authorization"] == f"Bearer {KEY}"
    assert first.headers["content-type"] == "application/json"
    assert json.loads(first.content) == {
        "phone": "0708374149",
        "amount": 10,
        "account_reference": "INV1",
        "metadata": {"order_id": "42"},
    }
    assert second.url.raw_path == b"/v1/payments/pay_1%2F..%2Fx"  # an id never changes the path


def test_update_sends_only_the_fields_given_and_null_clears() -> None:
    link = {"id": "plink_1", "object": "payment_link"}
    script = Script(httpx.Response(200, json=link))
    with client(script) as (sdk, _):
        sdk.payment_links.update("plink_1", active=False, max_payments=None)
    assert json.loads(script.requests[0].content) == {"active": False, "max_payments": None}


def page(ids: list[str], more: bool) -> httpx.Response:
    data = [{**PAYMENT, "id": i} for i in ids]
    return httpx.Response(
        200, json={"object": "list", "data": data, "has_more": more, "next_cursor": ids[-1] if more else None}
    )


def test_iterating_a_list_walks_every_page_with_the_same_filters() -> None:
    script = Script(page(["p5", "p4"], True), page(["p3", "p2"], True), page(["p1"], False))
    with client(script) as (sdk, _):
        first = sdk.payments.list(status="succeeded", limit=2)
        assert [p.id for p in first.data] == ["p5", "p4"]
        assert [p.id for p in first] == ["p5", "p4", "p3", "p2", "p1"]
    queries = [dict(r.url.params) for r in script.requests]
    assert queries == [
        {"status": "succeeded", "limit": "2"},
        {"status": "succeeded", "limit": "2", "starting_after": "p4"},
        {"status": "succeeded", "limit": "2", "starting_after": "p2"},
    ]


async def test_the_async_client_retries_and_reuses_the_key_the_same_way() -> None:
    script = Script(httpx.ConnectError("refused"), envelope(500, "boom"), httpx.Response(201, json=PAYMENT))
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    http = httpx.AsyncClient(transport=httpx.MockTransport(script))
    async with AsyncClient(KEY, base_url="http://b.test", http_client=http, sleep=sleep, jitter=lambda: 1.0) as sdk:
        payment = await sdk.payments.create(phone="0708374149", amount=10, account_reference="INV1")
        assert payment.id == "pay_1"
        script.answers += [page(["p2"], True), page(["p1"], False)]
        assert [p.id async for p in await sdk.payments.list(limit=1)] == ["p2", "p1"]
        script.answers.append(envelope(404, "resource_missing"))
        with pytest.raises(NotFoundError):
            await sdk.payments.retrieve("pay_x")
    await http.aclose()
    keys = {r.headers["idempotency-key"] for r in script.requests[:3]}
    assert len(keys) == 1 and sleeps == [0.5, 1.0]
