"""STK Push's synchronous side: acknowledgement shape, field validation, merchant and lock errors, routing."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from mpesa_bridge.simulator import (
    MAGIC_NUMBERS,
    SANDBOX_PASSKEY,
    SANDBOX_SHORTCODE,
    Simulator,
    SimulatorConfig,
    normalise_msisdn,
    scenario_for,
    scenarios,
    stk_password,
)

PUSH = "/mpesa/stkpush/v1/processrequest"
TIMESTAMP = "20241121131530"
FROZEN = datetime(2024, 11, 21, 10, 15, 30, 123456, tzinfo=UTC)  # 13:15:30.123 in Nairobi
ACCEPTED = "Success. Request accepted for processing"


def push_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "BusinessShortCode": 174379,
        "Password": stk_password(SANDBOX_SHORTCODE, SANDBOX_PASSKEY, TIMESTAMP),
        "Timestamp": TIMESTAMP,
        "TransactionType": "CustomerPayBillOnline",
        "Amount": 1,
        "PartyA": 254708374149,
        "PartyB": 174379,
        "PhoneNumber": 254708374149,
        "CallBackURL": "https://pay.example.com/hooks/stk/3f9c1e7a2b",
        "AccountReference": "INV00042",
        "TransactionDesc": "Order 42",
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not ...}


@pytest.fixture
async def simulator() -> AsyncIterator[Simulator]:
    # Customers never answer within a test here: the synchronous side is all that is looked at.
    async with Simulator(SimulatorConfig(now=lambda: FROZEN, callback_delay=60)) as simulator:
        yield simulator


@pytest.fixture
async def client(simulator: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=simulator.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        token = await client.get(
            "/oauth/v1/generate?grant_type=client_credentials", auth=("sim_consumer_key", "sim_consumer_secret")
        )
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        yield client


def assert_error(response: httpx.Response, status: int, code: str, message: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"requestId", "errorCode", "errorMessage"}
    assert body["requestId"]
    assert (body["errorCode"], body["errorMessage"]) == (code, message)


async def test_accepted_push_has_daraja_shape(client: httpx.AsyncClient) -> None:
    response = await client.post(PUSH, json=push_body())

    assert response.status_code == 200
    body = response.json()
    assert list(body) == [
        "MerchantRequestID",
        "CheckoutRequestID",
        "ResponseCode",
        "ResponseDescription",
        "CustomerMessage",
    ]
    assert re.fullmatch(r"[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\d+", body["MerchantRequestID"])
    # DDMMYYYYHHMMSS in Nairobi time, then milliseconds, then the subscriber digits.
    assert body["CheckoutRequestID"] == "ws_CO_21112024131530123708374149"
    assert body["ResponseCode"] == "0"
    assert body["ResponseDescription"] == body["CustomerMessage"] == ACCEPTED


async def test_push_is_recorded_for_inspection(client: httpx.AsyncClient, simulator: Simulator) -> None:
    checkout_id = (await client.post(PUSH, json=push_body(Amount="1500"))).json()["CheckoutRequestID"]

    record = simulator.push(checkout_id)
    assert (record.phone_number, record.party_a, record.amount) == ("254708374149", "254708374149", 1500)
    assert record.callback_url == "https://pay.example.com/hooks/stk/3f9c1e7a2b"
    assert not record.decided and record.callbacks_sent == 0
    assert simulator.pushes() == [record]
    with pytest.raises(KeyError):
        simulator.push("ws_CO_never_issued")


async def test_portal_sample_password_is_accepted(client: httpx.AsyncClient) -> None:
    password = (  # the portal's sample for Timestamp 20210628092408
        "MTc0Mzc5YmZiMjc5ZjlhYTliZGJjZjE1OGU5N2RkNzFhNDY3Y2QyZTBjODkz"
        "MDU5YjEwZjc4ZTZiNzJhZGExZWQyYzkxOTIwMjEwNjI4MDkyNDA4"
    )
    response = await client.post(PUSH, json=push_body(Password=password, Timestamp="20210628092408"))

    assert response.status_code == 200, response.text


async def test_numbers_may_be_sent_as_strings(client: httpx.AsyncClient) -> None:
    body = push_body(BusinessShortCode="174379", Amount="10", PartyA="254708374149", PartyB="174379")
    response = await client.post(PUSH, json=body | {"PhoneNumber": "254708374149"})

    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "url",
    ["http://localhost:8000/cb", "http://127.0.0.1:9/cb", "http://10.0.0.5/hooks/x?y=1", "https://[::1]:8443/cb"],
)
async def test_local_callback_urls_are_accepted_offline(client: httpx.AsyncClient, url: str) -> None:
    assert (await client.post(PUSH, json=push_body(CallBackURL=url))).status_code == 200


INVALID_FIELDS: list[tuple[str, Any, str]] = [
    ("BusinessShortCode", "1234", "BusinessShortCode"),
    ("BusinessShortCode", 12345678, "BusinessShortCode"),
    ("BusinessShortCode", "17437a", "BusinessShortCode"),
    ("BusinessShortCode", True, "BusinessShortCode"),
    ("BusinessShortCode", ..., "BusinessShortCode"),
    ("Password", "", "Password"),
    ("Password", 12345, "Password"),
    ("Password", "not base64!", "Password"),
    ("Timestamp", "2024-11-21T13:15:30", "Timestamp"),
    ("Timestamp", "2024112113153", "Timestamp"),
    ("Timestamp", "20241321131530", "Timestamp"),
    ("Timestamp", None, "Timestamp"),
    ("TransactionType", "CustomerPayMerchant", "TransactionType"),
    ("TransactionType", "customerpaybillonline", "TransactionType"),
    ("Amount", 10.5, "Amount"),
    ("Amount", 100.0, "Amount"),
    ("Amount", "10.50", "Amount"),
    ("Amount", 0, "Amount"),
    ("Amount", -5, "Amount"),
    ("Amount", 250_001, "Amount"),
    ("Amount", "ten", "Amount"),
    ("Amount", None, "Amount"),
    ("PartyA", "0708374149", "PartyA"),
    ("PartyA", "+254708374149", "PartyA"),
    ("PartyA", 25470837414, "PartyA"),
    ("PartyA", 254608374149, "PartyA"),
    ("PartyB", "1234", "PartyB"),
    ("PartyB", None, "PartyB"),
    ("PhoneNumber", "0708374149", "PhoneNumber"),
    ("PhoneNumber", "254 708 374 149", "PhoneNumber"),
    ("CallBackURL", "ftp://example.com/cb", "CallBackURL"),
    ("CallBackURL", "https://exa mple.com/cb", "CallBackURL"),
    ("CallBackURL", " https://example.com/cb", "CallBackURL"),
    ("CallBackURL", "https://example.com/cb\n", "CallBackURL"),
    ("CallBackURL", "example.com/cb", "CallBackURL"),
    ("CallBackURL", "https:///cb", "CallBackURL"),
    ("CallBackURL", "http://example.com:99999/cb", "CallBackURL"),
    ("CallBackURL", "", "CallBackURL"),
    ("AccountReference", "", "AccountReference"),
    ("AccountReference", "1234567890123", "AccountReference"),
    ("AccountReference", None, "AccountReference"),
    ("TransactionDesc", None, "Remarks"),
    ("TransactionDesc", ..., "Remarks"),
    ("TransactionDesc", "", "TransactionDesc"),
    ("TransactionDesc", "12345678901234", "TransactionDesc"),
]


@pytest.mark.parametrize(("field", "value", "named"), INVALID_FIELDS)
async def test_each_invalid_field_is_named(client: httpx.AsyncClient, field: str, value: Any, named: str) -> None:
    response = await client.post(PUSH, json=push_body(**{field: value}))

    assert_error(response, 400, "400.002.02", f"Bad Request - Invalid {named}")


async def test_longest_allowed_texts_and_amount_pass(client: httpx.AsyncClient) -> None:
    body = push_body(AccountReference="123456789012", TransactionDesc="1234567890123", Amount=250_000)
    assert (await client.post(PUSH, json=body)).status_code == 200


async def test_first_invalid_field_wins(client: httpx.AsyncClient) -> None:
    response = await client.post(PUSH, json=push_body(Amount=10.5, TransactionDesc=None, Timestamp="x"))

    assert_error(response, 400, "400.002.02", "Bad Request - Invalid Timestamp")


@pytest.mark.parametrize(
    "request_kwargs",
    [
        {"content": b'{"BusinessShortCode": 174379}'},  # no Content-Type at all
        {"data": {"BusinessShortCode": "174379"}},  # requests' data= mistake: form-encoded
        {"content": b"{}", "headers": {"Content-Type": "text/plain"}},
    ],
)
async def test_a_body_not_sent_as_json_blames_the_first_field(
    client: httpx.AsyncClient, request_kwargs: dict[str, Any]
) -> None:
    response = await client.post(PUSH, **request_kwargs)

    assert_error(response, 400, "400.002.02", "Bad Request - Invalid BusinessShortCode")


@pytest.mark.parametrize("content", [b"{not json", b"", b"[1, 2]", b'"text"'])
async def test_unparseable_json_is_an_invalid_payload(client: httpx.AsyncClient, content: bytes) -> None:
    response = await client.post(PUSH, content=content, headers={"Content-Type": "application/json; charset=utf-8"})

    assert_error(response, 400, "400.002.05", "Invalid Request Payload")


async def test_unknown_shortcode_is_merchant_does_not_exist(client: httpx.AsyncClient) -> None:
    body = push_body(BusinessShortCode=600000, PartyB=600000)
    body["Password"] = stk_password("600000", SANDBOX_PASSKEY, TIMESTAMP)

    assert_error(await client.post(PUSH, json=body), 500, "500.001.1001", "Merchant does not exist")


@pytest.mark.parametrize(
    "password",
    [
        stk_password(SANDBOX_SHORTCODE, "wrong-passkey", TIMESTAMP),
        stk_password(SANDBOX_SHORTCODE, SANDBOX_PASSKEY, "20241121131531"),  # timestamp taken twice
        stk_password("174380", SANDBOX_PASSKEY, TIMESTAMP),
    ],
)
async def test_password_mismatch_is_wrong_credentials(client: httpx.AsyncClient, password: str) -> None:
    response = await client.post(PUSH, json=push_body(Password=password))

    assert_error(response, 500, "500.001.1001", "[MerchantValidate] - Wrong credentials")


async def test_second_push_to_a_busy_phone_cannot_lock_the_subscriber(client: httpx.AsyncClient) -> None:
    first = await client.post(PUSH, json=push_body())
    second = await client.post(PUSH, json=push_body(Amount=5, PartyA=254700000001))
    other_phone = await client.post(PUSH, json=push_body(PartyA=254711111111, PhoneNumber=254711111111))

    assert first.status_code == 200
    assert_error(
        second,
        500,
        "500.001.1001",
        "Unable to lock subscriber, a transaction is already in process for the current subscriber",
    )
    assert other_phone.status_code == 200


async def test_invalid_pushes_do_not_lock_the_phone(client: httpx.AsyncClient) -> None:
    await client.post(PUSH, json=push_body(Password=stk_password(SANDBOX_SHORTCODE, "nope", TIMESTAMP)))

    assert (await client.post(PUSH, json=push_body())).status_code == 200


async def test_ids_stay_unique_under_a_frozen_clock() -> None:
    # The "no callback" number settles without any POST, which frees the phone for a second push.
    config = SimulatorConfig(now=lambda: FROZEN, callback_delay=0.01)
    body = push_body(PartyA=254700000900, PhoneNumber=254700000900)
    async with (
        Simulator(config) as simulator,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=simulator.app), base_url="http://sim") as client,
    ):
        token = await client.get(
            "/oauth/v1/generate?grant_type=client_credentials", auth=("sim_consumer_key", "sim_consumer_secret")
        )
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        first = (await client.post(PUSH, json=body)).json()["CheckoutRequestID"]
        await simulator.drain(timeout=5)
        second = (await client.post(PUSH, json=body)).json()["CheckoutRequestID"]

    assert first == "ws_CO_21112024131530123700000900"
    assert second == "ws_CO_21112024131530124700000900"


async def test_custom_merchants() -> None:
    config = SimulatorConfig(shortcodes={"600100": "passkey-600100"})
    async with (
        Simulator(config) as simulator,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=simulator.app), base_url="http://sim") as custom,
    ):
        token = await custom.get(
            "/oauth/v1/generate?grant_type=client_credentials", auth=("sim_consumer_key", "sim_consumer_secret")
        )
        custom.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        password = stk_password("600100", "passkey-600100", TIMESTAMP)
        accepted = await custom.post(PUSH, json=push_body(BusinessShortCode=600100, PartyB=600100, Password=password))
        sandbox = await custom.post(PUSH, json=push_body(PartyA=254711111111, PhoneNumber=254711111111))

    assert accepted.status_code == 200
    assert_error(sandbox, 500, "500.001.1001", "Merchant does not exist")


@pytest.mark.parametrize("path", ["/", "/mpesa/stkpush/v2/processrequest", "/oauth/v1/generate/", "/mpesa/b2c/v1/x"])
async def test_unknown_path_is_an_apigee_fault(client: httpx.AsyncClient, path: str) -> None:
    response = await client.post(path, json={})

    assert response.status_code == 404
    assert response.json() == {
        "fault": {
            "faultstring": f"Unable to identify proxy for host: secure and url: {path}",
            "detail": {"errorcode": "messaging.adaptors.http.flow.ApplicationNotFound"},
        }
    }


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", PUSH), ("PUT", "/mpesa/stkpushquery/v1/query"), ("POST", "/oauth/v1/generate")],
)
async def test_wrong_method_is_method_not_allowed(client: httpx.AsyncClient, method: str, path: str) -> None:
    response = await client.request(method, path)

    assert_error(response, 405, "405.001", "Method Not Allowed")


async def test_mountable_under_a_prefix(simulator: Simulator) -> None:
    host = Starlette(routes=[Mount("/simulator", app=simulator.app)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=host), base_url="http://bridge") as client:
        token = await client.get(
            "/simulator/oauth/v1/generate?grant_type=client_credentials",
            auth=("sim_consumer_key", "sim_consumer_secret"),
        )
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        pushed = await client.post(f"/simulator{PUSH}", json=push_body(), headers=headers)
        unknown = await client.get("/simulator/nowhere")

    assert pushed.status_code == 200
    assert unknown.status_code == 404
    assert unknown.json()["fault"]["faultstring"].endswith("url: /nowhere")


def test_magic_numbers_are_documented_data() -> None:
    assert len(MAGIC_NUMBERS) == 13
    assert all(scenario.description for scenario in MAGIC_NUMBERS.values())
    assert all(phone in (scenarios.__doc__ or "") for phone in MAGIC_NUMBERS)  # the README's table
    assert scenario_for("254708374149").result_code == 0
    assert scenario_for("254799999999").result_code == 0  # any other number pays


@pytest.mark.parametrize("spelling", ["0700001032", "+254700001032", "254700001032", 254700001032, "0700 001 032"])
def test_local_spellings_are_the_same_phone(spelling: str | int) -> None:
    assert normalise_msisdn(spelling) == "254700001032"
    assert scenario_for(spelling).result_code == 1032
