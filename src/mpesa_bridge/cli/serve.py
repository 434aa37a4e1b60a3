"""`serve` and `worker`: run the bridge until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import signal

import typer
import uvicorn

from mpesa_bridge.api.app import create_app
from mpesa_bridge.cli.dev import banner, daraja_description, ensure_dev_project
from mpesa_bridge.config import Settings
from mpesa_bridge.logging import configure_logging, get_logger
from mpesa_bridge.runtime import build_runtime
from mpesa_bridge.serving import server_config

log = get_logger("mpesa_bridge.cli")


async def serve_forever(settings: Settings, *, dev: bool) -> None:
    configure_logging(settings.log_level, json=settings.json_logs)
    if dev:
        runtime = await build_runtime(settings)
        try:
            project_id, secret = await ensure_dev_project(runtime)
        finally:
            await runtime.aclose()
        typer.echo(banner(settings.resolved_public_base_url, project_id, secret, daraja_description(settings)))
    await uvicorn.Server(server_config(create_app(settings), settings.host, settings.port)).serve()


async def work_forever(settings: Settings) -> None:
    """The workers alone: the inbox sweep and reconciliation, in a process of their own."""
    configure_logging(settings.log_level, json=settings.json_logs)
    runtime = await build_runtime(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await runtime.start_workers()
    log.info("worker.started", database=runtime.db.dialect)
    try:
        await stop.wait()
    finally:
        await runtime.aclose()
        log.info("worker.stopped")
