"""`serve --workers N`: N server processes on one port, for PostgreSQL.

Each process is a whole `serve`: its own database pool, Daraja client, connection gate and read
deadlines, and the background workers. Every process runs the workers, as N `serve` instances on
one database do: a callback is applied at once by the inbox of the process that stored it, and
the claims are safe across processes (callbacks and due queries `FOR UPDATE SKIP LOCKED`, webhook
deliveries under a lease, one dispatcher at a time by an advisory lock), so a replaced process
needs no hand-over. What is still per process: rate limits, the signed-request replay guard and
Socket.IO rooms, unless MPESA_BRIDGE_REDIS_URL is set; SSE streams also find what another process
committed by reading the events table (MPESA_BRIDGE_SSE_POLL_INTERVAL).

Kept light on purpose: each process imports this module before it answers the supervisor's
health checks; the app is imported afterwards.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from mpesa_bridge.config import Settings
from mpesa_bridge.logging import configure_logging, get_logger
from mpesa_bridge.observability.multiprocess import use_directory
from mpesa_bridge.serving import STARTUP_FAILURE, serve_processes

if TYPE_CHECKING:
    import uvicorn

log = get_logger("mpesa_bridge.cli")


def processes_refusal(settings: Settings, *, dev: bool) -> str | None:
    """Why `settings` cannot run `settings.workers` processes, or None if it can."""
    if settings.workers == 1:
        return None
    if settings.resolved_database_url.partition(":")[0].split("+")[0] == "sqlite":
        return (
            "MPESA_BRIDGE_WORKERS (--workers) above 1 needs PostgreSQL (MPESA_BRIDGE_DATABASE_URL=postgresql://…): "
            "SQLite takes one writer at a time, so more processes would add lock waits, not throughput"
        )
    if dev:
        return "--dev runs one process: leave out --dev or MPESA_BRIDGE_WORKERS (--workers)"
    if settings.mount_simulator:
        return (
            "MPESA_BRIDGE_WORKERS (--workers) above 1 cannot mount the Daraja simulator, which keeps its payments "
            "in one process's memory: set MPESA_BRIDGE_SIMULATOR_ENABLED=false (and MPESA_BRIDGE_SIMULATOR_URL "
            "to a `mpesa-bridge simulator` if you want one)"
        )
    return None


def child_settings(settings: Settings) -> Settings:
    """What each process runs with: migrations are the supervisor's, done once before they start
    (two processes migrating at once would race to create the same tables)."""
    return settings.model_copy(update={"migrate_on_start": False})


def process_config(settings: Settings) -> uvicorn.Config:
    """In each process, once its supervisor link is up: one `serve`'s server config."""
    from mpesa_bridge.cli.serve import serve_config

    return serve_config(settings)


def serve_several(settings: Settings) -> int:
    """Migrate once, then run `settings.workers` processes until a signal; the exit status."""
    from mpesa_bridge.cli.serve import connection_limits
    from mpesa_bridge.storage.migrate import upgrade

    configure_logging(settings.log_level, json=settings.json_logs)
    connection_limits(settings)  # a bad proxy list stops the start here, not in each process
    if settings.should_migrate_on_start:
        try:
            upgrade(settings.resolved_database_url)
        except Exception:  # as one process's failed start-up: logged, status 3
            log.exception("server.migration_failed")
            return STARTUP_FAILURE
    if not settings.redis_url:
        log.warning(
            "server.processes_without_redis",
            detail="rate limits, the replay guard and Socket.IO rooms are per process: set MPESA_BRIDGE_REDIS_URL",
        )
    log.info("server.processes_starting", workers=settings.workers, port=settings.port)
    use_directory(settings.data_dir, "serve")  # every process's metrics, one scrape (observability/multiprocess.py)
    build = functools.partial(process_config, child_settings(settings))
    extra_ports = [settings.metrics_port] if settings.metrics_port else []
    status = serve_processes(build, settings.host, settings.port, settings.workers, extra_ports)
    log.info("server.processes_stopped", status=status)
    return status
