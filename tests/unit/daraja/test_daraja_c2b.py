"""C2B in the Daraja client against a scripted Daraja (httpx.MockTransport): register and simulate bodies
field by field (daraja.md §6.1, §6.2), the URL rules, tolerant acknowledgements, the register refusals;
and the validation/confirmation payloads and answers of `daraja.c2b` (§6.3, §6.4)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
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
    DarajaValidationError,
    TokenCache,
)
from mpesa_bridge.daraja.c2b import (
    CONFIRMATION_ACK,
    C2BPayloadError,
    C2BRejectCode,
    accept_payment,
    msisdn_kind,
    parse_c2b_payload,
    reject_payment,
)

SANDBOX = "https://sandbox.safaricom.co.ke"
PRODUCTION = "https://api.safaricom.co.ke"
CREDENTIALS = DarajaCredentials("consumer-key", "consumer-secret-s3cr3t")
REGISTER = C2BRegisterRequest(
    "600984",
    "Completed",
    "https://pay.example.com/hooks/c2b/confirm/7d2e9a",
    "https://pay.example.com/hooks/c2b/validate/7d2e9a",
)
REGISTERED = {
    "OriginatorCoversationID": "6e86-45dd-91ac-fd5d4178ab523408729",
    "ResponseCode": "0",
    "ResponseDescription": "Success",
}
SIMULATE = C2BSimulateRequest("600984", "CustomerPayBillOnline", 1, "254708374149", "INV00042")

Answer = Callable[[httpx.Request], httpx.Response]


class Peer:
    """Daraja's OAuth path and whatever else is asked; records (path, body) of the other requests."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.sent: list[tuple[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/v1/generate":
            return httpx.Response(200, json={"access_token": "token-1", "expires_in": "3599"})
        assert request.headers["authorization"] == "Bearer token-1"
        assert request.headers["content-type"] == "application/json"
        self.sent.append((request.url.path, json.loads(request.content)))
        return self.answer(request)


def reply(body: Mapping[str, object], status: int = 200) -> Answer:
    return lambda _: httpx.Response(status, json=dict(body))


@pytest.fixture
async def opened() -> AsyncIterator[list[httpx.AsyncClient]]:
    clients: list[httpx.AsyncClient] = []
    yield clients
    for client in clients:
        await client.aclose()


def client_for(opened: list[httpx.AsyncClient], answer: Answer, base: str = SANDBOX) -> tuple[DarajaClient, Peer]:
    peer = Peer(answer)
    http = httpx.AsyncClient(transport=httpx.MockTransport(peer))
    opened.append(http)
    return DarajaClient(base, CREDENTIALS, http=http, token_cache=TokenCache()), peer


# Register ---------------------------------------------------------------------------------------


async def test_register_sends_the_four_fields_to_v2_by_default(opened: list[httpx.AsyncClient]) -> None:
    client, peer = client_for(opened, reply(REGISTERED))
    ack = await client.c2b_register_urls(REGISTER)
    assert peer.sent == [
        (
            "/mpesa/c2b/v2/registerurl",
            {
                "ShortCode": "600984",  # a string, as in Daraja's sample
                "ResponseType": "Completed",
                "ConfirmationURL": "https://pay.example.com/hooks/c2b/confirm/7d2e9a",
                "ValidationURL": "https://pay.example.com/hooks/c2b/validate/7d2e9a",
            },
        )
    ]
    assert ack.originator_conversation_id == "6e86-45dd-91ac-fd5d4178ab523408729"
    assert (ack.response_code, ack.response_description) == ("0", "Success")


async def test_register_v1_uses_the_v1_path(opened: list[httpx.AsyncClient]) -> None:
    client, peer = client_for(opened, reply(REGISTERED))
    await client.c2b_register_urls(REGISTER, version=1)
    assert [path for path, _ in peer.sent] == ["/mpesa/c2b/v1/registerurl"]


@pytest.mark.parametrize("version", [0, 3, "2", True])
async def test_only_versions_1_and_2_exist(opened: list[httpx.AsyncClient], version: Any) -> None:
    client, peer = client_for(opened, reply(REGISTERED))
    with pytest.raises(DarajaValidationError) as refused:
        await client.c2b_register_urls(REGISTER, version=version)
    with pytest.raises(DarajaValidationError):
        await client.c2b_simulate(SIMULATE, version=version)
    assert refused.value.field == "version" and peer.sent == []


