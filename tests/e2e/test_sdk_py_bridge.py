"""The Python SDK against a real bridge: a `serve` process with its built-in simulator on a free port,
real HTTP, a real webhook receiver on loopback. Every resource of the SDK, `payments.wait` over
Server-Sent Events and over its polling fallback, signed requests, and `webhooks.verify` on real
deliveries."""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from mpesa_bridge_sdk import (
    AsyncClient,
    AuthenticationError,
    Client,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    SignatureError,
    WebhookVerificationError,
    webhooks,
)
from tests.fixtures.bridge import ADMIN_TOKEN
from tests.fixtures.receiver import Receiver
from tests.fixtures.servers import ServerProcess, sandbox_bridge

pytestmark = pytest.mark.slow

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
_phones = itertools.count(random.randrange(100_000) * 10)


def phone() -> str:
    """A phone the simulator lets pay (none of its special numbers), different for every payment."""
    return f"0712{next(_phones) % 1_000_000:06d}"


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    settings = {
        "MPESA_BRIDGE_SSE_MAX_STREAMS_PER_KEY": "2",  # so a test can use the cap up (polling fallback)
        "MPESA_BRIDGE_SIMULATOR_LATE_CALLBACK_DELAY": "4",  # 0700000902 pays 4 s after the push
    }
    with sandbox_bridge(tmp_path_factory.mktemp("sdkpy"), "SDK", callback_delay=1.5, **settings) as started:
        yield started


def new_project(server: ServerProcess, name: str) -> tuple[str, str]:
    """(project id, test secret key) of a fresh project: its lists hold only what the test makes."""
    response = httpx.post(f"{server.url}/v1/admin/projects", json={"name": name}, headers=ADMIN, timeout=10)
    assert response.status_code == 201, response.text
    body = response.json()
    return body["id"], body["secret_keys"]["test"]


