"""Test-mode webhooks on a production host, and answers of non-public destinations (issue 9 B5).

On a production host a test key must not reach the host's own services (loopback), neither when the
endpoint is created or changed nor when the worker connects; and what a non-public destination
answers is never stored nor shown, so a test key cannot read a local service. A real receiver on
loopback; SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from mpesa_bridge.config import Settings
from mpesa_bridge.core import projects
from mpesa_bridge.core.payments.entity import EventType
from mpesa_bridge.core.webhooks.endpoints import EndpointService
from mpesa_bridge.storage import tables
from mpesa_bridge.storage.webhooks import WebhookStorage
from tests.fixtures.bridge import InProcessBridge, Tenant, make_settings
from tests.fixtures.receiver import Receiver, Reply, add_events, webhook_worker

PATH = "/v1/webhook_endpoints"
SECRET_PAGE = b"root:x:0:0:internal-service-answer"  # what a local service might answer


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as running:
        yield running


def production(db_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    return make_settings(
        db_url,
        tmp_path,
        env="production",
        public_base_url="https://bridge.example.test",
        simulator_url=None,
        simulator_enabled=False,
        **overrides,
    )


async def post_endpoint(bridge: InProcessBridge, tenant: Tenant, url: str, mode: str = "test") -> Any:
    body = {"url": url, "enabled_events": ["*"]}
    return await bridge.client.post(PATH, json=body, headers=tenant.headers(mode))


class PublicDns:
    """DNS that answered a public address when the endpoint was created (the world, not the thing tested)."""

    async def resolve(self, host: str, port: int) -> list[str]:
        return ["93.184.216.34"]


async def attempts_of(bridge: InProcessBridge, tenant: Tenant, event_id: str) -> list[dict[str, Any]]:
    response = await bridge.client.get(f"/v1/events/{event_id}", headers=tenant.headers())
    assert response.status_code == 200, response.text
    return [a for d in response.json()["deliveries"] for a in d["attempts"]]


async def stored_bodies(bridge: InProcessBridge) -> list[str | None]:
    async with bridge.db.read() as uow:
        return list((await uow.connection.execute(sa.select(tables.webhook_attempts.c.response_body))).scalars())


class TestProduction:
    @pytest.fixture
    def bridge_settings(self, db_url: str, tmp_path: Path) -> Settings:
        return production(db_url, tmp_path)

    async def test_a_test_key_cannot_create_or_move_an_endpoint_to_loopback(
        self, bridge: InProcessBridge, receiver: Receiver
    ) -> None:
        tenant = await bridge.create_project()
        for url in (f"{receiver.url}/hook", f"http://localhost:{receiver.port}/hook", "http://[::1]:9/hook"):
            response = await post_endpoint(bridge, tenant, url)
            assert response.status_code == 400, (url, response.text)
            assert response.json()["error"]["code"] == "url_not_allowed", url
        public = await post_endpoint(bridge, tenant, "https://93.184.216.34/hook")
        assert public.status_code == 201, public.text
        moved = await bridge.client.patch(
            f"{PATH}/{public.json()['id']}", json={"url": f"{receiver.url}/x"}, headers=tenant.headers()
        )
        assert moved.status_code == 400 and moved.json()["error"]["code"] == "url_not_allowed"
        assert len((await bridge.client.get(PATH, headers=tenant.headers())).json()["data"]) == 1

    async def test_a_host_name_that_now_resolves_to_loopback_is_refused_at_connect_time(
        self, bridge: InProcessBridge, receiver: Receiver
    ) -> None:
        tenant = await bridge.create_project()
        # Created while `localhost` answered a public address; the worker asks the system's DNS.
        service = EndpointService(WebhookStorage(bridge.db), bridge.runtime.box, bridge.clock, PublicDns())
        owner = projects.Tenant(tenant.project_id, projects.Mode.TEST)
        await service.create(owner, f"http://localhost:{receiver.port}/rebound", ["*"])
        (event,) = await add_events(bridge, tenant.project_id, [(EventType.SUCCEEDED, "pay_1")])

        async with webhook_worker(bridge) as worker:
            report = await worker.run_once()
        assert report.failed == 1 and receiver.requests == []
        (attempt,) = await attempts_of(bridge, tenant, event.id)
        assert attempt["error"].startswith("url_not_allowed") and attempt["response_body"] is None

    async def test_the_explicit_setting_lets_test_mode_reach_loopback_but_never_shows_its_answer(
        self, db_url: str, tmp_path: Path, bridge: InProcessBridge, receiver: Receiver
    ) -> None:
        tenant = await bridge.create_project()
        assert (await post_endpoint(bridge, tenant, f"{receiver.url}/hook")).status_code == 400
        allowed = production(db_url, tmp_path, webhook_test_allow_loopback=True)
        service = EndpointService(
            WebhookStorage(bridge.db),
            bridge.runtime.box,
            bridge.clock,
            PublicDns(),
            allow_private_urls=allowed.webhook_allow_private_urls,
            test_loopback=allowed.webhook_test_loopback_on,
        )
        await service.create(projects.Tenant(tenant.project_id, projects.Mode.TEST), f"{receiver.url}/hook", ["*"])
        receiver.rule("/hook", lambda _request: Reply(200, SECRET_PAGE))
        (event,) = await add_events(bridge, tenant.project_id, [(EventType.SUCCEEDED, "pay_1")])

        async with webhook_worker(bridge, settings=allowed) as worker:
            assert (await worker.run_once()).succeeded == 1
        (attempt,) = await attempts_of(bridge, tenant, event.id)
        assert attempt["status_code"] == 200 and attempt["response_body"] is None
        assert await stored_bodies(bridge) == [None]


async def test_development_allows_loopback_in_test_mode_but_never_stores_its_answer(
    bridge: InProcessBridge, receiver: Receiver
) -> None:
    tenant = await bridge.create_project()
    for path in ("/ok", "/no", "/moved"):
        assert (await post_endpoint(bridge, tenant, f"{receiver.url}{path}")).status_code == 201
    receiver.rule("/ok", lambda _request: Reply(200, SECRET_PAGE))
    receiver.rule("/no", lambda _request: Reply(500, SECRET_PAGE))
    receiver.rule("/moved", lambda _request: Reply(302, SECRET_PAGE, headers={"Location": "/internal/admin?token=s3"}))
    (event,) = await add_events(bridge, tenant.project_id, [(EventType.SUCCEEDED, "pay_1")])

    async with webhook_worker(bridge) as worker:
        report = await worker.run_once()
    assert report.attempted == 3 and report.succeeded == 1 and len(receiver.requests) == 3
    attempts = await attempts_of(bridge, tenant, event.id)
    assert sorted(a["status_code"] for a in attempts) == [200, 302, 500]
    assert all(a["response_body"] is None for a in attempts)
    shown = str(attempts)
    assert "internal-service-answer" not in shown and "/internal/admin" not in shown  # nor the Location
    assert await stored_bodies(bridge) == [None, None, None]


async def test_a_service_that_does_not_speak_http_does_not_leak_its_banner_through_the_error(
    bridge: InProcessBridge,
) -> None:
    async def banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)  # the request has arrived: answer as an SSH server would, then wait
        writer.write(b"SSH-2.0-OpenSSH_9.9 " + SECRET_PAGE + b"\r\n\r\n")
        await writer.drain()
        with contextlib.suppress(ConnectionError):
            await reader.read()  # until the bridge closes the connection
        writer.close()

    server = await asyncio.start_server(banner, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        tenant = await bridge.create_project()
        assert (await post_endpoint(bridge, tenant, f"http://127.0.0.1:{port}/")).status_code == 201
        (event,) = await add_events(bridge, tenant.project_id, [(EventType.SUCCEEDED, "pay_1")])
        async with webhook_worker(bridge) as worker:
            assert (await worker.run_once()).failed == 1
    finally:
        server.close()
        await server.wait_closed()
    (attempt,) = await attempts_of(bridge, tenant, event.id)
    assert attempt["error"].startswith("protocol_error") and attempt["response_body"] is None
    assert "SSH" not in attempt["error"] and "internal-service-answer" not in attempt["error"]
