"""DarajaClient against a scripted Daraja peer (httpx.MockTransport): bodies, tokens, retries."""

import asyncio
import base64
import dataclasses
import inspect
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import httpx
import pytest

from mpesa_bridge.daraja import (
    DarajaAuthError,
    DarajaClient,
    DarajaConnectError,
    DarajaConnectTimeout,
    DarajaCredentials,
    DarajaEndpoints,
    DarajaReadTimeout,
    DarajaRejected,
    DarajaServerError,
    DarajaStillProcessing,
    DarajaSubscriberLocked,
    DarajaTransportError,
    StkPushAccepted,
    StkPushRequest,
    StkQueryResult,
    TokenCache,
)

BASE = "https://sandbox.safaricom.co.ke"
OAUTH = "/oauth/v1/generate"
STK_PUSH = "/mpesa/stkpush/v1/processrequest"
STK_QUERY = "/mpesa/stkpushquery/v1/query"
PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
CREDENTIALS = DarajaCredentials("consumer-key", "consumer-secret-s3cr3t")
# 06:24:08 UTC is 09:24:08 in Nairobi: the section 3.1 vector.
FIXED_NOW = datetime(2021, 6, 28, 6, 24, 8, tzinfo=UTC)
VECTOR_TIMESTAMP = "20210628092408"
VECTOR_PASSWORD = (
    "MTc0Mzc5YmZiMjc5ZjlhYTliZGJjZjE1OGU5N2RkNzFhNDY3Y2QyZTBjODkzMDU5YjEwZjc4ZTZiNzJhZGExZWQyYzkxOTIwMjEwNjI4MDkyNDA4"
)

Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]

PUSH_OK = {
    "MerchantRequestID": "2654-4b64-97ff-b827b542881d3130",
    "CheckoutRequestID": "ws_CO_1007202409152617172396192",
    "ResponseCode": "0",
    "ResponseDescription": "Success. Request accepted for processing",
    "CustomerMessage": "Success. Request accepted for processing",
}
QUERY_OK = {
    "ResponseCode": "0",
    "ResponseDescription": "The service request has been accepted successsfully",
    "MerchantRequestID": "22205-34066-1",
    "CheckoutRequestID": "ws_CO_13012021093521236557",
    "ResultCode": "1032",
    "ResultDesc": "Request cancelled by user",
}


def token_reply(token: str = "token-1", expires_in: object = "3599") -> httpx.Response:
    return httpx.Response(200, json={"access_token": token, "expires_in": expires_in})


def envelope(status: int, code: str, message: str, request_id: str = "30764-19833054-1") -> httpx.Response:
    return httpx.Response(status, json={"requestId": request_id, "errorCode": code, "errorMessage": message})


class Peer:
    """A scripted Daraja: records every request and answers by path."""

    def __init__(
        self, *, oauth: Handler | None = None, push: Handler | None = None, query: Handler | None = None
    ) -> None:
        self.requests: list[httpx.Request] = []
        self.routes: dict[str, Handler] = {
            OAUTH: oauth or (lambda _: token_reply()),
            STK_PUSH: push or (lambda _: httpx.Response(200, json=PUSH_OK)),
            STK_QUERY: query or (lambda _: httpx.Response(200, json=QUERY_OK)),
        }

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.routes[request.url.path](request)
        return await answer if inspect.isawaitable(answer) else answer

    def to(self, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path == path]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


MakeClient = Callable[..., DarajaClient]


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    opened: list[httpx.AsyncClient] = []

    def make(peer: Peer, *, token_cache: TokenCache | None = None, **kwargs: object) -> DarajaClient:
        http = httpx.AsyncClient(transport=httpx.MockTransport(peer))
        opened.append(http)
        kwargs.setdefault("now", lambda: FIXED_NOW)
        return DarajaClient(BASE, CREDENTIALS, http=http, token_cache=token_cache or TokenCache(), **kwargs)  # type: ignore[arg-type]

    yield make
    for http in opened:
        await http.aclose()