class Recorder:
    """An httpx client that remembers (method, path, status) of every answer."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, int]] = []
        self.http = httpx.Client(event_hooks={"response": [self._record]})

    def _record(self, response: httpx.Response) -> None:
        self.seen.append((response.request.method, response.request.url.path, response.status_code))


def test_payments_create_get_list_across_pages_refresh_evidence_totals(bridge: tuple[ServerProcess, str]) -> None:
    server, _ = bridge
    _, key = new_project(server, "Payments")
    with Client(key, base_url=server.url) as sdk:
        made = [
            sdk.payments.create(phone=phone(), amount=10 + n, account_reference=f"INV{n}", metadata={"n": n})
            for n in range(5)
        ]
        assert all(p.status == "pending" and p.client_secret for p in made)
        one = sdk.payments.retrieve(made[0].id)
        assert (one.amount, one.account_reference, one.metadata, one.client_secret) == (10, "INV0", {"n": 0}, None)
        assert one.created_at is not None and one.created_at.tzinfo is not None
        page = sdk.payments.list(limit=2)
        assert len(page.data) == 2 and page.has_more
        assert [p.id for p in page] == [p.id for p in reversed(made)]  # three pages, newest first
        assert [p.id for p in sdk.payments.list(reference="INV3")] == [made[3].id]
        refreshed = sdk.payments.refresh(made[1].id)
        assert refreshed.id == made[1].id
        final = sdk.payments.wait(made[2].id, timeout=30)
        assert final.status == "succeeded"
        assert [e.source for e in sdk.payments.evidence(made[2].id)][-1] == "callback"
        assert sdk.payments.totals(days=1).total["count"] == 5
        with pytest.raises(NotFoundError) as missing:
            sdk.payments.retrieve("pay_does_not_exist")
        assert missing.value.code == "resource_missing" and missing.value.request_id.startswith("req_")
        with pytest.raises(InvalidRequestError) as bad:
            sdk.payments.create(phone="07", amount=10, account_reference="X")
        assert (bad.value.code, bad.value.param) == ("invalid_phone", "phone")


def test_a_create_retried_with_its_key_is_the_same_payment(bridge: tuple[ServerProcess, str]) -> None:
    server, key = bridge
    with Client(key, base_url=server.url) as sdk:
        number = phone()
        first = sdk.payments.create(phone=number, amount=10, account_reference="IDEM", idempotency_key="order-idem-1")
        again = sdk.payments.create(phone=number, amount=10, account_reference="IDEM", idempotency_key="order-idem-1")
        assert again.id == first.id
        with pytest.raises(InvalidRequestError) as reused:
            sdk.payments.create(phone=number, amount=11, account_reference="IDEM", idempotency_key="order-idem-1")
        assert reused.value.code == "idempotency_key_reused"


def test_wait_follows_the_payment_stream(bridge: tuple[ServerProcess, str]) -> None:
    server, key = bridge
    recorder = Recorder()
    with Client(key, base_url=server.url, http_client=recorder.http) as sdk:
        # the simulator's late payer: still pending when wait starts, however slow the machine
        payment = sdk.payments.create(phone="0700000902", amount=10, account_reference="SSE")
        # a poll interval of 1000 s: only the stream can bring the outcome within the timeout
        final = sdk.payments.wait(payment.id, timeout=30, poll_interval=1000)
    recorder.http.close()
    assert final.status == "succeeded" and final.mpesa_receipt_number
    path = f"/v1/payments/{payment.id}"
    assert ("GET", path + "/events", 200) in recorder.seen
    assert [s for s in recorder.seen if s[1] == path] == [("GET", path, 200)]  # read once, before the stream


def test_wait_polls_when_the_stream_cannot_be_opened(bridge: tuple[ServerProcess, str]) -> None:
    server, _ = bridge
    _, key = new_project(server, "Polling")
    recorder = Recorder()
    with ExitStack() as held, Client(key, base_url=server.url, http_client=recorder.http) as sdk:
        streams = held.enter_context(httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}))
        for _ in range(2):  # the key's cap (MPESA_BRIDGE_SSE_MAX_STREAMS_PER_KEY=2) is now used up
            opened = held.enter_context(streams.stream("GET", "/v1/events/stream", timeout=30))
            assert opened.status_code == 200
        payment = sdk.payments.create(phone=phone(), amount=10, account_reference="POLL")
        final = sdk.payments.wait(payment.id, timeout=30, poll_interval=0.3)
    recorder.http.close()
    assert final.status == "succeeded"
    path = f"/v1/payments/{payment.id}"
    assert ("GET", path + "/events", 429) in recorder.seen
    assert len([s for s in recorder.seen if s == ("GET", path, 200)]) >= 2


def test_wait_times_out_with_the_last_payment(bridge: tuple[ServerProcess, str]) -> None:
    server, key = bridge
    with Client(key, base_url=server.url) as sdk:
        payment = sdk.payments.create(phone="0700000900", amount=10, account_reference="LATE")  # no callback
        started = time.monotonic()
        with pytest.raises(TimeoutError) as caught:
            sdk.payments.wait(payment.id, timeout=0.8)
    assert time.monotonic() - started < 10
    assert caught.value.last.id == payment.id and caught.value.last.status == "pending"  # type: ignore[attr-defined]


def test_checkout_sessions_server_side_and_the_customers_side(bridge: tuple[ServerProcess, str]) -> None:
    server, _ = bridge
    _, key = new_project(server, "Checkout")
    with Client(key, base_url=server.url) as sdk, Client(base_url=server.url) as customer:
        sessions = [
            sdk.checkout_sessions.create(amount=100 + n, reference=f"ORDER{n}", metadata={"order": n}) for n in range(3)
        ]
        assert all(s.status == "open" and s.client_secret and s.url for s in sessions)
        assert [s.id for s in sdk.checkout_sessions.list(limit=2)] == [s.id for s in reversed(sessions)]
        assert sdk.checkout_sessions.retrieve(sessions[0].id).metadata == {"order": 0}
        expired = sdk.checkout_sessions.expire(sessions[2].id)
        assert expired.status == "expired"
        with pytest.raises(ConflictError):
            sdk.checkout_sessions.expire(sessions[2].id)

        session = sessions[1]
        assert session.client_secret is not None
        seen = customer.checkout_sessions.retrieve(session.id, client_secret=session.client_secret)
        assert seen.metadata is None and seen.payment is None
        paying = customer.checkout_sessions.pay(session.id, client_secret=session.client_secret, phone=phone())
        assert paying.payment is not None and paying.payment.status == "pending"
        done = customer.checkout_sessions.wait(session.id, client_secret=session.client_secret, timeout=30)
        assert done.status == "complete" and done.payment is not None and done.payment.status == "succeeded"
        assert done.payment.mpesa_receipt_number
        assert sdk.checkout_sessions.retrieve(session.id).paid_payment_id == done.payment.id
        assert sdk.checkout_sessions.qr(session.id, format="png").startswith(b"\x89PNG")
        with pytest.raises(AuthenticationError):
            customer.payments.retrieve(done.payment.id)  # a client secret is no key


def test_payment_links_create_get_list_update(bridge: tuple[ServerProcess, str]) -> None:
    server, _ = bridge
    _, key = new_project(server, "Links")
    with Client(key, base_url=server.url) as sdk:
        links = [sdk.payment_links.create(title=f"Fees {n}", amount=1500 + n, metadata={"n": n}) for n in range(3)]
        assert links[0].url.endswith("/l/" + links[0].slug) and links[0].active
        assert [link.id for link in sdk.payment_links.list(limit=2)] == [link.id for link in reversed(links)]
        changed = sdk.payment_links.update(links[0].id, title="Tuition", active=False, max_payments=3)
        assert (changed.title, changed.active, changed.max_payments, changed.amount) == ("Tuition", False, 3, 1500)
        cleared = sdk.payment_links.update(links[0].id, max_payments=None)
        assert (cleared.max_payments, cleared.title) == (None, "Tuition")
        read = sdk.payment_links.retrieve(links[0].id)
        assert (read.payments_succeeded, read.amount_collected, read.active) == (0, 0, False)
        assert sdk.payment_links.qr(links[1].id).lstrip().startswith(b"<")


def test_a_reversal_and_a_balance_query(bridge: tuple[ServerProcess, str]) -> None:
    server, _ = bridge
    _, key = new_project(server, "Reversals")
    with Client(key, base_url=server.url) as sdk:
        payment = sdk.payments.wait(
            sdk.payments.create(phone=phone(), amount=40, account_reference="REV").id, timeout=20
        )
        assert payment.status == "succeeded"
        reversal = sdk.reversals.create(payment.id, remarks="Order cancelled", idempotency_key=f"rev-{payment.id}")
        assert reversal.id.startswith("rev_") and reversal.status == "sent" and reversal.amount == 40
        replayed = sdk.reversals.create(payment.id, remarks="Order cancelled", idempotency_key=f"rev-{payment.id}")
        assert replayed.id == reversal.id
        deadline = time.monotonic() + 20
        while sdk.reversals.retrieve(reversal.id).status != "succeeded":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert [r.id for r in sdk.reversals.list(payment_id=payment.id)] == [reversal.id]
        assert sdk.payments.retrieve(payment.id).reversed_at is not None
        query = sdk.balance_queries.create(wait=15)
        assert query.status == "completed" and any(a["name"] == "Utility Account" for a in query.accounts)
        assert sdk.balance_queries.retrieve(query.id).id == next(q.id for q in sdk.balance_queries.list())


def test_keys_list_rotate_revoke_and_a_qr_code(bridge: tuple[ServerProcess, str]) -> None:
    server, _ = bridge
    _, key = new_project(server, "Keys")
    with Client(key, base_url=server.url) as sdk:
        (old,) = sdk.keys.list()
        rotated = sdk.keys.rotate(grace_period_seconds=3600)
        assert rotated.secret_key and rotated.previous_key is not None and rotated.previous_key.id == old.id
        assert rotated.secret_key is not None
        qr = sdk.qr_codes.create(
            merchant_name="TEST SHOP", reference="Invoice 42", amount=100, trx_code="BG", cpi="373132"
        )
        assert qr.image_png_base64
    with Client(rotated.secret_key, base_url=server.url) as fresh:
        assert fresh.keys.revoke(old.id).revoked_at is not None
    with Client(key, base_url=server.url, max_retries=0) as stale, pytest.raises(AuthenticationError):
        stale.keys.list()


def test_the_projects_browser_settings_and_its_publishable_key(bridge: tuple[ServerProcess, str]) -> None:
    server, _ = bridge
    _, key = new_project(server, "Browser")
    with Client(key, base_url=server.url) as sdk:
        before = sdk.project.retrieve()
        assert before.publishable_key and before.publishable_key.startswith("pk_test_")
        assert before.client_side_amounts is False and before.allowed_origins == []
        after = sdk.project.update(client_side_amounts=True, allowed_origins=["https://shop.example"])
        assert after.client_side_amounts is True and after.allowed_origins == ["https://shop.example"]
        assert sdk.project.retrieve().allowed_origins == ["https://shop.example"]
        rotated = sdk.project.rotate_publishable_key()
        assert rotated.previous_publishable_key == before.publishable_key
        assert rotated.publishable_key != before.publishable_key
        assert sdk.project.retrieve().publishable_key == rotated.publishable_key


def admin_patch(server: ServerProcess, project_id: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.patch(f"{server.url}/v1/admin/projects/{project_id}", json=body, headers=ADMIN, timeout=10)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_signed_requests_when_the_project_requires_them(bridge: tuple[ServerProcess, str]) -> None:
    server, _ = bridge
    project_id, key = new_project(server, "Signed")
    admin_patch(server, project_id, {"require_signed_requests": True})
    deadline = time.monotonic() + 10
    with Client(key, base_url=server.url, sign_requests=False) as unsigned:
        while True:  # the bridge applies the change within its key cache's TTL
            try:
                unsigned.payments.list()
            except SignatureError as refused:
                assert refused.code == "signature_missing"
                break
            assert time.monotonic() < deadline
            time.sleep(0.2)
    with Client(key, base_url=server.url) as automatic:  # signs with its key once the bridge asks
        payment = automatic.payments.create(phone=phone(), amount=10, account_reference="SIGNED")
        assert automatic.payments.wait(payment.id, timeout=30).status == "succeeded"  # the stream, signed

    secret = admin_patch(server, project_id, {"signing_secret": "generate"})["signing_secret"]
    assert secret.startswith("mbsig_")
    with Client(key, base_url=server.url, signing_secret=secret) as signed:
        payment = signed.payments.create(phone=phone(), amount=10, account_reference="SIGNED2")
        assert [p.id for p in signed.payments.list(limit=1).data] == [payment.id]
        for _ in range(3):  # the same request again within a second: a new timestamp, not a replay
            assert signed.payments.retrieve(payment.id).id == payment.id
        assert signed.payments.wait(payment.id, timeout=30, poll_interval=1000).status == "succeeded"
    with Client(key, base_url=server.url, sign_requests=True) as wrong, pytest.raises(SignatureError) as caught:
        wrong.payments.list()  # signed with the key, but the project now has a signing secret
    assert caught.value.code == "signature_invalid"


async def test_webhook_endpoints_events_and_verify_on_real_deliveries(bridge: tuple[ServerProcess, str]) -> None:
    server, _ = bridge
    _, key = new_project(server, "Webhooks")
    async with Receiver() as receiver, AsyncClient(key, base_url=server.url) as sdk:
        endpoint = await sdk.webhook_endpoints.create(
            url=receiver.url + "/hooks", enabled_events=["payment.succeeded"], description="shop"
        )
        assert endpoint.secret is not None and endpoint.secret.startswith("whsec_")
        assert [e.id for e in await sdk.webhook_endpoints.list()] == [endpoint.id]
        assert (await sdk.webhook_endpoints.retrieve(endpoint.id)).secret is None
        updated = await sdk.webhook_endpoints.update(
            endpoint.id, enabled_events=["payment.succeeded", "payment.failed"]
        )
        assert updated.enabled_events == ["payment.succeeded", "payment.failed"]

        payment = await sdk.payments.create(phone=phone(), amount=10, account_reference="HOOK")
        (delivery,) = await receiver.wait_for(1, timeout=30)
        event = webhooks.verify(delivery.body, delivery.headers, endpoint.secret)
        assert (event.type, event.subject["id"], event.subject["status"]) == (
            "payment.succeeded",
            payment.id,
            "succeeded",
        )
        assert sdk.webhooks.verify(delivery.body, delivery.headers, endpoint.secret).id == event.id
        with pytest.raises(WebhookVerificationError):
            webhooks.verify(delivery.body + b" ", delivery.headers, endpoint.secret)

        listed = [e async for e in await sdk.events.list(subject=payment.id, limit=1)]
        assert [e.type for e in listed] == ["payment.succeeded", "payment.created"]
        detail = await sdk.events.retrieve(event.id)
        assert detail.deliveries is not None and detail.deliveries[0].endpoint_id == endpoint.id

        rotated = await sdk.webhook_endpoints.rotate_secret(endpoint.id, grace_period_seconds=3600)
        assert rotated.secret is not None and rotated.secret != endpoint.secret
        queued = await sdk.events.redeliver(event.id, endpoint_id=endpoint.id)
        assert [d.endpoint_id for d in queued] == [endpoint.id]
        again = (await receiver.wait_for(2, timeout=30))[1]
        assert again.webhook_id == delivery.webhook_id
        assert webhooks.verify(again.body, again.headers, rotated.secret).id == event.id  # the new secret
        assert webhooks.verify(again.body, again.headers, endpoint.secret).id == event.id  # the old, in its grace

        deleted = await sdk.webhook_endpoints.delete(endpoint.id)
        assert deleted.deleted and await sdk.webhook_endpoints.list() == []


async def test_the_async_client_pages_waits_and_pays_a_session(bridge: tuple[ServerProcess, str]) -> None:
    server, _ = bridge
    _, key = new_project(server, "Async")
    async with AsyncClient(key, base_url=server.url) as sdk, AsyncClient(base_url=server.url) as customer:
        made = [await sdk.payments.create(phone=phone(), amount=10, account_reference=f"A{n}") for n in range(3)]
        assert [p.id async for p in await sdk.payments.list(limit=2)] == [p.id for p in reversed(made)]
        final = await sdk.payments.wait(made[0].id, timeout=30, poll_interval=1000)  # only the stream is quick
        assert final.status == "succeeded" and final.mpesa_receipt_number
        assert (await sdk.payments.retrieve(made[1].id)).id == made[1].id
        session = await sdk.checkout_sessions.create(amount=50, reference="ASYNC")
        assert session.client_secret is not None
        await customer.checkout_sessions.pay(session.id, client_secret=session.client_secret, phone=phone())
        done = await customer.checkout_sessions.wait(session.id, client_secret=session.client_secret, timeout=30)
        assert done.status == "complete" and done.payment is not None and done.payment.status == "succeeded"
        link = await sdk.payment_links.create(title="Async", amount=20)
        assert (await sdk.payment_links.update(link.id, active=False)).active is False
        assert [x.id async for x in await sdk.payment_links.list()] == [link.id]
