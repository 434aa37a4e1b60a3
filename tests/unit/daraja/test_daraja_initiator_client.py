"""The initiator APIs of DarajaClient against a scripted Daraja (httpx.MockTransport): bodies field
by field (daraja.md §7, §9, §10, §11), acknowledgements, errors, and the unknown outcome of a payout."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from mpesa_bridge.daraja import (
    AccountBalanceRequest,
    B2cPaymentRequest,
    DarajaAuthError,
    DarajaClient,
    DarajaCredentials,
    DarajaDuplicateRequest,
    DarajaReadTimeout,
    DarajaRejected,
    DarajaServerError,
    DarajaThrottled,
    DarajaValidationError,
    InitiatorAccepted,
    ReversalRequest,
    TokenCache,
    TransactionStatusRequest,
)

BASE = "https://sandbox.safaricom.co.ke"
CREDENTIALS = DarajaCredentials("consumer-key", "consumer-secret-s3cr3t")
# Shaped like a real one (base64 of 256 bytes); its content does not matter to a scripted peer.
CREDENTIAL = "Q3JlZGVudGlhbA" * 24 + "AAAAAAAAAAAAAAAAAAAAAAAAAAAA=="
B2C_V3, B2C_V1 = "/mpesa/b2c/v3/paymentrequest", "/mpesa/b2c/v1/paymentrequest"
STATUS, BALANCE, REVERSAL = (
    "/mpesa/transactionstatus/v1/query",
    "/mpesa/accountbalance/v1/query",
    "/mpesa/reversal/v1/request",
)
ACK = {
    "ConversationID": "AG_20240706_20106e9209f64bebd05b",
    "OriginatorConversationID": "b2c-7f3c0e2a-5b1d-4c9e-9a77-1e2f3a4b5c6d",
    "ResponseCode": "0",
    "ResponseDescription": "Accept the service request successfully.",
}
ACCEPTED = InitiatorAccepted(
    conversation_id="AG_20240706_20106e9209f64bebd05b",
    originator_conversation_id="b2c-7f3c0e2a-5b1d-4c9e-9a77-1e2f3a4b5c6d",
    response_code="0",
    response_description="Accept the service request successfully.",
)

Answer = Callable[[httpx.Request], httpx.Response]


class Peer:
    """Answers OAuth with a token and everything else with `answer` (ACK by default)."""

    def __init__(self, answer: Answer | None = None) -> None:
        self.answer = answer or (lambda _: httpx.Response(200, json=ACK))
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/v1/generate":
            return httpx.Response(200, json={"access_token": "token-1", "expires_in": "3599"})
        self.requests.append(request)
        return self.answer(request)

    def body(self, index: int = -1) -> dict[str, Any]:
        decoded: dict[str, Any] = json.loads(self.requests[index].content)
        return decoded


MakeClient = Callable[..., DarajaClient]


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    opened: list[httpx.AsyncClient] = []

    def make(peer: Peer, base: str = BASE) -> DarajaClient:
        http = httpx.AsyncClient(transport=httpx.MockTransport(peer))
        opened.append(http)
        return DarajaClient(base, CREDENTIALS, http=http, token_cache=TokenCache())

    yield make
    for http in opened:
        await http.aclose()


def payout(**overrides: Any) -> B2cPaymentRequest:
    request = B2cPaymentRequest(
        originator_conversation_id="b2c-7f3c0e2a-5b1d-4c9e-9a77-1e2f3a4b5c6d",
        initiator_name="testapi",
        security_credential=CREDENTIAL,
        command_id="BusinessPayment",
        amount=10,
        party_a="600992",
        party_b="254708374149",
        remarks="Refund order 42",
        queue_timeout_url="https://pay.example.com/hooks/b2c/timeout/91c4",
        result_url="https://pay.example.com/hooks/b2c/result/91c4",
        occasion="Refund",
    )
    return dataclasses.replace(request, **overrides)


def status(**overrides: Any) -> TransactionStatusRequest:
    request = TransactionStatusRequest(
        initiator="testapi",
        security_credential=CREDENTIAL,
        party_a="600782",
        result_url="https://pay.example.com/hooks/status/result/55aa",
        queue_timeout_url="https://pay.example.com/hooks/status/timeout/55aa",
        remarks="OK",
        transaction_id="NEF61H8J60",
        original_conversation_id="7071-4170-a0e5-8345632bad442144258",
        occasion="OK",
    )
    return dataclasses.replace(request, **overrides)


def balance(**overrides: Any) -> AccountBalanceRequest:
    request = AccountBalanceRequest(
        initiator="testapi",
        security_credential=CREDENTIAL,
        party_a="600000",
        result_url="https://pay.example.com/hooks/balance/result/0b1c",
        queue_timeout_url="https://pay.example.com/hooks/balance/timeout/0b1c",
        remarks="balance check",
    )
    return dataclasses.replace(request, **overrides)


def reversal(**overrides: Any) -> ReversalRequest:
    request = ReversalRequest(
        initiator="apiop37",
        security_credential=CREDENTIAL,
        transaction_id="PDU91HIVIT",
        amount=200,
        receiver_party="603021",
        result_url="https://pay.example.com/hooks/reversal/result/c3d4",
        queue_timeout_url="https://pay.example.com/hooks/reversal/timeout/c3d4",
        remarks="Payment reversal",
        occasion="refund",
    )
    return dataclasses.replace(request, **overrides)


# --- what goes on the wire ------------------------------------------------------------------------


async def test_b2c_v3_sends_the_documented_fields(make_client: MakeClient) -> None:
    peer = Peer()
    assert await make_client(peer).b2c_payment(payout()) == ACCEPTED

    [request] = peer.requests
    assert str(request.url) == BASE + B2C_V3
    assert request.headers["authorization"] == "Bearer token-1"
    assert request.headers["content-type"] == "application/json"
    assert peer.body() == {
        "OriginatorConversationID": "b2c-7f3c0e2a-5b1d-4c9e-9a77-1e2f3a4b5c6d",
        "InitiatorName": "testapi",
        "SecurityCredential": CREDENTIAL,
        "CommandID": "BusinessPayment",
        "Amount": 10,
        "PartyA": 600992,
        "PartyB": 254708374149,
        "Remarks": "Refund order 42",
        "QueueTimeOutURL": "https://pay.example.com/hooks/b2c/timeout/91c4",
        "ResultURL": "https://pay.example.com/hooks/b2c/result/91c4",
        "Occassion": "Refund",
    }


async def test_b2c_v1_has_no_originator_id_and_spells_occasion_right(make_client: MakeClient) -> None:
    peer = Peer()
    await make_client(peer).b2c_payment(payout(originator_conversation_id=""), version="v1")

    assert peer.requests[0].url.path == B2C_V1
    body = peer.body()
    assert "OriginatorConversationID" not in body
    assert body["Occasion"] == "Refund"
    assert "Occassion" not in body


async def test_an_empty_occasion_is_not_sent(make_client: MakeClient) -> None:
    peer = Peer()
    await make_client(peer).b2c_payment(payout(occasion=""))
    assert "Occassion" not in peer.body()


async def test_transaction_status_sends_the_documented_fields(make_client: MakeClient) -> None:
    peer = Peer()
    assert await make_client(peer).transaction_status(status()) == ACCEPTED

    assert peer.requests[0].url.path == STATUS
    assert peer.body() == {
        "Initiator": "testapi",
        "SecurityCredential": CREDENTIAL,
        "CommandID": "TransactionStatusQuery",
        "TransactionID": "NEF61H8J60",
        "OriginalConversationID": "7071-4170-a0e5-8345632bad442144258",
        "PartyA": "600782",
        "IdentifierType": "4",
        "ResultURL": "https://pay.example.com/hooks/status/result/55aa",
        "QueueTimeOutURL": "https://pay.example.com/hooks/status/timeout/55aa",
        "Remarks": "OK",
        "Occasion": "OK",
    }


async def test_transaction_status_by_originator_id_sends_an_empty_transaction_id(make_client: MakeClient) -> None:
    peer = Peer()
    await make_client(peer).transaction_status(status(transaction_id="", occasion=""))

    body = peer.body()
    assert body["TransactionID"] == ""
    assert body["OriginalConversationID"] == "7071-4170-a0e5-8345632bad442144258"
    assert "Occasion" not in body


async def test_account_balance_sends_the_documented_fields(make_client: MakeClient) -> None:
    peer = Peer()
    assert await make_client(peer).account_balance(balance()) == ACCEPTED

    assert peer.requests[0].url.path == BALANCE
    assert peer.body() == {
        "Initiator": "testapi",
        "SecurityCredential": CREDENTIAL,
        "CommandID": "AccountBalance",
        "PartyA": "600000",
        "IdentifierType": "4",
        "Remarks": "balance check",
        "QueueTimeOutURL": "https://pay.example.com/hooks/balance/timeout/0b1c",
        "ResultURL": "https://pay.example.com/hooks/balance/result/0b1c",
    }


async def test_reversal_sends_the_documented_fields_with_safaricoms_spelling(make_client: MakeClient) -> None:
    peer = Peer()
    assert await make_client(peer).reversal(reversal()) == ACCEPTED

    assert peer.requests[0].url.path == REVERSAL
    assert peer.body() == {
        "Initiator": "apiop37",
        "SecurityCredential": CREDENTIAL,
        "CommandID": "TransactionReversal",
        "TransactionID": "PDU91HIVIT",
        "Amount": "200",
        "ReceiverParty": "603021",
        "RecieverIdentifierType": "11",
        "ResultURL": "https://pay.example.com/hooks/reversal/result/c3d4",
        "QueueTimeOutURL": "https://pay.example.com/hooks/reversal/timeout/c3d4",
        "Remarks": "Payment reversal",
        "Occasion": "refund",
    }


def test_the_credential_is_not_in_the_repr() -> None:
    assert CREDENTIAL not in repr(payout())
    assert CREDENTIAL not in repr(status()) + repr(balance()) + repr(reversal())


# --- validation: refused before anything is sent -------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"originator_conversation_id": ""}, "originator_conversation_id"),
        ({"originator_conversation_id": "x" * 65}, "originator_conversation_id"),
        ({"initiator_name": "test api"}, "initiator_name"),
        ({"security_credential": "Safaricom999!*!"}, "security_credential"),
        ({"command_id": "SalaryPaymentWithWithdrawal"}, "command_id"),
        ({"amount": 9}, "amount"),
        ({"amount": 250_001}, "amount"),
        ({"amount": 10.0}, "amount"),
        ({"amount": True}, "amount"),
        ({"party_a": "0600992"}, "party_a"),
        ({"party_b": "0708374149"}, "party_b"),
        ({"party_b": "+254708374149"}, "party_b"),
        ({"remarks": "x"}, "remarks"),
        ({"remarks": "x" * 101}, "remarks"),
        ({"remarks": "Refund #42"}, "remarks"),
        ({"result_url": "pay.example.com/result"}, "result_url"),
        ({"queue_timeout_url": "https://pay.example.com/a b"}, "queue_timeout_url"),
        ({"occasion": "x" * 101}, "occasion"),
    ],
)
async def test_b2c_fields_are_checked_before_sending(
    make_client: MakeClient, overrides: dict[str, Any], field: str
) -> None:
    peer = Peer()
    with pytest.raises(DarajaValidationError) as error:
        await make_client(peer).b2c_payment(payout(**overrides))
    assert error.value.field == field
    assert peer.requests == []


async def test_v1_needs_no_originator_id(make_client: MakeClient) -> None:
    peer = Peer()
    await make_client(peer).b2c_payment(payout(originator_conversation_id=""), version="v1")
    assert len(peer.requests) == 1


async def test_production_needs_https_result_urls(make_client: MakeClient) -> None:
    peer = Peer()
    client = make_client(peer, base=DarajaClient.PRODUCTION_URL)
    with pytest.raises(DarajaValidationError) as error:
        await client.b2c_payment(payout(result_url="http://pay.example.com/result"))
    assert error.value.field == "result_url"
    with pytest.raises(DarajaValidationError):
        await client.account_balance(balance(queue_timeout_url="http://pay.example.com/t"))
    # The sandbox (and the simulator) take http.
    await make_client(peer).b2c_payment(payout(result_url="http://127.0.0.1:9000/result"))
    assert len(peer.requests) == 1


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: c.transaction_status(status(transaction_id="", original_conversation_id="")), "transaction_id"),
        (lambda c: c.transaction_status(status(transaction_id="nef61h8j60")), "transaction_id"),
        (lambda c: c.transaction_status(status(identifier_type="3")), "identifier_type"),
        (lambda c: c.transaction_status(status(identifier_type="1", party_a="600782")), "party_a"),
        (lambda c: c.transaction_status(status(remarks="")), "remarks"),
        (lambda c: c.account_balance(balance(party_a="12")), "party_a"),
        (lambda c: c.account_balance(balance(initiator="")), "initiator"),
        (lambda c: c.reversal(reversal(amount=0)), "amount"),
        (lambda c: c.reversal(reversal(receiver_identifier_type="1")), "receiver_identifier_type"),
        (lambda c: c.reversal(reversal(transaction_id="PDU91HIVI")), "transaction_id"),
        (lambda c: c.reversal(reversal(remarks="x")), "remarks"),
    ],
)
async def test_query_and_reversal_fields_are_checked_before_sending(
    make_client: MakeClient, call: Callable[[DarajaClient], Any], field: str
) -> None:
    peer = Peer()
    with pytest.raises(DarajaValidationError) as error:
        await call(make_client(peer))
    assert error.value.field == field
    assert peer.requests == []


async def test_a_phone_number_party_for_identifier_type_1(make_client: MakeClient) -> None:
    peer = Peer()
    await make_client(peer).transaction_status(status(identifier_type="1", party_a="254708374149"))
    assert peer.body()["IdentifierType"] == "1"


# --- answers and errors ---------------------------------------------------------------------------


def envelope(status_code: int, code: str, message: str) -> Answer:
    body = {"requestId": "11728-2929992-1", "errorCode": code, "errorMessage": message}
    return lambda _: httpx.Response(status_code, json=body)


async def test_a_duplicate_originator_id_is_a_refusal_not_an_unknown(make_client: MakeClient) -> None:
    peer = Peer(envelope(500, "500.002.1001", "Duplicate OriginatorConversationID."))
    with pytest.raises(DarajaDuplicateRequest) as error:
        await make_client(peer).b2c_payment(payout())
    assert isinstance(error.value, DarajaRejected)
    assert error.value.outcome_unknown is False
    assert error.value.code == "daraja_duplicate_request"
    assert error.value.request_id == "11728-2929992-1"


async def test_a_payout_whose_answer_is_lost_is_unknown_and_not_resent(make_client: MakeClient) -> None:
    def time_out(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("read timed out", request=request)

    peer = Peer(time_out)
    with pytest.raises(DarajaReadTimeout) as error:
        await make_client(peer).b2c_payment(payout())
    assert error.value.outcome_unknown is True
    assert len(peer.requests) == 1  # never sent a second time


async def test_a_reversal_whose_answer_is_lost_is_unknown_too(make_client: MakeClient) -> None:
    def drop(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("server disconnected", request=request)

    with pytest.raises(DarajaReadTimeout) as error:
        await make_client(Peer(drop)).reversal(reversal())
    assert error.value.outcome_unknown is True


async def test_a_lost_query_answer_is_just_an_error(make_client: MakeClient) -> None:
    def time_out(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("read timed out", request=request)

    with pytest.raises(DarajaReadTimeout) as error:
        await make_client(Peer(time_out)).transaction_status(status())
    assert error.value.outcome_unknown is False


async def test_a_connect_error_is_retried_once_because_nothing_left(make_client: MakeClient) -> None:
    calls = []

    def refuse_once(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json=ACK)

    assert await make_client(Peer(refuse_once)).b2c_payment(payout()) == ACCEPTED
    assert len(calls) == 2


@pytest.mark.parametrize(
    ("answer", "what"),
    [
        (envelope(500, "500.003.1001", "Internal Server Error"), "a 5xx"),
        (lambda _: httpx.Response(403, text="<html>Access denied</html>"), "a firewall page"),
        (lambda _: httpx.Response(200, json={"ResponseCode": "0"}), "an ack without ConversationID"),
    ],
)
async def test_a_payout_without_a_verdict_is_unknown(make_client: MakeClient, answer: Answer, what: str) -> None:
    with pytest.raises(DarajaServerError) as error:
        await make_client(Peer(answer)).b2c_payment(payout())
    assert error.value.outcome_unknown is True, what


async def test_the_same_answers_on_a_query_are_not_unknown(make_client: MakeClient) -> None:
    with pytest.raises(DarajaServerError) as error:
        await make_client(Peer(envelope(500, "500.003.1001", "Internal Server Error"))).account_balance(balance())
    assert error.value.outcome_unknown is False


@pytest.mark.parametrize(
    ("answer", "error_type"),
    [
        (envelope(400, "400.002.02", "Bad Request - Invalid InitiatorName"), DarajaRejected),
        (envelope(500, "500.003.02", "Error Occurred: Spike Arrest Violation"), DarajaThrottled),
        (
            envelope(401, "401.002.01", "Error Occurred - Invalid API call as no apiproduct match found"),
            DarajaAuthError,
        ),
        (
            lambda _: httpx.Response(200, json={**ACK, "ResponseCode": "1", "ResponseDescription": "Rejected"}),
            DarajaRejected,
        ),
    ],
)
async def test_refusals_are_verdicts(make_client: MakeClient, answer: Answer, error_type: type[Exception]) -> None:
    with pytest.raises(error_type) as error:
        await make_client(Peer(answer)).b2c_payment(payout())
    assert getattr(error.value, "outcome_unknown", None) is False


async def test_a_rejected_token_is_refreshed_once(make_client: MakeClient) -> None:
    answers = iter([envelope(401, "401.002.01", "Error Occurred - Invalid Access Token - token-1"), None])

    def first_refused(request: httpx.Request) -> httpx.Response:
        answer = next(answers)
        return answer(request) if answer else httpx.Response(200, json=ACK)

    peer = Peer(first_refused)
    assert await make_client(peer).b2c_payment(payout()) == ACCEPTED
    assert len(peer.requests) == 2
    assert peer.body(0) == peer.body(1)  # the same OriginatorConversationID: safe to send again


async def test_the_credential_is_scrubbed_from_echoed_errors(make_client: MakeClient) -> None:
    peer = Peer(envelope(400, "400.002.02", f"Bad Request - Invalid SecurityCredential {CREDENTIAL}"))
    with pytest.raises(DarajaRejected) as error:
        await make_client(peer).b2c_payment(payout())
    assert CREDENTIAL not in str(error.value)
    assert CREDENTIAL not in error.value.error_message
    assert CREDENTIAL not in error.value.body_prefix


async def test_an_ack_with_a_numeric_code_and_originator_from_safaricom(make_client: MakeClient) -> None:
    answer = {**ACK, "ResponseCode": 0, "OriginatorConversationID": "16917-22577599-3"}
    accepted = await make_client(Peer(lambda _: httpx.Response(200, json=answer))).account_balance(balance())
    assert accepted.response_code == "0"
    assert accepted.originator_conversation_id == "16917-22577599-3"