def paybill(**overrides: object) -> StkPushRequest:
    request = StkPushRequest(
        business_short_code="174379",
        passkey=PASSKEY,
        transaction_type="CustomerPayBillOnline",
        amount=1,
        party_a="254708374149",
        party_b="174379",
        phone_number="254708374149",
        callback_url="https://pay.example.com/hooks/stk/3f9c1e7a2b",
        account_reference="INV00042",
        transaction_desc="Order 42",
    )
    return dataclasses.replace(request, **overrides)  # type: ignore[arg-type]


def body_of(request: httpx.Request) -> dict[str, object]:
    decoded: dict[str, object] = json.loads(request.content)
    return decoded


# --- STK push: what goes on the wire -------------------------------------------------------------


async def test_paybill_push_sends_daraja_field_names_and_integers(make_client: MakeClient) -> None:
    peer = Peer()
    accepted = await make_client(peer).stk_push(paybill())

    assert accepted == StkPushAccepted(**{k: v for k, v in _snake(PUSH_OK).items()})
    [push] = peer.to(STK_PUSH)
    assert push.method == "POST"
    assert str(push.url) == BASE + STK_PUSH
    assert push.headers["authorization"] == "Bearer token-1"
    assert push.headers["content-type"] == "application/json"
    assert body_of(push) == {
        "BusinessShortCode": 174379,
        "Password": VECTOR_PASSWORD,
        "Timestamp": VECTOR_TIMESTAMP,
        "TransactionType": "CustomerPayBillOnline",
        "Amount": 1,
        "PartyA": 254708374149,
        "PartyB": 174379,
        "PhoneNumber": 254708374149,
        "CallBackURL": "https://pay.example.com/hooks/stk/3f9c1e7a2b",
        "AccountReference": "INV00042",
        "TransactionDesc": "Order 42",
    }


def _snake(reply: dict[str, str]) -> dict[str, str]:
    names = {
        "MerchantRequestID": "merchant_request_id",
        "CheckoutRequestID": "checkout_request_id",
        "ResponseCode": "response_code",
        "ResponseDescription": "response_description",
        "CustomerMessage": "customer_message",
    }
    return {names[k]: v for k, v in reply.items()}


async def test_till_push_uses_store_number_as_shortcode_and_till_as_party_b(make_client: MakeClient) -> None:
    peer = Peer()
    till = paybill(business_short_code="7654321", party_b="123456", transaction_type="CustomerBuyGoodsOnline")

    await make_client(peer).stk_push(till)

    body = body_of(peer.to(STK_PUSH)[0])
    assert body["TransactionType"] == "CustomerBuyGoodsOnline"
    assert body["BusinessShortCode"] == 7654321
    assert body["PartyB"] == 123456
    decoded = base64.b64decode(str(body["Password"])).decode()
    assert decoded == "7654321" + PASSKEY + VECTOR_TIMESTAMP


async def test_one_timestamp_is_used_for_password_and_body(make_client: MakeClient) -> None:
    # A clock that ticks a second on every read: reading it twice would desynchronise the two.
    ticks = iter(datetime(2024, 1, 1, 20, 59, 58 + i, tzinfo=UTC) for i in range(2))
    peer = Peer()
    client = make_client(peer, now=lambda: next(ticks))

    await client.stk_push(paybill())

    body = body_of(peer.to(STK_PUSH)[0])
    decoded = base64.b64decode(str(body["Password"])).decode()
    assert body["Timestamp"] == "20240101235958"
    assert decoded == "174379" + PASSKEY + body["Timestamp"]


async def test_accepted_parses_numeric_codes_and_missing_optional_keys(make_client: MakeClient) -> None:
    answer = {"CheckoutRequestID": "ws_CO_1", "MerchantRequestID": 29115, "ResponseCode": 0}
    peer = Peer(push=lambda _: httpx.Response(200, json=answer))

    accepted = await make_client(peer).stk_push(paybill())

    assert accepted == StkPushAccepted("29115", "ws_CO_1", "0", "", "")


async def test_200_with_non_zero_response_code_is_a_rejection(make_client: MakeClient) -> None:
    answer = {"ResponseCode": "1", "ResponseDescription": "Something went wrong"}
    peer = Peer(push=lambda _: httpx.Response(200, json=answer))

    with pytest.raises(DarajaRejected) as caught:
        await make_client(peer).stk_push(paybill())

    assert type(caught.value) is DarajaRejected
    assert caught.value.error_code == "1"
    assert caught.value.outcome_unknown is False


