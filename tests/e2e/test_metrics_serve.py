"""/metrics from real `serve` processes: `serve --workers 2` on PostgreSQL with a metrics port —
one scrape on that port counts the requests both processes answered (multiprocess files, one
per process) — and a single `serve` on SQLite with both a token and a metrics port."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.bridge import ADMIN_TOKEN
from tests.fixtures.database import create_pg_database, drop_pg_database
from tests.fixtures.servers import ServerProcess, bridge_process, free_port
from tests.fixtures.services import need, postgres_available

pytestmark = pytest.mark.slow

HEALTHZ = re.compile(
    r'^mpesa_bridge_http_request_duration_seconds_count\{method="GET",route="/healthz",status="2xx"\} ([0-9.e+]+)$',
    re.MULTILINE,
)
NOWHERE = "http://127.0.0.1:9"  # no payment is made: the Daraja side is never called


def healthz_count(text: str) -> float:
    found = HEALTHZ.search(text)
    return float(found.group(1)) if found else 0.0


def pids_with_histograms(data_dir: Path) -> set[str]:
    return {f.stem.rsplit("_", 1)[1] for f in (data_dir / "metrics" / "serve").glob("histogram_*.db")}


@pytest.fixture
def two_processes(tmp_path: Path) -> Iterator[tuple[ServerProcess, int]]:
    need("PostgreSQL", postgres_available())
    database_url = asyncio.run(create_pg_database())
    metrics_port = free_port()
    bridge = bridge_process(
        tmp_path, database_url, NOWHERE, MPESA_BRIDGE_WORKERS="2", MPESA_BRIDGE_METRICS_PORT=str(metrics_port)
    )
    try:
        bridge.start(timeout=60)
        yield bridge, metrics_port
    finally:
        bridge.stop()
        asyncio.run(drop_pg_database(database_url))


@pytest.mark.timeout(180)
def test_one_scrape_counts_both_processes(two_processes: tuple[ServerProcess, int], tmp_path: Path) -> None:
    bridge, metrics_port = two_processes
    sent = 0

    async def hammer() -> None:
        nonlocal sent
        limits = httpx.Limits(max_connections=20, max_keepalive_connections=0)  # new connections: both accept
        async with httpx.AsyncClient(base_url=bridge.url, limits=limits) as client:
            for _ in range(20):
                answers = await asyncio.gather(*(client.get("/healthz") for _ in range(20)))
                assert all(a.status_code == 200 for a in answers)
                sent += len(answers)
                if len(pids_with_histograms(tmp_path / "data")) == 2:
                    return

    asyncio.run(hammer())
    assert len(pids_with_histograms(tmp_path / "data")) == 2, "the kernel gave every connection to one process"

    scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10)
    assert scraped.status_code == 200
    assert healthz_count(scraped.text) >= sent  # both processes' requests, in one answer
    assert "mpesa_bridge_payments" in scraped.text or "mpesa_bridge_reconciliation_backlog" in scraped.text
    # The main port does not serve it (a metrics port is set, no token); the metrics port serves nothing else.
    assert httpx.get(f"{bridge.url}/metrics", timeout=10).status_code == 404
    assert httpx.get(f"http://127.0.0.1:{metrics_port}/healthz", timeout=10).status_code == 404


@pytest.mark.timeout(120)
def test_a_single_server_serves_metrics_with_the_token_and_on_its_port(tmp_path: Path) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'bridge.db'}"
    port = free_port()
    settings = {"MPESA_BRIDGE_METRICS_TOKEN": "scrape-token", "MPESA_BRIDGE_METRICS_PORT": str(port)}
    bridge = bridge_process(tmp_path, database_url, NOWHERE, **settings)
    try:
        bridge.start(timeout=60)
        assert httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).status_code == 200
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        assert httpx.get(f"{bridge.url}/metrics", headers=headers, timeout=10).status_code == 401
        answer = httpx.get(f"{bridge.url}/metrics", headers={"Authorization": "Bearer scrape-token"}, timeout=10)
        assert answer.status_code == 200 and "mpesa_bridge_inbox_backlog" in answer.text
        assert list((tmp_path / "data" / "metrics" / "serve").glob("*.db"))  # multiprocess files, even for one
    finally:
        bridge.stop()
