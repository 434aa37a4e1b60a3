"""One inbox for every kind of callback: `/v1/callbacks/daraja/{kind}/{token}` → stored raw → the
handler registered for that kind. On SQLite and PostgreSQL.

The second kind here (`test_result`, a kind no feature uses: every reserved one has its handler now) has a
handler registered by the test alone: the route, the
group commit, the dispatch, the sweep and the retries it goes through are the bridge's own.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest

from mpesa_bridge.config import Settings
from mpesa_bridge.core.payments.entity import InboundCallback
from mpesa_bridge.core.ports import UnitOfWork
from mpesa_bridge.routes import CALLBACK_PATH
from tests.fixtures.bridge import BRIDGE_URL, InProcessBridge, make_settings, wait_until
from tests.integration.test_callbacks_inbox import (
    ACK,
    callback_path,
    pending_payment,
    post_callback,
    settled,
    stored,
    success_body,
)

RETRY_DELAY = 10.0
B2C_RESULT = json.dumps(
    {
        "Result": {
            "ResultType": 0,
            "ResultCode": 0,
            "ResultDesc": "The service request is processed successfully.",
            "OriginatorConversationID": "10571-7910404-1",
            "ConversationID": "AG_20191219_00004e48cf7e3533f581",
            "TransactionID": "NLJ41HAY6Q",
        }
    }
).encode()


@pytest.fixture
def bridge_settings(db_url: str, tmp_path) -> Settings:  # type: ignore[no-untyped-def]
    return make_settings(db_url, tmp_path, simulator_late_callback_delay=60.0, inbox_retry_delay=RETRY_DELAY)


class B2cResults:
    """A handler as a payouts feature would register one; fails the first `failures` times it runs."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.applied: list[tuple[str, bytes, str]] = []
        self.calls = 0

    async def apply(self, uow: UnitOfWork, callbacks: Sequence[InboundCallback], at: datetime) -> None:
        self.calls += 1
        if self.failures:
            self.failures -= 1
            raise RuntimeError("the payouts store is down (injected)")
        for callback in callbacks:
            callback.attempts += 1
            callback.state, callback.processed_at = "applied", at
            self.applied.append((callback.id, callback.body, callback.token_hash))


