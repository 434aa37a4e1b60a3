"""How our HTTP servers run: uvicorn with httptools on uvloop. Light on purpose (the benchmarks'
bare baseline app is served with exactly this, without importing the bridge)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import uvicorn

from mpesa_bridge.serving_limits import ConnectionLimits, bounded_protocol

__all__ = ["ConnectionLimits", "event_loop_factory", "server_config"]


def server_config(app: Any, host: str, port: int, limits: ConnectionLimits | None = None) -> uvicorn.Config:
    """`limits`: read deadlines and connection caps (serving_limits.py); their defaults when None."""
    limits = limits or ConnectionLimits()
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
        # Client addresses come from MPESA_BRIDGE_TRUSTED_PROXIES alone, not uvicorn's own rules.
        proxy_headers=False,
        # httptools' parser with our deadlines and caps; the loop is `event_loop_factory()`'s.
        http=bounded_protocol(limits),
        timeout_keep_alive=limits.keep_alive_timeout,  # type: ignore[arg-type]  # a float works
        # No `server: uvicorn` banner on every answer (nothing to tell a scanner); `date` stays
        # (RFC 9110 asks an origin server with a clock to send it).
        server_header=False,
    )


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop where it is installed (it is on Linux and macOS), the standard loop elsewhere."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency wherever it builds
        return asyncio.new_event_loop
    return uvloop.new_event_loop