async def test_200_with_lock_text_is_subscriber_locked(make_client: MakeClient) -> None:
    text = "Unable to lock subscriber, a transaction is already in process for the current subscriber"
    peer = Peer(push=lambda _: httpx.Response(200, json={"ResponseCode": "1", "ResponseDescription": text}))

    with pytest.raises(DarajaSubscriberLocked):
        await make_client(peer).stk_push(paybill())


async def test_accepted_without_checkout_request_id_is_unknown(make_client: MakeClient) -> None:
    peer = Peer(push=lambda _: httpx.Response(200, json={"ResponseCode": "0"}))

    with pytest.raises(DarajaServerError) as caught:
        await make_client(peer).stk_push(paybill())

    assert caught.value.outcome_unknown is True


async def test_client_does_not_close_the_callers_http_client() -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(Peer())) as http:
        client = DarajaClient(BASE, CREDENTIALS, http=http, token_cache=TokenCache(), now=lambda: FIXED_NOW)
        await client.stk_push(paybill())
        assert not http.is_closed


async def test_callers_default_auth_does_not_replace_the_bearer_token() -> None:
    peer = Peer()
    transport = httpx.MockTransport(peer)
    async with httpx.AsyncClient(transport=transport, auth=("someone", "else")) as http:
        client = DarajaClient(BASE, CREDENTIALS, http=http, token_cache=TokenCache(), now=lambda: FIXED_NOW)
        await client.stk_push(paybill())
    assert peer.to(STK_PUSH)[0].headers["authorization"] == "Bearer token-1"


async def test_paths_are_configurable(make_client: MakeClient) -> None:
    peer = Peer()
    peer.routes["/mpesa/stkpushquery/v2/query"] = peer.routes[STK_QUERY]
    client = make_client(peer, endpoints=DarajaEndpoints(stk_query="/mpesa/stkpushquery/v2/query"))

    await client.stk_query("174379", PASSKEY, "ws_CO_13012021093521236557")

    assert peer.requests[-1].url.path == "/mpesa/stkpushquery/v2/query"


async def test_explicit_timeouts_are_sent_with_every_request(make_client: MakeClient) -> None:
    peer = Peer()
    await make_client(peer).stk_push(paybill())

    for request in peer.requests:
        assert request.extensions["timeout"] == {"connect": 5.0, "read": 30.0, "write": 10.0, "pool": 5.0}


async def test_timeout_is_configurable(make_client: MakeClient) -> None:
    peer = Peer()
    await make_client(peer, timeout=httpx.Timeout(2.0, connect=1.0)).stk_push(paybill())

    assert peer.to(STK_PUSH)[0].extensions["timeout"]["connect"] == 1.0
    assert peer.to(STK_PUSH)[0].extensions["timeout"]["read"] == 2.0


@pytest.mark.parametrize(("kwargs", "match"), [({"connect_retries": -1}, "connect_retries"), ({}, "base_url")])
async def test_constructor_refuses_nonsense(kwargs: dict[str, object], match: str) -> None:
    base = BASE if kwargs else "sandbox.safaricom.co.ke"
    async with httpx.AsyncClient() as http:
        with pytest.raises(ValueError, match=match):
            DarajaClient(base, CREDENTIALS, http=http, token_cache=TokenCache(), **kwargs)  # type: ignore[arg-type]


# --- Retrying only what is safe ------------------------------------------------------------------


def raising(exc: Exception) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


async def test_read_timeout_on_push_is_unknown_and_sent_exactly_once(make_client: MakeClient) -> None:
    peer = Peer(push=raising(httpx.ReadTimeout("timed out")))

    with pytest.raises(DarajaReadTimeout) as caught:
        await make_client(peer).stk_push(paybill())

    assert caught.value.outcome_unknown is True
    assert caught.value.code == "daraja_read_timeout"
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
    assert len(peer.to(STK_PUSH)) == 1


