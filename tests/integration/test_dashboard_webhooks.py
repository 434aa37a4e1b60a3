"""The dashboard's webhook pages in-process, on SQLite and PostgreSQL: who may see and act, CSRF,
projects kept apart, resending (one delivery; everything failed since a time, idempotent), the
warning after a day of failures and the single email to the owners — on a manual clock, with a
real receiver on loopback and the real delivery worker."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa

from mpesa_bridge.core.ids import new_id
from mpesa_bridge.core.webhooks.alerts import FailingEndpointAlerts
from mpesa_bridge.core.webhooks.entity import DeliveryStatus, WebhookAttempt
from mpesa_bridge.storage import tables
from mpesa_bridge.storage.people import PeopleStorage
from mpesa_bridge.storage.webhooks import WebhookStorage
from tests.fixtures.bridge import InProcessBridge, Tenant
from tests.fixtures.dashboard import add_account, browser_client, csrf_in, post_form_async, sign_in_async
from tests.fixtures.receiver import FAIL, OK, Receiver, add_events, webhook_worker

HOUR = 3600.0
NAIROBI = ZoneInfo("Africa/Nairobi")


@dataclass
class Shop:
    tenant: Tenant
    emails: dict[str, str]


class RecordingMailer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    async def send(self, to: str, subject: str, body: str) -> None:
        self.sent.append((to, subject, body))


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as running:
        yield running


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


async def add_endpoint(client: httpx.AsyncClient, url: str) -> str:
    response = await post_form_async(client, "/dashboard/webhooks", {"url": url, "events": "*"})
    assert response.status_code == 200, response.text
    assert re.search(r"whsec_[A-Za-z0-9+/=_-]+", response.text), "the secret is shown once"
    found = re.search(r'href="/dashboard/webhooks/(we_[^"]+)"', response.text)
    assert found
    return found.group(1)


async def deliveries(bridge: InProcessBridge, endpoint_id: str) -> list[Any]:
    """The endpoint's deliveries of payment events (not of `endpoint.disabled`), in order."""
    async with bridge.db.read() as uow:
        d = tables.webhook_deliveries.c
        stmt = sa.select(tables.webhook_deliveries).where(d.endpoint_id == endpoint_id, d.subject_id.is_not(None))
        stmt = stmt.order_by(d.id)
        return list((await uow.connection.execute(stmt)).mappings().all())


def local_input(at: datetime) -> str:
    return at.astimezone(NAIROBI).strftime("%Y-%m-%dT%H:%M")


async def test_a_viewer_cannot_reach_the_webhook_pages_and_a_developer_can(bridge: InProcessBridge) -> None:
    a = await shop(bridge, "Alpha")
    async with person(bridge, a.emails["viewer"]) as viewer, person(bridge, a.emails["developer"]) as dev:
        assert (await viewer.get("/dashboard/webhooks")).status_code == 403
        assert (await viewer.get("/dashboard/webhooks/deliveries")).status_code == 403
        token = csrf_in((await viewer.get("/dashboard/account")).text)
        refused = await viewer.post("/dashboard/webhooks", data={"csrf_token": token, "url": "http://127.0.0.1:9/x"})
        assert refused.status_code == 403
        assert "Webhooks" not in (await viewer.get("/dashboard/")).text.split("<main")[0].split("nav")[1]
        page = await dev.get("/dashboard/webhooks")
        assert page.status_code == 200 and "No webhook endpoints yet" in page.text
        dev.cookies.set("mb_lang", "sw", domain="bridge.test", path="/")
        swahili = await dev.get("/dashboard/webhooks")
        assert "Bado hakuna anwani ya webhook" in swahili.text and "Ongeza anwani" in swahili.text
    async with bridge.db.read() as uow:
        assert (
            await uow.connection.execute(sa.select(sa.func.count()).select_from(tables.webhook_endpoints))
        ).scalar() == 0


async def test_a_form_without_its_csrf_token_or_with_a_wrong_one_is_refused(bridge: InProcessBridge) -> None:
    a = await shop(bridge, "Alpha")
    async with person(bridge, a.emails["developer"]) as dev:
        missing = await dev.post("/dashboard/webhooks", data={"url": "http://127.0.0.1:9/x"})
        wrong = await dev.post("/dashboard/webhooks", data={"url": "http://127.0.0.1:9/x", "csrf_token": "x" * 43})
        assert missing.status_code == wrong.status_code == 403
        resend = await dev.post("/dashboard/webhooks/resend", data={"since": "2026-01-01T00:00"})
        assert resend.status_code == 403


