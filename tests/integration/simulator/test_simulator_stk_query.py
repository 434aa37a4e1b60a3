"""STK Push Query's refusals: unknown ids, other merchants' ids, credentials and field rules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from mpesa_bridge.simulator import SANDBOX_PASSKEY, SANDBOX_SHORTCODE, Simulator, SimulatorConfig, stk_password

PUSH = "/mpesa/stkpush/v1/processrequest"
QUERY = "/mpesa/stkpushquery/v1/query"
TIMESTAMP = "20241121131530"
OTHER, OTHER_PASSKEY = "600100", "other-passkey"


def credentials(short_code: str = SANDBOX_SHORTCODE, passkey: str = SANDBOX_PASSKEY) -> dict[str, Any]:
    return {
        "BusinessShortCode": int(short_code),
        "Password": stk_password(short_code, passkey, TIMESTAMP),
        "Timestamp": TIMESTAMP,
    }


def query_body(checkout_request_id: Any, **overrides: Any) -> dict[str, Any]:
    body = credentials() | {"CheckoutRequestID": checkout_request_id} | overrides
    return {key: value for key, value in body.items() if value is not ...}


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    config = SimulatorConfig(shortcodes={SANDBOX_SHORTCODE: SANDBOX_PASSKEY, OTHER: OTHER_PASSKEY}, callback_delay=60)
    async with (
        Simulator(config) as simulator,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=simulator.app), base_url="http://sim") as client,
    ):
        token = await client.get(
            "/oauth/v1/generate?grant_type=client_credentials", auth=("sim_consumer_key", "sim_consumer_secret")
        )
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        yield client


@pytest.fixture
async def checkout_id(client: httpx.AsyncClient) -> str:
    body = credentials() | {
        "TransactionType": "CustomerPayBillOnline",
        "Amount": 1,
        "PartyA": 254708374149,
        "PartyB": 174379,
        "PhoneNumber": 254708374149,
        "CallBackURL": "https://pay.example.com/hooks/stk/3f9c1e7a2b",
        "AccountReference": "INV00042",
        "TransactionDesc": "Order 42",
    }
    response = await client.post(PUSH, json=body)
    assert response.status_code == 200
    value: str = response.json()["CheckoutRequestID"]
    return value


def assert_error(response: httpx.Response, status: int, code: str, message: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"requestId", "errorCode", "errorMessage"}
    assert (body["errorCode"], body["errorMessage"]) == (code, message)


async def test_pending_push_is_being_processed(client: httpx.AsyncClient, checkout_id: str) -> None:
    response = await client.post(QUERY, json=query_body(checkout_id))

    assert_error(response, 500, "500.001.1001", "The transaction is being processed")
    assert response.json()["requestId"] == checkout_id


@pytest.mark.parametrize("unknown", ["ws_CO_21112024131530123708374149", "anything", ""])
async def test_unknown_checkout_request_id_is_invalid(client: httpx.AsyncClient, unknown: str) -> None:
    response = await client.post(QUERY, json=query_body(unknown))

    assert_error(response, 400, "400.002.02", "Bad Request - Invalid CheckoutRequestID")


@pytest.mark.parametrize("value", [..., None, 12345])
async def test_missing_checkout_request_id_is_invalid(client: httpx.AsyncClient, value: Any) -> None:
    response = await client.post(QUERY, json=query_body(value))

    assert_error(response, 400, "400.002.02", "Bad Request - Invalid CheckoutRequestID")


async def test_another_merchant_cannot_query_the_push(client: httpx.AsyncClient, checkout_id: str) -> None:
    response = await client.post(QUERY, json=query_body(checkout_id, **credentials(OTHER, OTHER_PASSKEY)))

    assert_error(response, 400, "400.002.02", "Bad Request - Invalid CheckoutRequestID")


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"BusinessShortCode": "12"}, "BusinessShortCode"),
        ({"Password": ""}, "Password"),
        ({"Timestamp": "2024-11-21 13:15:30"}, "Timestamp"),
        ({"Timestamp": ...}, "Timestamp"),
    ],
)
async def test_fields_are_validated_like_the_push(
    client: httpx.AsyncClient, checkout_id: str, overrides: dict[str, Any], named: str
) -> None:
    response = await client.post(QUERY, json=query_body(checkout_id, **overrides))

    assert_error(response, 400, "400.002.02", f"Bad Request - Invalid {named}")


async def test_wrong_password_is_wrong_credentials(client: httpx.AsyncClient, checkout_id: str) -> None:
    password = stk_password(SANDBOX_SHORTCODE, SANDBOX_PASSKEY, "20241121131531")
    response = await client.post(QUERY, json=query_body(checkout_id, Password=password))

    assert_error(response, 500, "500.001.1001", "[MerchantValidate] - Wrong credentials")


async def test_unknown_shortcode_is_merchant_does_not_exist(client: httpx.AsyncClient, checkout_id: str) -> None:
    response = await client.post(QUERY, json=query_body(checkout_id, **credentials("600999", "x")))

    assert_error(response, 500, "500.001.1001", "Merchant does not exist")


async def test_body_must_be_json(client: httpx.AsyncClient, checkout_id: str) -> None:
    form = await client.post(QUERY, data={"CheckoutRequestID": checkout_id})
    garbage = await client.post(QUERY, content=b"{", headers={"Content-Type": "application/json"})

    assert_error(form, 400, "400.002.02", "Bad Request - Invalid BusinessShortCode")
    assert_error(garbage, 400, "400.002.05", "Invalid Request Payload")
