"""STK callbacks over real loopback HTTP: every magic number, duplicates, late and missing callbacks, tills."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from mpesa_bridge.simulator import (
    MAGIC_NUMBERS,
    SANDBOX_PASSKEY,
    SANDBOX_SHORTCODE,
    CallbackReceiver,
    Delivery,
    Simulator,
    SimulatorConfig,
    stk_password,
)

PUSH = "/mpesa/stkpush/v1/processrequest"
QUERY = "/mpesa/stkpushquery/v1/query"
TIMESTAMP = "20241121131530"
STORE, STORE_PASSKEY = "600100", "store-passkey"
TILL, OTHER_STORES_TILL = "5432109", "7654321"
NOT_PERMITTED = "The request is not permitted according to product assignment."
RECEIPT = re.compile(r"^[A-Z][A-L][1-9A-V][A-Z0-9]{7}$")
ON_TIME = [phone for phone, scenario in MAGIC_NUMBERS.items() if scenario.delivery is Delivery.ON_TIME]


def make_config(**overrides: Any) -> SimulatorConfig:
    settings: dict[str, Any] = {
        "shortcodes": {SANDBOX_SHORTCODE: SANDBOX_PASSKEY, STORE: STORE_PASSKEY},
        "tills": {TILL: SANDBOX_SHORTCODE, OTHER_STORES_TILL: STORE},
        "callback_delay": 0.01,
        "late_callback_delay": 0.6,
        "duplicate_callback_gap": 0.05,
        "callback_timeout": 2.0,
    }
    return SimulatorConfig(**(settings | overrides))


def push_body(phone: str | int, callback_url: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "BusinessShortCode": 174379,
        "Password": stk_password(SANDBOX_SHORTCODE, SANDBOX_PASSKEY, TIMESTAMP),
        "Timestamp": TIMESTAMP,
        "TransactionType": "CustomerPayBillOnline",
        "Amount": 1,
        "PartyA": int(phone),
        "PartyB": 174379,
        "PhoneNumber": int(phone),
        "CallBackURL": callback_url,
        "AccountReference": "INV00042",
        "TransactionDesc": "Order 42",
    }
    return body | overrides


def query_body(checkout_request_id: str) -> dict[str, Any]:
    timestamp = "20241121131700"  # a fresh timestamp is fine: the password is rebuilt with it
    return {
        "BusinessShortCode": 174379,
        "Password": stk_password(SANDBOX_SHORTCODE, SANDBOX_PASSKEY, timestamp),
        "Timestamp": timestamp,
        "CheckoutRequestID": checkout_request_id,
    }


@asynccontextmanager
async def connect(simulator: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    """A Daraja client of the simulator, already holding an access token."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=simulator.app), base_url="http://sim") as client:
        token = await client.get(
            "/oauth/v1/generate?grant_type=client_credentials", auth=("sim_consumer_key", "sim_consumer_secret")
        )
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        yield client


@pytest.fixture
async def receiver() -> AsyncIterator[CallbackReceiver]:
    async with CallbackReceiver(status_for={"/fail": 500}) as receiver:
        yield receiver


@pytest.fixture
async def simulator(receiver: CallbackReceiver) -> AsyncIterator[Simulator]:
    async with Simulator(make_config()) as simulator:
        yield simulator


