"""Poison callbacks: refused at parse time, or retried a bounded number of times — never for ever,
never in the way of newer callbacks. On SQLite and PostgreSQL (whose text columns refuse NUL).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from mpesa_bridge.config import Settings
from mpesa_bridge.core.callbacks import stk as stk_module
from mpesa_bridge.core.callbacks.stk import apply_stk_callback
from mpesa_bridge.core.ids import new_id
from mpesa_bridge.core.payments.entity import InboundCallback
from tests.fixtures.bridge import InProcessBridge, make_settings, wait_until
from tests.integration.test_callbacks_inbox import (
    ACK,
    callback_path,
    pending_payment,
    post_callback,
    settled,
    stored,
    success_body,
)

POISON_TOKEN = "poison-token"
RETRY_DELAY = 10.0  # the first; each next one doubles
MAX_ATTEMPTS = 3
SWEEP_BATCH = 20  # instead of 500: the same starvation, with fewer rows to fail


@pytest.fixture
def bridge_settings(db_url: str, tmp_path) -> Settings:  # type: ignore[no-untyped-def]
    return make_settings(
        db_url,
        tmp_path,
        simulator_late_callback_delay=60.0,  # the "late" number keeps a payment pending
        inbox_max_attempts=MAX_ATTEMPTS,
        inbox_retry_delay=RETRY_DELAY,
        inbox_sweep_batch=SWEEP_BATCH,
    )


@pytest.fixture
def failing_handler(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The STK handler does all its work for callbacks on POISON_TOKEN, then fails: the transaction
    it wrote in (its `attempts + 1` included) is rolled back. The inbox itself is the real one."""
    real = apply_stk_callback
    poison = hashlib.sha256(POISON_TOKEN.encode()).hexdigest()

    async def handler(uow: Any, callback: InboundCallback, *args: Any) -> None:
        await real(uow, callback, *args)
        if callback.token_hash == poison:
            raise RuntimeError("the handler failed (injected)")

    monkeypatch.setattr(stk_module, "apply_stk_callback", handler)
    yield


def _with_nul(body: bytes, field: str) -> bytes:
    doc = json.loads(body)
    stk = doc["Body"]["stkCallback"]
    if field == "MpesaReceiptNumber":
        stk["CallbackMetadata"]["Item"][1]["Value"] += "\u0000"
    else:
        stk[field] += "\u0000"
    return json.dumps(doc).encode()  # "\u0000" escaped, as a JSON encoder sends it


@pytest.mark.parametrize("field", ["CheckoutRequestID", "ResultDesc", "MpesaReceiptNumber"])
async def test_a_nul_in_a_callback_field_is_stored_raw_acknowledged_and_malformed(
    bridge: InProcessBridge, field: str
) -> None:
    shop = await bridge.create_project()
    payment = await pending_payment(bridge, shop, amount=42)
    body = _with_nul(success_body(payment["checkout_request_id"], amount=42.0, phone=254700000902), field)

    assert await post_callback(bridge, await callback_path(bridge, payment), body) == ACK
    await wait_until(lambda: settled(bridge))

    [row] = await stored(bridge)
    assert bytes(row["body"]) == body  # stored raw, byte for byte
    assert (row["state"], row["flag_reason"], row["attempts"]) == ("flagged", "malformed", 1)
    assert row["checkout_request_id"] is None
    assert (await bridge.get(shop, payment["id"]))["status"] == "pending"


async def test_a_failing_callback_is_retried_with_backoff_then_left_failed(
    bridge: InProcessBridge, failing_handler: None
) -> None:
    inbox, start = bridge.runtime.inbox, bridge.clock.now()
    # The first try is the inbox's own, right after the acknowledgement.
    assert await post_callback(bridge, "/v1/callbacks/daraja/stk/" + POISON_TOKEN, b"{}") == ACK
    await wait_until(lambda: _one_with(bridge, attempts=1))
    await inbox.stop()  # from here on, only the sweeps below try it
    [row] = await stored(bridge)
    # The failure was written in its own transaction: the count survived the handler's rollback.
    assert (row["state"], row["last_error"], row["flag_reason"]) == ("received", "RuntimeError", None)
    assert row["next_attempt_at"] == start + timedelta(seconds=RETRY_DELAY)

    assert await inbox.sweep() == 0  # not due yet: not tried
    assert await _one_with(bridge, attempts=1)
    bridge.clock.advance(RETRY_DELAY)
    assert await inbox.sweep() == 0
    assert await _one_with(bridge, attempts=2, state="received")
    assert (await stored(bridge))[0]["next_attempt_at"] == bridge.clock.now() + timedelta(seconds=2 * RETRY_DELAY)

    bridge.clock.advance(2 * RETRY_DELAY - 1)
    await inbox.sweep()
    assert await _one_with(bridge, attempts=2, state="received")
    bridge.clock.advance(1)
    with capture_logs() as logs:
        await inbox.sweep()
    assert await _one_with(bridge, attempts=MAX_ATTEMPTS, state="failed")
    failed = [e for e in logs if e["event"] == "callback.failed"]
    assert [(e["callback_id"], e["attempts"], e["error"]) for e in failed] == [
        (row["id"], MAX_ATTEMPTS, "RuntimeError")
    ]

    bridge.clock.advance(86_400)
    await inbox.sweep()
    assert await _one_with(bridge, attempts=MAX_ATTEMPTS, state="failed")  # terminal: a person looks at it


async def test_poison_rows_do_not_hide_a_genuine_callback_from_the_sweep(
    bridge: InProcessBridge, failing_handler: None
) -> None:
    shop = await bridge.create_project()
    payment = await pending_payment(bridge, shop, amount=42)
    await bridge.runtime.inbox.stop()  # as after a crash: only the sweep applies what was stored
    # More poison than one sweep reads, all older than the genuine callback.
    at = bridge.clock.now() - timedelta(seconds=60)
    poison = [
        InboundCallback(
            id=new_id("cb", at),
            kind="stk",
            received_at=at,
            body=b"{}",
            token_hash=hashlib.sha256(POISON_TOKEN.encode()).hexdigest(),
        )
        for _ in range(SWEEP_BATCH + 1)
    ]
    async with bridge.db.write() as uow:
        await uow.callbacks.add_many(poison)
    body = success_body(payment["checkout_request_id"], amount=42.0, phone=254700000902)
    await post_callback(bridge, await callback_path(bridge, payment), body)

    assert bridge.runtime.inbox.sweep_batch == SWEEP_BATCH
    await bridge.runtime.inbox.sweep()  # reads only poison, which fails and moves out of the way
    assert (await bridge.get(shop, payment["id"]))["status"] == "pending"
    assert await bridge.runtime.inbox.sweep() == 1

    assert (await bridge.get(shop, payment["id"]))["status"] == "succeeded"
    rows = await stored(bridge)
    assert sorted(r["attempts"] for r in rows if r["state"] == "received") == [1] * len(poison)


async def _one_with(bridge: InProcessBridge, **expected: Any) -> bool:
    rows = await stored(bridge)
    return len(rows) == 1 and all(rows[0][name] == value for name, value in expected.items())
