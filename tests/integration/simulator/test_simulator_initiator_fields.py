"""The simulator's initiator endpoints over raw HTTP: Daraja's paths, auth, field errors in
Daraja's order and envelope, the published certificate, the Result for a below-minimum payout."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding

from mpesa_bridge.simulator import CallbackReceiver, Simulator, SimulatorConfig

B2C_V3, B2C_V1 = "/mpesa/b2c/v3/paymentrequest", "/mpesa/b2c/v1/paymentrequest"
STATUS, BALANCE, REVERSAL = (
    "/mpesa/transactionstatus/v1/query",
    "/mpesa/accountbalance/v1/query",
    "/mpesa/reversal/v1/request",
)
CREDENTIAL = base64.b64encode(b"x" * 256).decode()


@pytest.fixture
async def receiver() -> AsyncIterator[CallbackReceiver]:
    async with CallbackReceiver() as receiver:
        yield receiver


@pytest.fixture
async def simulator() -> AsyncIterator[Simulator]:
    async with Simulator(SimulatorConfig(result_delay=0.01, callback_timeout=2.0)) as simulator:
        yield simulator


@pytest.fixture
async def client(simulator: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=simulator.app), base_url="http://sim") as client:
        token = await client.get(
            "/oauth/v1/generate?grant_type=client_credentials", auth=("sim_consumer_key", "sim_consumer_secret")
        )
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        yield client


def credential_for(simulator: Simulator, password: str) -> str:
    key = x509.load_pem_x509_certificate(simulator.certificate_pem).public_key()
    return base64.b64encode(key.encrypt(password.encode(), padding.PKCS1v15())).decode()  # type: ignore[union-attr]


def b2c(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "OriginatorConversationID": "b2c-7f3c0e2a",
        "InitiatorName": "testapi",
        "SecurityCredential": CREDENTIAL,
        "CommandID": "BusinessPayment",
        "Amount": 10,
        "PartyA": 600000,
        "PartyB": 254708374149,
        "Remarks": "Refund order 42",
        "QueueTimeOutURL": "http://127.0.0.1:9/timeout",
        "ResultURL": "http://127.0.0.1:9/result",
        "Occassion": "Refund",
    }
    return body | overrides


def status(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Initiator": "testapi",
        "SecurityCredential": CREDENTIAL,
        "CommandID": "TransactionStatusQuery",
        "TransactionID": "NEF61H8J60",
        "OriginalConversationID": "7071-4170",
        "PartyA": "600000",
        "IdentifierType": "4",
        "ResultURL": "http://127.0.0.1:9/result",
        "QueueTimeOutURL": "http://127.0.0.1:9/timeout",
        "Remarks": "OK",
        "Occasion": "OK",
    }
    return body | overrides


def balance(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Initiator": "testapi",
        "SecurityCredential": CREDENTIAL,
        "CommandID": "AccountBalance",
        "PartyA": "600000",
        "IdentifierType": "4",
        "Remarks": "balance check",
        "QueueTimeOutURL": "http://127.0.0.1:9/timeout",
        "ResultURL": "http://127.0.0.1:9/result",
    }
    return body | overrides


def reversal(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Initiator": "testapi",
        "SecurityCredential": CREDENTIAL,
        "CommandID": "TransactionReversal",
        "TransactionID": "PDU91HIVIT",
        "Amount": "200",
        "ReceiverParty": "174379",
        "RecieverIdentifierType": "11",
        "ResultURL": "http://127.0.0.1:9/result",
        "QueueTimeOutURL": "http://127.0.0.1:9/timeout",
        "Remarks": "Payment reversal",
        "Occasion": "refund",
    }
    return body | overrides


async def test_the_certificate_is_published_and_stable(client: httpx.AsyncClient, simulator: Simulator) -> None:
    response = await client.get("/simulator-certificate.pem", headers={"Authorization": ""})

    assert response.status_code == 200  # public, like Safaricom's: no token needed
    certificate = x509.load_pem_x509_certificate(response.content)
    assert certificate.public_key().key_size == 2048  # type: ignore[union-attr]
    assert response.content == simulator.certificate_pem == (await client.get("/simulator-certificate.pem")).content


async def test_two_simulators_have_two_keys() -> None:
    assert Simulator().certificate_pem != Simulator().certificate_pem


@pytest.mark.parametrize("path", [B2C_V3, B2C_V1, STATUS, BALANCE, REVERSAL])
async def test_every_endpoint_wants_a_token(client: httpx.AsyncClient, path: str) -> None:
    response = await client.post(path, json={}, headers={"Authorization": "Bearer nope"})
    assert response.status_code == 404
    assert response.json()["errorCode"] == "404.001.03"


@pytest.mark.parametrize(
    ("path", "first"),
    [(B2C_V3, "OriginatorConversationID"), (B2C_V1, "InitiatorName"), (STATUS, "Initiator"), (REVERSAL, "Initiator")],
)
async def test_a_body_without_json_content_type_blames_the_first_field(
    client: httpx.AsyncClient, path: str, first: str
) -> None:
    response = await client.post(
        path, content=b"Initiator=testapi", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 400
    assert response.json()["errorMessage"] == f"Bad Request - Invalid {first}"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"OriginatorConversationID": ""}, "OriginatorConversationID"),
        ({"InitiatorName": None}, "InitiatorName"),
        ({"SecurityCredential": "not base64!"}, "SecurityCredential"),
        ({"CommandID": "SalaryPaymentWithWithdrawal"}, "CommandID"),
        ({"Amount": 10.5}, "Amount"),
        ({"Amount": "100.00"}, "Amount"),
        ({"Amount": 0}, "Amount"),
        ({"PartyA": "12"}, "PartyA"),
        ({"PartyB": "0708374149"}, "PartyB"),
        ({"Remarks": "x"}, "Remarks"),
        ({"Remarks": "x" * 101}, "Remarks"),
        ({"QueueTimeOutURL": "ftp://example.com"}, "QueueTimeOutURL"),
        ({"ResultURL": "http://example.com/a b"}, "ResultURL"),
        ({"Occassion": "x" * 101}, "Occassion"),
        # Two bad fields: the first in Daraja's order is named.
        ({"CommandID": "Nope", "Amount": "x"}, "CommandID"),
    ],
)
async def test_b2c_field_errors(client: httpx.AsyncClient, overrides: dict[str, Any], field: str) -> None:
    response = await client.post(B2C_V3, json=b2c(**overrides))

    assert response.status_code == 400
    body = response.json()
    assert body["errorCode"] == "400.002.02"
    assert body["errorMessage"] == f"Bad Request - Invalid {field}"
    assert body["requestId"]


async def test_v1_takes_no_originator_id_and_strings_for_numbers(client: httpx.AsyncClient) -> None:
    body = b2c(Amount="10", PartyA="600000", PartyB="254708374149")
    del body["OriginatorConversationID"]
    response = await client.post(B2C_V1, json=body)

    assert response.status_code == 200
    answer = response.json()
    assert set(answer) == {"ConversationID", "OriginatorConversationID", "ResponseCode", "ResponseDescription"}
    assert answer["ResponseCode"] == "0"
    assert answer["OriginatorConversationID"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (STATUS, status(CommandID="AccountBalance"), "CommandID"),
        (STATUS, status(TransactionID="", OriginalConversationID=""), "TransactionID"),
        (STATUS, status(TransactionID="NEF-61H8"), "TransactionID"),
        (STATUS, status(IdentifierType="3"), "IdentifierType"),
        (STATUS, status(PartyA="12"), "PartyA"),
        (STATUS, status(Remarks=""), "Remarks"),
        (BALANCE, balance(CommandID="TransactionStatusQuery"), "CommandID"),
        (BALANCE, balance(Initiator=""), "Initiator"),
        (BALANCE, balance(ResultURL=None), "ResultURL"),
        (REVERSAL, reversal(CommandID="Reversal"), "CommandID"),
        (REVERSAL, reversal(TransactionID=""), "TransactionID"),
        (REVERSAL, reversal(Amount="1.5"), "Amount"),
        (REVERSAL, reversal(ReceiverParty="254708374149"), "ReceiverParty"),
        (REVERSAL, reversal(RecieverIdentifierType="1"), "RecieverIdentifierType"),
        (REVERSAL, reversal(Remarks="x"), "Remarks"),
    ],
)
async def test_query_and_reversal_field_errors(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], field: str
) -> None:
    response = await client.post(path, json=body)
    assert response.status_code == 400
    assert response.json()["errorMessage"] == f"Bad Request - Invalid {field}"


@pytest.mark.parametrize(("path", "body"), [(STATUS, status()), (BALANCE, balance()), (REVERSAL, reversal())])
async def test_the_standard_acknowledgement(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> None:
    response = await client.post(path, json=body)
    assert response.status_code == 200
    answer = response.json()
    assert answer["ResponseCode"] == "0"
    assert answer["ResponseDescription"] == "Accept the service request successfully."
    assert answer["ConversationID"].startswith("AG_")


async def test_the_duplicate_is_checked_before_the_initiator(client: httpx.AsyncClient) -> None:
    # The first one has a credential that opens nothing: it is still a request Daraja has seen.
    assert (await client.post(B2C_V3, json=b2c())).status_code == 200
    response = await client.post(B2C_V3, json=b2c())
    assert response.status_code == 500
    assert response.json()["errorCode"] == "500.002.1001"
    assert response.json()["errorMessage"] == "Duplicate OriginatorConversationID."


async def test_below_the_minimum_is_result_code_2(
    client: httpx.AsyncClient, simulator: Simulator, receiver: CallbackReceiver
) -> None:
    body = b2c(
        Amount=9,
        SecurityCredential=credential_for(simulator, "Safaricom999!*!"),
        ResultURL=receiver.url("/result"),
    )
    assert (await client.post(B2C_V3, json=body)).status_code == 200

    [request] = await receiver.wait_for(1, path="/result")
    result = request.json()["Result"]
    assert result["ResultCode"] == 2
    assert result["TransactionID"].endswith("0000000")
    assert "ResultParameters" not in result
    assert simulator.balance("600000") == 1_000_000


async def test_results_are_posted_once_and_recorded(
    client: httpx.AsyncClient, simulator: Simulator, receiver: CallbackReceiver
) -> None:
    body = balance(SecurityCredential=credential_for(simulator, "Safaricom999!*!"), ResultURL=receiver.url("/r"))
    await client.post(BALANCE, json=body)
    await receiver.wait_for(1, path="/r")
    await simulator.drain(timeout=5)

    [attempt] = simulator.results()
    assert attempt.delivered
    assert attempt.delivery.url == receiver.url("/r")
    assert not attempt.delivery.timed_out
    assert len(receiver.received("/r")) == 1


async def test_a_configured_initiator(receiver: CallbackReceiver) -> None:
    config = SimulatorConfig(result_delay=0.01, initiators={"payouts": "P4ss#word"}, organisations={"600111": 50})
    async with (
        Simulator(config) as simulator,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=simulator.app), base_url="http://sim") as client,
    ):
        token = await client.get(
            "/oauth/v1/generate?grant_type=client_credentials", auth=("sim_consumer_key", "sim_consumer_secret")
        )
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        good = credential_for(simulator, "P4ss#word")
        await client.post(
            B2C_V3,
            json=b2c(
                OriginatorConversationID="a",
                InitiatorName="payouts",
                PartyA=600111,
                SecurityCredential=good,
                ResultURL=receiver.url("/r"),
                Amount=50,
            ),
        )
        await client.post(
            B2C_V3,
            json=b2c(
                OriginatorConversationID="b",
                InitiatorName="testapi",
                PartyA=600111,
                SecurityCredential=credential_for(simulator, "Safaricom999!*!"),
                ResultURL=receiver.url("/r"),
            ),
        )
        first, second = await receiver.wait_for(2, path="/r")
        codes = sorted([first.json()["Result"]["ResultCode"], second.json()["Result"]["ResultCode"]])
        assert codes == [0, 2001]
        assert simulator.balance("600111") == 0