@pytest.mark.parametrize(
    "exc",
    [
        httpx.WriteTimeout("write timed out"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("connection reset"),
        httpx.WriteError("broken pipe"),
    ],
)
async def test_failures_after_sending_are_unknown_and_never_retried(make_client: MakeClient, exc: Exception) -> None:
    peer = Peer(push=raising(exc))

    with pytest.raises(DarajaReadTimeout) as caught:
        await make_client(peer).stk_push(paybill())

    assert caught.value.outcome_unknown is True
    assert caught.value.__cause__ is exc
    assert len(peer.to(STK_PUSH)) == 1


async def test_5xx_on_push_is_unknown_and_never_retried(make_client: MakeClient) -> None:
    peer = Peer(push=lambda _: envelope(500, "500.003.1001", "Internal Server Error"))

    with pytest.raises(DarajaServerError) as caught:
        await make_client(peer, connect_retries=3).stk_push(paybill())

    assert caught.value.outcome_unknown is True
    assert caught.value.http_status == 500
    assert len(peer.to(STK_PUSH)) == 1


async def test_connect_error_is_retried_once_then_raised(make_client: MakeClient) -> None:
    peer = Peer(push=raising(httpx.ConnectError("connection refused")))

    with pytest.raises(DarajaConnectError) as caught:
        await make_client(peer).stk_push(paybill())

    assert caught.value.outcome_unknown is False
    assert caught.value.code == "daraja_connect_error"
    assert len(peer.to(STK_PUSH)) == 2


async def test_connect_error_then_success(make_client: MakeClient) -> None:
    answers: list[Exception | httpx.Response] = [
        httpx.ConnectTimeout("slow"),
        httpx.Response(200, json=PUSH_OK),
    ]

    def flaky(request: httpx.Request) -> httpx.Response:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    peer = Peer(push=flaky)

    accepted = await make_client(peer).stk_push(paybill())

    assert accepted.checkout_request_id == PUSH_OK["CheckoutRequestID"]
    assert len(peer.to(STK_PUSH)) == 2


@pytest.mark.parametrize("retries", [0, 3])
async def test_connect_retries_is_configurable(make_client: MakeClient, retries: int) -> None:
    peer = Peer(push=raising(httpx.ConnectTimeout("slow")))

    with pytest.raises(DarajaConnectTimeout) as caught:
        await make_client(peer, connect_retries=retries).stk_push(paybill())

    assert caught.value.outcome_unknown is False
    assert len(peer.to(STK_PUSH)) == retries + 1


async def test_pool_timeout_counts_as_never_sent(make_client: MakeClient) -> None:
    peer = Peer(push=raising(httpx.PoolTimeout("no connection free")))

    with pytest.raises(DarajaConnectTimeout):
        await make_client(peer).stk_push(paybill())

    assert len(peer.to(STK_PUSH)) == 2


async def test_unsupported_protocol_is_a_transport_error_never_sent(make_client: MakeClient) -> None:
    peer = Peer(push=raising(httpx.UnsupportedProtocol("Request URL has an unsupported protocol")))

    with pytest.raises(DarajaTransportError) as caught:
        await make_client(peer).stk_push(paybill())

    assert caught.value.outcome_unknown is False


async def test_read_timeout_on_query_is_not_flagged_unknown(make_client: MakeClient) -> None:
    # A query moves no money: asking again is always safe, so there is nothing to reconcile.
    peer = Peer(query=raising(httpx.ReadTimeout("timed out")))

    with pytest.raises(DarajaReadTimeout) as caught:
        await make_client(peer).stk_query("174379", PASSKEY, "ws_CO_1")

    assert caught.value.outcome_unknown is False


async def test_connect_error_on_oauth_is_retried_and_the_push_never_sent(make_client: MakeClient) -> None:
    peer = Peer(oauth=raising(httpx.ConnectError("dns failure")))

    with pytest.raises(DarajaConnectError) as caught:
        await make_client(peer).stk_push(paybill())

    assert caught.value.outcome_unknown is False
    assert len(peer.to(OAUTH)) == 2
    assert peer.to(STK_PUSH) == []


# --- OAuth and the token cache -------------------------------------------------------------------


async def test_oauth_request_uses_basic_auth_and_grant_type(make_client: MakeClient) -> None:
    peer = Peer()
    await make_client(peer).stk_push(paybill())

    [oauth] = peer.to(OAUTH)
    assert oauth.method == "GET"
    assert oauth.url.params["grant_type"] == "client_credentials"
    expected = base64.b64encode(b"consumer-key:consumer-secret-s3cr3t").decode()
    assert oauth.headers["authorization"] == f"Basic {expected}"


async def test_oauth_400_with_empty_body_is_an_auth_error(make_client: MakeClient) -> None:
    peer = Peer(oauth=lambda _: httpx.Response(400, content=b""))

    with pytest.raises(DarajaAuthError) as caught:
        await make_client(peer).stk_push(paybill())

    assert caught.value.http_status == 400
    assert caught.value.outcome_unknown is False
    assert peer.to(STK_PUSH) == []


@pytest.mark.parametrize(
    "answer",
    [
        envelope(400, "400.008.01", "Invalid authentication type passed"),
        envelope(400, "400.008.02", "Invalid grant type passed"),
        httpx.Response(200, json={"expires_in": "3599"}),
        httpx.Response(200, json={"access_token": "", "expires_in": "3599"}),
    ],
)
async def test_other_oauth_failures_are_auth_errors(make_client: MakeClient, answer: httpx.Response) -> None:
    peer = Peer(oauth=lambda _: answer)

    with pytest.raises(DarajaAuthError):
        await make_client(peer).stk_push(paybill())


async def test_oauth_server_trouble_is_not_blamed_on_credentials(make_client: MakeClient) -> None:
    peer = Peer(oauth=lambda _: httpx.Response(503, text="<html>Service Unavailable</html>"))

    with pytest.raises(DarajaServerError) as caught:
        await make_client(peer).stk_push(paybill())

    assert caught.value.outcome_unknown is False  # the push itself was never sent


async def test_200_concurrent_pushes_cost_exactly_one_oauth_request(make_client: MakeClient) -> None:
    gate = asyncio.Event()

    async def slow_oauth(request: httpx.Request) -> httpx.Response:
        await gate.wait()
        return token_reply()

    peer = Peer(oauth=slow_oauth)
    client = make_client(peer)

    tasks = [asyncio.create_task(client.stk_push(paybill())) for _ in range(200)]
    for _ in range(5):
        await asyncio.sleep(0)  # let every task reach the token cache
    assert len(peer.to(OAUTH)) == 1
    gate.set()
    results = await asyncio.gather(*tasks)

    assert len(results) == 200
    assert len(peer.to(OAUTH)) == 1
    assert len(peer.to(STK_PUSH)) == 200
    assert {r.headers["authorization"] for r in peer.to(STK_PUSH)} == {"Bearer token-1"}


async def test_clients_sharing_a_cache_share_the_token(make_client: MakeClient) -> None:
    cache = TokenCache()
    peer = Peer()

    await make_client(peer, token_cache=cache).stk_push(paybill())
    await make_client(peer, token_cache=cache).stk_push(paybill())

    assert len(peer.to(OAUTH)) == 1


async def test_token_is_refreshed_when_the_margin_is_reached(make_client: MakeClient) -> None:
    clock = FakeClock()
    tokens = iter(["token-1", "token-2"])
    peer = Peer(oauth=lambda _: token_reply(next(tokens), expires_in=3599))
    client = make_client(peer, token_cache=TokenCache(clock=clock))

    await client.stk_push(paybill())
    clock.now += 3599 - 121  # 121 s left: still good
    await client.stk_push(paybill())
    assert len(peer.to(OAUTH)) == 1

    clock.now += 2  # 119 s left: inside the 120 s margin
    await client.stk_push(paybill())

    assert len(peer.to(OAUTH)) == 2
    assert peer.to(STK_PUSH)[-1].headers["authorization"] == "Bearer token-2"


@pytest.mark.parametrize(
    ("code", "status", "message"),
    [
        ("404.001.03", 404, "Invalid Access Token"),
        ("401.002.01", 401, "Error Occurred - Invalid Access Token - token-1"),
        ("400.003.01", 400, "Invalid Access Token"),
        ("401.003.01", 401, "Invalid access token"),
        ("401", 401, "Unauthorized - Invalid Access Token"),
    ],
)
async def test_token_error_refreshes_once_and_retries_once(
    make_client: MakeClient, code: str, status: int, message: str
) -> None:
    tokens = iter(["token-1", "token-2"])

    def push(request: httpx.Request) -> httpx.Response:
        if request.headers["authorization"] == "Bearer token-1":
            return envelope(status, code, message)
        return httpx.Response(200, json=PUSH_OK)

    peer = Peer(oauth=lambda _: token_reply(next(tokens)), push=push)

    accepted = await make_client(peer).stk_push(paybill())

    assert accepted.checkout_request_id == PUSH_OK["CheckoutRequestID"]
    assert len(peer.to(OAUTH)) == 2
    assert [r.headers["authorization"] for r in peer.to(STK_PUSH)] == ["Bearer token-1", "Bearer token-2"]
    # The retry re-sends the very same body: the first one never got past the gateway.
    assert peer.to(STK_PUSH)[0].content == peer.to(STK_PUSH)[1].content


async def test_token_rejected_twice_is_an_auth_error_without_looping(make_client: MakeClient) -> None:
    tokens = iter(["token-1", "token-2", "token-3"])
    peer = Peer(
        oauth=lambda _: token_reply(next(tokens)),
        push=lambda _: envelope(404, "404.001.03", "Invalid Access Token"),
    )

    with pytest.raises(DarajaAuthError) as caught:
        await make_client(peer).stk_push(paybill())

    assert caught.value.error_code == "404.001.03"
    assert caught.value.outcome_unknown is False
    assert len(peer.to(OAUTH)) == 2
    assert len(peer.to(STK_PUSH)) == 2


async def test_no_api_product_is_not_retried(make_client: MakeClient) -> None:
    message = "Error Occurred - Invalid Access Token - Invalid API call as no apiproduct match found"
    peer = Peer(push=lambda _: httpx.Response(401, json={"errorMessage": message, "errorCode": "401.002.01"}))

    with pytest.raises(DarajaAuthError):
        await make_client(peer).stk_push(paybill())

    assert len(peer.to(OAUTH)) == 1
    assert len(peer.to(STK_PUSH)) == 1


async def test_token_error_on_query_is_retried_too(make_client: MakeClient) -> None:
    tokens = iter(["token-1", "token-2"])

    def query(request: httpx.Request) -> httpx.Response:
        if request.headers["authorization"] == "Bearer token-1":
            return envelope(404, "404.001.03", "Invalid Access Token")
        return httpx.Response(200, json=QUERY_OK)

    peer = Peer(oauth=lambda _: token_reply(next(tokens)), query=query)

    result = await make_client(peer).stk_query("174379", PASSKEY, "ws_CO_13012021093521236557")

    assert result.result_code == "1032"
    assert len(peer.to(STK_QUERY)) == 2


# --- STK query -----------------------------------------------------------------------------------


async def test_query_sends_password_timestamp_and_checkout_id(make_client: MakeClient) -> None:
    peer = Peer()

    result = await make_client(peer).stk_query("174379", PASSKEY, "ws_CO_13012021093521236557")

    assert result == StkQueryResult(
        response_code="0",
        merchant_request_id="22205-34066-1",
        checkout_request_id="ws_CO_13012021093521236557",
        result_code="1032",
        result_desc="Request cancelled by user",
    )
    [query] = peer.to(STK_QUERY)
    assert query.headers["authorization"] == "Bearer token-1"
    assert body_of(query) == {
        "BusinessShortCode": 174379,
        "Password": VECTOR_PASSWORD,
        "Timestamp": VECTOR_TIMESTAMP,
        "CheckoutRequestID": "ws_CO_13012021093521236557",
    }


@pytest.mark.parametrize(("raw", "expected"), [("0", "0"), (0, "0"), (1032, "1032"), ("1037", "1037")])
async def test_query_result_code_is_always_a_string(make_client: MakeClient, raw: object, expected: str) -> None:
    answer = {**QUERY_OK, "ResultCode": raw, "ResponseCode": 0}
    peer = Peer(query=lambda _: httpx.Response(200, json=answer))

    result = await make_client(peer).stk_query("174379", PASSKEY, "ws_CO_13012021093521236557")

    assert result.result_code == expected
    assert result.response_code == "0"


async def test_query_tolerates_missing_ids(make_client: MakeClient) -> None:
    peer = Peer(query=lambda _: httpx.Response(200, json={"ResponseCode": "0", "ResultCode": "0"}))

    result = await make_client(peer).stk_query("174379", PASSKEY, "ws_CO_mine")

    assert result == StkQueryResult("0", "", "ws_CO_mine", "0", "")


async def test_query_being_processed_is_still_processing(make_client: MakeClient) -> None:
    answer = envelope(500, "500.001.1001", "The transaction is being processed", request_id="ws_CO_2002")
    peer = Peer(query=lambda _: answer)

    with pytest.raises(DarajaStillProcessing) as caught:
        await make_client(peer).stk_query("174379", PASSKEY, "ws_CO_2002")

    assert caught.value.request_id == "ws_CO_2002"
    assert caught.value.outcome_unknown is False
    assert len(peer.to(STK_QUERY)) == 1


async def test_query_without_result_code_is_a_server_error(make_client: MakeClient) -> None:
    peer = Peer(query=lambda _: httpx.Response(200, json={"ResponseCode": "0"}))

    with pytest.raises(DarajaServerError) as caught:
        await make_client(peer).stk_query("174379", PASSKEY, "ws_CO_1")

    assert caught.value.outcome_unknown is False


async def test_query_non_zero_response_code_is_rejected(make_client: MakeClient) -> None:
    peer = Peer(query=lambda _: httpx.Response(200, json={"ResponseCode": "1", "ResponseDescription": "No"}))

    with pytest.raises(DarajaRejected):
        await make_client(peer).stk_query("174379", PASSKEY, "ws_CO_1")


@pytest.mark.parametrize(("expires_in", "lifetime"), [("3599", 3599), (3599, 3599), (" 600 ", 600), ("soon", 3599)])
async def test_expires_in_string_or_number(make_client: MakeClient, expires_in: object, lifetime: int) -> None:
    clock = FakeClock()
    tokens = iter(["token-1", "token-2"])
    peer = Peer(oauth=lambda _: token_reply(next(tokens), expires_in=expires_in))
    client = make_client(peer, token_cache=TokenCache(clock=clock))
    await client.stk_push(paybill())

    clock.now += lifetime - 121
    await client.stk_push(paybill())
    assert len(peer.to(OAUTH)) == 1
    clock.now += 2
    await client.stk_push(paybill())
    assert len(peer.to(OAUTH)) == 2


def test_httpx_timeouts_become_aiohttp_timeouts_with_a_total() -> None:
    from mpesa_bridge.daraja._transport import client_timeout

    translated = client_timeout(httpx.Timeout(30.0, connect=5.0, pool=2.0))
    assert (translated.connect, translated.sock_connect, translated.sock_read, translated.total) == (
        7.0,
        5.0,
        30.0,
        37.0,
    )
    unbounded = client_timeout(httpx.Timeout(None, connect=5.0))
    assert unbounded.total is None and unbounded.sock_read is None and unbounded.connect is None


async def test_the_client_runs_over_an_aiohttp_session_too() -> None:
    import aiohttp

    from mpesa_bridge.daraja._transport import AiohttpTransport, HttpxTransport

    async with aiohttp.ClientSession() as session, httpx.AsyncClient() as http:
        assert isinstance(
            DarajaClient(BASE, CREDENTIALS, http=session, token_cache=TokenCache())._transport, AiohttpTransport
        )
        assert isinstance(
            DarajaClient(BASE, CREDENTIALS, http=http, token_cache=TokenCache())._transport, HttpxTransport
        )
        with pytest.raises(TypeError, match=r"aiohttp\.ClientSession"):
            DarajaClient(BASE, CREDENTIALS, http=object(), token_cache=TokenCache())  # type: ignore[arg-type]