async def test_an_endpoint_is_added_edited_disabled_enabled_rotated_and_deleted_with_an_audit_trail(
    bridge: InProcessBridge, receiver: Receiver
) -> None:
    a = await shop(bridge, "Alpha")
    async with person(bridge, a.emails["developer"]) as dev:
        endpoint_id = await add_endpoint(dev, f"{receiver.url}/hooks")
        page = await dev.get(f"/dashboard/webhooks/{endpoint_id}")
        assert page.status_code == 200 and "whsec_" not in page.text  # shown once, never again
        edit = {"url": f"{receiver.url}/v2", "description": "orders", "events": "payment.succeeded"}
        saved = await post_form_async(dev, f"/dashboard/webhooks/{endpoint_id}", edit)
        assert saved.status_code == 303
        bad = await post_form_async(dev, f"/dashboard/webhooks/{endpoint_id}", {"url": "ftp://nope", "events": "*"})
        assert bad.status_code == 400 and 'aria-invalid="true"' in bad.text
        no_events = await post_form_async(dev, f"/dashboard/webhooks/{endpoint_id}", {"url": f"{receiver.url}/v2"})
        assert no_events.status_code == 400 and "Tick at least one event type" in no_events.text
        for action in ("disable", "enable"):
            assert (await post_form_async(dev, f"/dashboard/webhooks/{endpoint_id}/{action}", {})).status_code == 303
        rotated = await post_form_async(dev, f"/dashboard/webhooks/{endpoint_id}/rotate", {})
        assert rotated.status_code == 200 and "whsec_" in rotated.text
        assert (await post_form_async(dev, f"/dashboard/webhooks/{endpoint_id}/delete", {})).status_code == 303
        assert (await dev.get(f"/dashboard/webhooks/{endpoint_id}")).status_code == 404
    async with PeopleStorage(bridge.db).read() as uow:
        actions = [e.action for e in await uow.people.audit(a.tenant.project_id, 50)]
    for action in (
        "webhook.endpoint_created",
        "webhook.endpoint_updated",
        "webhook.endpoint_disabled",
        "webhook.endpoint_enabled",
        "webhook.secret_rotated",
        "webhook.endpoint_deleted",
    ):
        assert action in actions


async def test_one_project_s_deliveries_are_never_visible_from_another(
    bridge: InProcessBridge, receiver: Receiver
) -> None:
    a, b = await shop(bridge, "Alpha"), await shop(bridge, "Beta")
    async with person(bridge, a.emails["developer"]) as dev_a, person(bridge, b.emails["developer"]) as dev_b:
        endpoint_a = await add_endpoint(dev_a, f"{receiver.url}/alpha")
        endpoint_b = await add_endpoint(dev_b, f"{receiver.url}/beta")
        await add_events(bridge, a.tenant.project_id, [("payment.created", "pay_alpha1")])
        await add_events(bridge, b.tenant.project_id, [("payment.created", "pay_beta1")])
        async with webhook_worker(bridge) as worker:
            await worker.run_once()
        (delivery_b,) = await deliveries(bridge, endpoint_b)
        log_a = (await dev_a.get("/dashboard/webhooks/deliveries")).text
        assert "pay_alpha1" in log_a and "pay_beta1" not in log_a and endpoint_b not in log_a
        assert "pay_beta1" not in (await dev_a.get(f"/dashboard/webhooks/deliveries?endpoint={endpoint_b}")).text
        assert (await dev_a.get(f"/dashboard/webhooks/{endpoint_b}")).status_code == 404
        resend = await post_form_async(dev_a, f"/dashboard/webhooks/deliveries/{delivery_b['id']}/resend", {})
        assert resend.status_code == 404
        for action in ("disable", "rotate", "delete"):
            assert (await post_form_async(dev_a, f"/dashboard/webhooks/{endpoint_b}/{action}", {})).status_code == 404
        assert endpoint_a in (await dev_a.get("/dashboard/webhooks")).text
    assert len(await deliveries(bridge, endpoint_b)) == 1  # nothing was queued for Beta


