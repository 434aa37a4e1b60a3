"""Checkout sessions over HTTP (in-process bridge, simulator as Daraja) — on SQLite and PostgreSQL.

What a secret key may do (open, read, list, expire) and what a client secret may do (read its own
session, pay it, try again after a failure) and may not (read another session or any payment,
change a fixed amount, leave the range, pay a paid session, pay twice at once)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from mpesa_bridge.config import Settings
from mpesa_bridge.core.clock import ManualClock
from mpesa_bridge.storage import tables
from tests.fixtures.bridge import InProcessBridge, Tenant, make_settings, wait_until


@pytest.fixture
def bridge_settings(db_url: str, tmp_path) -> Settings:  # type: ignore[no-untyped-def]
    # A late callback comes 2 s after the push: time for a retry to complete the session first.
    return make_settings(db_url, tmp_path, reconcile_max_age=600.0, simulator_late_callback_delay=2.0)


@pytest.fixture
def simulator_overrides(clock: ManualClock) -> dict[str, Any]:
    return {"now": clock.now}


async def open_session(bridge: InProcessBridge, shop: Tenant, **body: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {"amount": 1500, "reference": "ORDER42", "metadata": {"cart": "c-9"}}
    payload.update(body)
    response = await bridge.client.post("/v1/checkout_sessions", json=payload, headers=shop.headers())
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def as_client(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def pay(
    bridge: InProcessBridge, session: dict[str, Any], phone: str = "0708374149", **body: Any
) -> httpx.Response:
    return await bridge.client.post(
        f"/v1/checkout_sessions/{session['id']}/pay",
        json={"phone": phone, **body},
        headers=as_client(session["client_secret"]),
    )


async def read(bridge: InProcessBridge, shop: Tenant, session_id: str) -> dict[str, Any]:
    response = await bridge.client.get(f"/v1/checkout_sessions/{session_id}", headers=shop.headers())
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


async def wait_session(bridge: InProcessBridge, shop: Tenant, session_id: str, check: Any) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        session = await read(bridge, shop, session_id)
        return session if check(session) else None

    result: dict[str, Any] = await wait_until(reached)
    return result


async def session_events(bridge: InProcessBridge, shop: Tenant, session_id: str) -> list[str]:
    response = await bridge.client.get("/v1/events", params={"subject": session_id}, headers=shop.headers())
    assert response.status_code == 200, response.text
    return [e["type"] for e in response.json()["data"]]


async def session_payments(bridge: InProcessBridge, session_id: str) -> list[str]:
    c = tables.payments.c
    async with bridge.db.read() as uow:
        rows = await uow.connection.execute(sa.select(c.id).where(c.checkout_session_id == session_id))
        return list(rows.scalars())


async def test_open_read_list_and_expire(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    created = await open_session(bridge, shop, description="Order 42", success_url="https://shop.example/ok")

    assert created["id"].startswith("cs_") and created["object"] == "checkout_session"
    assert created["client_secret"].startswith(created["id"] + "_secret_")
    assert created["status"] == "open" and created["amount"] == 1500 and created["amount_min"] is None
    assert created["url"] == f"http://bridge.test/pay/{created['id']}"
    assert created["metadata"] == {"cart": "c-9"} and created["payment"] is None
    read_back = await read(bridge, shop, created["id"])
    assert "client_secret" not in read_back  # shown once
    assert read_back["success_url"] == "https://shop.example/ok"

    second = await open_session(bridge, shop, amount=None, amount_min=50, amount_max=500)
    page = (await bridge.client.get("/v1/checkout_sessions", params={"limit": 1}, headers=shop.headers())).json()
    assert [s["id"] for s in page["data"]] == [second["id"]] and page["has_more"]
    rest = await bridge.client.get(
        "/v1/checkout_sessions", params={"starting_after": page["next_cursor"]}, headers=shop.headers()
    )
    assert [s["id"] for s in rest.json()["data"]] == [created["id"]] and not rest.json()["has_more"]

    expired = await bridge.client.post(f"/v1/checkout_sessions/{created['id']}/expire", headers=shop.headers())
    assert expired.status_code == 200, expired.text
    assert expired.json()["status"] == "expired"
    again = await bridge.client.post(f"/v1/checkout_sessions/{created['id']}/expire", headers=shop.headers())
    assert again.status_code == 409 and again.json()["error"]["code"] == "checkout_session_not_open"
    assert await session_events(bridge, shop, created["id"]) == ["checkout_session.expired"]
    refused = await pay(bridge, created)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "checkout_session_expired"
    assert bridge.simulator.pushes() == []


async def test_an_idempotency_key_opens_one_session(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    body = {"amount": 100, "reference": "IDEM"}
    headers = {**shop.headers(), "Idempotency-Key": "k-1"}
    first = await bridge.client.post("/v1/checkout_sessions", json=body, headers=headers)
    second = await bridge.client.post("/v1/checkout_sessions", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json() and second.headers["Idempotent-Replayed"] == "true"
    listed = (await bridge.client.get("/v1/checkout_sessions", headers=shop.headers())).json()["data"]
    assert [s["id"] for s in listed] == [first.json()["id"]]


async def test_a_client_secret_opens_its_own_session_and_nothing_else(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    mine, other = await open_session(bridge, shop), await open_session(bridge, shop)
    payment = await bridge.pay(shop)
    secret = mine["client_secret"]

    own = await bridge.client.get(f"/v1/checkout_sessions/{mine['id']}", params={"client_secret": secret})
    assert own.status_code == 200, own.text
    assert own.json()["id"] == mine["id"] and "metadata" not in own.json()  # the merchant's data stays put
    by_header = await bridge.client.get(f"/v1/checkout_sessions/{mine['id']}", headers=as_client(secret))
    assert by_header.status_code == 200

    another = await bridge.client.get(f"/v1/checkout_sessions/{other['id']}", headers=as_client(secret))
    assert another.status_code == 404 and "c-9" not in another.text
    assert (await pay(bridge, {**other, "client_secret": secret})).status_code == 404
    assert (
        await bridge.client.post(f"/v1/checkout_sessions/{other['id']}/expire", headers=as_client(secret))
    ).status_code == 401
    assert (await bridge.client.get("/v1/checkout_sessions", headers=as_client(secret))).status_code == 401
    for url in (f"/v1/payments/{payment['id']}", "/v1/payments", f"/v1/payments/{payment['id']}/evidence"):
        assert (await bridge.client.get(url, headers=as_client(secret))).status_code == 401, url
    events = await bridge.client.get(f"/v1/payments/{payment['id']}/events", params={"client_secret": secret})
    assert events.status_code == 401
    # A wrong secret for the right id, a payment's client secret, none at all: 401, the same each time.
    forged = secret[:-4] + ("aaaa" if not secret.endswith("aaaa") else "bbbb")
    for headers in (as_client(forged), as_client(payment["client_secret"]), {}):
        refused = await bridge.client.get(f"/v1/checkout_sessions/{mine['id']}", headers=headers)
        assert refused.status_code == 401, refused.text
        assert (
            await bridge.client.post(
                f"/v1/checkout_sessions/{mine['id']}/pay", json={"phone": "0708374149"}, headers=headers
            )
        ).status_code == 401
    # A secret key of another project reads nothing either.
    intruder = await bridge.create_project("Intruder")
    assert (
        await bridge.client.get(f"/v1/checkout_sessions/{mine['id']}", headers=intruder.headers())
    ).status_code == 404
    assert bridge.simulator.pushes() == [bridge.simulator.push(payment["checkout_request_id"])]


async def test_the_amount_is_fixed_or_within_the_range(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    fixed = await open_session(bridge, shop, amount=1500)
    changed = await pay(bridge, fixed, amount=1)
    assert changed.status_code == 400
    assert (changed.json()["error"]["code"], changed.json()["error"]["param"]) == ("amount_fixed", "amount")

    ranged = await open_session(bridge, shop, amount=None, amount_min=50, amount_max=500)
    for amount, code in (
        (49, "amount_out_of_range"),
        (501, "amount_out_of_range"),
        (None, "parameter_missing"),
        ("100", "invalid_amount"),
    ):
        body = {} if amount is None else {"amount": amount}
        refused = await pay(bridge, ranged, **body)
        assert refused.status_code == 400, (amount, refused.text)
        assert (refused.json()["error"]["code"], refused.json()["error"]["param"]) == (code, "amount")
    assert bridge.simulator.pushes() == []

    accepted = await pay(bridge, ranged, amount=500)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["payment"]["amount"] == 500
    assert accepted.json()["payment"]["phone"] == "2547****4149"
    done = await wait_session(bridge, shop, ranged["id"], lambda s: s["status"] == "complete")
    assert done["paid_payment_id"] == accepted.json()["payment"]["id"]
    assert [p.amount for p in bridge.simulator.pushes()] == [500]


async def test_a_paid_session_takes_no_further_payment(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    session = await open_session(bridge, shop)
    first = await pay(bridge, session)
    assert first.status_code == 200, first.text
    paid = await wait_session(bridge, shop, session["id"], lambda s: s["status"] == "complete")
    assert paid["payment"]["status"] == "succeeded" and paid["payment"]["mpesa_receipt_number"]
    assert paid["completed_at"] and not paid["payment_in_flight"]

    again = await pay(bridge, session, phone="0711223344")
    assert again.status_code == 409 and again.json()["error"]["code"] == "checkout_session_complete"
    expire = await bridge.client.post(f"/v1/checkout_sessions/{session['id']}/expire", headers=shop.headers())
    assert expire.status_code == 409
    assert len(bridge.simulator.pushes()) == 1
    assert await session_payments(bridge, session["id"]) == [first.json()["payment"]["id"]]
    as_merchant = await bridge.get(shop, first.json()["payment"]["id"])
    assert as_merchant["checkout_session_id"] == session["id"] and as_merchant["amount"] == 1500
    assert as_merchant["account_reference"] == "ORDER42" and as_merchant["metadata"] == {"cart": "c-9"}
    assert await session_events(bridge, shop, session["id"]) == ["checkout_session.completed"]


async def test_two_concurrent_pays_make_one_payment_and_one_prompt(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    sessions = [await open_session(bridge, shop) for _ in range(3)]
    for session in sessions:
        # Two phones racing on one session: the database lets one claim it.
        answers = await asyncio.gather(pay(bridge, session, "0708374149"), pay(bridge, session, "0711223344"))
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200, 409], [a.text for a in answers]
        refused = next(a for a in answers if a.status_code == 409)
        assert refused.json()["error"]["code"] in ("checkout_session_payment_in_progress", "checkout_session_complete")
        assert len(await session_payments(bridge, session["id"])) == 1
        await wait_session(bridge, shop, session["id"], lambda s: s["status"] == "complete")
    assert len(bridge.simulator.pushes()) == 3
    for session in sessions:
        assert await session_events(bridge, shop, session["id"]) == ["checkout_session.completed"]


async def test_a_failed_payment_then_a_retry_completes_the_session_once(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    session = await open_session(bridge, shop)
    first = await pay(bridge, session, "0700000001")  # insufficient funds
    assert first.status_code == 200, first.text
    failed = await wait_session(bridge, shop, session["id"], lambda s: not s["payment_in_flight"])
    assert failed["status"] == "open" and failed["payment"]["status"] == "failed"
    assert failed["payment"]["failure_code"] == "insufficient_funds"

    retry = await pay(bridge, session, "0708374149")
    assert retry.status_code == 200, retry.text
    done = await wait_session(bridge, shop, session["id"], lambda s: s["status"] == "complete")
    assert done["paid_payment_id"] == retry.json()["payment"]["id"] == done["payment"]["id"]
    assert len(await session_payments(bridge, session["id"])) == 2
    assert await session_events(bridge, shop, session["id"]) == ["checkout_session.completed"]
    webhook_event = (
        await bridge.client.get("/v1/events", params={"subject": session["id"]}, headers=shop.headers())
    ).json()["data"][0]
    assert webhook_event["data"]["object"]["status"] == "complete"
    assert webhook_event["data"]["object"]["paid_payment_id"] == done["paid_payment_id"]


async def test_the_pay_answer_shows_an_outcome_applied_before_it_was_sent(
    bridge: InProcessBridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The customer answers (here: not enough money) between the push's answer and the route's reply:
    the reply shows the failed payment beside a session with nothing in flight, never the payment as
    it was when pushed (a widget seeing 'nothing in flight' beside 'pending' showed the form again,
    silently)."""
    shop = await bridge.create_project()
    session = await open_session(bridge, shop)
    pay_now = bridge.runtime.checkout.pay

    async def pay_then_wait_for_the_customer(*args: Any, **kwargs: Any) -> Any:
        payment = await pay_now(*args, **kwargs)
        await wait_session(bridge, shop, session["id"], lambda s: not s["payment_in_flight"])
        return payment  # as it was when pushed: pending

    monkeypatch.setattr(bridge.runtime.checkout, "pay", pay_then_wait_for_the_customer)
    answer = await pay(bridge, session, "0700000001")  # insufficient funds
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["payment_in_flight"] is False and body["status"] == "open"
    assert body["payment"]["status"] == "failed" and body["payment"]["failure_code"] == "insufficient_funds"


