"""The live bus: tells the SSE streams of every instance that an event committed in their scope.

    EventBus (Protocol)
    ├── MemoryBus — one process: `publish` wakes this process's subscribers
    └── RedisBus  — many instances: `publish` wakes local subscribers at once and, through one Redis
                    pub/sub channel, those of every other instance

Only notices travel — (project, mode, payment, event id), no payment data. A woken stream reads
the events table itself, in commit order, so the bus may lose a notice (Redis restarting, a
publish failing) without a stream losing an event: each stream also reads on a timer, and after
Redis comes back every local stream is woken to catch up.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from mpesa_bridge.core.payments.entity import PAYMENT, OutboxEvent, Subject
from mpesa_bridge.logging import get_logger

log = get_logger("mpesa_bridge.realtime")

CHANNEL = "mpesa-bridge:events"
REDIS_TIMEOUT = 2.0  # seconds to connect or publish; a publish never holds anything up for longer
RECONNECT_DELAYS = (0.1, 0.5, 1.0, 2.0, 5.0)  # seconds between attempts to listen again, last repeats


@dataclass(frozen=True)
class Notice:
    """That an event committed: enough to find the streams it concerns, nothing a stream shows."""

    project_id: str
    mode: str
    subject: Subject | None
    event_id: str

    @classmethod
    def of(cls, event: OutboxEvent) -> Notice:
        return cls(event.project_id, event.mode, event.subject, event.id)


@dataclass(frozen=True)
class Scope:
    """What a stream may see: a project's mode, or one subject in it (a payment)."""

    project_id: str
    mode: str
    subject: Subject | None = None

    def covers(self, notice: Notice) -> bool:
        if (notice.project_id, notice.mode) != (self.project_id, self.mode):
            return False
        return self.subject is None or notice.subject == self.subject