@pytest.fixture
async def client(simulator: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    async with connect(simulator) as client:
        yield client


async def push(client: httpx.AsyncClient, body: dict[str, Any]) -> str:
    response = await client.post(PUSH, json=body)
    assert response.status_code == 200, response.text
    checkout_request_id: str = response.json()["CheckoutRequestID"]
    return checkout_request_id


def stk_callback(body: bytes) -> dict[str, Any]:
    parsed = json.loads(body)
    assert list(parsed) == ["Body"] and list(parsed["Body"]) == ["stkCallback"]
    callback: dict[str, Any] = parsed["Body"]["stkCallback"]
    return callback


def items(callback: dict[str, Any]) -> dict[str, Any]:
    return {item["Name"]: item.get("Value", "<absent>") for item in callback["CallbackMetadata"]["Item"]}


@pytest.mark.parametrize("phone", [*ON_TIME, "254712345678", "254112345678"])
async def test_every_magic_number_gets_its_callback(
    client: httpx.AsyncClient, receiver: CallbackReceiver, simulator: Simulator, phone: str
) -> None:
    checkout_id = await push(client, push_body(phone, receiver.url(f"/cb/{phone}")))

    [request] = await receiver.wait_for(1, path=f"/cb/{phone}")
    await simulator.drain(timeout=5)

    assert request.method == "POST"
    assert request.headers["content-type"] == "application/json"
    callback = stk_callback(request.body)
    expected = MAGIC_NUMBERS.get(phone)
    assert type(callback["ResultCode"]) is int
    assert callback["ResultCode"] == (expected.result_code if expected else 0)
    assert callback["ResultDesc"] == (expected.result_desc if expected else simulator.push(checkout_id).result_desc)
    assert callback["CheckoutRequestID"] == checkout_id
    assert callback["MerchantRequestID"] == simulator.push(checkout_id).merchant_request_id
    if callback["ResultCode"] == 0:
        assert set(callback) == {
            "MerchantRequestID",
            "CheckoutRequestID",
            "ResultCode",
            "ResultDesc",
            "CallbackMetadata",
        }
        assert callback["ResultDesc"] == "The service request is processed successfully."
    else:
        assert set(callback) == {"MerchantRequestID", "CheckoutRequestID", "ResultCode", "ResultDesc"}
    record = simulator.push(checkout_id)
    assert record.decided and record.callbacks_sent == 1 and record.callbacks[0].delivered


@pytest.mark.parametrize(
    ("phone", "code", "desc"),
    [
        ("254700000001", 1, "The balance is insufficient for the transaction."),
        ("254700001032", 1032, "Request cancelled by user"),
        ("254700001037", 1037, "DS timeout user cannot be reached"),
        ("254700002001", 2001, "The initiator information is invalid."),
        (
            "254700001001",
            1001,
            "Unable to lock subscriber, a transaction is already in process for the current subscriber",
        ),
        ("254700009999", 9999, "An error occurred while sending a push request"),
    ],
)
def test_failure_texts_follow_the_reference(phone: str, code: int, desc: str) -> None:
    assert (MAGIC_NUMBERS[phone].result_code, MAGIC_NUMBERS[phone].result_desc) == (code, desc)


async def test_success_metadata_has_daraja_types(receiver: CallbackReceiver) -> None:
    frozen = datetime(2024, 11, 21, 10, 15, 30, tzinfo=UTC)  # 13:15:30 in Nairobi
    async with Simulator(make_config(now=lambda: frozen)) as simulator, connect(simulator) as client:
        await push(client, push_body("254708374149", receiver.url(), Amount=1500))
        [request] = await receiver.wait_for(1)

    metadata = stk_callback(request.body)["CallbackMetadata"]["Item"]
    assert [item["Name"] for item in metadata] == [
        "Amount",
        "MpesaReceiptNumber",
        "Balance",
        "TransactionDate",
        "PhoneNumber",
    ]
    values = items(stk_callback(request.body))
    assert type(values["Amount"]) is float and values["Amount"] == 1500.0
    assert b'"Value":1500.0' in request.body
    assert values["Balance"] == "<absent>"
    assert values["TransactionDate"] == 20241121131530
    assert values["PhoneNumber"] == 254708374149
    # 2024 -> S, November -> K, the 21st -> L, then seven random characters.
    assert RECEIPT.match(values["MpesaReceiptNumber"]) and values["MpesaReceiptNumber"].startswith("SKL")
    assert not values["MpesaReceiptNumber"].endswith("0000000")


async def test_receipts_are_unique(client: httpx.AsyncClient, receiver: CallbackReceiver) -> None:
    phones = [f"2547{n:08d}" for n in range(10_000_000, 10_000_025)]
    for phone in phones:
        await push(client, push_body(phone, receiver.url()))

    requests = await receiver.wait_for(len(phones))
    receipts = {items(stk_callback(request.body))["MpesaReceiptNumber"] for request in requests}
    assert len(receipts) == len(phones)
    assert all(RECEIPT.match(receipt) for receipt in receipts)


async def test_query_before_the_customer_acts_is_still_processing(receiver: CallbackReceiver) -> None:
    async with Simulator(make_config(callback_delay=30)) as simulator, connect(simulator) as client:
        checkout_id = await push(client, push_body("254700001032", receiver.url()))
        response = await client.post(QUERY, json=query_body(checkout_id))

    assert response.status_code == 500
    assert response.json() == {
        "requestId": checkout_id,
        "errorCode": "500.001.1001",
        "errorMessage": "The transaction is being processed",
    }


@pytest.mark.parametrize(("phone", "code"), [("254708374149", "0"), ("254700001032", "1032"), ("254700000001", "1")])
async def test_query_after_the_customer_acts_reports_the_result(
    client: httpx.AsyncClient, receiver: CallbackReceiver, simulator: Simulator, phone: str, code: str
) -> None:
    checkout_id = await push(client, push_body(phone, receiver.url()))
    await simulator.drain(timeout=5)

    response = await client.post(QUERY, json=query_body(checkout_id))

    assert response.status_code == 200
    record = simulator.push(checkout_id)
    assert response.json() == {
        "ResponseCode": "0",
        "ResponseDescription": "The service request has been accepted successsfully",
        "MerchantRequestID": record.merchant_request_id,
        "CheckoutRequestID": checkout_id,
        "ResultCode": code,
        "ResultDesc": record.result_desc,
    }


async def test_no_callback_number_pays_silently_and_query_says_zero(
    client: httpx.AsyncClient, receiver: CallbackReceiver, simulator: Simulator
) -> None:
    checkout_id = await push(client, push_body("254700000900", receiver.url()))
    await simulator.drain(timeout=5)

    response = await client.post(QUERY, json=query_body(checkout_id))

    assert response.json()["ResultCode"] == "0"
    assert receiver.requests == []
    record = simulator.push(checkout_id)
    assert record.decided and record.callbacks_sent == 0 and record.receipt_number


async def test_lagging_query_number_says_processing_until_query_lag_after_the_push(receiver: CallbackReceiver) -> None:
    clock = [datetime(2024, 11, 21, 10, 15, 30, tzinfo=UTC)]
    config = make_config(query_lag=900.0, token_ttl=10**6, now=lambda: clock[0])
    async with Simulator(config) as simulator, connect(simulator) as client:
        checkout_id = await push(client, push_body("254700000904", receiver.url()))
        await simulator.drain(timeout=5)  # the customer has paid
        clock[0] += timedelta(seconds=899)
        early = await client.post(QUERY, json=query_body(checkout_id))
        clock[0] += timedelta(seconds=1)
        late = await client.post(QUERY, json=query_body(checkout_id))

    assert early.status_code == 500
    assert early.json() == {
        "requestId": checkout_id,
        "errorCode": "500.001.1001",
        "errorMessage": "The transaction is being processed",
    }
    assert late.json()["ResultCode"] == "0"
    assert receiver.requests == []  # no callback, ever
    assert simulator.push(checkout_id).decided and simulator.push(checkout_id).callbacks_sent == 0


async def test_lose_callbacks_decides_every_push_and_calls_nobody_back(receiver: CallbackReceiver) -> None:
    async with Simulator(make_config(lose_callbacks=True)) as simulator, connect(simulator) as client:
        phones = ("254712345678", "254700001032")  # any number, and a magic one
        checkout_ids = [await push(client, push_body(phone, receiver.url())) for phone in phones]
        await simulator.drain(timeout=5)
        answers = [(await client.post(QUERY, json=query_body(c))).json()["ResultCode"] for c in checkout_ids]

    assert answers == ["0", "1032"]  # each phone's own outcome, told by STK Query alone
    assert receiver.requests == []
    assert all(simulator.push(c).decided and simulator.push(c).callbacks_sent == 0 for c in checkout_ids)


async def test_twice_number_sends_the_same_body_twice(
    client: httpx.AsyncClient, receiver: CallbackReceiver, simulator: Simulator
) -> None:
    checkout_id = await push(client, push_body("254700000901", receiver.url()))

    first, second = await receiver.wait_for(2)
    await simulator.drain(timeout=5)

    assert first.body == second.body
    assert stk_callback(first.body)["ResultCode"] == 0
    attempts = simulator.push(checkout_id).callbacks
    assert len(attempts) == 2
    assert (attempts[1].at - attempts[0].at).total_seconds() >= 0.04  # the 0.05 s gap, give or take clocks


async def test_contradicting_number_sends_success_then_cancelled(
    client: httpx.AsyncClient, receiver: CallbackReceiver, simulator: Simulator
) -> None:
    checkout_id = await push(client, push_body("254700000903", receiver.url()))

    first, second = await receiver.wait_for(2)
    await simulator.drain(timeout=5)

    assert stk_callback(first.body)["ResultCode"] == 0
    assert stk_callback(second.body)["ResultCode"] == 1032
    assert stk_callback(second.body)["CheckoutRequestID"] == checkout_id
    assert "CallbackMetadata" not in stk_callback(second.body)


async def test_late_number_stays_processing_until_its_callback(
    client: httpx.AsyncClient, receiver: CallbackReceiver, simulator: Simulator
) -> None:
    late_id = await push(client, push_body("254700000902", receiver.url("/late")))
    # Once an ordinary push made at the same time has been answered, the late one still is not.
    await push(client, push_body("254708374149", receiver.url("/on-time")))
    await receiver.wait_for(1, path="/on-time")

    pending = await client.post(QUERY, json=query_body(late_id))
    blocked = await client.post(PUSH, json=push_body("254700000902", receiver.url("/late")))
    [late] = await receiver.wait_for(1, path="/late")
    settled = await client.post(QUERY, json=query_body(late_id))

    assert pending.status_code == 500
    assert pending.json()["errorMessage"] == "The transaction is being processed"
    assert blocked.json()["errorMessage"].startswith("Unable to lock subscriber")
    assert stk_callback(late.body)["ResultCode"] == 0
    assert settled.status_code == 200 and settled.json()["ResultCode"] == "0"


async def test_phone_is_unlocked_once_the_outcome_is_decided(
    client: httpx.AsyncClient, receiver: CallbackReceiver, simulator: Simulator
) -> None:
    await push(client, push_body("254700001032", receiver.url()))
    await simulator.drain(timeout=5)

    await push(client, push_body("254700001032", receiver.url()))


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"TransactionType": "CustomerBuyGoodsOnline", "PartyB": int(TILL)}, 0),
        ({"TransactionType": "CustomerBuyGoodsOnline", "PartyB": int(OTHER_STORES_TILL)}, 2028),
        ({"TransactionType": "CustomerBuyGoodsOnline", "PartyB": 174379}, 2028),  # a paybill is not a till
        ({"TransactionType": "CustomerBuyGoodsOnline", "PartyB": 1234567}, 2028),  # unknown till
        ({"TransactionType": "CustomerPayBillOnline", "PartyB": 600000}, 2028),  # paybill != BusinessShortCode
        ({"TransactionType": "CustomerPayBillOnline", "PartyB": int(TILL)}, 2028),
        (
            {
                "BusinessShortCode": int(STORE),
                "Password": stk_password(STORE, STORE_PASSKEY, TIMESTAMP),
                "TransactionType": "CustomerBuyGoodsOnline",
                "PartyB": int(OTHER_STORES_TILL),
            },
            0,
        ),
    ],
)
async def test_party_b_must_belong_to_the_business_shortcode(
    client: httpx.AsyncClient, receiver: CallbackReceiver, overrides: dict[str, Any], code: int
) -> None:
    await push(client, push_body("254708374149", receiver.url(), **overrides))

    [request] = await receiver.wait_for(1)

    callback = stk_callback(request.body)
    assert callback["ResultCode"] == code
    if code:
        assert callback["ResultDesc"] == NOT_PERMITTED
        assert "CallbackMetadata" not in callback


