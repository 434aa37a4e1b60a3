"""C2B on the simulator: the Daraja client registers URLs, a customer pays, and a real loopback receiver
standing in for the bridge gets the validation and confirmation (daraja.md §6).

The simulator is reached over ASGI; its validation and confirmation POSTs travel over real sockets to
`tests.fixtures.receiver.Receiver`, which answers as each test scripts it."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from mpesa_bridge.daraja import (
    C2BRegisterRequest,
    C2BSimulateRequest,
    DarajaClient,
    DarajaCredentials,
    DarajaRejected,
    DarajaServerError,
    TokenCache,
)
from mpesa_bridge.daraja.c2b import C2BRejectCode, accept_payment, parse_c2b_payload, reject_payment
from mpesa_bridge.simulator import Simulator, SimulatorConfig
from tests.fixtures.receiver import HANG, Receiver, Reply

PAYBILL, TILL, NO_VALIDATION = "600984", "600977", "600000"
PAYMENTS = "/simulator/c2b/payments"
TRANS_ID = re.compile(r"^[A-Z][A-L][1-9A-V][A-Z0-9]{7}$")
NOW = datetime(2026, 12, 5, 9, 30, 15, tzinfo=UTC)  # 12:30:15 in Nairobi
PAYLOAD_KEYS = [
    "TransactionType",
    "TransID",
    "TransTime",
    "TransAmount",
    "BusinessShortCode",
    "BillRefNumber",
    "InvoiceNumber",
    "OrgAccountBalance",
    "ThirdPartyTransID",
    "MSISDN",
    "FirstName",
    "MiddleName",
    "LastName",
]


def json_reply(body: dict[str, Any], *, delay: float = 0.0) -> Reply:
    return Reply(200, json.dumps(body).encode(), delay=delay, headers={"Content-Type": "application/json"})


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as receiver:
        yield receiver


def make_simulator(**overrides: Any) -> Simulator:
    # The validation deadline (0.5 s) well below the POST timeout (5 s): a test can tell which one ended a wait.
    settings: dict[str, Any] = {"c2b_validation_timeout": 0.5, "callback_timeout": 5.0, "now": lambda: NOW}
    return Simulator(SimulatorConfig(**(settings | overrides)))


@pytest.fixture
async def simulator() -> AsyncIterator[Simulator]:
    async with make_simulator() as simulator:
        yield simulator


@pytest.fixture
async def http(simulator: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=simulator.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        yield client


def daraja(http: httpx.AsyncClient) -> DarajaClient:
    credentials = DarajaCredentials("sim_consumer_key", "sim_consumer_secret")
    return DarajaClient("http://sim", credentials, http=http, token_cache=TokenCache())


async def register(
    http: httpx.AsyncClient, receiver: Receiver, short_code: str, response_type: Any = "Completed", version: Any = 2
) -> None:
    request = C2BRegisterRequest(short_code, response_type, receiver.url + "/confirm", receiver.url + "/validate")
    ack = await daraja(http).c2b_register_urls(request, version=version)
    assert ack.response_code == "0" and ack.response_description == "Success"
    assert ack.originator_conversation_id


async def pay(http: httpx.AsyncClient, **order: Any) -> dict[str, Any]:
    body = {"type": "paybill", "short_code": PAYBILL, "amount": 150, "account": "INV00042"} | order
    response = await http.post(PAYMENTS, json=body)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def test_register_then_pay_sends_validation_then_confirmation_with_dara_fields(
    http: httpx.AsyncClient, receiver: Receiver, simulator: Simulator
) -> None:
    await register(http, receiver, PAYBILL)
    receiver.script("/validate", json_reply(accept_payment("bridge-ref-1")))
    receiver.script("/confirm", json_reply({"ResultCode": 0, "ResultDesc": "Success"}))

    answer = await pay(http, phone="254708374126", first_name="Nicholas", last_name="Mwangi")

    assert [r.path for r in receiver.requests] == ["/validate", "/confirm"]
    validation, confirmation = (r.json for r in receiver.requests)
    for request in receiver.requests:
        assert request.method == "POST" and request.headers["content-type"] == "application/json"
    assert list(validation) == PAYLOAD_KEYS == list(confirmation)
    assert validation == {
        "TransactionType": "Pay Bill",
        "TransID": answer["TransID"],
        "TransTime": "20261205123015",  # Nairobi time, UTC+3
        "TransAmount": "150.00",
        "BusinessShortCode": PAYBILL,
        "BillRefNumber": "INV00042",
        "InvoiceNumber": "",
        "OrgAccountBalance": "",  # blank on validation
        "ThirdPartyTransID": "",
        "MSISDN": "2547 ***** 126",  # v2: masked
        "FirstName": "NICHOLAS",
        "MiddleName": "",
        "LastName": "MWANGI",
    }
    assert confirmation == validation | {"OrgAccountBalance": "150.00", "ThirdPartyTransID": "bridge-ref-1"}
    assert TRANS_ID.match(answer["TransID"])

    # What the bridge's endpoint will do with them: both parse, to the same payment.
    parsed = parse_c2b_payload(confirmation)
    assert parsed.amount == 150 and parsed.trans_time == NOW and parsed.msisdn_kind == "masked"
    assert parsed.org_account_balance is not None and int(parsed.org_account_balance) == 150

    assert answer["status"] == "completed" and answer["org_account_balance"] == 150
    assert answer["validation"]["outcome"] == "accepted" and answer["validation"]["result_code"] == "0"
    assert answer["confirmation"]["http_status"] == 200
    assert answer["confirmation"]["answer"] == {"ResultCode": 0, "ResultDesc": "Success"}
    payment = simulator.c2b.payments[answer["TransID"]]
    assert payment.outcome == "completed" and simulator.c2b.balance(PAYBILL) == 150


async def test_the_balance_grows_and_trans_ids_differ(http: httpx.AsyncClient, receiver: Receiver) -> None:
    await register(http, receiver, PAYBILL)
    receiver.rule("/validate", lambda _request: json_reply(accept_payment()))
    first = await pay(http, amount=100)
    second = await pay(http, amount=25)
    assert first["TransID"] != second["TransID"]
    confirmations = [r.json for r in receiver.at("/confirm")]
    assert [c["OrgAccountBalance"] for c in confirmations] == ["100.00", "125.00"]


async def test_a_v1_registration_gets_the_sha256_of_the_number(http: httpx.AsyncClient, receiver: Receiver) -> None:
    await register(http, receiver, PAYBILL, version=1)
    receiver.script("/validate", json_reply(accept_payment()))
    await pay(http, phone="254712345678")
    for request in receiver.requests:
        assert request.json["MSISDN"] == hashlib.sha256(b"254712345678").hexdigest()
    assert parse_c2b_payload(receiver.requests[-1].json).msisdn_kind == "hashed"


@pytest.mark.parametrize("code", list(C2BRejectCode))
async def test_a_rejecting_validation_means_no_confirmation_and_no_money(
    http: httpx.AsyncClient, receiver: Receiver, simulator: Simulator, code: C2BRejectCode
) -> None:
    await register(http, receiver, PAYBILL)
    receiver.script("/validate", json_reply(reject_payment(code)))

    answer = await pay(http)

    assert [r.path for r in receiver.requests] == ["/validate"]
    assert answer["status"] == "rejected" and answer["confirmation"] is None
    assert answer["validation"] == {
        "outcome": "rejected",
        "result_code": code.value,
        "call": answer["validation"]["call"],
    }
    assert simulator.c2b.balance(PAYBILL) == 0


@pytest.mark.parametrize(
    ("response_type", "slow", "confirmed"),
    [
        ("Completed", HANG, True),
        ("Cancelled", HANG, False),
        ("Completed", json_reply({"ResultCode": "C2B00012"}, delay=1.5), True),  # a refusal too late counts for nothing
        ("Cancelled", Reply(500, b"oops"), False),
        ("Completed", Reply(200, b"not json"), True),
    ],
    ids=["hang-completed", "hang-cancelled", "late-refusal-completed", "500-cancelled", "garbage-completed"],
)
async def test_no_answer_in_time_lets_the_response_type_decide(
    http: httpx.AsyncClient, receiver: Receiver, simulator: Simulator, response_type: str, slow: Reply, confirmed: bool
) -> None:
    await register(http, receiver, PAYBILL, response_type=response_type)
    receiver.script("/validate", slow)
    started = datetime.now(UTC)

    answer = await pay(http)

    assert datetime.now(UTC) - started < timedelta(seconds=3)  # the 0.5 s deadline held, not the 5 s timeout
    assert answer["validation"]["outcome"] == "no_answer"
    if confirmed:
        await receiver.wait_for(2)
        assert [r.path for r in receiver.requests] == ["/validate", "/confirm"]
        assert answer["status"] == "completed" and simulator.c2b.balance(PAYBILL) == 150
    else:
        assert [r.path for r in receiver.requests] == ["/validate"]
        assert answer["status"] == "cancelled" and answer["confirmation"] is None
        assert simulator.c2b.balance(PAYBILL) == 0


async def test_without_external_validation_only_the_confirmation_is_sent(
    http: httpx.AsyncClient, receiver: Receiver
) -> None:
    await register(http, receiver, NO_VALIDATION)
    answer = await pay(http, short_code=NO_VALIDATION)
    assert [r.path for r in receiver.requests] == ["/confirm"]
    assert answer["validation"]["outcome"] == "not_enabled" and answer["status"] == "completed"
    assert receiver.requests[0].json["OrgAccountBalance"] == "150.00"


async def test_a_till_payment_is_buy_goods_with_no_account(http: httpx.AsyncClient, receiver: Receiver) -> None:
    await register(http, receiver, TILL)
    receiver.script("/validate", json_reply(accept_payment()))
    await pay(http, type="till", short_code=TILL, account="ignored")
    for request in receiver.requests:
        assert request.json["TransactionType"] == "Buy Goods" and request.json["BillRefNumber"] == ""
        assert request.json["BusinessShortCode"] == TILL


async def test_an_unregistered_short_code_is_paid_but_nobody_is_told(
    http: httpx.AsyncClient, receiver: Receiver, simulator: Simulator
) -> None:
    answer = await pay(http)
    assert answer["status"] == "completed" and answer["validation"]["outcome"] == "not_registered"
    assert receiver.requests == [] and simulator.c2b.balance(PAYBILL) == 150


async def test_an_unreachable_confirmation_url_is_recorded_not_retried(http: httpx.AsyncClient) -> None:
    async with Receiver() as gone:
        url = gone.url
    credentials_request = C2BRegisterRequest(NO_VALIDATION, "Completed", url + "/confirm", url + "/validate")
    await daraja(http).c2b_register_urls(credentials_request)
    answer = await pay(http, short_code=NO_VALIDATION)
    assert answer["status"] == "completed"
    assert answer["confirmation"]["http_status"] is None and answer["confirmation"]["error"]


@pytest.mark.parametrize(
    ("order", "param"),
    [
        ({"amount": 0}, "amount"),
        ({"amount": 10.5}, "amount"),
        ({"amount": "10"}, "amount"),
        ({"short_code": "12"}, "short_code"),
        ({"type": "b2b"}, "type"),
        ({"account": ""}, "account"),
        ({"account": "A" * 21}, "account"),
        ({"phone": "0708374149"}, "phone"),
        ({"first_name": "R2D2"}, "first_name"),
    ],
)
async def test_the_payment_endpoint_names_a_bad_field(
    http: httpx.AsyncClient, order: dict[str, Any], param: str
) -> None:
    body = {"type": "paybill", "short_code": PAYBILL, "amount": 150, "account": "INV1"} | order
    response = await http.post(PAYMENTS, json=body)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


# Register -------------------------------------------------------------------------------------


async def test_the_sandbox_lets_urls_be_registered_again(
    http: httpx.AsyncClient, receiver: Receiver, simulator: Simulator
) -> None:
    await register(http, receiver, PAYBILL, response_type="Completed")
    await register(http, receiver, PAYBILL, response_type="Cancelled")
    assert simulator.c2b.registrations[PAYBILL].response_type == "Cancelled"


async def test_production_refuses_a_second_registration(receiver: Receiver) -> None:
    async with (
        make_simulator(c2b_register_once=True) as simulator,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=simulator.app), base_url="http://sim") as http,
    ):
        await register(http, receiver, PAYBILL)
        request = C2BRegisterRequest(PAYBILL, "Completed", receiver.url + "/c2", receiver.url + "/v2")
        with pytest.raises(DarajaRejected) as refused:
            await daraja(http).c2b_register_urls(request)
        assert refused.value.error_code == "500.003.1001"
        assert refused.value.error_message == "Urls are already registered."
        assert refused.value.http_status == 500
        assert simulator.c2b.registrations[PAYBILL].confirmation_url == receiver.url + "/confirm"


async def test_the_stk_only_sandbox_code_cannot_register(http: httpx.AsyncClient, receiver: Receiver) -> None:
    request = C2BRegisterRequest("174379", "Completed", receiver.url + "/c", receiver.url + "/v")
    with pytest.raises(DarajaServerError) as failed:
        await daraja(http).c2b_register_urls(request)
    assert "SCO-AddURLVault" in failed.value.error_message


async def register_raw(http: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    token = await http.get(
        "/oauth/v1/generate?grant_type=client_credentials", auth=("sim_consumer_key", "sim_consumer_secret")
    )
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    return await http.post("/mpesa/c2b/v2/registerurl", json=body, headers=headers)


@pytest.mark.parametrize(
    ("change", "code", "message"),
    [
        ({"ShortCode": "12"}, "400.002.02", "Bad Request - Invalid ShortCode"),
        ({"ResponseType": "completed"}, "400.002.02", "Bad Request - Invalid ResponseType"),
        ({"ResponseType": "Canceled"}, "400.002.02", "Bad Request - Invalid ResponseType"),
        ({"ConfirmationURL": "not a url"}, "400.002.02", "Bad Request - Invalid ConfirmationURL"),
        (
            {"ValidationURL": "https://shop.example/MPesa/validate"},
            "400.003.02",
            "Bad Request - Invalid ValidationURL - URL has the word MPESA",
        ),
        (
            {"ConfirmationURL": "https://safaricom-hooks.example/c"},
            "400.003.02",
            "Bad Request - Invalid ConfirmationURL - URL has the word SAFARICOM",
        ),
        (
            {"ValidationURL": "https://shop.example/v?Query=1"},
            "400.003.02",
            "Bad Request - Invalid ValidationURL - URL has the word QUERY",
        ),
    ],
)
async def test_register_refuses_what_daraja_refuses(
    http: httpx.AsyncClient, change: dict[str, str], code: str, message: str
) -> None:
    body = {
        "ShortCode": PAYBILL,
        "ResponseType": "Completed",
        "ConfirmationURL": "https://shop.example/hooks/c2b/confirm",
        "ValidationURL": "https://shop.example/hooks/c2b/validate",
    } | change
    response = await register_raw(http, body)
    assert response.status_code == 400
    assert response.json()["errorCode"] == code and response.json()["errorMessage"] == message


async def test_register_needs_a_token(http: httpx.AsyncClient) -> None:
    response = await http.post("/mpesa/c2b/v2/registerurl", json={"ShortCode": PAYBILL})
    assert response.status_code == 404 and response.json()["errorCode"] == "404.001.03"


# Simulate (the sandbox's own customer) ---------------------------------------------------------


@pytest.mark.parametrize("version", [1, 2])
async def test_simulate_accepts_then_pays_through_the_registered_urls(
    http: httpx.AsyncClient, receiver: Receiver, simulator: Simulator, version: Any
) -> None:
    await register(http, receiver, NO_VALIDATION)
    request = C2BSimulateRequest(NO_VALIDATION, "CustomerPayBillOnline", 7, "254708374149", "INV7")
    ack = await daraja(http).c2b_simulate(request, version=version)
    assert ack.response_code == "0"
    assert ack.response_description == "Accept the service request successfully."
    await simulator.c2b.drain(5)
    (confirmation,) = await receiver.wait_for(1)
    assert confirmation.path == "/confirm"
    assert confirmation.json["TransAmount"] == "7.00" and confirmation.json["BillRefNumber"] == "INV7"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"CommandID": "BusinessPayBill"}, "CommandID"),
        ({"Amount": 10.5}, "Amount"),
        ({"Amount": 0}, "Amount"),
        ({"Msisdn": "0708374149"}, "Msisdn"),
        ({"ShortCode": "abc"}, "ShortCode"),
    ],
)
async def test_simulate_names_a_bad_field(http: httpx.AsyncClient, change: dict[str, Any], field: str) -> None:
    token = await http.get(
        "/oauth/v1/generate?grant_type=client_credentials", auth=("sim_consumer_key", "sim_consumer_secret")
    )
    body = {
        "ShortCode": 600984,
        "CommandID": "CustomerPayBillOnline",
        "Amount": 1,
        "Msisdn": 254708374149,
        "BillRefNumber": "INV00042",
    } | change
    response = await http.post(
        "/mpesa/c2b/v2/simulate", json=body, headers={"Authorization": f"Bearer {token.json()['access_token']}"}
    )
    assert response.status_code == 400
    assert response.json()["errorMessage"] == f"Bad Request - Invalid {field}"