async def fail_for_good(bridge: InProcessBridge, endpoint_id: str, worker: Any) -> None:
    """Run the worker along the retry schedule until the endpoint's deliveries have given up."""
    for _ in range(40):
        await worker.run_once()
        rows = await deliveries(bridge, endpoint_id)
        if rows and all(r["status"] != DeliveryStatus.PENDING.value for r in rows):
            return
        bridge.clock.advance(6 * HOUR)
    raise AssertionError("the deliveries never gave up")


async def test_resend_one_and_resend_everything_failed_since_a_time_is_idempotent(
    bridge: InProcessBridge, receiver: Receiver
) -> None:
    a = await shop(bridge, "Alpha")
    developer = a.emails["developer"]
    receiver.script("/hooks", then=FAIL)
    started = bridge.clock.now()
    async with webhook_worker(bridge) as worker:
        async with person(bridge, developer) as dev:
            endpoint_id = await add_endpoint(dev, f"{receiver.url}/hooks")
        await add_events(bridge, a.tenant.project_id, [("payment.created", "pay_one"), ("payment.created", "pay_two")])
        await fail_for_good(bridge, endpoint_id, worker)  # three days: sessions have expired meanwhile
        failed = await deliveries(bridge, endpoint_id)
        assert [r["status"] for r in failed] == ["failed", "failed"]
        async with person(bridge, developer) as dev:
            page = (await dev.get(f"/dashboard/webhooks/{endpoint_id}?state=failing")).text
            assert "disabled: failing" in page and page.count("data-delivery=") == 2
            assert (await post_form_async(dev, f"/dashboard/webhooks/{endpoint_id}/enable", {})).status_code == 303

            since = {"since": local_input(started)}
            for _press in range(2):  # pressed twice: one new delivery per failed one
                response = await post_form_async(dev, "/dashboard/webhooks/resend", since)
                assert response.status_code == 303
            rows = await deliveries(bridge, endpoint_id)
            assert len(rows) == 4 and sum(r["redelivery"] for r in rows) == 2
            assert {r["event_id"] for r in rows if r["redelivery"]} == {r["event_id"] for r in failed}

            receiver.script("/hooks", then=OK)
            bridge.clock.advance(1)
            await worker.run_once()
            again = await post_form_async(dev, "/dashboard/webhooks/resend", since)
            assert again.headers["location"].endswith("notice=nothing")
            assert len(await deliveries(bridge, endpoint_id)) == 4

            # Resend one: a succeeded delivery gets one redelivery, not two when pressed twice.
            done = next(r for r in await deliveries(bridge, endpoint_id) if r["status"] == "succeeded")
            for _press in range(2):
                response = await post_form_async(dev, f"/dashboard/webhooks/deliveries/{done['id']}/resend", {})
                assert response.status_code == 303
            assert len(await deliveries(bridge, endpoint_id)) == 5
            before = len(receiver.at("/hooks"))
            await worker.run_once()
            assert len(receiver.at("/hooks")) == before + 1 and receiver.requests[-1].ok
            page = (await dev.get(f"/dashboard/webhooks/{endpoint_id}")).text
            assert 'data-attempt-code="200"' in page and 'data-attempt-code="500"' in page
            # (Answers from loopback are not kept — public addresses only — so no excerpt here.)
    async with PeopleStorage(bridge.db).read() as uow:
        actions = [e.action for e in await uow.people.audit(a.tenant.project_id, 50)]
    assert actions.count("webhook.failed_resent") == 3 and actions.count("webhook.delivery_resent") == 2


