"""OAuth against the simulator: token shape, Daraja's refusals, expiry by the injected clock."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from mpesa_bridge.simulator import SANDBOX_PASSKEY, SANDBOX_SHORTCODE, Simulator, SimulatorConfig, stk_password

TOKEN_URL = "/oauth/v1/generate?grant_type=client_credentials"
KEY, SECRET = "sim_consumer_key", "sim_consumer_secret"


class Clock:
    def __init__(self) -> None:
        self.moment = datetime(2024, 11, 21, 10, 15, 30, tzinfo=UTC)

    def now(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def client(clock: Clock) -> AsyncIterator[httpx.AsyncClient]:
    config = SimulatorConfig(now=clock.now, callback_delay=60)
    async with (
        Simulator(config) as simulator,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=simulator.app), base_url="http://sim") as client,
    ):
        yield client


def basic(key: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()}


def query_body() -> dict[str, object]:
    timestamp = "20241121131530"
    return {
        "BusinessShortCode": SANDBOX_SHORTCODE,
        "Password": stk_password(SANDBOX_SHORTCODE, SANDBOX_PASSKEY, timestamp),
        "Timestamp": timestamp,
        "CheckoutRequestID": "ws_CO_unknown",
    }


async def test_token_has_daraja_shape(client: httpx.AsyncClient) -> None:
    response = await client.get(TOKEN_URL, headers=basic(KEY, SECRET))

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"access_token", "expires_in"}
    assert body["expires_in"] == "3599"  # a string, as real responses carry it
    assert len(body["access_token"]) == 28 and body["access_token"].isalnum()


async def test_each_token_is_new(client: httpx.AsyncClient) -> None:
    first = (await client.get(TOKEN_URL, headers=basic(KEY, SECRET))).json()["access_token"]
    second = (await client.get(TOKEN_URL, headers=basic(KEY, SECRET))).json()["access_token"]
    assert first != second


@pytest.mark.parametrize(("key", "secret"), [(KEY, "wrong"), ("unknown", SECRET), (KEY, "")])
async def test_wrong_credentials_get_an_empty_400(client: httpx.AsyncClient, key: str, secret: str) -> None:
    response = await client.get(TOKEN_URL, headers=basic(key, secret))

    assert response.status_code == 400
    assert response.content == b""


async def test_undecodable_basic_credentials_get_an_empty_400(client: httpx.AsyncClient) -> None:
    response = await client.get(TOKEN_URL, headers={"Authorization": "Basic %%%not-base64"})

    assert response.status_code == 400
    assert response.content == b""


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer abc"}, {"Authorization": "Basic"}])
async def test_missing_basic_auth_is_an_invalid_authentication_type(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.get(TOKEN_URL, headers=headers)

    assert response.status_code == 400
    body = response.json()
    assert body["errorCode"] == "400.008.01"
    assert body["errorMessage"] == "Invalid authentication type passed"
    assert body["requestId"]


@pytest.mark.parametrize(
    "url",
    [
        "/oauth/v1/generate",
        "/oauth/v1/generate?grant_type=password",
        "/oauth/v1/generate?grant_type=client_credentials%20",
    ],
)
async def test_grant_type_must_be_client_credentials(client: httpx.AsyncClient, url: str) -> None:
    response = await client.get(url, headers=basic(KEY, SECRET))

    assert response.status_code == 400
    assert response.json()["errorCode"] == "400.008.02"
    assert response.json()["errorMessage"] == "Invalid grant type passed"


async def test_error_envelopes_carry_fresh_request_ids(client: httpx.AsyncClient) -> None:
    first = (await client.get(TOKEN_URL)).json()["requestId"]
    second = (await client.get(TOKEN_URL)).json()["requestId"]
    assert first != second


async def test_custom_credentials_and_ttl() -> None:
    config = SimulatorConfig(credentials={"merchant": "s3cret"}, token_ttl=600)
    async with (
        Simulator(config) as simulator,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=simulator.app), base_url="http://sim") as client,
    ):
        assert (await client.get(TOKEN_URL, headers=basic(KEY, SECRET))).status_code == 400
        response = await client.get(TOKEN_URL, headers=basic("merchant", "s3cret"))

    assert response.json()["expires_in"] == "600"


async def test_token_expires_after_its_ttl_by_the_injected_clock(client: httpx.AsyncClient, clock: Clock) -> None:
    token = (await client.get(TOKEN_URL, headers=basic(KEY, SECRET))).json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}

    clock.advance(3598)
    still_valid = await client.post("/mpesa/stkpushquery/v1/query", json=query_body(), headers=bearer)
    clock.advance(1)
    expired = await client.post("/mpesa/stkpushquery/v1/query", json=query_body(), headers=bearer)

    # The unknown CheckoutRequestID proves the token passed; then the same token is refused.
    assert still_valid.json()["errorMessage"] == "Bad Request - Invalid CheckoutRequestID"
    assert expired.status_code == 404
    assert expired.json()["errorCode"] == "404.001.03"
    assert expired.json()["errorMessage"] == "Invalid Access Token"


@pytest.mark.parametrize("authorization", [None, "Bearer", "Bearer not-a-token", "Basic abc", "token"])
async def test_business_apis_refuse_a_missing_or_unknown_token(
    client: httpx.AsyncClient, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    for path in ("/mpesa/stkpush/v1/processrequest", "/mpesa/stkpushquery/v1/query"):
        response = await client.post(path, json=query_body(), headers=headers)

        assert response.status_code == 404
        assert set(response.json()) == {"requestId", "errorCode", "errorMessage"}
        assert response.json()["errorCode"] == "404.001.03"
        assert response.json()["errorMessage"] == "Invalid Access Token"