@pytest.mark.parametrize(
    "body",
    [
        {"OriginatorCoversationID": "x", "ResponseCode": "00000000", "ResponseDescription": "success"},
        {"OriginatorCoversationID": "x", "ResponseCode": 0, "ResponseDescription": "Success"},
        {"OriginatorCoversationID": "x", "ResponseDescription": "Success"},  # new accounts: no code at all
        {"OriginatorConversationID": "x", "ResponseCode": "0", "ResponseDescription": "Success"},
    ],
)
async def test_register_reads_every_known_success_shape(opened: list[httpx.AsyncClient], body: dict[str, Any]) -> None:
    client, _ = client_for(opened, reply(body))
    ack = await client.c2b_register_urls(REGISTER)
    assert ack.response_code == "0" and ack.originator_conversation_id == "x"


async def test_a_2xx_without_code_or_success_is_a_server_error(opened: list[httpx.AsyncClient]) -> None:
    client, _ = client_for(opened, reply({"ResponseDescription": "Something odd"}))
    with pytest.raises(DarajaServerError) as error:
        await client.c2b_register_urls(REGISTER)
    assert error.value.outcome_unknown is False


@pytest.mark.parametrize(
    "message",
    ["Urls are already registered.", "Duplicate notification info, SP ID is 107031, correlator is 1234"],
)
async def test_register_refusals_needing_a_person_are_rejections_not_server_errors(
    opened: list[httpx.AsyncClient], message: str
) -> None:
    envelope = {"requestId": "30764-19833054-1", "errorCode": "500.003.1001", "errorMessage": message}
    client, _ = client_for(opened, reply(envelope, 500))
    with pytest.raises(DarajaRejected) as refused:
        await client.c2b_register_urls(REGISTER)
    assert refused.value.error_message == message and refused.value.outcome_unknown is False


async def test_a_plain_internal_error_stays_a_server_error(opened: list[httpx.AsyncClient]) -> None:
    envelope = {"requestId": "1", "errorCode": "500.003.1001", "errorMessage": "Internal Server Error"}
    client, _ = client_for(opened, reply(envelope, 500))
    with pytest.raises(DarajaServerError):
        await client.c2b_register_urls(REGISTER)


async def test_the_mpesa_word_error_is_a_rejection(opened: list[httpx.AsyncClient]) -> None:
    message = "Bad Request - Invalid ValidationURL - URL has the word MPESA"
    client, _ = client_for(opened, reply({"requestId": "1", "errorCode": "400.003.02", "errorMessage": message}, 400))
    with pytest.raises(DarajaRejected):
        await client.c2b_register_urls(REGISTER)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("short_code", "1234"),
        ("short_code", "60098a"),
        ("response_type", "completed"),
        ("response_type", "Canceled"),
        ("response_type", "COMPLETED"),
        ("confirmation_url", "pay.example.com/confirm"),
        ("confirmation_url", "https://pay.example.com/c 2b"),
        ("confirmation_url", "https://pay.example.com/mpesa/confirm"),
        ("confirmation_url", "https://pay.example.com/M-Pesa/confirm"),
        ("validation_url", "https://SAFARICOM.example.com/v"),
        ("validation_url", "https://pay.example.com/run.exe"),
        ("validation_url", "https://pay.example.com/exec/v"),
        ("validation_url", "https://pay.example.com/cmd/v"),
        ("validation_url", "https://pay.example.com/mysql/v"),
        ("validation_url", "https://pay.example.com/v?query=1"),
    ],
)
async def test_register_refuses_before_sending(opened: list[httpx.AsyncClient], field: str, value: str) -> None:
    client, peer = client_for(opened, reply(REGISTERED))
    request = C2BRegisterRequest(**(_register_fields() | {field: value}))
    with pytest.raises(DarajaValidationError) as refused:
        await client.c2b_register_urls(request)
    assert refused.value.field == field
    assert peer.sent == []


def _register_fields() -> dict[str, Any]:
    return {
        "short_code": REGISTER.short_code,
        "response_type": REGISTER.response_type,
        "confirmation_url": REGISTER.confirmation_url,
        "validation_url": REGISTER.validation_url,
    }


async def test_production_needs_https_and_the_sandbox_does_not(opened: list[httpx.AsyncClient]) -> None:
    plain = C2BRegisterRequest("600984", "Cancelled", "http://pay.example.com/c", "http://pay.example.com/v")
    sandbox, _ = client_for(opened, reply(REGISTERED))
    await sandbox.c2b_register_urls(plain)
    production, peer = client_for(opened, reply(REGISTERED), PRODUCTION)
    with pytest.raises(DarajaValidationError) as refused:
        await production.c2b_register_urls(plain)
    assert refused.value.field == "confirmation_url" and peer.sent == []
    await production.c2b_register_urls(REGISTER)


