"""The attention queue in-process, on SQLite and PostgreSQL: flagged payments with their evidence
and raw callbacks, flagged callbacks; viewers read, developers act (ask Daraja, mark reviewed);
CSRF; projects kept apart; a review clears the flag and writes its evidence row together."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from mpesa_bridge.core.errors import BridgeError
from mpesa_bridge.core.ids import new_id
from mpesa_bridge.core.payments.entity import InboundCallback
from mpesa_bridge.core.payments.outcomes import flag_payment
from mpesa_bridge.core.payments.review import AlreadyReviewed, ReviewService
from mpesa_bridge.core.projects import Mode
from mpesa_bridge.core.projects import Tenant as CoreTenant
from mpesa_bridge.storage.people import PeopleStorage
from tests.fixtures.bridge import InProcessBridge, Tenant, wait_until
from tests.fixtures.dashboard import add_account, browser_client, csrf_in, post_form_async, sign_in_async


@dataclass
class Shop:
    tenant: Tenant
    emails: dict[str, str]

    @property
    def core(self) -> CoreTenant:
        return CoreTenant(self.tenant.project_id, Mode.TEST)


async def shop(bridge: InProcessBridge, name: str) -> Shop:
    tenant = await bridge.create_project(name)
    emails = {}
    for role in ("owner", "developer", "viewer"):
        emails[role] = f"{role}-{name.lower()}@example.com"
        await add_account(bridge.runtime, emails[role], project_id=tenant.project_id, role=role)
    return Shop(tenant, emails)


@contextlib.asynccontextmanager
async def person(bridge: InProcessBridge, email: str) -> AsyncIterator[httpx.AsyncClient]:
    async with browser_client(bridge.app) as client:
        response = await sign_in_async(client, email)
        assert response.status_code == 303, response.text
        yield client


async def flagged_payment(bridge: InProcessBridge, shop_: Shop, reason: str = "late_success") -> str:
    """A paid payment the evidence rules flagged (`flag_payment`, as they do), with a contradicting
    callback the inbox flagged."""
    payment = await bridge.pay(shop_.tenant, phone="0708374149")
    await bridge.wait_status(shop_.tenant, payment["id"], "succeeded")
    now = bridge.clock.now()
    async with bridge.db.write() as uow:
        found = await uow.payments.lock(payment["id"])
        assert found is not None
        flag_payment(found, reason, now)
        await uow.payments.save(found)
        body = {"Body": {"stkCallback": {"ResultCode": 1032, "ResultDesc": "Cancelled", "PhoneNumber": 254708374149}}}
        callback = InboundCallback(
            id=new_id("cb", now),
            kind="stk",
            received_at=now,
            body=json.dumps(body).encode(),
            token_hash=found.callback_token_hash,
            state="flagged",
            flag_reason="contradicts_applied",
            payment_id=found.id,
            processed_at=now,
        )
        await uow.callbacks.add_many([callback])
    return str(payment["id"])


async def payment_row(bridge: InProcessBridge, payment_id: str) -> tuple[bool, list[str]]:
    async with bridge.db.read() as uow:
        payment = await uow.payments.find(payment_id)
        evidence = await uow.evidence.for_payment(payment_id)
    assert payment is not None
    return payment.needs_attention, [e.source for e in evidence]


async def test_a_viewer_reads_the_queue_with_what_the_bridge_knows_but_cannot_act(bridge: InProcessBridge) -> None:
    a = await shop(bridge, "Alpha")
    payment_id = await flagged_payment(bridge, a)
    async with person(bridge, a.emails["viewer"]) as viewer:
        page = await viewer.get("/dashboard/attention")
        assert page.status_code == 200
        assert f'data-attention-payment="{payment_id}"' in page.text and "late_success" in page.text
        assert "contradicts_applied" in page.text and "data-attention-callback" in page.text
        assert "ResultCode" in page.text  # the raw callback…
        assert "254708374149" not in page.text and "708374149" not in page.text  # …with the phone masked
        assert "data-review" not in page.text and "data-ask" not in page.text
        viewer.cookies.set("mb_lang", "sw", domain="bridge.test", path="/")
        swahili = await viewer.get("/dashboard/attention")
        assert "Malipo yanayohitaji uangalizi" in swahili.text and "callback zinazopingana" not in swahili.text
        token = csrf_in(page.text)
        for path in (
            f"/dashboard/attention/payments/{payment_id}/review",
            f"/dashboard/attention/payments/{payment_id}/refresh",
        ):
            refused = await viewer.post(path, data={"csrf_token": token, "note": "looked"})
            assert refused.status_code == 403
    assert (await payment_row(bridge, payment_id))[0] is True


async def test_a_review_without_its_csrf_token_is_refused(bridge: InProcessBridge) -> None:
    a = await shop(bridge, "Alpha")
    payment_id = await flagged_payment(bridge, a)
    async with person(bridge, a.emails["developer"]) as dev:
        for data in ({"note": "x"}, {"note": "x", "csrf_token": "y" * 43}):
            refused = await dev.post(f"/dashboard/attention/payments/{payment_id}/review", data=data)
            assert refused.status_code == 403
    assert await payment_row(bridge, payment_id) == (True, ["callback"])


async def test_mark_reviewed_clears_the_flag_with_an_evidence_row_and_the_history_stays(
    bridge: InProcessBridge,
) -> None:
    a = await shop(bridge, "Alpha")
    payment_id = await flagged_payment(bridge, a)
    async with person(bridge, a.emails["developer"]) as dev:
        empty = await post_form_async(dev, f"/dashboard/attention/payments/{payment_id}/review", {"note": "  "})
        assert empty.status_code == 400 and 'aria-invalid="true"' in empty.text
        done = await post_form_async(
            dev, f"/dashboard/attention/payments/{payment_id}/review", {"note": "Receipt seen in the M-Pesa statement"}
        )
        assert done.status_code == 303
        page = (await dev.get("/dashboard/attention")).text
        assert f'data-attention-payment="{payment_id}"' not in page
        again = await post_form_async(dev, f"/dashboard/attention/payments/{payment_id}/review", {"note": "again"})
        assert again.status_code == 409
    async with bridge.db.read() as uow:
        payment = await uow.payments.find(payment_id)
        evidence = await uow.evidence.for_payment(payment_id)
    assert payment is not None and not payment.needs_attention and payment.attention_reason is None
    review = [e for e in evidence if e.source == "review"]
    assert len(review) == 1 and review[0].verdict == "reviewed" and review[0].result_desc == "late_success"
    assert review[0].note == f"{a.emails['developer']}: Receipt seen in the M-Pesa statement"
    api = await bridge.get(a.tenant, payment_id)
    assert api["needs_attention"] is False and api["status"] == "succeeded"  # the outcome is untouched
    async with PeopleStorage(bridge.db).read() as uow:
        entries = [e for e in await uow.people.audit(a.tenant.project_id, 20) if e.action == "payment.reviewed"]
    assert len(entries) == 1 and entries[0].target == payment_id


async def test_two_reviews_at_once_write_one_evidence_row(bridge: InProcessBridge) -> None:
    a = await shop(bridge, "Alpha")
    payment_id = await flagged_payment(bridge, a)
    reviews = ReviewService(bridge.db, bridge.clock)
    results = await asyncio.gather(
        reviews.review_payment(a.core, payment_id, "first", "one@example.com"),
        reviews.review_payment(a.core, payment_id, "second", "two@example.com"),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["AlreadyReviewed", "Payment"]
    needs, sources = await payment_row(bridge, payment_id)
    assert needs is False and sources.count("review") == 1
    with pytest.raises(AlreadyReviewed):
        await reviews.review_payment(a.core, payment_id, "third", "three@example.com")


async def test_ask_daraja_now_queries_and_records_who_asked(bridge: InProcessBridge) -> None:
    a = await shop(bridge, "Alpha")
    payment_id = await flagged_payment(bridge, a)
    async with person(bridge, a.emails["developer"]) as dev:
        asked = await post_form_async(dev, f"/dashboard/attention/payments/{payment_id}/refresh", {})
        assert asked.status_code == 303 and "notice=asked" in asked.headers["location"]
    _, sources = await payment_row(bridge, payment_id)
    assert "query" in sources
    async with PeopleStorage(bridge.db).read() as uow:
        actions = [e.action for e in await uow.people.audit(a.tenant.project_id, 20)]
    assert "payment.refreshed" in actions


async def test_a_flagged_callback_is_reviewed_and_another_project_sees_nothing_of_it(bridge: InProcessBridge) -> None:
    a, b = await shop(bridge, "Alpha"), await shop(bridge, "Beta")
    payment_id = await flagged_payment(bridge, a)
    async with bridge.db.read() as uow:
        (callback,) = [c for c in await uow.callbacks.for_payment(payment_id) if c.state == "flagged"]
    async with person(bridge, b.emails["developer"]) as dev_b:
        page = (await dev_b.get("/dashboard/attention")).text
        assert payment_id not in page and callback.id not in page and "No payment needs attention" in page
        for path in (
            f"/dashboard/attention/payments/{payment_id}/review",
            f"/dashboard/attention/callbacks/{callback.id}/review",
            f"/dashboard/attention/payments/{payment_id}/refresh",
        ):
            assert (await post_form_async(dev_b, path, {"note": "mine?"})).status_code == 404
    assert await payment_row(bridge, payment_id) == (True, ["callback"])
    async with person(bridge, a.emails["developer"]) as dev:
        done = await post_form_async(dev, f"/dashboard/attention/callbacks/{callback.id}/review", {"note": "duplicate"})
        assert done.status_code == 303
        assert f'data-attention-callback="{callback.id}"' not in (await dev.get("/dashboard/attention")).text
    async with bridge.db.read() as uow:
        (reviewed,) = [c for c in await uow.callbacks.for_payment(payment_id) if c.id == callback.id]
        evidence = await uow.evidence.for_payment(payment_id)
    assert reviewed.state == "reviewed" and reviewed.flag_reason == "contradicts_applied"
    (row,) = [e for e in evidence if e.source == "review"]
    assert row.callback_id == callback.id and row.note is not None and row.note.endswith("duplicate")
    with pytest.raises(BridgeError):
        await ReviewService(bridge.db, bridge.clock).review_callback(a.core, callback.id, "again", "x@example.com")


async def test_a_flagged_payout_result_is_in_its_projects_queue_only(bridge: InProcessBridge) -> None:
    a, b = await shop(bridge, "Alpha"), await shop(bridge, "Beta")
    headers = {**a.tenant.headers(), "Idempotency-Key": "attention-payout"}
    made = await bridge.client.post("/v1/payouts", json={"phone": "0708374149", "amount": 100}, headers=headers)
    assert made.status_code == 201, made.text

    async def delivered() -> list[object] | None:
        found = [r for r in bridge.simulator.results() if "/b2c_result/" in r.delivery.url and r.delivered]
        return found or None

    (result,) = await bridge_wait(delivered)
    # Daraja's Result for that payout, its amount changed on the way: kept, flagged, changes nothing.
    body = json.loads(json.dumps(result.delivery.body))
    for parameter in body["Result"]["ResultParameters"]["ResultParameter"]:
        if parameter["Key"] == "TransactionAmount":
            parameter["Value"] = 99_999
    path = httpx.URL(result.delivery.url).path
    assert (await bridge.client.post(path, json=body)).status_code == 200

    async def flagged() -> InboundCallback | None:
        found = await ReviewService(bridge.db, bridge.clock).flagged_callbacks(a.core)
        return found[0] if found else None

    callback = await bridge_wait(flagged)
    assert callback.kind == "b2c_result" and callback.flag_reason == "amount_mismatch"
    assert not await ReviewService(bridge.db, bridge.clock).flagged_callbacks(b.core)
    async with person(bridge, b.emails["developer"]) as dev_b:
        assert callback.id not in (await dev_b.get("/dashboard/attention")).text
        refused = await post_form_async(dev_b, f"/dashboard/attention/callbacks/{callback.id}/review", {"note": "?"})
        assert refused.status_code == 404
    async with person(bridge, a.emails["developer"]) as dev:
        assert f'data-attention-callback="{callback.id}"' in (await dev.get("/dashboard/attention")).text
        done = await post_form_async(dev, f"/dashboard/attention/callbacks/{callback.id}/review", {"note": "forged"})
        assert done.status_code == 303
    # Out of the queue, with no evidence row: the callback's subject is a payout, not a payment.
    assert not await ReviewService(bridge.db, bridge.clock).flagged_callbacks(a.core)


async def bridge_wait(predicate: Any) -> Any:
    return await wait_until(predicate, timeout=10)