async def test_rejected_callback_is_recorded_and_not_retried(
    client: httpx.AsyncClient, receiver: CallbackReceiver, simulator: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mpesa_bridge.simulator")
    checkout_id = await push(client, push_body("254708374149", receiver.url("/fail")))
    await simulator.drain(timeout=5)

    [attempt] = simulator.push(checkout_id).callbacks
    assert attempt.status_code == 500 and not attempt.delivered
    assert len(receiver.received("/fail")) == 1
    assert "simulator.callback.rejected" in [r.message for r in caplog.records if r.name.startswith("mpesa_bridge")]


async def test_unreachable_callback_url_is_logged_and_not_retried(
    client: httpx.AsyncClient, simulator: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    caplog.set_level(logging.WARNING, logger="mpesa_bridge.simulator")

    checkout_id = await push(client, push_body("254708374149", f"http://127.0.0.1:{port}/cb"))
    await simulator.drain(timeout=5)

    [attempt] = simulator.push(checkout_id).callbacks
    assert attempt.status_code is None and attempt.error
    assert [r.message for r in caplog.records if r.name.startswith("mpesa_bridge")] == ["simulator.callback.failed"]
    assert simulator.push(checkout_id).decided  # the phone is free again all the same


async def test_aclose_cancels_pending_callbacks(receiver: CallbackReceiver) -> None:
    simulator = Simulator(make_config(callback_delay=30))
    await simulator.start()
    async with connect(simulator) as client:
        checkout_id = await push(client, push_body("254708374149", receiver.url()))

    await simulator.aclose()

    await simulator.drain(timeout=0.1)  # nothing left to wait for
    assert not simulator.push(checkout_id).decided
    assert receiver.requests == []


async def test_aclose_cancels_a_callback_in_flight() -> None:
    connected, hung_up = asyncio.Event(), asyncio.Event()

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connected.set()
        await reader.read()  # until the simulator hangs up
        writer.close()
        hung_up.set()

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        simulator = Simulator(make_config())
        async with connect(simulator) as client:
            checkout_id = await push(client, push_body("254708374149", f"http://127.0.0.1:{port}/cb"))
        await asyncio.wait_for(connected.wait(), 5)

        await simulator.aclose()

        await asyncio.wait_for(hung_up.wait(), 5)
    assert simulator.push(checkout_id).callbacks == []


async def test_drain_times_out_while_callbacks_are_pending(receiver: CallbackReceiver) -> None:
    async with Simulator(make_config(callback_delay=30)) as simulator, connect(simulator) as client:
        await push(client, push_body("254708374149", receiver.url()))
        with pytest.raises(TimeoutError):
            await simulator.drain(timeout=0.05)


async def test_push_before_start_starts_the_sender(receiver: CallbackReceiver) -> None:
    simulator = Simulator(make_config())  # e.g. mounted in a host app that forgot the lifespan hook
    try:
        async with connect(simulator) as client:
            await push(client, push_body("254708374149", receiver.url()))
        await receiver.wait_for(1)
    finally:
        await simulator.aclose()


async def test_callbacks_use_an_injected_http_client(receiver: CallbackReceiver) -> None:
    async with httpx.AsyncClient(headers={"X-Test": "injected"}) as http:
        async with Simulator(make_config(), http=http) as simulator, connect(simulator) as client:
            await push(client, push_body("254708374149", receiver.url()))
            [request] = await receiver.wait_for(1)
        assert not http.is_closed  # the simulator does not close a client it does not own

    assert request.headers["x-test"] == "injected"