# Simulate ---------------------------------------------------------------------------------------


async def test_simulate_sends_daraja_fields_with_numbers_as_numbers(opened: list[httpx.AsyncClient]) -> None:
    accepted = {
        "OriginatorCoversationID": "53e3-4aa8-9fe0-8fb5e4092cdd3405976",
        "ResponseCode": "0",
        "ResponseDescription": "Accept the service request successfully.",
    }
    client, peer = client_for(opened, reply(accepted))
    ack = await client.c2b_simulate(SIMULATE)
    assert peer.sent == [
        (
            "/mpesa/c2b/v2/simulate",
            {
                "ShortCode": 600984,
                "CommandID": "CustomerPayBillOnline",
                "Amount": 1,
                "Msisdn": 254708374149,
                "BillRefNumber": "INV00042",
            },
        )
    ]
    assert ack.response_description == "Accept the service request successfully."


async def test_simulate_buy_goods_sends_a_null_bill_ref_on_v1(opened: list[httpx.AsyncClient]) -> None:
    client, peer = client_for(opened, reply(REGISTERED))
    await client.c2b_simulate(C2BSimulateRequest("600977", "CustomerBuyGoodsOnline", 5, "254708374149"), version=1)
    assert peer.sent[0][0] == "/mpesa/c2b/v1/simulate"
    assert peer.sent[0][1]["BillRefNumber"] is None


async def test_simulate_is_refused_in_production(opened: list[httpx.AsyncClient]) -> None:
    client, peer = client_for(opened, reply(REGISTERED), PRODUCTION)
    with pytest.raises(DarajaValidationError):
        await client.c2b_simulate(SIMULATE)
    assert peer.sent == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("command_id", "BusinessPayBill"), ("amount", 0), ("msisdn", "0708374149"), ("bill_ref_number", "A" * 21)],
)
async def test_simulate_checks_its_fields(opened: list[httpx.AsyncClient], field: str, value: Any) -> None:
    client, peer = client_for(opened, reply(REGISTERED))
    fields = {
        "short_code": "600984",
        "command_id": "CustomerPayBillOnline",
        "amount": 1,
        "msisdn": "254708374149",
        "bill_ref_number": "INV1",
    }
    with pytest.raises(DarajaValidationError) as refused:
        await client.c2b_simulate(C2BSimulateRequest(**(fields | {field: value})))
    assert refused.value.field == field and peer.sent == []


# Payloads (§6.3) --------------------------------------------------------------------------------

V2_CONFIRMATION = {
    "TransactionType": "Pay Bill",
    "TransID": "RKL51ZDR4F",
    "TransTime": "20231121121325",
    "TransAmount": "5.00",
    "BusinessShortCode": "600966",
    "BillRefNumber": "Sample Transaction",
    "InvoiceNumber": "",
    "OrgAccountBalance": "25.00",
    "ThirdPartyTransID": "",
    "MSISDN": "2547 ***** 126",
    "FirstName": "NICHOLAS",
    "MiddleName": "",
    "LastName": "",
}


def test_the_documented_v2_confirmation_parses_field_by_field() -> None:
    payload = parse_c2b_payload(V2_CONFIRMATION)
    assert payload.transaction_type == "Pay Bill"
    assert payload.trans_id == "RKL51ZDR4F"
    assert payload.trans_time == datetime(2023, 11, 21, 9, 13, 25, tzinfo=UTC)  # 12:13:25 Nairobi
    assert payload.trans_time.tzinfo is UTC
    assert payload.amount == 5 and isinstance(payload.amount, int)
    assert payload.business_short_code == "600966"
    assert payload.bill_ref_number == "Sample Transaction"
    assert payload.invoice_number == ""
    assert payload.org_account_balance == Decimal("25.00")
    assert payload.third_party_trans_id == ""
    assert (payload.msisdn, payload.msisdn_kind) == ("2547 ***** 126", "masked")
    assert (payload.first_name, payload.middle_name, payload.last_name) == ("NICHOLAS", "", "")
    assert payload.customer_name == "NICHOLAS"


def test_a_validation_has_a_blank_balance_and_a_hashed_number_in_v1() -> None:
    hashed = hashlib.sha256(b"254708374149").hexdigest()
    payload = parse_c2b_payload(V2_CONFIRMATION | {"OrgAccountBalance": "", "MSISDN": hashed})
    assert payload.org_account_balance is None
    assert payload.msisdn == hashed and payload.msisdn_kind == "hashed"


