"""What every case gets: the scale, fresh databases, the bare baseline, and where figures go."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import Load, median

POSTGRES_URL = os.environ.get("MPESA_BRIDGE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("MPESA_BRIDGE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


def reachable(url: str, default_port: int) -> bool:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=1):
            return True
    except OSError:
        return False


@dataclass
class Figure:
    """One measured number, with the bare app's figure for the same work when there is one."""

    case: str
    name: str
    value: float
    unit: str
    engine: str = ""
    target: str = ""
    met: bool | None = None
    bare: float | None = None
    cpu_ms: float | None = None  # server CPU per operation, milliseconds
    bare_cpu_ms: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.bare in (None, 0) or self.value != self.value:
            return None
        return self.value / self.bare  # type: ignore[operator]


@dataclass
class Baseline:
    """The bare app under the same load shape: medians over the repetitions."""

    post: Load
    get: Load


@dataclass
class Context:
    smoke: bool
    reps: int
    work: Path
    baseline: Baseline | None = None
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    only_engines: tuple[str, ...] = ()
    _pg_databases: list[str] = field(default_factory=list)

    @property
    def log_dir(self) -> Path:
        path = self.work / "logs"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def scale(self, full: int, smoke: int) -> int:
        return smoke if self.smoke else full

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    @property
    def postgres(self) -> bool:
        return reachable(POSTGRES_URL, 5432)

    @property
    def redis_url(self) -> str | None:
        return REDIS_URL if reachable(REDIS_URL, 6379) else None

    def engines(self) -> list[str]:
        available = ["sqlite", "postgres"] if self.postgres else ["sqlite"]
        if not self.postgres:
            self.note_once("PostgreSQL is not reachable: its figures are missing from this run.")
        return [e for e in available if not self.only_engines or e in self.only_engines]

    def note_once(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def fresh_database(self, engine: str, label: str) -> str:
        """An empty database of its own for one server run (the bridge migrates it on start)."""
        if engine == "sqlite":
            path = self.work / f"{label}-{secrets.token_hex(3)}.db"
            return f"sqlite+aiosqlite:///{path}"
        name = f"mb_bench_{label.replace('-', '_')}_{secrets.token_hex(3)}"
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
        self._pg_databases.append(name)
        return POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"

    def drop_databases(self) -> None:
        for name in self._pg_databases:
            asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self._pg_databases.clear()


async def _pg_admin(statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def processes_suffix(processes: int) -> str:
    """Figures of `serve --workers N` carry N in their name; one process's keep their old names."""
    return "" if processes == 1 else f" — {processes} processes"


def add_scaling(ctx: Context, case: str, engine: str, what: str, one: list[Load], two: list[Load]) -> None:
    """How 2 processes compare with 1 (medians): throughput, and CPU per operation summed over all
    the bridge's processes. On two cores shared with the load generator and the database, neither
    can double; the second figure shows what the extra process costs per operation."""
    rate = median([load.rate for load in two]) / median([load.rate for load in one])
    cpu = median([load.cpu_per_op_ms for load in two]) / median([load.cpu_per_op_ms for load in one])
    detail = {"rates": [[round(load.rate) for load in loads] for loads in (one, two)]}
    ctx.add(Figure(case, f"{what}/s, 2 processes ÷ 1", rate, "x", engine, detail=detail))
    detail = {"cpu_ms": [[round(load.cpu_per_op_ms, 4) for load in loads] for loads in (one, two)]}
    ctx.add(Figure(case, "CPU per operation (all processes), 2 processes ÷ 1", cpu, "x", engine, detail=detail))


Case = Callable[[Context], None]
