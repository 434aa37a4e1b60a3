"""The Daraja client's initiator APIs against the simulator (over ASGI), each Result POSTed over
real loopback to a CallbackReceiver and read with the client's own parser: B2C, Transaction
Status, Account Balance, Reversal, every magic value, a wrong initiator, a duplicate id."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mpesa_bridge.daraja import (
    AccountBalanceRequest,
    B2cPaymentRequest,
    DarajaClient,
    DarajaCredentials,
    DarajaDuplicateRequest,
    InitiatorAccepted,
    InitiatorResult,
    ReversalRequest,
    StkPushRequest,
    TokenCache,
    TransactionStatusRequest,
    account_balance_details,
    b2c_details,
    parse_result,
    reversal_details,
    security_credential,
    transaction_status_details,
)
from mpesa_bridge.simulator import SANDBOX_PASSKEY, CallbackReceiver, Simulator, SimulatorConfig

PASSWORD = "Safaricom999!*!"
ORG = "600000"
PAYBILL = "174379"
OPENING = 1_000_000


@pytest.fixture(scope="module")
def key_pem() -> bytes:
    # One key for the module: generating a 2048-bit key per test would only cost time.
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture
async def receiver() -> AsyncIterator[CallbackReceiver]:
    async with CallbackReceiver() as receiver:
        yield receiver


@pytest.fixture
async def simulator(key_pem: bytes) -> AsyncIterator[Simulator]:
    config = SimulatorConfig(callback_delay=0.01, result_delay=0.01, callback_timeout=2.0, initiator_key_pem=key_pem)
    async with Simulator(config) as simulator:
        yield simulator


@pytest.fixture
async def http(simulator: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=simulator.app), base_url="http://sim") as http:
        yield http


@pytest.fixture
def client(http: httpx.AsyncClient) -> DarajaClient:
    credentials = DarajaCredentials("sim_consumer_key", "sim_consumer_secret")
    return DarajaClient("http://sim", credentials, http=http, token_cache=TokenCache())


@pytest.fixture
async def credential(http: httpx.AsyncClient) -> str:
    """Made with the certificate the simulator publishes, as any client would."""
    response = await http.get("/simulator-certificate.pem")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-pem-file"
    return security_credential(PASSWORD, response.content)


def payout(receiver: CallbackReceiver, credential: str, **overrides: Any) -> B2cPaymentRequest:
    request = B2cPaymentRequest(
        originator_conversation_id=f"b2c-{uuid.uuid4()}",
        initiator_name="testapi",
        security_credential=credential,
        command_id="BusinessPayment",
        amount=100,
        party_a=ORG,
        party_b="254708374149",
        remarks="Refund order 42",
        queue_timeout_url=receiver.url("/timeout"),
        result_url=receiver.url("/result"),
        occasion="Refund",
    )
    return dataclasses.replace(request, **overrides)


def status(receiver: CallbackReceiver, credential: str, **overrides: Any) -> TransactionStatusRequest:
    request = TransactionStatusRequest(
        initiator="testapi",
        security_credential=credential,
        party_a=ORG,
        result_url=receiver.url("/status"),
        queue_timeout_url=receiver.url("/timeout"),
        remarks="check",
    )
    return dataclasses.replace(request, **overrides)


def balance(receiver: CallbackReceiver, credential: str, **overrides: Any) -> AccountBalanceRequest:
    request = AccountBalanceRequest(
        initiator="testapi",
        security_credential=credential,
        party_a=ORG,
        result_url=receiver.url("/balance"),
        queue_timeout_url=receiver.url("/timeout"),
        remarks="balance check",
    )
    return dataclasses.replace(request, **overrides)


def reversal(receiver: CallbackReceiver, credential: str, receipt: str, **overrides: Any) -> ReversalRequest:
    request = ReversalRequest(
        initiator="testapi",
        security_credential=credential,
        transaction_id=receipt,
        amount=250,
        receiver_party=PAYBILL,
        result_url=receiver.url("/reversal"),
        queue_timeout_url=receiver.url("/timeout"),
        remarks="Payment reversal",
    )
    return dataclasses.replace(request, **overrides)


async def result_at(receiver: CallbackReceiver, path: str, count: int = 1) -> InitiatorResult:
    requests = await receiver.wait_for(count, path=path)
    request = requests[count - 1]
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/json"
    return parse_result(request.body)


def assert_ack(accepted: InitiatorAccepted, result: InitiatorResult) -> None:
    assert accepted.response_code == "0"
    assert accepted.response_description == "Accept the service request successfully."
    assert accepted.conversation_id.startswith("AG_")
    assert result.conversation_id == accepted.conversation_id
    assert result.originator_conversation_id == accepted.originator_conversation_id


# --- B2C ------------------------------------------------------------------------------------------


async def test_a_payout_is_paid_and_its_result_arrives(
    client: DarajaClient, simulator: Simulator, receiver: CallbackReceiver, credential: str
) -> None:
    request = payout(receiver, credential)
    accepted = await client.b2c_payment(request)

    assert accepted.originator_conversation_id == request.originator_conversation_id
    result = await result_at(receiver, "/result")
    assert_ack(accepted, result)
    assert result.succeeded
    assert result.result_desc == "The service request is processed successfully."
    details = b2c_details(result)
    assert details.receipt == result.transaction_id
    assert details.receipt is not None and len(details.receipt) == 10
    assert details.amount == 100
    assert details.receiver_party_public_name is not None
    assert details.receiver_party_public_name.startswith("254708374149 - ")
    assert details.completed_at is not None and abs(datetime.now(UTC) - details.completed_at).total_seconds() < 60
    assert details.utility_account_available_cents == (OPENING - 100) * 100
    assert details.recipient_is_registered is True
    assert simulator.balance(ORG) == OPENING - 100
    assert result.reference("QueueTimeoutURL")
    assert receiver.received("/timeout") == []


async def test_legacy_v1_gets_an_originator_id_from_the_simulator(
    client: DarajaClient, receiver: CallbackReceiver, credential: str
) -> None:
    accepted = await client.b2c_payment(payout(receiver, credential, originator_conversation_id=""), version="v1")

    assert accepted.originator_conversation_id
    result = await result_at(receiver, "/result")
    assert_ack(accepted, result)
    assert result.succeeded


async def test_the_same_originator_id_twice_is_refused_and_pays_once(
    client: DarajaClient, simulator: Simulator, receiver: CallbackReceiver, credential: str
) -> None:
    request = payout(receiver, credential)
    await client.b2c_payment(request)

    with pytest.raises(DarajaDuplicateRequest) as error:
        await client.b2c_payment(request)
    assert error.value.error_code == "500.002.1001"
    assert error.value.error_message == "Duplicate OriginatorConversationID."
    assert error.value.outcome_unknown is False

    await result_at(receiver, "/result")
    await simulator.drain(timeout=5)
    assert len(receiver.received("/result")) == 1
    assert simulator.balance(ORG) == OPENING - 100


async def test_a_wrong_initiator_password_is_accepted_then_refused_with_2001(
    client: DarajaClient, simulator: Simulator, receiver: CallbackReceiver, http: httpx.AsyncClient
) -> None:
    pem = (await http.get("/simulator-certificate.pem")).content
    accepted = await client.b2c_payment(payout(receiver, security_credential("Safaricom123!!", pem)))

    result = await result_at(receiver, "/result")
    assert_ack(accepted, result)
    assert result.result_code == "2001"
    assert result.result_desc == "The initiator information is invalid."
    assert result.transaction_id.endswith("0000000")
    assert result.parameters == ()
    assert b2c_details(result).receipt is None
    assert simulator.balance(ORG) == OPENING


async def test_an_unknown_initiator_or_another_certificate_is_2001_too(
    client: DarajaClient, receiver: CallbackReceiver, credential: str
) -> None:
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = Simulator(SimulatorConfig(initiator_key_pem=_pem(other_key)))
    foreign = security_credential(PASSWORD, other.certificate_pem)

    await client.b2c_payment(payout(receiver, credential, initiator_name="someoneelse"))
    await client.b2c_payment(payout(receiver, foreign))

    first, second = await receiver.wait_for(2, path="/result")
    assert parse_result(first.body).result_code == parse_result(second.body).result_code == "2001"


async def test_insufficient_balance_by_magic_number(
    client: DarajaClient, simulator: Simulator, receiver: CallbackReceiver, credential: str
) -> None:
    await client.b2c_payment(payout(receiver, credential, party_b="254700000001"))

    result = await result_at(receiver, "/result")
    assert result.result_code == "1"
    assert result.result_desc == "The balance is insufficient for the transaction."
    assert simulator.balance(ORG) == OPENING


async def test_insufficient_balance_for_real(
    client: DarajaClient, simulator: Simulator, receiver: CallbackReceiver, credential: str
) -> None:
    await client.b2c_payment(payout(receiver, credential, amount=250_000))
    await client.b2c_payment(payout(receiver, credential, amount=250_000))
    await client.b2c_payment(payout(receiver, credential, amount=250_000))
    await client.b2c_payment(payout(receiver, credential, amount=250_000))
    await client.b2c_payment(payout(receiver, credential, amount=10))  # the till is empty now

    results = [parse_result(r.body) for r in await receiver.wait_for(5, path="/result")]
    assert [r.result_code for r in results] == ["0", "0", "0", "0", "1"]
    assert simulator.balance(ORG) == 0


async def test_a_queue_timeout_goes_to_queue_timeout_url_but_the_money_moved(
    client: DarajaClient, simulator: Simulator, receiver: CallbackReceiver, credential: str
) -> None:
    request = payout(receiver, credential, party_b="254700000900")
    accepted = await client.b2c_payment(request)

    timeout = await result_at(receiver, "/timeout")
    assert_ack(accepted, timeout)
    assert not timeout.succeeded
    assert timeout.result_code == "1037"
    await simulator.drain(timeout=5)
    assert receiver.received("/result") == []

    # Not a verdict (daraja.md §8): Transaction Status by our id says it was paid.
    await client.transaction_status(
        status(receiver, credential, original_conversation_id=request.originator_conversation_id)
    )
    details = transaction_status_details(await result_at(receiver, "/status"))
    assert details.completed
    assert details.amount == 100
    assert details.originator_conversation_id == request.originator_conversation_id
    assert simulator.balance(ORG) == OPENING - 100


# --- Transaction Status ---------------------------------------------------------------------------


async def test_transaction_status_by_receipt_and_by_originator_id(
    client: DarajaClient, receiver: CallbackReceiver, credential: str
) -> None:
    request = payout(receiver, credential, amount=300)
    await client.b2c_payment(request)
    paid = b2c_details(await result_at(receiver, "/result"))
    assert paid.receipt is not None

    accepted = await client.transaction_status(status(receiver, credential, transaction_id=paid.receipt))
    await client.transaction_status(
        status(receiver, credential, original_conversation_id=request.originator_conversation_id)
    )

    first, second = (parse_result(r.body) for r in await receiver.wait_for(2, path="/status"))
    assert_ack(accepted, first)
    assert first.succeeded
    assert first.transaction_id.endswith("0000000")  # the envelope's id is a placeholder
    for result in (first, second):
        details = transaction_status_details(result)
        assert details.receipt == paid.receipt
        assert details.status == "Completed"
        assert details.amount == 300
        assert details.originator_conversation_id == request.originator_conversation_id
        assert details.credit_party_name is not None and details.credit_party_name.startswith("254708374149")


async def test_a_declined_payout_is_found_as_declined(
    client: DarajaClient, receiver: CallbackReceiver, credential: str
) -> None:
    request = payout(receiver, credential, party_b="254700000001")
    await client.b2c_payment(request)
    await result_at(receiver, "/result")

    await client.transaction_status(
        status(receiver, credential, original_conversation_id=request.originator_conversation_id)
    )
    details = transaction_status_details(await result_at(receiver, "/status"))
    assert details.status == "Declined"
    assert not details.completed
    assert details.receipt is None


async def test_an_unknown_receipt_or_id_is_result_25(
    client: DarajaClient, receiver: CallbackReceiver, credential: str
) -> None:
    await client.transaction_status(status(receiver, credential, transaction_id="UKQ0NOSUCH"))
    await client.transaction_status(status(receiver, credential, original_conversation_id="never-sent"))

    for request in await receiver.wait_for(2, path="/status"):
        result = parse_result(request.body)
        assert result.result_code == "25"
        assert result.parameters == ()


async def test_transaction_status_finds_an_stk_payment(
    client: DarajaClient, simulator: Simulator, receiver: CallbackReceiver, credential: str
) -> None:
    receipt = await stk_paid(client, simulator, receiver, "254712000001", 250)

    await client.transaction_status(status(receiver, credential, transaction_id=receipt, party_a=PAYBILL))
    details = transaction_status_details(await result_at(receiver, "/status"))
    assert details.receipt == receipt
    assert details.completed
    assert details.amount == 250


# --- Account Balance ------------------------------------------------------------------------------


async def test_account_balance_follows_the_payouts(
    client: DarajaClient, receiver: CallbackReceiver, credential: str
) -> None:
    await client.b2c_payment(payout(receiver, credential, amount=1_234))
    await result_at(receiver, "/result")

    accepted = await client.account_balance(balance(receiver, credential))
    result = await result_at(receiver, "/balance")
    assert_ack(accepted, result)
    details = account_balance_details(result)
    utility = details.account("Utility Account")
    assert utility is not None
    assert utility.available_cents == (OPENING - 1_234) * 100
    assert utility.currency == "KES"
    assert {a.name for a in details.accounts} >= {"Working Account", "Charges Paid Account"}
    assert details.completed_at is not None


async def test_a_short_code_the_simulator_does_not_know_is_result_21(
    client: DarajaClient, receiver: CallbackReceiver, credential: str
) -> None:
    await client.account_balance(balance(receiver, credential, party_a="600111"))
    assert (await result_at(receiver, "/balance")).result_code == "21"


# --- Reversal -------------------------------------------------------------------------------------


async def stk_paid(
    client: DarajaClient, simulator: Simulator, receiver: CallbackReceiver, phone: str, amount: int
) -> str:
    """A paid STK push to the sandbox paybill; its receipt."""
    push = StkPushRequest(
        business_short_code=PAYBILL,
        passkey=SANDBOX_PASSKEY,
        transaction_type="CustomerPayBillOnline",
        amount=amount,
        party_a=phone,
        party_b=PAYBILL,
        phone_number=phone,
        callback_url=receiver.url("/stk"),
        account_reference="INV42",
        transaction_desc="Order 42",
    )
    accepted = await client.stk_push(push)
    await simulator.drain(timeout=5)
    receipt = simulator.push(accepted.checkout_request_id).receipt_number
    assert receipt is not None
    return receipt


async def test_an_stk_payment_is_reversed_once(
    client: DarajaClient, simulator: Simulator, receiver: CallbackReceiver, credential: str
) -> None:
    receipt = await stk_paid(client, simulator, receiver, "254712000002", 250)

    accepted = await client.reversal(reversal(receiver, credential, receipt))
    result = await result_at(receiver, "/reversal")
    assert_ack(accepted, result)
    assert result.succeeded
    assert result.transaction_id != receipt
    details = reversal_details(result)
    assert details.original_transaction_id == receipt
    assert details.amount == 250
    assert details.charge_cents == 0
    assert details.debit_account_balance[0].available_cents == (OPENING - 250) * 100
    assert details.credit_party_public_name is not None and details.credit_party_public_name.startswith("254712000002")
    assert simulator.balance(PAYBILL) == OPENING - 250

    await client.reversal(reversal(receiver, credential, receipt))
    again = await result_at(receiver, "/reversal", count=2)
    assert again.result_code == "R000001"
    assert again.parameters == ()
    assert simulator.balance(PAYBILL) == OPENING - 250

    # The reversal itself is a transaction Transaction Status can find.
    await client.transaction_status(status(receiver, credential, transaction_id=result.transaction_id, party_a=PAYBILL))
    found = transaction_status_details(await result_at(receiver, "/status"))
    assert found.receipt == result.transaction_id
    assert found.completed


async def test_an_unknown_receipt_cannot_be_reversed(
    client: DarajaClient, simulator: Simulator, receiver: CallbackReceiver, credential: str
) -> None:
    await client.reversal(reversal(receiver, credential, "UKQ0NOSUCH"))
    result = await result_at(receiver, "/reversal")
    assert result.result_code == "R000002"
    assert result.result_desc == "The OriginalTransactionID is invalid."


async def test_a_payout_cannot_be_reversed(client: DarajaClient, receiver: CallbackReceiver, credential: str) -> None:
    await client.b2c_payment(payout(receiver, credential))
    receipt = b2c_details(await result_at(receiver, "/result")).receipt
    assert receipt is not None

    await client.reversal(reversal(receiver, credential, receipt, receiver_party=ORG))
    assert (await result_at(receiver, "/reversal")).result_code == "R000002"


async def test_a_reversal_with_a_wrong_password_is_2001(
    client: DarajaClient, simulator: Simulator, receiver: CallbackReceiver, http: httpx.AsyncClient
) -> None:
    receipt = await stk_paid(client, simulator, receiver, "254712000003", 250)
    pem = (await http.get("/simulator-certificate.pem")).content
    await client.reversal(reversal(receiver, security_credential("nope", pem), receipt))

    assert (await result_at(receiver, "/reversal")).result_code == "2001"
    assert simulator.balance(PAYBILL) == OPENING


def _pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
