"""Processes, CPU and memory from /proc, the load generator, and statistics.

Server-side CPU is user+system time of the measured processes *and their threads* (aiosqlite
runs SQLite in a thread of the bridge process) *and their live children* (`serve --workers N` is a
supervisor and N server processes), read from /proc/<pid>/stat before and after the load; divided
by the operations done, it is the steadiest figure on a shared two-core machine.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
CONNECTIONS = 64
ADMIN_TOKEN = "bench-admin-token-0123456789abcdef"
# A fixed, public test key: benchmarks seal nothing that matters.
MASTER_KEY = "YmVuY2gtbWFzdGVyLWtleS0wMTIzNDU2Nzg5YWJjZGU="


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a live process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as handle:
        text = handle.read()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def process_tree(pid: int) -> list[int]:
    """`pid` and its live descendants: `serve --workers N` is a supervisor and its N processes."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    queue.extend(int(child) for child in handle.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue  # ended meanwhile
    return found


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of `pid` and its live descendants (a child that ended meanwhile is lost)."""
    total = 0.0
    for member in process_tree(pid):
        try:
            total += cpu_seconds(member)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


@dataclass
class Server:
    """A child process serving HTTP on a free loopback port; its output goes to a log file."""

    name: str
    argv: list[str]
    env: dict[str, str]
    port: int
    log_dir: Path
    health: str = "/healthz"
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 60.0, wait: bool = True) -> Server:
        log = (self.log_dir / f"{self.name}-{self.port}.log").open("ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        self.process = subprocess.Popen(self.argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        log.close()
        if wait:
            try:
                self.wait_ready(timeout)
            except BaseException:
                self.stop()  # never leave a half-started child behind
                raise
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until the health path answers; for servers started with `start(wait=False)` in parallel."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}: {self.tail()}")
            try:
                if httpx.get(self.url + self.health, timeout=2.0).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not start in {timeout}s: {self.tail()}")

    def cpu(self) -> float:
        return tree_cpu_seconds(self.pid)

    def wait_processes(self, count: int, timeout: float = 120.0) -> None:
        """Until `count` bridge processes have started (`serve --workers N` answers once the first
        has; a measurement must not begin before the others)."""
        path = self.log_dir / f"{self.name}-{self.port}.log"
        if not wait_until(lambda: path.read_text(errors="replace").count("bridge.started") >= count, timeout):
            raise RuntimeError(f"{self.name}: {count} processes did not start in {timeout}s: {self.tail()}")

    def rss(self) -> int:
        return rss_bytes(self.pid)

    def tail(self) -> str:
        path = self.log_dir / f"{self.name}-{self.port}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def python(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def bare_server(log_dir: Path) -> Server:
    port = free_port()
    return Server("bare", python("bench.bare", "--port", str(port)), {}, port, log_dir, health="/")


def bridge_env(port: int, data_dir: Path, database_url: str, **extra: str) -> dict[str, str]:
    """The bridge as the benchmarks run it: defaults (INFO logs as JSON, workers in-process), rate limits
    and connection caps off (all the load comes from one address; B3 opens 10,000 streams)."""
    return {
        "MPESA_BRIDGE_ENV": "development",
        "MPESA_BRIDGE_HOST": "127.0.0.1",
        "MPESA_BRIDGE_PORT": str(port),
        "MPESA_BRIDGE_DATA_DIR": str(data_dir),
        "MPESA_BRIDGE_DATABASE_URL": database_url,
        "MPESA_BRIDGE_MASTER_KEY": MASTER_KEY,
        "MPESA_BRIDGE_ADMIN_TOKEN": ADMIN_TOKEN,
        "MPESA_BRIDGE_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "MPESA_BRIDGE_MIGRATE_ON_START": "true",
        "MPESA_BRIDGE_RATE_LIMIT_ENABLED": "false",
        "MPESA_BRIDGE_MAX_CONNECTIONS": "0",
        "MPESA_BRIDGE_MAX_CONNECTIONS_PER_ADDRESS": "0",
        # B3 holds thousands of SSE streams from one address: lift the per-address and per-key caps.
        "MPESA_BRIDGE_SSE_MAX_STREAMS_PER_KEY": "1000000",
        "MPESA_BRIDGE_SSE_MAX_STREAMS_PER_ADDRESS": "1000000",
        "MPESA_BRIDGE_LOG_LEVEL": "INFO",  # the default: per-request log lines are part of the cost
        "MPESA_BRIDGE_LOG_JSON": "true",
        **extra,
    }


def bridge_server(log_dir: Path, data_dir: Path, database_url: str, name: str = "bridge", **extra: str) -> Server:
    port = free_port()
    env = bridge_env(port, data_dir, database_url, **extra)
    return Server(name, python("mpesa_bridge", "serve"), env, port, log_dir)


def processes_env(processes: int) -> dict[str, str]:
    """`serve --workers N`: the mounted simulator is one process's (and refused with N > 1), so
    runs compared across process counts all go without it."""
    return {"MPESA_BRIDGE_WORKERS": str(processes), "MPESA_BRIDGE_SIMULATOR_ENABLED": "false"}


def requests_in_progress(server: Server) -> float:
    """The bridge's `mpesa_bridge_http_requests_in_progress` (its own /metrics, open in development):
    a request whose client has gone is counted until the bridge has finished it."""
    response = httpx.get(server.url + "/metrics", timeout=5.0)
    response.raise_for_status()
    for family in text_string_to_metric_families(response.text):
        if family.name == "mpesa_bridge_http_requests_in_progress":
            return sum(sample.value for sample in family.samples)
    raise AssertionError("the bridge's /metrics has no mpesa_bridge_http_requests_in_progress")


def admin_create_project(server: Server, name: str = "bench") -> dict[str, Any]:
    response = httpx.post(
        f"{server.url}/v1/admin/projects",
        json={"name": name},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=30,
    )
    response.raise_for_status()
    project: dict[str, Any] = response.json()
    return project


# --- load -------------------------------------------------------------------------------------


@dataclass
class Load:
    """What one load-generator run measured, with the server CPU spent during it."""

    count: int
    elapsed: float
    latencies: list[float]
    statuses: dict[str, int]
    error_count: int
    started_at: float
    cpu: float = 0.0

    @property
    def rate(self) -> float:
        return self.count / self.elapsed if self.elapsed else 0.0

    @property
    def cpu_per_op_ms(self) -> float:
        return 1000 * self.cpu / self.count if self.count else float("nan")

    def p(self, q: float) -> float:
        return percentile(self.latencies, q)

    def ok(self, *codes: int) -> int:
        return sum(v for k, v in self.statuses.items() if int(k) in (codes or (200,)))


def run_load(
    port: int,
    requests: Sequence[Sequence[Any]] | None = None,
    *,
    request: Sequence[Any] | None = None,
    count: int = 0,
    connections: int = CONNECTIONS,
    measured: Sequence[Server] = (),
) -> Load:
    """Run the load generator as its own process; CPU of `measured` is read around it."""
    spec: dict[str, Any] = {"host": "127.0.0.1", "port": port, "connections": connections}
    if requests is not None:
        spec["requests"] = [list(r) for r in requests]
    else:
        spec["request"], spec["count"] = list(request or ()), count
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        spec_path, out_path = Path(tmp) / "spec.json", Path(tmp) / "out.json"
        spec_path.write_text(json.dumps(spec))
        before = sum(s.cpu() for s in measured)
        subprocess.run(python("bench.loadgen", str(spec_path), str(out_path)), check=True, cwd=ROOT)
        after = sum(s.cpu() for s in measured)
        out = json.loads(out_path.read_text())
    return Load(
        count=out["count"],
        elapsed=out["elapsed"],
        latencies=out["latencies"],
        statuses=out["statuses"],
        error_count=out["error_count"],
        started_at=out["started_at"],
        cpu=after - before,
    )


# --- statistics -------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    data = sorted(v for v in values if not math.isnan(v))
    if not data:
        return float("nan")
    k = (len(data) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


def median(values: Sequence[float]) -> float:
    data = sorted(v for v in values if not math.isnan(v))
    if not data:
        return float("nan")
    mid = len(data) // 2
    return data[mid] if len(data) % 2 else (data[mid - 1] + data[mid]) / 2


def wait_until(predicate: Any, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def seed_rows(table: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`rows` for an insert into `table`, refused if one names a column the table has not got:
    SQLAlchemy drops such keys without a word, so a seed written before a migration renamed a column
    (B3's and B4's events once kept `payment_id` after 0008 made it `subject_type`/`subject_id`)
    would seed rows without it, and the case would measure something else."""
    columns = set(table.c.keys())
    unknown = sorted({name for row in rows for name in row} - columns)
    if unknown:
        raise ValueError(f"{table.name} has no column(s) {', '.join(unknown)}: update the seed")
    return rows
