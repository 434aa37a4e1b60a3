"""How our HTTP servers run: uvicorn with httptools on uvloop. Light on purpose (the benchmarks'
bare baseline app is served with exactly this, without importing the bridge)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Sequence
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from mpesa_bridge.serving_limits import ConnectionLimits, bounded_protocol

__all__ = ["STARTUP_FAILURE", "ConnectionLimits", "event_loop_factory", "serve_processes", "server_config"]

# Seconds a server process has to answer the supervisor's ping before it is killed and replaced.
# It answers from a thread, once spawned and unpickled (about 1 s of CPU; the app is built after):
# on a loaded two-core machine that can exceed uvicorn's 5 s (the whole app's imports took 9 s of
# wall time here), and a process killed while starting is started again, and killed again.
HEALTHCHECK_TIMEOUT = 30


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


class ProcessesConfig(uvicorn.Config):
    """The supervisor's side of `serve_processes`: it binds the socket and supervises. Each process
    gets it pickled, with `build`, and turns into `build()`'s config when its server loads: the
    app, its runtime and our protocol class (with a connection gate of its own) are built in each
    process, after the supervisor's health checks are answered, and never pickled."""

    def __init__(self, build: Callable[[], uvicorn.Config], host: str, port: int, workers: int) -> None:
        super().__init__(
            build,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
            access_log=False,
            timeout_worker_healthcheck=HEALTHCHECK_TIMEOUT,
        )
        self.build = build

    def load(self) -> None:
        built = self.build()
        built.load()
        vars(self).update(vars(built))  # the server reads everything from this object


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound as uvicorn binds its own, for a port served beside the main one (the metrics port)."""
    return uvicorn.Config("unused:app", host=host, port=port).bind_socket()  # only binds: no app is loaded


def serve_processes(
    build: Callable[[], uvicorn.Config], host: str, port: int, workers: int, extra_ports: Sequence[int] = ()
) -> int:
    """Serve on `workers` processes sharing one listening socket, under uvicorn's supervisor: a
    process that dies is replaced; SIGTERM or SIGINT stops them all, each gracefully like one
    server. `build` must be picklable (a module-level function, or a partial of one). Each of
    `extra_ports` is bound once here and served by every process with the same app. The exit
    status: 0 once stopped by a signal, uvicorn's 3 if a process failed to start."""
    from uvicorn.supervisors import Multiprocess

    config = ProcessesConfig(build, host, port, workers)
    sockets = [config.bind_socket(), *(listening_socket(host, extra) for extra in extra_ports)]
    supervisor = Multiprocess(config, sockets=sockets)
    supervisor.run()
    return STARTUP_FAILURE if any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes) else 0


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop where it is installed (it is on Linux and macOS), the standard loop elsewhere."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency wherever it builds
        return asyncio.new_event_loop
    return uvloop.new_event_loop