@pytest.mark.parametrize(
    ("value", "kind"),
    [("254708374149", "plain"), ("", "empty"), ("2547 ***** 126", "masked"), ("A" * 64, "hashed")],
)
def test_msisdn_kinds(value: str, kind: str) -> None:
    assert msisdn_kind(value) == kind


@pytest.mark.parametrize(
    ("value", "amount"),
    [("1500.00", 1500), ("5", 5), ("5.0", 5), (" 10.00 ", 10), (1500, 1500), (20.0, 20), ("1,500.00", 1500)],
)
def test_amounts_are_whole_shillings(value: object, amount: int) -> None:
    assert parse_c2b_payload(V2_CONFIRMATION | {"TransAmount": value}).amount == amount


@pytest.mark.parametrize("value", ["5.50", "0.01", 10.5, "0.00", "-5.00", "abc", "", None, "NaN", "Infinity", True])
def test_amounts_with_cents_or_garbage_are_refused_explicitly(value: object) -> None:
    with pytest.raises(C2BPayloadError) as refused:
        parse_c2b_payload(V2_CONFIRMATION | {"TransAmount": value})
    assert refused.value.field == "TransAmount"


def test_cents_are_named_as_the_reason() -> None:
    with pytest.raises(C2BPayloadError, match="cents"):
        parse_c2b_payload(V2_CONFIRMATION | {"TransAmount": "5.50"})


@pytest.mark.parametrize("value", ["2023112112132", "20231321121325", "20231121251325", "2023-11-21 12:13", ""])
def test_a_bad_trans_time_is_refused(value: str) -> None:
    with pytest.raises(C2BPayloadError) as refused:
        parse_c2b_payload(V2_CONFIRMATION | {"TransTime": value})
    assert refused.value.field == "TransTime"


def test_trans_time_may_come_as_a_number() -> None:
    payload = parse_c2b_payload(V2_CONFIRMATION | {"TransTime": 20240721143015})
    assert payload.trans_time == datetime(2024, 7, 21, 11, 30, 15, tzinfo=UTC)


@pytest.mark.parametrize("field", ["TransID", "BusinessShortCode", "TransTime", "TransAmount"])
def test_missing_essentials_are_refused(field: str) -> None:
    body = {k: v for k, v in V2_CONFIRMATION.items() if k != field}
    with pytest.raises(C2BPayloadError) as refused:
        parse_c2b_payload(body)
    assert refused.value.field == field


def test_missing_optional_fields_read_as_empty_and_objects_are_refused() -> None:
    body = {k: V2_CONFIRMATION[k] for k in ("TransID", "TransTime", "TransAmount", "BusinessShortCode")}
    payload = parse_c2b_payload(body)
    assert payload.bill_ref_number == payload.first_name == payload.msisdn == ""
    assert payload.msisdn_kind == "empty"
    with pytest.raises(C2BPayloadError) as refused:
        parse_c2b_payload(V2_CONFIRMATION | {"BillRefNumber": {"x": 1}})
    assert refused.value.field == "BillRefNumber"


def test_a_balance_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(C2BPayloadError) as refused:
        parse_c2b_payload(V2_CONFIRMATION | {"OrgAccountBalance": "lots"})
    assert refused.value.field == "OrgAccountBalance"


# Answers (§6.4) ---------------------------------------------------------------------------------


def test_accept_is_the_documented_answer() -> None:
    assert accept_payment() == {"ResultCode": "0", "ResultDesc": "Accepted"}
    assert accept_payment("bridge-ref") == {
        "ResultCode": "0",
        "ResultDesc": "Accepted",
        "ThirdPartyTransID": "bridge-ref",
    }


def test_the_rejection_codes_are_the_documented_six() -> None:
    assert [code.value for code in C2BRejectCode] == [f"C2B0001{n}" for n in range(1, 7)]
    assert reject_payment(C2BRejectCode.INVALID_ACCOUNT_NUMBER) == {"ResultCode": "C2B00012", "ResultDesc": "Rejected"}
    assert reject_payment("C2B00013", "Invalid Amount") == {"ResultCode": "C2B00013", "ResultDesc": "Invalid Amount"}


@pytest.mark.parametrize(
    ("code", "description"), [("C2B00017", "Rejected"), ("1", "Rejected"), ("C2B00012", ""), ("C2B00012", "x" * 91)]
)
def test_reject_refuses_undocumented_codes_and_bad_descriptions(code: str, description: str) -> None:
    with pytest.raises(ValueError):
        reject_payment(code, description)


def test_the_confirmation_ack_is_always_zero() -> None:
    assert CONFIRMATION_ACK == {"ResultCode": 0, "ResultDesc": "Success"}