class Subscription:
    """A stream's doorbell: rung when an event in its scope may have committed."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self._rung = asyncio.Event()

    def ring(self) -> None:
        self._rung.set()

    @property
    def rung(self) -> bool:
        return self._rung.is_set()

    def clear(self) -> None:
        """Forget earlier rings; call before reading, so that a ring during the read is kept."""
        self._rung.clear()

    async def wait(self, seconds: float) -> bool:
        """True when rung, False after `seconds`."""
        try:
            async with asyncio.timeout(max(0.0, seconds)):
                await self._rung.wait()
        except TimeoutError:
            return False
        return True


class EventBus(Protocol):
    def publish(self, notices: Sequence[Notice]) -> None:
        """Announce committed events. Never blocks, never raises."""
        ...

    def subscribe(self, scope: Scope) -> contextlib.AbstractContextManager[Subscription]: ...

    async def aclose(self) -> None: ...


class MemoryBus:
    """Subscribers of this process only: enough for one instance (the worker's events then reach
    streams through their timed reads)."""

    def __init__(self) -> None:
        self._subscribers: dict[tuple[str, str], set[Subscription]] = {}

    def publish(self, notices: Sequence[Notice]) -> None:
        for notice in notices:
            self.deliver(notice)

    def deliver(self, notice: Notice) -> None:
        for subscription in self._subscribers.get((notice.project_id, notice.mode), ()):
            if subscription.scope.covers(notice):
                subscription.ring()

    def ring_all(self) -> None:
        for subscriptions in self._subscribers.values():
            for subscription in subscriptions:
                subscription.ring()

    @contextlib.contextmanager
    def subscribe(self, scope: Scope) -> Iterator[Subscription]:
        subscription = Subscription(scope)
        tenant = (scope.project_id, scope.mode)
        self._subscribers.setdefault(tenant, set()).add(subscription)
        try:
            yield subscription
        finally:
            subscribers = self._subscribers.get(tenant, set())
            subscribers.discard(subscription)
            if not subscribers:
                self._subscribers.pop(tenant, None)

    async def aclose(self) -> None:
        self._subscribers.clear()


class RedisBus(MemoryBus):
    """Notices shared by every instance through one Redis pub/sub channel.

    Publishing goes through a queue and one task, so that the commit that announces never waits
    for Redis. Listening starts with the first local subscriber. Each instance ignores its own
    notices coming back: it rang its subscribers already when it published.
    """

    def __init__(self, url: str, *, channel: str = CHANNEL) -> None:
        super().__init__()
        self.channel = channel
        self.origin = uuid.uuid4().hex
        self._url = url
        self._client: aioredis.Redis | None = None
        self._outgoing: asyncio.Queue[bytes] = asyncio.Queue()
        self._publisher: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()  # set while subscribed to the channel (tests wait on it)

    def publish(self, notices: Sequence[Notice]) -> None:
        super().publish(notices)
        if not notices:
            return
        payload = {"origin": self.origin, "notices": [_encode(n) for n in notices]}
        self._outgoing.put_nowait(orjson.dumps(payload))
        if self._publisher is None or self._publisher.done():
            self._publisher = asyncio.create_task(self._publish_forever(), name="realtime-bus-publish")

    @contextlib.contextmanager
    def subscribe(self, scope: Scope) -> Iterator[Subscription]:
        if self._listener is None or self._listener.done():
            self._listener = asyncio.create_task(self._listen_forever(), name="realtime-bus-listen")
        with super().subscribe(scope) as subscription:
            yield subscription

    def _redis(self) -> aioredis.Redis:
        if self._client is None:
            self._client = aioredis.Redis.from_url(
                self._url, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT
            )
        return self._client

    async def _publish_forever(self) -> None:
        while True:
            payload = await self._outgoing.get()
            try:
                await self._redis().publish(self.channel, payload)
            except (RedisError, OSError) as exc:
                # Streams elsewhere learn of the event on their next timed read instead.
                log.warning("realtime.bus.publish_failed", error=type(exc).__name__)

    async def _listen_forever(self) -> None:
        failures = 0
        while True:
            try:
                await self._listen()
            except (RedisError, OSError) as exc:
                self.listening.clear()
                delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
                failures += 1
                log.warning("realtime.bus.listen_failed", error=type(exc).__name__, retry_in=delay)
                await asyncio.sleep(delay)
            else:  # pragma: no cover - listen() only returns by raising
                failures = 0

    async def _listen(self) -> None:
        # Its own connection with no read timeout: a quiet channel is not an error. Health checks
        # (PINGs) find a connection that died without closing.
        client = aioredis.Redis.from_url(self._url, socket_connect_timeout=REDIS_TIMEOUT, health_check_interval=15)
        try:
            async with client.pubsub(ignore_subscribe_messages=True) as pubsub:
                await pubsub.subscribe(self.channel)
                self.listening.set()
                # Anything announced while we were not listening is in the table: let every stream look.
                self.ring_all()
                async for message in pubsub.listen():
                    self._receive(message)
        finally:
            self.listening.clear()
            await client.aclose()

    def _receive(self, message: dict[str, Any]) -> None:
        if message.get("type") != "message":
            return
        try:
            payload = orjson.loads(message["data"])
            if payload.get("origin") == self.origin:
                return
            notices = [_decode(item) for item in payload["notices"]]
        except (ValueError, KeyError, TypeError):
            log.warning("realtime.bus.bad_message")
            return
        for notice in notices:
            self.deliver(notice)

    async def aclose(self) -> None:
        for task in (self._publisher, self._listener):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._publisher = self._listener = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        await super().aclose()


def _encode(notice: Notice) -> list[str | None]:
    # A payment (or no subject) in the four items processes before migration 0008 read and
    # write, so that old and new processes understand each other during a rolling upgrade;
    # any other subject type adds its type as a fifth.
    subject = notice.subject
    if subject is None:
        return [notice.project_id, notice.mode, None, notice.event_id]
    if subject.type == PAYMENT:
        return [notice.project_id, notice.mode, subject.id, notice.event_id]
    return [notice.project_id, notice.mode, subject.id, notice.event_id, subject.type]


def _decode(item: Any) -> Notice:
    project_id, mode, subject_id, event_id, *rest = item
    subject_type = rest[0] if len(rest) == 1 else (PAYMENT if not rest else None)
    if not all(isinstance(v, str) for v in (project_id, mode, event_id)) or len(rest) > 1:
        raise ValueError("malformed notice")
    if subject_id is None:
        return Notice(project_id, mode, None, event_id)
    if not isinstance(subject_id, str) or not isinstance(subject_type, str):
        raise ValueError("malformed notice")
    return Notice(project_id, mode, Subject(subject_type, subject_id), event_id)


def bus_for(redis_url: str | None) -> MemoryBus:
    """Redis when configured (several instances), memory otherwise."""
    return RedisBus(redis_url) if redis_url else MemoryBus()
