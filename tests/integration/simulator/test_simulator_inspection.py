"""The simulator's read-only inspection routes (not Daraja's): the requests it received per API,
the Results it POSTed (delivered, refused or failed, over real loopback), the balances per short
code — standalone and mounted in the bridge at /simulator; and `initiator_answer_delay`, which
holds back the answer to an accepted payout after the money has moved."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mpesa_bridge.api.app import create_app
from mpesa_bridge.daraja import (
    AccountBalanceRequest,
    B2cPaymentRequest,
    DarajaClient,
    DarajaCredentials,
    ReversalRequest,
    TokenCache,
    TransactionStatusRequest,
    security_credential,
)
from mpesa_bridge.simulator import CallbackReceiver, Simulator, SimulatorConfig
from mpesa_bridge.simulator.inspection import APIS
from tests.fixtures.bridge import make_settings, wait_until
from tests.fixtures.servers import free_port

PASSWORD = "Safaricom999!*!"
ORG = "600000"
PAYBILL = "174379"
OPENING = 1_000_000


@pytest.fixture(scope="module")
def key_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture
async def receiver() -> AsyncIterator[CallbackReceiver]:
    async with CallbackReceiver(status_for={"/refused": 503}) as receiver:
        yield receiver


def make_simulator(key_pem: bytes, **overrides: Any) -> Simulator:
    config = SimulatorConfig(callback_delay=0.01, result_delay=0.01, callback_timeout=2.0, initiator_key_pem=key_pem)
    return Simulator(dataclasses.replace(config, **overrides))


@pytest.fixture
async def simulator(key_pem: bytes) -> AsyncIterator[Simulator]:
    async with make_simulator(key_pem) as simulator:
        yield simulator


def http_for(simulator: Simulator) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=simulator.app), base_url="http://sim")


def client_for(http: httpx.AsyncClient) -> DarajaClient:
    credentials = DarajaCredentials("sim_consumer_key", "sim_consumer_secret")
    return DarajaClient("http://sim", credentials, http=http, token_cache=TokenCache())


async def credential(http: httpx.AsyncClient) -> str:
    return security_credential(PASSWORD, (await http.get("/simulator-certificate.pem")).content)


def payout(result_url: str, secret: str, amount: int = 100) -> B2cPaymentRequest:
    return B2cPaymentRequest(
        originator_conversation_id=f"b2c-{uuid.uuid4()}",
        initiator_name="testapi",
        security_credential=secret,
        command_id="BusinessPayment",
        amount=amount,
        party_a=ORG,
        party_b="254708374149",
        remarks="inspection",
        queue_timeout_url=result_url,
        result_url=result_url,
    )


async def test_a_fresh_simulator_shows_zero_requests_no_results_and_the_opening_balances(
    simulator: Simulator,
) -> None:
    async with http_for(simulator) as http:
        requests = await http.get("/simulator/requests")
        results = await http.get("/simulator/results")
        balances = await http.get("/simulator/balances")

    assert requests.status_code == results.status_code == balances.status_code == 200
    assert requests.json() == {"received": dict.fromkeys(APIS, 0)}
    assert results.json() == {"data": []}
    assert balances.json() == {"balances": {ORG: OPENING, PAYBILL: OPENING}}


async def test_every_request_is_counted_and_every_result_shown_with_the_status_it_got(
    simulator: Simulator, receiver: CallbackReceiver
) -> None:
    async with http_for(simulator) as http:
        client = client_for(http)
        secret = await credential(http)
        await client.b2c_payment(payout(receiver.url("/result"), secret, amount=150))
        await client.b2c_payment(payout(receiver.url("/refused"), secret, amount=50))
        closed = f"http://127.0.0.1:{free_port()}/gone"
        await client.b2c_payment(payout(closed, secret, amount=10))
        await client.b2c_payment(payout(receiver.url("/result"), secret), version="v1")
        status = TransactionStatusRequest(
            initiator="testapi",
            security_credential=secret,
            party_a=ORG,
            result_url=receiver.url("/status"),
            queue_timeout_url=receiver.url("/status"),
            remarks="check",
            original_conversation_id="nothing-of-the-kind",
        )
        await client.transaction_status(status)
        to = receiver.url("/balance")
        balance = AccountBalanceRequest("testapi", secret, ORG, result_url=to, queue_timeout_url=to, remarks="check")
        await client.account_balance(balance)
        reversal = ReversalRequest(
            initiator="testapi",
            security_credential=secret,
            transaction_id="UAB0000000",
            amount=10,
            receiver_party=PAYBILL,
            result_url=receiver.url("/reversal"),
            queue_timeout_url=receiver.url("/reversal"),
            remarks="no such payment",
        )
        await client.reversal(reversal)
        # Refused at the door (no token): still a request that reached Daraja.
        assert (await http.post("/mpesa/b2c/v3/paymentrequest", json={})).status_code >= 400
        assert (await http.post("/mpesa/stkpush/v1/processrequest", json={})).status_code >= 400
        await simulator.drain(timeout=10)
        received = (await http.get("/simulator/requests")).json()["received"]
        results = (await http.get("/simulator/results")).json()["data"]
        balances = (await http.get("/simulator/balances")).json()["balances"]

    assert received == {
        **dict.fromkeys(APIS, 0),
        "oauth": 1,
        "b2c_v3": 4,
        "b2c_v1": 1,
        "transaction_status": 1,
        "account_balance": 1,
        "reversal": 1,
        "stk_push": 1,
    }
    assert received == simulator.received()
    assert balances == {ORG: OPENING - 150 - 50 - 10 - 100, PAYBILL: OPENING} == simulator.balances()
    by_url = {attempt["url"]: attempt for attempt in results}
    assert len(results) == 7 and len(by_url) == 6  # two Results went to /result
    delivered = by_url[receiver.url("/status")]
    assert (delivered["status_code"], delivered["delivered"], delivered["error"]) == (200, True, None)
    assert delivered["body"]["Result"]["ResultCode"] == 25
    refused = by_url[receiver.url("/refused")]
    assert (refused["status_code"], refused["delivered"]) == (503, False)
    failed = by_url[closed]
    assert failed["status_code"] is None and failed["delivered"] is False and failed["error"]
    assert all(attempt["timed_out"] is False and attempt["at"] for attempt in results)
    # What was POSTed is what the receiver got, byte for byte in JSON terms.
    got = [request.json() for request in receiver.received("/result")]
    assert [a["body"] for a in results if a["url"] == receiver.url("/result")] == got


async def test_inside_the_bridge_they_answer_under_its_simulator_mount(simulator: Simulator, tmp_path: Path) -> None:
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'bridge.db'}", tmp_path)
    bridge = create_app(settings, simulator=simulator)
    transport = httpx.ASGITransport(app=bridge)
    async with httpx.AsyncClient(transport=transport, base_url="http://bridge") as http:
        token = await http.get("/simulator/oauth/v1/generate", params={"grant_type": "client_credentials"})
        requests = await http.get("/simulator/requests")
        results = await http.get("/simulator/results")
        balances = await http.get("/simulator/balances")

    assert token.status_code == 400  # no credentials, yet counted
    assert requests.status_code == 200 and requests.json()["received"]["oauth"] == 1
    assert results.status_code == 200 and results.json() == {"data": []}
    assert balances.status_code == 200 and balances.json()["balances"][ORG] == OPENING


async def test_the_answer_to_a_payout_is_held_after_the_money_has_moved(
    key_pem: bytes, receiver: CallbackReceiver
) -> None:
    delay = 1.5
    async with make_simulator(key_pem, initiator_answer_delay=delay) as simulator, http_for(simulator) as http:
        client = client_for(http)
        secret = await credential(http)
        started = time.monotonic()
        in_flight = asyncio.create_task(client.b2c_payment(payout(receiver.url("/result"), secret, amount=300)))

        async def debited() -> bool:
            balances = (await http.get("/simulator/balances")).json()["balances"]
            return bool(balances[ORG] == OPENING - 300)

        await wait_until(debited, timeout=delay)
        [result] = await receiver.wait_for(1, path="/result", within=delay)  # the Result is not held either
        assert not in_flight.done(), "the answer was not held"
        accepted = await in_flight
        assert time.monotonic() - started >= delay
        assert accepted.response_code == "0"
        assert result.json()["Result"]["ResultCode"] == 0

        # A query moves nothing and is how a caller recovers: answered at once.
        status = TransactionStatusRequest(
            initiator="testapi",
            security_credential=secret,
            party_a=ORG,
            result_url=receiver.url("/status"),
            queue_timeout_url=receiver.url("/status"),
            remarks="check",
            original_conversation_id=accepted.originator_conversation_id,
        )
        asked = time.monotonic()
        await client.transaction_status(status)
        assert time.monotonic() - asked < delay
        assert simulator.received()["b2c_v3"] == 1
