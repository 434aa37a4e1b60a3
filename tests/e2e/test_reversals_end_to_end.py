"""Reversals and balance queries end to end: the bridge and the simulator as separate processes over
real HTTP, on SQLite and PostgreSQL, with a real webhook receiver.

A reversal of a paid STK payment succeeds, the payment shows it and `payment.reversed` reaches the
merchant's endpoint; a payment already reversed at Daraja (by a Reversal sent to the simulator
directly, as the M-Pesa portal would) fails clearly with `already_reversed`; a balance query with
`wait` answers with the simulator's accounts; the reversal's Result replayed, duplicated and spoofed
changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from mpesa_bridge.config import SIMULATOR_CONSUMER_KEY, Settings
from mpesa_bridge.daraja import security_credential
from mpesa_bridge.storage import tables
from mpesa_bridge.storage.db import Database
from tests.fixtures.bridge import ADMIN_TOKEN
from tests.fixtures.database import process_database
from tests.fixtures.receiver import Receiver
from tests.fixtures.servers import ServerProcess, bridge_process, simulator_process

pytestmark = pytest.mark.slow


@dataclass
class Stack:
    bridge: ServerProcess
    simulator: ServerProcess
    key: str
    database_url: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from process_database(request.param, tmp_path_factory.mktemp("e2e-reversals"))


@pytest.fixture(scope="module")
def stack(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("servers")
    simulator = simulator_process(tmp).start(health_path="/oauth/v1/generate")
    bridge = bridge_process(tmp, database_url, simulator.url, MPESA_BRIDGE_WEBHOOK_POLL_INTERVAL="0.1")
    try:
        bridge.start()
        created = httpx.post(
            f"{bridge.url}/v1/admin/projects",
            json={"name": "E2E reversals"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=10,
        )
        assert created.status_code == 201, created.text
        yield Stack(bridge, simulator, created.json()["secret_keys"]["test"], database_url)
    finally:
        bridge.stop()
        simulator.stop()


async def wait_for(http: httpx.AsyncClient, url: str, headers: dict[str, str], *statuses: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        body: dict[str, Any] = (await http.get(url, headers=headers)).json()
        if body["status"] in statuses:
            return body
        assert time.monotonic() < deadline, f"{url} stayed {body['status']}, wanted {statuses}"
        await asyncio.sleep(0.05)


async def paid(http: httpx.AsyncClient, stack: Stack, amount: int) -> dict[str, Any]:
    body = {"phone": "0708374149", "amount": amount, "account_reference": "E2E-REV"}
    created = await http.post(f"{stack.bridge.url}/v1/payments", json=body, headers=stack.headers)
    assert created.status_code == 201, created.text
    return await wait_for(http, f"{stack.bridge.url}/v1/payments/{created.json()['id']}", stack.headers, "succeeded")


async def test_a_reversal_succeeds_the_payment_shows_it_and_the_merchant_hears_of_it(stack: Stack) -> None:
    async with Receiver() as receiver, httpx.AsyncClient(timeout=15) as http:
        endpoint = await http.post(
            f"{stack.bridge.url}/v1/webhook_endpoints",
            json={"url": f"{receiver.url}/hooks", "enabled_events": ["payment.reversed", "reversal.failed"]},
            headers=stack.headers,
        )
        assert endpoint.status_code == 201, endpoint.text
        payment = await paid(http, stack, 150)
        answer = await http.post(
            f"{stack.bridge.url}/v1/payments/{payment['id']}/reversals",
            json={"remarks": "Customer returned the goods"},
            headers={**stack.headers, "Idempotency-Key": f"rev-{payment['id']}"},
        )
        assert answer.status_code == 201, answer.text
        reversal = answer.json()
        assert reversal["status"] == "sent", reversal
        done = await wait_for(http, f"{stack.bridge.url}/v1/reversals/{reversal['id']}", stack.headers, "succeeded")
        assert done["receipt"] and done["amount"] == 150
        shown = (await http.get(f"{stack.bridge.url}/v1/payments/{payment['id']}", headers=stack.headers)).json()
        assert shown["status"] == "succeeded" and shown["reversal_id"] == reversal["id"] and shown["reversed_at"]

        await receiver.wait_for(1, timeout=20)
        (hook,) = [json.loads(r.body) for r in receiver.at("/hooks")]
        assert hook["type"] == "payment.reversed"
        assert hook["data"]["object"]["id"] == payment["id"] and hook["data"]["reversal"]["id"] == reversal["id"]

        again = await http.post(f"{stack.bridge.url}/v1/payments/{payment['id']}/reversals", headers=stack.headers)
        assert again.status_code == 409 and again.json()["error"]["code"] == "payment_already_reversed"
        await http.delete(f"{stack.bridge.url}/v1/webhook_endpoints/{endpoint.json()['id']}", headers=stack.headers)


async def _reverse_at_daraja(http: httpx.AsyncClient, simulator: str, receipt: str, amount: int) -> None:
    """A Reversal sent to the simulator directly, as someone using the M-Pesa org portal would."""
    secret = Settings().simulator_consumer_secret.get_secret_value()
    token = (
        await http.get(
            f"{simulator}/oauth/v1/generate?grant_type=client_credentials", auth=(SIMULATOR_CONSUMER_KEY, secret)
        )
    ).json()["access_token"]
    certificate = (await http.get(f"{simulator}/simulator-certificate.pem")).content
    body = {
        "Initiator": "testapi",
        "SecurityCredential": security_credential("Safaricom999!*!", certificate),
        "CommandID": "TransactionReversal",
        "TransactionID": receipt,
        "Amount": str(amount),
        "ReceiverParty": "174379",
        "RecieverIdentifierType": "11",
        "ResultURL": "http://127.0.0.1:9/portal/result",
        "QueueTimeOutURL": "http://127.0.0.1:9/portal/timeout",
        "Remarks": "Reversed in the portal",
    }
    answer = await http.post(
        f"{simulator}/mpesa/reversal/v1/request", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 200, answer.text


async def test_a_payment_already_reversed_at_daraja_fails_clearly(stack: Stack) -> None:
    async with httpx.AsyncClient(timeout=15) as http:
        payment = await paid(http, stack, 120)
        await _reverse_at_daraja(http, stack.simulator.url, payment["mpesa_receipt_number"], 120)
        answer = await http.post(f"{stack.bridge.url}/v1/payments/{payment['id']}/reversals", headers=stack.headers)
        assert answer.status_code == 201, answer.text
        url = f"{stack.bridge.url}/v1/reversals/{answer.json()['id']}"
        failed = await wait_for(http, url, stack.headers, "failed", "succeeded")
        assert failed["status"] == "failed"
        assert (failed["failure_code"], failed["result_code"]) == ("already_reversed", "R000001")
        assert failed["failure_message"] == "The transaction has already been reversed."
        shown = (await http.get(f"{stack.bridge.url}/v1/payments/{payment['id']}", headers=stack.headers)).json()
        assert shown["reversed_at"] is None


async def test_a_balance_query_with_wait_returns_the_parsed_accounts(stack: Stack) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.post(f"{stack.bridge.url}/v1/balance_queries", json={"wait": 15}, headers=stack.headers)
        assert answer.status_code == 201, answer.text
        query = answer.json()
        assert query["status"] == "completed", query
        names = [a["name"] for a in query["accounts"]]
        assert names == [
            "Working Account",
            "Float Account",
            "Utility Account",
            "Charges Paid Account",
            "Organization Settlement Account",
        ]
        utility = query["accounts"][2]
        assert utility["currency"] == "KES" and isinstance(utility["available"], int) and utility["available"] > 0
        assert utility["amounts"][0] == utility["available"]


async def stored_states(database_url: str, kind: str) -> list[tuple[str, str | None]]:
    db = Database(database_url)
    try:
        async with db.read_engine.connect() as conn:
            table = tables.inbound_callbacks
            rows = await conn.execute(
                sa.select(table.c.state, table.c.flag_reason).where(table.c.kind == kind).order_by(table.c.id)
            )
            return [(r[0], r[1]) for r in rows]
    finally:
        await db.dispose()


async def test_a_spoofed_reversal_result_changes_nothing(stack: Stack) -> None:
    """(Replays and duplicates of the real Result need its URL's token, which only Daraja has:
    tests/integration/test_reversals.py replays it in-process.)"""
    async with httpx.AsyncClient(timeout=15) as http:
        payment = await paid(http, stack, 90)
        created = await http.post(f"{stack.bridge.url}/v1/payments/{payment['id']}/reversals", headers=stack.headers)
        url = f"{stack.bridge.url}/v1/reversals/{created.json()['id']}"
        done = await wait_for(http, url, stack.headers, "succeeded")
        # What Daraja would send for it: replayed by someone who learned the callback URL's token it is
        # still only ever applied once; sent to another token it is refused; a forged failure is flagged.
        result = {
            "Result": {
                "ResultType": 0,
                "ResultCode": "R000002",
                "ResultDesc": "The OriginalTransactionID is invalid.",
                "OriginatorConversationID": done["originator_conversation_id"],
                "ConversationID": done["conversation_id"],
                "TransactionID": "UL50000000",
            }
        }
        spoofed = await http.post(f"{stack.bridge.url}/v1/callbacks/daraja/reversal_result/guessed-token", json=result)
        assert spoofed.status_code == 200  # answered like any callback; stored, flagged, never applied
        deadline = time.monotonic() + 10
        while ("flagged", "unknown_token") not in await stored_states(stack.database_url, "reversal_result"):
            assert time.monotonic() < deadline, "the spoofed Result was never processed"
            await asyncio.sleep(0.05)
        assert (await http.get(url, headers=stack.headers)).json() == done
        events = (await http.get(f"{stack.bridge.url}/v1/events", params={"limit": 100}, headers=stack.headers)).json()
        reversed_events = [e for e in events["data"] if e["type"] == "payment.reversed"]
        assert [e["data"]["object"]["id"] for e in reversed_events].count(payment["id"]) == 1
        assert not [
            e for e in events["data"] if e["type"] == "reversal.failed" and e["data"]["object"]["id"] == done["id"]
        ]
