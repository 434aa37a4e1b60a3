"""B7 — resident memory of an idle bridge (SQLite, workers running, simulator mounted as in `make run`)."""

from __future__ import annotations

import time

import httpx

from bench.context import Context, Figure
from bench.harness import admin_create_project, bare_server, bridge_server, median

TARGET_MB = 150


def run(ctx: Context) -> None:
    samples, bare_samples = [], []
    for rep in range(ctx.reps):
        url = ctx.fresh_database("sqlite", f"b7-{rep}")
        with bridge_server(ctx.log_dir, ctx.work / "data", url, name="b7").start() as bridge:
            # Touch the main paths once so their imports and caches count, then let it settle.
            project = admin_create_project(bridge)
            key = project["secret_keys"]["test"]
            httpx.get(f"{bridge.url}/v1/payments", headers={"Authorization": f"Bearer {key}"}, timeout=10)
            time.sleep(0.5 if ctx.smoke else 2.0)
            samples.append(bridge.rss() / 2**20)
        with bare_server(ctx.log_dir).start() as bare:
            time.sleep(0.2)
            bare_samples.append(bare.rss() / 2**20)
    value = median(samples)
    ctx.add(
        Figure(
            "B7",
            "idle bridge resident memory",
            value,
            "MB",
            engine="sqlite",
            target=f"≤ {TARGET_MB} MB",
            met=value <= TARGET_MB,
            bare=median(bare_samples),
            detail={"samples_mb": samples},
        )
    )