async def test_a_kind_without_a_handler_is_refused_before_anything_is_stored(bridge: InProcessBridge) -> None:
    for kind in ("test_result", "nonsense", "STK"):
        response = await bridge.client.post(
            f"/v1/callbacks/daraja/{kind}/some-token", content=B2C_RESULT, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "resource_missing"
        assert response.headers["x-request-id"].startswith("req_")

    assert await stored(bridge) == []


async def test_the_stk_url_handed_to_safaricom_is_the_stk_kind_of_the_one_route(bridge: InProcessBridge) -> None:
    # The core builds the URL Daraja is given; the route reads it as kind `stk`: one path, not two.
    assert CALLBACK_PATH == "/v1/callbacks/daraja/stk/"
    shop = await bridge.create_project()
    payment = await pending_payment(bridge, shop, amount=42)
    path = await callback_path(bridge, payment)
    assert bridge.simulator.push(payment["checkout_request_id"]).callback_url == BRIDGE_URL + path
    assert path.startswith("/v1/callbacks/daraja/stk/")

    body = success_body(payment["checkout_request_id"], amount=42.0, phone=254700000902)
    assert await post_callback(bridge, path, body) == ACK
    await wait_until(lambda: settled(bridge))

    [row] = await stored(bridge)
    assert (row["kind"], row["state"], bytes(row["body"])) == ("stk", "applied", body)
    assert (await bridge.get(shop, payment["id"]))["status"] == "succeeded"


async def test_a_second_kind_plugs_in_by_registering_a_handler(bridge: InProcessBridge) -> None:
    handler = B2cResults()
    bridge.runtime.inbox.handlers.register("test_result", handler)

    assert await post_callback(bridge, "/v1/callbacks/daraja/test_result/payout-token", B2C_RESULT) == ACK
    await wait_until(lambda: settled(bridge))

    [row] = await stored(bridge)
    assert (row["kind"], row["state"], row["attempts"]) == ("test_result", "applied", 1)
    assert bytes(row["body"]) == B2C_RESULT  # stored raw, byte for byte
    assert handler.applied == [(row["id"], B2C_RESULT, hashlib.sha256(b"payout-token").hexdigest())]


async def test_a_second_kind_is_retried_on_failure_like_any_other(bridge: InProcessBridge) -> None:
    handler = B2cResults(failures=1)
    bridge.runtime.inbox.handlers.register("test_result", handler)
    inbox, start = bridge.runtime.inbox, bridge.clock.now()

    assert await post_callback(bridge, "/v1/callbacks/daraja/test_result/payout-token", B2C_RESULT) == ACK
    await wait_until(lambda: _one_row(bridge, attempts=1))
    await inbox.stop()  # from here on, only the sweeps below try it
    [row] = await stored(bridge)
    assert (row["state"], row["last_error"]) == ("received", "RuntimeError")
    assert row["next_attempt_at"] == start + timedelta(seconds=RETRY_DELAY)
    assert handler.applied == []

    assert await inbox.sweep() == 0  # not due yet
    bridge.clock.advance(RETRY_DELAY)
    assert await inbox.sweep() == 1

    [row] = await stored(bridge)
    assert (row["kind"], row["state"], row["attempts"]) == ("test_result", "applied", 2)
    assert [applied_id for applied_id, _, _ in handler.applied] == [row["id"]]


async def test_kinds_stored_together_are_each_applied_by_their_own_handler(bridge: InProcessBridge) -> None:
    handler = B2cResults()
    bridge.runtime.inbox.handlers.register("test_result", handler)
    shop = await bridge.create_project()
    payment = await pending_payment(bridge, shop, amount=42)
    await bridge.runtime.inbox.stop()  # stored now, applied below in one transaction
    stk_body = success_body(payment["checkout_request_id"], amount=42.0, phone=254700000902)
    await post_callback(bridge, "/v1/callbacks/daraja/test_result/payout-token", B2C_RESULT)
    await post_callback(bridge, await callback_path(bridge, payment), stk_body)

    rows = await stored(bridge)
    assert await bridge.runtime.inbox.process_many([r["id"] for r in rows]) == 2

    assert {r["kind"]: r["state"] for r in await stored(bridge)} == {"test_result": "applied", "stk": "applied"}
    assert handler.calls == 1 and len(handler.applied) == 1
    assert (await bridge.get(shop, payment["id"]))["status"] == "succeeded"


async def test_a_stored_row_of_a_kind_nobody_handles_fails_boundedly_and_blocks_nothing(
    bridge: InProcessBridge,
) -> None:
    # Stored by another version of the bridge that had a handler for it.
    shop = await bridge.create_project()
    payment = await pending_payment(bridge, shop, amount=42)
    await bridge.runtime.inbox.stop()
    orphan = InboundCallback(
        id="cb_00000000000000000000000000",
        kind="ratiba_result",
        received_at=bridge.clock.now(),
        body=b"{}",
        token_hash="h",
    )
    async with bridge.db.write() as uow:
        await uow.callbacks.add_many([orphan])
    await post_callback(
        bridge,
        await callback_path(bridge, payment),
        success_body(payment["checkout_request_id"], amount=42.0, phone=254700000902),
    )

    assert await bridge.runtime.inbox.sweep() == 1  # the STK callback beside it is applied

    rows = {r["kind"]: r for r in await stored(bridge)}
    assert rows["stk"]["state"] == "applied"
    assert (rows["ratiba_result"]["state"], rows["ratiba_result"]["attempts"]) == ("received", 1)
    assert rows["ratiba_result"]["last_error"] == "UnknownCallbackKind"


async def _one_row(bridge: InProcessBridge, **expected: object) -> bool:
    rows = await stored(bridge)
    return len(rows) == 1 and all(rows[0][name] == value for name, value in expected.items())
