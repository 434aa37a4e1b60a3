"""End to end over real HTTP on loopback: the bridge and the simulator as separate server processes.

pay → Daraja (simulator) → callback → `succeeded`, for every magic outcome; lost callbacks settled
by query; duplicate and contradicting callbacks; late success after expiry; a crash between
storing a callback and applying it — on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from mpesa_bridge.storage.db import Database
from tests.fixtures.bridge import ADMIN_TOKEN
from tests.fixtures.database import process_database
from tests.fixtures.servers import ServerProcess, bridge_process, simulator_process

pytestmark = pytest.mark.slow


@dataclass
class Stack:
    bridge: ServerProcess
    simulator: ServerProcess
    database_url: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def pay(self, phone: str, amount: int = 100) -> dict[str, Any]:
        body = {"phone": phone, "amount": amount, "account_reference": "E2E", "description": "e2e"}
        response = httpx.post(f"{self.bridge.url}/v1/payments", json=body, headers=self.headers, timeout=10)
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()
        return data

    def get(self, payment_id: str) -> dict[str, Any]:
        response = httpx.get(f"{self.bridge.url}/v1/payments/{payment_id}", headers=self.headers, timeout=10)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    def evidence(self, payment_id: str) -> list[tuple[str, str]]:
        url = f"{self.bridge.url}/v1/payments/{payment_id}/evidence"
        rows = httpx.get(url, headers=self.headers, timeout=10).json()["data"]
        return [(e["source"], e["verdict"]) for e in rows]

    def wait_status(self, payment_id: str, *statuses: str, timeout: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            payment = self.get(payment_id)
            if payment["status"] in statuses:
                return payment
            if time.monotonic() > deadline:
                raise AssertionError(f"{payment_id} stayed {payment['status']}, wanted {statuses}")
            time.sleep(0.05)

    def events(self, payment_id: str) -> list[tuple[str, bool]]:
        async def read() -> list[tuple[str, bool]]:
            db = Database(self.database_url)
            try:
                async with db.read() as uow:
                    return [(e.type, e.late_correction) for e in await uow.events.for_payment(payment_id)]
            finally:
                await db.dispose()

        return asyncio.run(read())


def create_project(bridge: ServerProcess) -> str:
    response = httpx.post(
        f"{bridge.url}/v1/admin/projects",
        json={"name": "E2E shop"},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    key: str = response.json()["secret_keys"]["test"]
    return key


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Shared by the tests that use the module's running stack."""
    yield from process_database(request.param, tmp_path_factory.mktemp("e2e"))


