"""Results: the JSON file under bench/results/ and the markdown table (printed, and in the README)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import wrk
from bench.context import Context, Figure

PACKAGES = (
    "mpesa-bridge",
    "uvicorn",
    "uvloop",
    "httptools",
    "starlette",
    "fastapi",
    "sqlalchemy",
    "aiosqlite",
    "asyncpg",
    "orjson",
    "httpx",
    "python-socketio",
    "redis",
)


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), "")
    except OSError:  # pragma: no cover
        pass
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "kernel": platform.release(),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "python": sys.version.split()[0],
        "postgresql": _command(["psql", "--version"]),
        "redis": _command(["redis-server", "--version"]),
        "wrk": wrk.version(),
        "commit": _command(["git", "rev-parse", "--short", "HEAD"]),
        "packages": versions,
    }


def _command(argv: list[str]) -> str | None:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=5, check=False).stdout.strip() or None
    except OSError:
        return None


def _num(value: float | None, digits: int = 0) -> str:
    if value is None or value != value:
        return "—"
    if abs(value) >= 100 or digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def _cell(value: float | None, unit: str) -> str:
    if value is None or value != value:
        return "—"
    if unit == "x":
        return f"{value:.2f}x"
    if unit in ("ms", "ms CPU", "KB", "s"):
        return f"{value:,.2f} {unit}" if value < 10 else f"{value:,.1f} {unit}"
    return f"{_num(value)} {unit}"


def table(figures: list[Figure]) -> str:
    rows = [
        "| # | Figure | Engine | Measured | Bare app | Ratio | Server CPU/op | Target | Met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for f in figures:
        ratio = f"{f.ratio:.2f}x" if f.ratio is not None else "—"
        cpu = f"{f.cpu_ms:.3f} ms" if f.cpu_ms is not None else "—"
        if f.cpu_ms is not None and f.bare_cpu_ms is not None:
            cpu += f" (bare {f.bare_cpu_ms:.3f})"
        met = "—" if f.met is None else ("yes" if f.met else "**no**")
        rows.append(
            f"| {f.case} | {f.name} | {f.engine or '—'} | {_cell(f.value, f.unit)} | {_cell(f.bare, f.unit)} "
            f"| {ratio} | {cpu} | {f.target or '—'} | {met} |"
        )
    return "\n".join(rows)


def _pair(ours: float, theirs: float, digits: int) -> str:
    return f"{_num(ours, digits)} · {_num(theirs, digits)}"


def witness_table(figures: list[Figure]) -> str:
    """The wrk cross-check (bench/cross_check.py): each figure wrk measured beside bench/loadgen.py's."""
    rows = [
        "| # | Figure | Engine | Requests/s loadgen · wrk | p50 ms loadgen · wrk | p99 ms loadgen · wrk "
        "| Server CPU/request loadgen · wrk |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in figures:
        if not f.detail.get("cross_check"):
            continue
        ours, theirs = f.detail["loadgen"], f.detail["wrk"]
        rows.append(
            f"| {f.case} | {f.name.removesuffix(' (wrk)')} | {f.engine or '—'} "
            f"| {_pair(ours['rate_per_s'], theirs['rate_per_s'], 0)} "
            f"| {_pair(ours['latency_ms']['p50'], theirs['latency_ms']['p50'], 2)} "
            f"| {_pair(ours['latency_ms']['p99'], theirs['latency_ms']['p99'], 2)} "
            f"| {_pair(ours['cpu_ms_per_request'], theirs['cpu_ms_per_request'], 3)} ms |"
        )
    if len(rows) == 2:
        return ""
    return "Cross-check with wrk (same bridge, same run, after the load generator):\n\n" + "\n".join(rows)


def write(ctx: Context, out_dir: Path, started: datetime, settings: dict[str, Any]) -> tuple[Path, str]:
    finished = datetime.now(UTC)
    info = machine()
    header = (
        f"mpesa-bridge benchmarks — {finished:%Y-%m-%d %H:%M} UTC, {info['cores']} cores ({info['cpu']}), "
        f"Python {info['python']}, commit {info['commit']}, {'smoke' if ctx.smoke else 'full'} run, "
        f"{(finished - started).total_seconds():.0f} s"
    )
    text = header + "\n\n" + table(ctx.figures)
    witnesses = witness_table(ctx.figures)
    if witnesses:
        text += "\n\n" + witnesses
    if ctx.notes:
        text += "\n\n" + "\n".join(f"- {note}" for note in ctx.notes)
    document = {
        "started_at": started.isoformat(),
        "finished_at": finished.isoformat(),
        "smoke": ctx.smoke,
        "repetitions": ctx.reps,
        "machine": info,
        "settings": settings,
        "figures": [asdict(f) | {"ratio": f.ratio} for f in ctx.figures],
        "notes": ctx.notes,
        "table": text,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{started:%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    (out_dir / f"{started:%Y%m%dT%H%M%SZ}.md").write_text(text + "\n")
    return path, text
