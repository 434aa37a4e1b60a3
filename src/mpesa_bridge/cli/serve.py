"""`serve` and `worker`: run the bridge until SIGINT/SIGTERM (`serve --workers N`: cli/processes.py)."""

from __future__ import annotations

import asyncio
import os
import signal

import typer
import uvicorn

from mpesa_bridge.api.net import networks_from
from mpesa_bridge.config import Settings
from mpesa_bridge.files import PRIVATE_DIR, PRIVATE_FILE, tighten
from mpesa_bridge.logging import configure_logging, get_logger
from mpesa_bridge.observability.errors import configure_error_reporting
from mpesa_bridge.observability.multiprocess import use_directory
from mpesa_bridge.serving import ConnectionLimits, listening_socket, server_config

# The app and the runtime are imported where they are built: the supervisor of `serve --workers N`
# uses this module's checks and never builds either.

log = get_logger("mpesa_bridge.cli")


async def serve_forever(settings: Settings, *, dev: bool) -> None:
    use_directory(settings.data_dir, "serve")  # metrics in files: a `worker` beside it is scraped too
    config = serve_config(settings)
    if dev:
        from mpesa_bridge.cli.dev import banner, daraja_description, ensure_dev_account, ensure_dev_project
        from mpesa_bridge.runtime import build_runtime

        runtime = await build_runtime(settings)
        try:
            project_id, secret = await ensure_dev_project(runtime)
            account = await ensure_dev_account(runtime, project_id)
        finally:
            await runtime.aclose()
        base = settings.resolved_public_base_url
        typer.echo(banner(base, project_id, secret, daraja_description(settings), account))
    sockets = None
    if settings.metrics_port:  # /metrics alone answers there (api/metrics.py)
        sockets = [config.bind_socket(), listening_socket(settings.host, settings.metrics_port)]
    await uvicorn.Server(config).serve(sockets=sockets)


def serve_config(settings: Settings) -> uvicorn.Config:
    """One server process's config, the same with one process or several (cli/processes.py)."""
    configure_logging(settings.log_level, json=settings.json_logs)
    keep_files_private(settings)
    from mpesa_bridge.api.app import create_app

    return server_config(create_app(settings), settings.host, settings.port, connection_limits(settings))


def keep_files_private(settings: Settings) -> None:
    """Whatever this process creates is its user's alone (umask 077: files 0600, folders 0700, whoever
    creates them: SQLite, a migration, a later feature), and a data directory an older version left
    readable is tightened. The database files are tightened where they are opened (storage/db.py)."""
    from mpesa_bridge.cli.dev import DEV_FILE

    os.umask(0o077)
    kept = [(settings.data_dir, PRIVATE_DIR)]
    kept += [(settings.data_dir / name, PRIVATE_FILE) for name in ("master.key", DEV_FILE)]
    for path, mode in kept:
        if tighten(path, mode):
            log.warning("storage.permissions_tightened", path=str(path), mode=oct(mode))


def connection_limits(settings: Settings) -> ConnectionLimits:
    proxies = tuple(networks_from(settings).trusted_proxies)  # a typo is a ConfigError naming the variable
    return ConnectionLimits(
        header_timeout=settings.header_timeout,
        body_timeout=settings.body_timeout,
        keep_alive_timeout=settings.keep_alive_timeout,
        max_connections=settings.max_connections,
        max_connections_per_address=settings.max_connections_per_address,
        ipv6_prefix=settings.rate_limit_ipv6_prefix,
        exempt_networks=proxies,
    )


async def work_forever(settings: Settings) -> None:
    """The workers alone: the inbox sweep and reconciliation, in a process of their own."""
    configure_logging(settings.log_level, json=settings.json_logs)
    keep_files_private(settings)
    use_directory(settings.data_dir, "worker")  # scraped by a server on the same data directory
    configure_error_reporting(settings)
    from mpesa_bridge.runtime import build_runtime

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