@pytest.fixture(params=["sqlite", "postgres"])
def own_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of its own, for tests that start their own bridge (no other bridge reconciles it)."""
    yield from process_database(request.param, tmp_path)


@pytest.fixture(scope="module")
def stack(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("servers")
    simulator = simulator_process(tmp).start(health_path="/oauth/v1/generate")
    bridge = bridge_process(tmp, database_url, simulator.url)
    try:
        bridge.start()
        yield Stack(bridge, simulator, database_url, create_project(bridge))
    finally:
        bridge.stop()
        simulator.stop()


OUTCOMES = [
    ("0708374149", "succeeded", None),
    ("0711223344", "succeeded", None),
    ("0700000001", "failed", "insufficient_funds"),
    ("0700001032", "cancelled", "user_cancelled"),
    ("0700001037", "failed", "timeout"),
    ("0700002001", "failed", "wrong_pin"),
    ("0700001001", "failed", "subscriber_locked"),
    ("0700009999", "failed", "system_error"),
]


def test_every_magic_outcome_reaches_its_final_state(stack: Stack) -> None:
    payments = [(stack.pay(phone), status, reason) for phone, status, reason in OUTCOMES]
    for payment, status, reason in payments:
        done = stack.wait_status(payment["id"], status)
        assert done["failure_code"] == reason, done
        evidence = callback_evidence(stack, payment["id"])
        # The callback settles it; on a busy machine the reconciler's query (0.3 s after the push
        # here) may get there first, and the callback then confirms it. Either way once, the same.
        assert evidence in ([("callback", "apply")], [("query", "apply"), ("callback", "confirm")]), evidence
        settled = stack.get(payment["id"])  # a confirming callback adds the receipt the query lacked
        assert settled["status"] == status
        assert (settled["mpesa_receipt_number"] is not None) is (status == "succeeded")


def callback_evidence(stack: Stack, payment_id: str, timeout: float = 10.0) -> list[tuple[str, str]]:
    """The payment's evidence once the callback's is among it (it may follow a query's)."""
    deadline = time.monotonic() + timeout
    while True:
        evidence = stack.evidence(payment_id)
        if any(source == "callback" for source, _ in evidence) or time.monotonic() > deadline:
            return evidence
        time.sleep(0.05)


def test_a_lost_callback_is_reconciled_by_query(stack: Stack) -> None:
    payment = stack.pay("0700000900")
    done = stack.wait_status(payment["id"], "succeeded")
    assert stack.evidence(payment["id"])[-1] == ("query", "apply")
    assert done["mpesa_receipt_number"] is None


def test_a_duplicate_callback_makes_one_transition_and_one_event(stack: Stack) -> None:
    payment = stack.pay("0700000901")
    stack.wait_status(payment["id"], "succeeded")
    deadline = time.monotonic() + 10
    while len(stack.evidence(payment["id"])) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stack.evidence(payment["id"]) == [("callback", "apply"), ("callback", "duplicate")]
    assert stack.events(payment["id"]) == [("payment.created", False), ("payment.succeeded", False)]


def test_a_late_success_after_expiry_is_corrected_and_flagged(stack: Stack) -> None:
    payment = stack.pay("0700000902")
    stack.wait_status(payment["id"], "expired")
    done = stack.wait_status(payment["id"], "succeeded")
    assert done["needs_attention"] and done["attention_reason"] == "late_success"
    assert stack.events(payment["id"]) == [
        ("payment.created", False),
        ("payment.expired", False),
        ("payment.succeeded", True),
    ]


def test_a_contradicting_callback_after_a_callback_set_state_changes_nothing(stack: Stack) -> None:
    payment = stack.pay("0700000903")
    stack.wait_status(payment["id"], "succeeded")
    deadline = time.monotonic() + 10
    while not stack.get(payment["id"])["needs_attention"] and time.monotonic() < deadline:
        time.sleep(0.05)
    done = stack.get(payment["id"])
    assert done["status"] == "succeeded"
    assert done["attention_reason"] == "contradicting_callback"
    assert stack.evidence(payment["id"]) == [("callback", "apply"), ("callback", "conflict")]


def test_killed_between_storing_and_applying_a_callback_is_applied_after_restart(
    own_database_url: str, tmp_path: Path
) -> None:
    database_url = own_database_url
    simulator = simulator_process(tmp_path).start(health_path="/oauth/v1/generate")
    # No reconciliation query for a minute: only the stored callback can settle this payment.
    slow_queries = {"MPESA_BRIDGE_RECONCILE_QUERY_DELAY": "60", "MPESA_BRIDGE_RECONCILE_MAX_AGE": "600"}
    doomed = bridge_process(
        tmp_path,
        database_url,
        simulator.url,
        MPESA_BRIDGE_FAULT_INJECTION="crash_after_callback_stored",
        **slow_queries,
    )
    try:
        doomed.start()
        stack = Stack(doomed, simulator, database_url, create_project(doomed))
        payment = stack.pay("0722000111", amount=321)
        assert doomed.wait_exit() == 70  # died right after the raw callback was stored

        revived = bridge_process(tmp_path, database_url, simulator.url, **slow_queries)
        revived.port = doomed.port  # same address: the same callback URLs stay valid
        revived.env["MPESA_BRIDGE_PORT"] = str(doomed.port)
        revived.env["MPESA_BRIDGE_PUBLIC_BASE_URL"] = doomed.url
        revived.start()
        try:
            stack.bridge = revived
            done = stack.wait_status(payment["id"], "succeeded")
            assert done["amount"] == 321 and done["mpesa_receipt_number"]
            assert stack.evidence(payment["id"]) == [("callback", "apply")]
        finally:
            revived.stop()
    finally:
        doomed.stop()
        simulator.stop()


def test_the_worker_process_reconciles_when_the_server_does_not(own_database_url: str, tmp_path: Path) -> None:
    database_url = own_database_url
    simulator = simulator_process(tmp_path).start(health_path="/oauth/v1/generate")
    bridge = bridge_process(tmp_path, database_url, simulator.url, MPESA_BRIDGE_RECONCILE_ENABLED="false")
    worker = ServerProcess(["worker"], dict(bridge.env), 0, tmp_path / "worker.log")
    try:
        bridge.start()
        stack = Stack(bridge, simulator, database_url, create_project(bridge))
        payment = stack.pay("0700000900")  # no callback: only a query settles it
        worker.spawn()
        done = stack.wait_status(payment["id"], "succeeded", timeout=30)
        assert stack.evidence(payment["id"]) == [("query", "apply")]
        assert done["mpesa_receipt_number"] is None
        worker.stop()
        assert "worker.stopped" in worker.output()  # SIGTERM lets it finish and close cleanly
    finally:
        worker.stop()
        bridge.stop()
        simulator.stop()
