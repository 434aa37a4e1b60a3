"""C2B end to end over real HTTP on loopback: the bridge and the simulator as separate server
processes, the merchant's validation server a loopback receiver — on SQLite and on PostgreSQL.

A short code registered through the bridge's API with the simulator; customers pay it through the
simulator's own endpoint and the `mpesa-bridge simulator pay` command; validation decided by the
merchant's signed webhook, by the rule, and by the project's default when the merchant is late,
each then matched to an expected payment; an unmatched payment in the review queue; a customer who
pays one reference twice, shown; confirmations replayed, duplicated and spoofed.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import sqlalchemy as sa

from mpesa_bridge.storage import tables
from mpesa_bridge.storage.db import Database
from tests.fixtures.bridge import ADMIN_TOKEN, wait_until
from tests.fixtures.database import process_database
from tests.fixtures.receiver import Receiver, Reply
from tests.fixtures.servers import ServerProcess, bridge_process, simulator_process

pytestmark = pytest.mark.slow

SHORT_CODE = "600984"


@dataclass
class Stack:
    bridge: ServerProcess
    simulator: ServerProcess
    database_url: str


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from process_database(request.param, tmp_path_factory.mktemp("c2b-e2e"))


@pytest.fixture(scope="module")
def stack(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("servers")
    simulator = simulator_process(tmp)
    simulator.args += ["--c2b-validation-timeout", "4"]  # Daraja waits ~8 s; the bridge answers by 0.5 s
    simulator.start(health_path="/oauth/v1/generate")
    bridge = bridge_process(tmp, database_url, simulator.url, MPESA_BRIDGE_C2B_VALIDATION_TIMEOUT="0.5")
    try:
        bridge.start()
        yield Stack(bridge, simulator, database_url)
    finally:
        bridge.stop()
        simulator.stop()


@pytest.fixture
async def merchant() -> AsyncIterator[Receiver]:
    async with Receiver() as receiver:
        yield receiver


@dataclass
class Shop:
    http: httpx.AsyncClient
    stack: Stack
    key: str
    registration: dict[str, Any]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def call(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        response = await self.http.request(method, self.stack.bridge.url + path, headers=headers, **kwargs)
        assert response.status_code == status, response.text
        return response.json()

    async def expect(self, reference: str, amount: int) -> dict[str, Any]:
        body = {"reference": reference, "amount": amount}
        created: dict[str, Any] = await self.call("POST", "/v1/expected_payments", 201, json=body)
        return created

    async def pay(self, amount: int, account: str, phone: str = "254708374149") -> dict[str, Any]:
        """A customer pays the paybill: the simulator calls validation, then confirmation."""
        order = {"type": "paybill", "short_code": SHORT_CODE, "amount": amount, "account": account, "phone": phone}
        response = await self.http.post(self.stack.simulator.url + "/simulator/c2b/payments", json=order)
        assert response.status_code == 201, response.text
        paid: dict[str, Any] = response.json()
        return paid

    async def payment(self, trans_id: str) -> dict[str, Any]:
        async def found() -> dict[str, Any] | None:
            listed = await self.call("GET", "/v1/c2b/payments", params={"limit": 100})
            for p in listed["data"]:
                if p["trans_id"] == trans_id:
                    detail: dict[str, Any] = await self.call("GET", f"/v1/c2b/payments/{p['id']}")
                    return detail
            return None

        result: dict[str, Any] = await wait_until(found, timeout=10)
        return result


@pytest.fixture
async def shop(stack: Stack) -> AsyncIterator[Shop]:
    async with httpx.AsyncClient(trust_env=False, timeout=20) as http:
        created = await http.post(
            f"{stack.bridge.url}/v1/admin/projects",
            json={"name": "C2B shop"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        assert created.status_code == 201, created.text
        shop = Shop(http, stack, created.json()["secret_keys"]["test"], {})
        shop.registration = await shop.call(
            "POST",
            "/v1/c2b/registrations",
            201,
            json={"short_code": SHORT_CODE},
            headers={**shop.headers, "Idempotency-Key": "reg-" + created.json()["id"]},
        )
        yield shop


async def test_validated_by_the_merchant_by_the_rule_and_by_the_late_default_then_matched(
    shop: Shop, merchant: Receiver
) -> None:
    settings = {"validation_rule": "merchant", "merchant_url": merchant.url + "/ok", "default_action": "reject"}
    secret = (await shop.call("POST", "/v1/c2b/settings", json=settings))["signing_secret"]
    first = await shop.expect("INV-1", 100)
    merchant.script("/ok", Reply(body=b'{"accept": true}'))
    paid = await shop.pay(100, "inv-1")
    assert paid["status"] == "completed" and paid["validation"]["outcome"] == "accepted"
    asked = merchant.at("/ok")[0].verify(secret)
    assert asked["data"]["trans_id"] == paid["TransID"] and asked["data"]["bill_ref_number"] == "inv-1"
    by_merchant = await shop.payment(paid["TransID"])
    assert by_merchant["status"] == "matched" and by_merchant["matched"]["id"] == first["id"]
    assert [v["decided_by"] for v in by_merchant["validations"]] == ["merchant"]
    assert by_merchant["third_party_trans_id"] == by_merchant["validations"][0]["id"]

    # The merchant refuses: the customer is refused, no money moves, nothing is recorded as paid.
    merchant.script("/ok", Reply(body=b'{"accept": false, "result_code": "C2B00012"}'))
    refused = await shop.pay(100, "NO-SUCH")
    assert refused["status"] == "rejected" and refused["validation"]["result_code"] == "C2B00012"

    await shop.call("POST", "/v1/c2b/settings", json={"validation_rule": "known_references"})
    second = await shop.expect("INV-2", 200)
    by_rule = await shop.pay(200, "INV-2")
    assert by_rule["status"] == "completed"
    detail = await shop.payment(by_rule["TransID"])
    assert [v["decided_by"] for v in detail["validations"]] == ["known_account"]
    assert detail["matched"]["id"] == second["id"]
    unknown = await shop.pay(200, "INV-404")
    assert unknown["status"] == "rejected" and unknown["validation"]["result_code"] == "C2B00012"

    # Late: the merchant answers after 2 s; the bridge's deadline is 0.5 s, Daraja's (the simulator's) 4 s.
    late_settings = {"validation_rule": "merchant", "merchant_url": merchant.url + "/slow", "default_action": "accept"}
    await shop.call("POST", "/v1/c2b/settings", json=late_settings)
    merchant.script("/slow", Reply(body=b'{"accept": false}', delay=2.0))
    third = await shop.expect("INV-3", 300)
    late = await shop.pay(300, "INV-3")
    assert late["status"] == "completed" and late["validation"]["outcome"] == "accepted"
    detail = await shop.payment(late["TransID"])
    assert [v["decided_by"] for v in detail["validations"]] == ["merchant_late"]
    assert detail["matched"]["id"] == third["id"]
    expected = await shop.call("GET", f"/v1/expected_payments/{third['id']}")
    assert expected["status"] == "paid" and expected["c2b_payment_id"] == detail["id"]


async def test_unmatched_in_the_review_queue_and_paying_twice_shown(shop: Shop) -> None:
    await shop.call("POST", "/v1/c2b/settings", json={"validation_rule": "accept_all"})
    await shop.expect("FEES-7", 1500)
    first = await shop.pay(1500, "FEES-7")
    second = await shop.pay(1500, "fees 7")  # the same customer pays the same invoice again
    code, out, err = await cli(
        "simulator", "pay", "--paybill", SHORT_CODE, "--amount", "40", "--account", "WHO-KNOWS",
        "--simulator-url", shop.stack.simulator.url,
    )  # fmt: skip
    assert code == 0, err
    stray = out.split()[1]
    matched = await shop.payment(first["TransID"])
    twice_seen, unknown_seen = await shop.payment(second["TransID"]), await shop.payment(stray)
    assert matched["status"] == "matched"
    assert twice_seen["status"] == "unmatched" and twice_seen["duplicate_of"] == matched["id"]
    assert twice_seen["same_reference"] == [matched["id"], twice_seen["id"]]
    assert unknown_seen["status"] == "unmatched" and unknown_seen["duplicate_of"] is None
    queue = await shop.call("GET", "/v1/c2b/payments", params={"status": "unmatched"})
    assert {p["trans_id"] for p in queue["data"]} == {second["TransID"], stray}
    dismissed = await shop.call("POST", f"/v1/c2b/payments/{unknown_seen['id']}/dismiss", json={"note": "tip"})
    assert dismissed["status"] == "dismissed"


async def test_confirmations_replayed_duplicated_and_spoofed(shop: Shop) -> None:
    await shop.call("POST", "/v1/c2b/settings", json={"validation_rule": "accept_all"})
    paid = await shop.pay(75, "REPLAY-1")
    original = await shop.payment(paid["TransID"])
    body = {
        "TransactionType": "Pay Bill",
        "TransID": paid["TransID"],
        "TransTime": "20261205120000",
        "TransAmount": "75.00",
        "BusinessShortCode": SHORT_CODE,
        "BillRefNumber": "REPLAY-1",
        "InvoiceNumber": "",
        "OrgAccountBalance": "75.00",
        "ThirdPartyTransID": "",
        "MSISDN": "2547 ***** 149",
        "FirstName": "JOHN",
        "MiddleName": "",
        "LastName": "",
    }
    confirm = urlsplit(shop.registration["confirmation_url"]).path
    bridge = shop.stack.bridge.url
    replayed = await shop.http.post(bridge + confirm, content=json.dumps(body))
    duplicated = await shop.http.post(bridge + confirm, content=json.dumps(body))
    spoofed = await shop.http.post(
        bridge + "/v1/callbacks/daraja/c2b_confirmation/" + "0" * 40,
        content=json.dumps({**body, "TransID": "FAKE000001"}),
    )
    assert replayed.status_code == duplicated.status_code == spoofed.status_code == 200
    forged = await shop.http.post(bridge + "/v1/callbacks/daraja/c2b_validation/" + "0" * 40, content=json.dumps(body))
    assert forged.json() == {"ResultCode": "C2B00015", "ResultDesc": "Rejected"}

    async def states() -> list[tuple[str, str | None]] | None:
        db = Database(shop.stack.database_url)
        try:
            c = tables.inbound_callbacks.c
            async with db.read() as uow:
                rows = await uow.connection.execute(
                    sa.select(c.state, c.flag_reason, c.body).where(c.kind == "c2b_confirmation").order_by(c.id)
                )
                mine = [(r.state, r.flag_reason) for r in rows if b"REPLAY-1" in r.body]
        finally:
            await db.dispose()
        return mine if len(mine) == 4 and all(s != "received" for s, _ in mine) else None

    assert await wait_until(states, timeout=10) == [
        ("applied", None),
        ("duplicate", None),
        ("duplicate", None),
        ("flagged", "unknown_token"),
    ]
    listed = await shop.call("GET", "/v1/c2b/payments", params={"reference": "REPLAY-1"})
    assert [p["id"] for p in listed["data"]] == [original["id"]]


async def cli(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mpesa_bridge", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