async def test_a_pending_delivery_is_retried_now_rather_than_doubled(
    bridge: InProcessBridge, receiver: Receiver
) -> None:
    a = await shop(bridge, "Alpha")
    receiver.script("/hooks", FAIL, then=OK)
    async with person(bridge, a.emails["developer"]) as dev, webhook_worker(bridge) as worker:
        endpoint_id = await add_endpoint(dev, f"{receiver.url}/hooks")
        await add_events(bridge, a.tenant.project_id, [("payment.created", "pay_one")])
        await worker.run_once()
        (pending,) = await deliveries(bridge, endpoint_id)
        assert pending["status"] == "pending" and pending["next_attempt_at"] > bridge.clock.now()
        for _press in range(2):
            await post_form_async(dev, f"/dashboard/webhooks/deliveries/{pending['id']}/resend", {})
        (moved,) = await deliveries(bridge, endpoint_id)
        assert moved["next_attempt_at"] == bridge.clock.now()
        await worker.run_once()
        (done,) = await deliveries(bridge, endpoint_id)
        assert done["status"] == "succeeded" and done["attempts"] == 2

        # An answer the bridge kept (from a public address: up to 1 KiB) is shown as a bounded excerpt.
        kept = WebhookAttempt(
            new_id("wha", bridge.clock.now()), done["id"], bridge.clock.now(), False, 12, 502, "x" * 1000 + "END", None
        )
        async with WebhookStorage(bridge.db).write() as uow:
            await uow.webhooks.add_attempt(kept)
        page = (await dev.get(f"/dashboard/webhooks/deliveries?endpoint={endpoint_id}")).text
        assert "x" * 300 + "…" in page and "x" * 301 not in page and "END" not in page


async def page_of(bridge: InProcessBridge, email: str, path: str) -> str:
    """A page as `email` sees it now (signed in afresh: the manual clock outruns sessions)."""
    async with person(bridge, email) as client:
        response = await client.get(path)
        assert response.status_code == 200, response.text
        return response.text


async def test_a_day_of_failures_warns_on_the_endpoint_and_emails_the_owners_once_per_streak(
    bridge: InProcessBridge, receiver: Receiver
) -> None:
    a = await shop(bridge, "Alpha")
    await add_account(bridge.runtime, "second-owner@example.com", project_id=a.tenant.project_id, role="owner")
    b = await shop(bridge, "Beta")
    developer = a.emails["developer"]
    mailer = RecordingMailer()
    alerts = FailingEndpointAlerts(
        WebhookStorage(bridge.db), PeopleStorage(bridge.db), mailer, bridge.clock, link_base="http://bridge.test"
    )
    assert bridge.runtime.webhook_alerts is not None  # the maintenance loop's (no SMTP here: no email)
    receiver.script("/hooks", then=FAIL)
    async with person(bridge, developer) as dev:
        endpoint_id = await add_endpoint(dev, f"{receiver.url}/hooks")
    async with person(bridge, b.emails["developer"]) as dev_b:
        await add_endpoint(dev_b, f"{receiver.url}/beta")  # healthy: never told
    async with webhook_worker(bridge) as worker:
        await add_events(bridge, a.tenant.project_id, [("payment.created", "pay_one")])
        await add_events(bridge, b.tenant.project_id, [("payment.created", "pay_b")])
        await worker.run_once()
        bridge.clock.advance(23 * HOUR)
        await worker.run_once()
        assert "data-failing-warning" not in await page_of(bridge, developer, "/dashboard/webhooks")
        assert await alerts.run() == 0 and mailer.sent == []

        bridge.clock.advance(2 * HOUR)  # 25 hours of failures
        await worker.run_once()
        listing = await page_of(bridge, developer, "/dashboard/webhooks")
        assert "data-failing-warning" in listing and "disables this endpoint around" in listing
        assert "data-failing-warning" in await page_of(bridge, developer, f"/dashboard/webhooks/{endpoint_id}")
        assert await alerts.run() == 1
        assert await alerts.run() == 0  # the same streak: once
        bridge.clock.advance(12 * HOUR)
        await worker.run_once()
        assert await alerts.run() == 0
        assert sorted(to for to, _, _ in mailer.sent) == ["owner-alpha@example.com", "second-owner@example.com"]
        assert all(endpoint_id in body and "failing" in subject for _, subject, body in mailer.sent)

        # A success ends the streak; the next streak, a day old, is told again.
        receiver.script("/hooks", then=OK)
        bridge.clock.advance(13 * HOUR)
        await worker.run_once()
        assert "data-failing-warning" not in await page_of(bridge, developer, "/dashboard/webhooks")
        receiver.script("/hooks", then=FAIL)
        await add_events(bridge, a.tenant.project_id, [("payment.created", "pay_two")])
        await worker.run_once()
        bridge.clock.advance(25 * HOUR)
        await worker.run_once()
        assert await alerts.run() == 1 and len(mailer.sent) == 4
