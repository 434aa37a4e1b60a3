"""Idempotency-Key under attack: retries, reuse, races, crashes, scopes — SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from starlette.requests import Request

from mpesa_bridge.api.idempotency import _request_hash
from mpesa_bridge.config import Settings
from mpesa_bridge.core.errors import Conflict
from mpesa_bridge.core.payments.validation import PaymentCreate
from mpesa_bridge.core.ports import IdempotencyBinding
from mpesa_bridge.core.projects import Mode
from mpesa_bridge.core.projects import Tenant as Scope
from mpesa_bridge.core.sealing import idempotency_secret_context
from mpesa_bridge.storage import idempotency, tables
from tests.fixtures.bridge import InProcessBridge, Tenant, make_settings, wait_until

PAYMENT = {"phone": "0708374149", "amount": 100, "account_reference": "INV001", "description": "Test"}
REPLAYED = "Idempotent-Replayed"


@pytest.fixture
def bridge_settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(db_url, tmp_path, rate_limit_enabled=False)


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


async def create(
    bridge: InProcessBridge, tenant: Tenant, key: str | None, payload: dict[str, Any] = PAYMENT, mode: str = "test"
) -> httpx.Response:
    headers = {**tenant.headers(mode), "Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return await bridge.client.post("/v1/payments", content=body_of(payload), headers=headers)


async def payment_ids(bridge: InProcessBridge, tenant: Tenant) -> list[str]:
    response = await bridge.client.get("/v1/payments", headers=tenant.headers())
    return [p["id"] for p in response.json()["data"]]


async def keys_of(bridge: InProcessBridge, secret: str) -> list[dict[str, Any]]:
    response = await bridge.client.get("/v1/keys", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def is_replay(response: httpx.Response) -> bool:
    return response.headers.get(REPLAYED) == "true"


async def test_a_retry_gets_the_same_bytes_and_prompts_once(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()

    first = await create(bridge, shop, "order-42")
    await bridge.wait_status(shop, first.json()["id"], "succeeded")  # the payment moved on since
    second = await create(bridge, shop, "order-42")
    third = await create(bridge, shop, "order-42")

    assert first.status_code == 201 and not is_replay(first)
    assert second.status_code == 201 and is_replay(second)
    assert second.content == first.content and third.content == first.content
    assert second.headers["content-type"] == "application/json"
    assert len(bridge.simulator.pushes()) == 1
    assert await payment_ids(bridge, shop) == [first.json()["id"]]
    # The control: without the key, the same request is a new payment.
    assert (await create(bridge, shop, None)).status_code == 201
    assert len(bridge.simulator.pushes()) == 2


async def test_the_same_key_with_another_request_is_422(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    first = await create(bridge, shop, "order-42")

    other_amount = await create(bridge, shop, "order-42", {**PAYMENT, "amount": 101})
    # The same key on the other idempotent route (same project and mode) is another request too:
    # it must neither rotate the key nor hand back the payment.
    rotation = await bridge.client.post(
        "/v1/keys/rotate", json={}, headers={**shop.headers(), "Idempotency-Key": "order-42"}
    )

    for response in (other_amount, rotation):
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "idempotency_key_reused"
        assert not is_replay(response)
    assert first.status_code == 201
    assert len(bridge.simulator.pushes()) == 1
    assert len(await keys_of(bridge, shop.test_key)) == 1


async def test_the_same_key_while_the_first_request_runs_is_409(
    bridge: InProcessBridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = await bridge.create_project()
    entered, release = asyncio.Event(), asyncio.Event()
    create_payment = bridge.runtime.payments.create

    async def held_create(tenant: Scope, request: PaymentCreate, binding: IdempotencyBinding | None) -> Any:
        if not entered.is_set():  # only the first request is held inside its handler
            entered.set()
            await release.wait()
        return await create_payment(tenant, request, binding)

    monkeypatch.setattr(bridge.runtime.payments, "create", held_create)
    first_task = asyncio.create_task(create(bridge, shop, "order-42"))
    await asyncio.wait_for(entered.wait(), timeout=5)

    concurrent = await asyncio.wait_for(create(bridge, shop, "order-42"), timeout=5)
    concurrent_other = await asyncio.wait_for(create(bridge, shop, "order-42", {**PAYMENT, "amount": 101}), timeout=5)
    release.set()
    first = await first_task
    after = await create(bridge, shop, "order-42")

    assert concurrent.status_code == 409, concurrent.text
    assert concurrent.json()["error"]["code"] == "idempotency_key_in_use"
    assert concurrent_other.status_code == 422
    assert first.status_code == 201 and not is_replay(first)
    assert after.status_code == 201 and is_replay(after) and after.content == first.content
    assert len(bridge.simulator.pushes()) == 1


async def test_simultaneous_retries_prompt_once(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()

    responses = await asyncio.gather(*(create(bridge, shop, "order-42") for _ in range(10)))

    originals = [r for r in responses if r.status_code == 201 and not is_replay(r)]
    assert len(originals) == 1, [(r.status_code, r.text) for r in responses]
    for response in responses:
        if response is originals[0]:
            continue
        if response.status_code == 409:
            assert response.json()["error"]["code"] == "idempotency_key_in_use"
        else:
            assert is_replay(response) and response.content == originals[0].content, response.text
    assert len(bridge.simulator.pushes()) == 1
    assert len(await payment_ids(bridge, shop)) == 1


async def test_keys_are_scoped_to_project_and_mode(bridge: InProcessBridge) -> None:
    shop, rival = await bridge.create_project("Shop"), await bridge.create_project("Rival")

    mine = await create(bridge, shop, "order-42")
    # Another phone: the simulator refuses a second push to a phone whose prompt is still open
    # (subscriber_locked), and whether the first is answered yet is a race this test is not about.
    theirs = await create(bridge, rival, "order-42", {**PAYMENT, "phone": "0708374150"})
    live = await create(bridge, shop, "order-42", mode="live")  # live mode has no Daraja settings here
    mine_again = await create(bridge, shop, "order-42")

    assert mine.status_code == 201 and theirs.status_code == 201
    assert not is_replay(theirs) and theirs.json()["id"] != mine.json()["id"]
    assert live.status_code == 400 and not is_replay(live)
    assert live.json()["error"]["code"] == "mode_not_configured"
    assert is_replay(mine_again) and mine_again.content == mine.content
    assert len(bridge.simulator.pushes()) == 2
    assert await payment_ids(bridge, rival) == [theirs.json()["id"]]


async def test_an_error_answer_from_the_handler_is_replayed(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()

    first = await create(bridge, shop, "live-1", mode="live")
    second = await create(bridge, shop, "live-1", mode="live")

    assert first.status_code == 400 and first.json()["error"]["code"] == "mode_not_configured"
    assert second.status_code == 400 and is_replay(second)
    assert second.content == first.content  # the very same answer, request id included


async def test_a_validation_error_answer_is_replayed(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    bad = {**PAYMENT, "phone": "020123456"}

    first = await create(bridge, shop, "order-43", bad)
    second = await create(bridge, shop, "order-43", bad)

    assert first.status_code == 400 and first.json()["error"]["code"] == "invalid_phone"
    assert second.status_code == 400 and is_replay(second)
    assert second.content == first.content
    assert (await create(bridge, shop, "order-43")).status_code == 422


async def test_a_key_can_be_reused_after_its_ttl(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    ttl = bridge.settings.idempotency_ttl
    first = await create(bridge, shop, "order-42")
    # The simulated customer answers the first prompt before the second push (Daraja refuses a
    # push to a phone with one in progress: subscriber_locked).
    await wait_until(lambda: all(push.decided for push in bridge.simulator.pushes()))

    bridge.clock.advance(ttl - 1)
    too_early = await create(bridge, shop, "order-42", {**PAYMENT, "amount": 200})
    bridge.clock.advance(2)
    reused = await create(bridge, shop, "order-42", {**PAYMENT, "amount": 200})
    replayed = await create(bridge, shop, "order-42", {**PAYMENT, "amount": 200})

    assert first.status_code == 201
    assert too_early.status_code == 422
    assert reused.status_code == 201 and not is_replay(reused)
    assert reused.json()["id"] != first.json()["id"] and reused.json()["amount"] == 200
    assert is_replay(replayed) and replayed.content == reused.content
    assert len(bridge.simulator.pushes()) == 2


async def test_a_crashed_first_request_can_be_taken_over_after_the_lock_timeout(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    lock_timeout = bridge.settings.idempotency_lock_timeout
    scope = f"{shop.project_id}:test"
    # What a process that died inside the handler leaves behind: a claim that never completes.
    request = Request({"type": "http", "method": "POST", "path": "/v1/payments", "query_string": b"", "headers": []})
    crashed = await idempotency.claim(
        bridge.db,
        scope,
        "order-42",
        _request_hash(request, body_of(PAYMENT)),
        bridge.clock.now(),
        ttl=bridge.settings.idempotency_ttl,
        lock_timeout=lock_timeout,
    )
    assert crashed.outcome == "new"

    at_once = await create(bridge, shop, "order-42")
    bridge.clock.advance(lock_timeout - 1)
    still = await create(bridge, shop, "order-42")
    bridge.clock.advance(2)
    taken_over = await create(bridge, shop, "order-42")
    replayed = await create(bridge, shop, "order-42")

    for response in (at_once, still):
        assert response.status_code == 409, response.text
        assert response.json()["error"]["code"] == "idempotency_key_in_use"
    assert taken_over.status_code == 201 and not is_replay(taken_over)
    assert is_replay(replayed) and replayed.content == taken_over.content
    assert len(bridge.simulator.pushes()) == 1


def crashed_request(bridge: InProcessBridge, tenant: Tenant, key: str) -> Request:
    headers = [(b"idempotency-key", key.encode())]
    return Request({"type": "http", "method": "POST", "path": "/v1/payments", "query_string": b"", "headers": headers})


async def claim_as_a_request_would(bridge: InProcessBridge, tenant: Tenant, key: str) -> idempotency.Claim:
    return await idempotency.claim(
        bridge.db,
        f"{tenant.project_id}:test",
        key,
        _request_hash(crashed_request(bridge, tenant, key), body_of(PAYMENT)),
        bridge.clock.now(),
        ttl=bridge.settings.idempotency_ttl,
        lock_timeout=bridge.settings.idempotency_lock_timeout,
    )


def binding_of(bridge: InProcessBridge, tenant: Tenant, key: str, claim: idempotency.Claim) -> IdempotencyBinding:
    scope = f"{tenant.project_id}:test"
    box = bridge.runtime.box
    return IdempotencyBinding(
        scope, key, claim.owner or "", lambda text: box.seal(text, context=idempotency_secret_context(scope, key))
    )


def payment_request() -> PaymentCreate:
    return PaymentCreate(phone="254708374149", amount=100, account_reference="INV001", description="Test", metadata={})


async def test_a_request_that_died_after_creating_its_payment_is_answered_with_it_never_rerun(
    bridge: InProcessBridge,
) -> None:
    """The process died after the payment was committed (and pushed) but before the answer was
    stored: every retry answers with that payment; none creates another or prompts again."""
    shop = await bridge.create_project()
    claim = await claim_as_a_request_would(bridge, shop, "order-42")
    scope = Scope(shop.project_id, Mode.TEST)
    created = await bridge.runtime.payments.create(
        scope, payment_request(), binding_of(bridge, shop, "order-42", claim)
    )
    # ... and here the process died: nothing completed the key.

    at_once = await create(bridge, shop, "order-42")
    bridge.clock.advance(bridge.settings.idempotency_lock_timeout + 1)
    recovered = await create(bridge, shop, "order-42")
    replayed = await create(bridge, shop, "order-42")

    assert at_once.status_code == 409 and at_once.json()["error"]["code"] == "idempotency_key_in_use"
    assert recovered.status_code == 201 and is_replay(recovered), recovered.text
    assert recovered.json()["id"] == created.id
    assert recovered.json()["client_secret"] == created.client_secret  # as the lost answer had it
    assert is_replay(replayed) and replayed.content == recovered.content
    assert await payment_ids(bridge, shop) == [created.id]
    assert len(bridge.simulator.pushes()) == 1


async def test_a_bound_request_that_ended_without_an_answer_is_recovered_at_once(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    claim = await claim_as_a_request_would(bridge, shop, "order-42")
    scope = Scope(shop.project_id, Mode.TEST)
    created = await bridge.runtime.payments.create(
        scope, payment_request(), binding_of(bridge, shop, "order-42", claim)
    )
    # The request ended with a 5xx after the payment existed (e.g. the database failed while
    # recording Daraja's answer): the key is released, but it stays bound.
    await idempotency.release(bridge.db, f"{shop.project_id}:test", "order-42", claim.owner or "")

    retry = await create(bridge, shop, "order-42")

    assert retry.status_code == 201 and is_replay(retry) and retry.json()["id"] == created.id
    assert len(bridge.simulator.pushes()) == 1


async def test_a_request_that_lost_its_claim_creates_nothing(bridge: InProcessBridge) -> None:
    """A first request slower than the lock timeout, taken over before it created its payment,
    must not create a second one when it wakes up."""
    shop = await bridge.create_project()
    slow = await claim_as_a_request_would(bridge, shop, "order-42")
    bridge.clock.advance(bridge.settings.idempotency_lock_timeout + 1)
    taken_over = await create(bridge, shop, "order-42")
    scope = Scope(shop.project_id, Mode.TEST)

    with pytest.raises(Conflict) as refused:
        await bridge.runtime.payments.create(scope, payment_request(), binding_of(bridge, shop, "order-42", slow))

    assert refused.value.code == "idempotency_key_in_use"
    assert taken_over.status_code == 201
    assert await payment_ids(bridge, shop) == [taken_over.json()["id"]]
    assert len(bridge.simulator.pushes()) == 1


@pytest.mark.parametrize("key", ["", "k" * 256, "tab\tinside", "bell\x07"])
async def test_invalid_keys_are_400_and_nothing_runs(bridge: InProcessBridge, key: str) -> None:
    shop = await bridge.create_project()

    payment = await create(bridge, shop, key)
    rotation = await bridge.client.post("/v1/keys/rotate", json={}, headers={**shop.headers(), "Idempotency-Key": key})

    for response in (payment, rotation):
        assert response.status_code == 400, response.text
        assert response.json()["error"]["param"] == "Idempotency-Key"
    assert bridge.simulator.pushes() == []
    assert len(await keys_of(bridge, shop.test_key)) == 1
    async with bridge.db.read_engine.connect() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(tables.idempotency_keys))).scalar() == 0


async def test_the_longest_valid_key_is_accepted(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    first = await create(bridge, shop, "k" * 255)
    again = await create(bridge, shop, "k" * 255)
    assert first.status_code == 201 and is_replay(again) and again.content == first.content


async def test_an_idempotent_rotation_issues_one_key(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    headers = {**shop.headers(), "Idempotency-Key": "rotate-1"}

    first = await bridge.client.post("/v1/keys/rotate", json={"grace_period_seconds": 600}, headers=headers)
    second = await bridge.client.post("/v1/keys/rotate", json={"grace_period_seconds": 600}, headers=headers)

    assert first.status_code == 201 and not is_replay(first)
    assert second.status_code == 201 and is_replay(second)
    assert second.content == first.content
    new_key = first.json()["secret_key"]
    keys = await keys_of(bridge, new_key)
    assert len(keys) == 2
    assert [k["id"] for k in keys if k["expires_at"] is None] == [first.json()["id"]]
    # The control: a rotation with another key does issue another one.
    third = await bridge.client.post("/v1/keys/rotate", json={}, headers={**shop.headers(), "Idempotency-Key": "r-2"})
    assert third.status_code == 201 and third.json()["secret_key"] != new_key
    assert len(await keys_of(bridge, new_key)) == 3
