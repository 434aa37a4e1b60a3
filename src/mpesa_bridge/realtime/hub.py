"""Announcing committed events live: the database's after-commit listener.

`Realtime.announce` is called by the unit of work right after a commit that wrote outbox events
(never after a rollback, so nothing that did not happen is ever announced). It rings the SSE
streams through the bus and queues the Socket.IO emits, which one task sends in commit order.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Protocol

from mpesa_bridge.core.payments.entity import OutboxEvent
from mpesa_bridge.logging import get_logger
from mpesa_bridge.realtime.bus import EventBus, Notice, bus_for
from mpesa_bridge.realtime.socketio import RedisSocketEmitter

log = get_logger("mpesa_bridge.realtime")

DRAIN_TIMEOUT = 2.0  # seconds given to queued emits when the process stops


class SocketEmitter(Protocol):
    async def emit(self, event: OutboxEvent) -> None: ...

    async def aclose(self) -> None: ...


class Realtime:
    """The bus for SSE streams and, when there is one, a Socket.IO emitter."""

    def __init__(self, bus: EventBus, sockets: SocketEmitter | None = None) -> None:
        self.bus = bus
        self.sockets = sockets
        self._emits: asyncio.Queue[OutboxEvent] = asyncio.Queue()
        self._emitter: asyncio.Task[None] | None = None

    def announce(self, events: Sequence[OutboxEvent]) -> None:
        """After a commit: never blocks, never raises (the transaction is done whatever happens here)."""
        try:
            self.bus.publish([Notice.of(e) for e in events])
            if self.sockets is None:
                return
            for event in events:
                self._emits.put_nowait(event)
            if self._emitter is None or self._emitter.done():
                self._emitter = asyncio.create_task(self._emit_forever(), name="realtime-socket-emit")
        except Exception:
            log.exception("realtime.announce_failed", events=len(events))

    async def use_sockets(self, sockets: SocketEmitter) -> None:
        """Emit through `sockets` from now on (the server's Socket.IO, instead of a write-only emitter)."""
        previous, self.sockets = self.sockets, sockets
        if previous is not None and previous is not sockets:
            await previous.aclose()

    async def drained(self) -> None:
        """Wait until every emit queued so far has been sent."""
        await self._emits.join()

    async def _emit_forever(self) -> None:
        while True:
            event = await self._emits.get()
            try:
                if self.sockets is not None:
                    await self.sockets.emit(event)
            except Exception:
                log.exception("realtime.emit_failed", event_id=event.id)
            finally:
                self._emits.task_done()

    async def aclose(self) -> None:
        if self._emitter is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(DRAIN_TIMEOUT):
                    await self._emits.join()
            self._emitter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._emitter
            self._emitter = None
        if self.sockets is not None:
            await self.sockets.aclose()
        await self.bus.aclose()


def realtime_for(redis_url: str | None) -> Realtime:
    """Memory bus and no Socket.IO emitter for one process; with Redis, the Redis bus and a
    write-only Socket.IO emitter (a `worker` process reaches the servers' sockets through it; the
    server replaces it with its own Socket.IO server)."""
    sockets = RedisSocketEmitter(redis_url) if redis_url else None
    return Realtime(bus_for(redis_url), sockets)