async def test_a_second_payment_while_one_is_pending_is_refused(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    session = await open_session(bridge, shop)
    first = await pay(bridge, session, "0700000902")  # pays, but its callback comes late
    assert first.status_code == 200, first.text
    assert first.json()["payment_in_flight"]
    second = await pay(bridge, session, "0708374149")
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "checkout_session_payment_in_progress"
    early = await bridge.client.post(f"/v1/checkout_sessions/{session['id']}/expire", headers=shop.headers())
    assert early.status_code == 409 and early.json()["error"]["code"] == "checkout_session_payment_in_progress"
    await wait_session(bridge, shop, session["id"], lambda s: s["status"] == "complete")
    assert len(bridge.simulator.pushes()) == 1


async def test_a_late_success_on_a_paid_session_is_flagged_never_hidden(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    session = await open_session(bridge, shop)
    first = (await pay(bridge, session, "0700000902")).json()["payment"]  # its callback comes in 2 s
    bridge.clock.advance(601)
    await bridge.runtime.reconciler.run_once()  # our own timeout: expired, the session is free again
    freed = await read(bridge, shop, session["id"])
    assert freed["status"] == "open" and not freed["payment_in_flight"]

    retry = await pay(bridge, session, "0708374149")
    assert retry.status_code == 200, retry.text
    await wait_session(bridge, shop, session["id"], lambda s: s["status"] == "complete")
    late = await bridge.wait_status(shop, first["id"], "succeeded", timeout=10)  # the money moved twice

    assert late["needs_attention"] and late["attention_reason"] == "checkout_session_paid_twice"
    done = await read(bridge, shop, session["id"])
    assert done["paid_payment_id"] == retry.json()["payment"]["id"]
    assert await session_events(bridge, shop, session["id"]) == ["checkout_session.completed"]


async def test_a_session_past_its_time_expires_in_the_maintenance_pass(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    soon = (bridge.clock.now() + timedelta(minutes=5)).isoformat()
    session = await open_session(bridge, shop, expires_at=soon)
    later = await open_session(bridge, shop)
    assert await bridge.runtime.checkout.expire_due() == 0

    bridge.clock.advance(301)
    refused = await pay(bridge, session)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "checkout_session_expired"
    assert await bridge.runtime.checkout.expire_due() == 1

    assert (await read(bridge, shop, session["id"]))["status"] == "expired"
    assert (await read(bridge, shop, later["id"]))["status"] == "open"
    assert await session_events(bridge, shop, session["id"]) == ["checkout_session.expired"]
    assert await bridge.runtime.checkout.expire_due() == 0  # once
    assert bridge.simulator.pushes() == []


BAD_SESSIONS: list[tuple[dict[str, Any], str, str]] = [
    ({"amount": 0}, "amount", "amount_out_of_range"),
    ({"amount": "100"}, "amount", "invalid_amount"),
    ({"amount": 100, "amount_min": 1, "amount_max": 5}, "amount", "amount_conflict"),
    ({"amount": None}, "amount", "parameter_missing"),
    ({"amount": None, "amount_min": 10}, "amount_max", "parameter_missing"),
    ({"amount": None, "amount_min": 10, "amount_max": 5}, "amount_min", "amount_range_invalid"),
    ({"amount": None, "amount_min": 0, "amount_max": 5}, "amount_min", "amount_out_of_range"),
    ({"reference": ""}, "reference", "parameter_missing"),
    ({"reference": "ORDER#42"}, "reference", "invalid_characters"),
    ({"description": "x" * 14}, "description", "too_long"),
    ({"metadata": [1]}, "metadata", "invalid_metadata"),
    ({"expires_at": "tomorrow"}, "expires_at", "invalid_expires_at"),
    ({"expires_at": "2026-01-01T00:00:00"}, "expires_at", "invalid_expires_at"),
    ({"success_url": "javascript:alert(1)"}, "success_url", "invalid_url"),
    ({"cancel_url": 5}, "cancel_url", "invalid_request"),
    ({"surprise": 1}, "surprise", "parameter_unknown"),
]


@pytest.mark.parametrize(("change", "param", "code"), BAD_SESSIONS)
async def test_invalid_sessions_are_400_naming_the_field(
    bridge: InProcessBridge, change: dict[str, Any], param: str, code: str
) -> None:
    shop = await bridge.create_project()
    body: dict[str, Any] = {"amount": 100, "reference": "ORDER42", **change}
    response = await bridge.client.post("/v1/checkout_sessions", json=body, headers=shop.headers())
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param, error
    assert error["code"] == code, error


async def test_expiry_must_be_within_a_day(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    now = bridge.clock.now()
    for at in (now + timedelta(seconds=30), now + timedelta(hours=25)):
        response = await bridge.client.post(
            "/v1/checkout_sessions",
            json={"amount": 100, "reference": "R", "expires_at": at.isoformat()},
            headers=shop.headers(),
        )
        assert response.status_code == 400 and response.json()["error"]["param"] == "expires_at"
    ok = await open_session(bridge, shop, expires_at=(now + timedelta(hours=2)).isoformat().replace("+00:00", "Z"))
    assert ok["expires_at"] == (now + timedelta(hours=2)).isoformat().replace("+00:00", "Z")


async def test_an_invalid_phone_is_400_and_prompts_nothing(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    session = await open_session(bridge, shop)
    for phone in ("020123456", 712345678):
        response = await pay(bridge, session, phone)  # type: ignore[arg-type]
        assert response.status_code == 400 and response.json()["error"]["param"] == "phone"
    missing = await bridge.client.post(
        f"/v1/checkout_sessions/{session['id']}/pay", json={}, headers=as_client(session["client_secret"])
    )
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "phone"
    assert bridge.simulator.pushes() == []
    assert not (await read(bridge, shop, session["id"]))["payment_in_flight"]
