"""Server-Sent Events: a project mode's or one payment's events, live and resumable.

Every message is one event: `id: <event id>`, `event: <type>`, `data: <the event as webhooks carry
it>`. A stream opens with its resume point and a `retry:` hint (`id: <resume point>`, `retry:`, no
data: an id-only message, which sets the client's last event id without dispatching an event),
sends a comment line every heartbeat, and after its maximum age ends with another `retry:` hint:
the client reconnects — and authenticates again — with `Last-Event-ID`. Comments and the farewell
carry no `id:`, so they keep the one the client holds (an empty `id:` would erase it).

The resume point is what `Last-Event-ID` asked for or, without one, where the stream starts: the
project mode's current position for a project stream (a decimal number), `0` — its start — for a
payment's stream (so a client secret learns nothing about the project's other events). Without it
an idle stream's client reconnected with no `Last-Event-ID` and started at the new tail, losing
what committed while it waited `retry:`.

Why no event is lost or repeated, even across reconnects: a stream never forwards what the bus
says. It reads the events table from its cursor — the `position` of the last event it delivered,
a per-project-mode number given in commit order (migration 0004) — and the bus only rings to say
"read now" (a timer reads anyway). Ids are time-ordered but written by several processes, so an
event can commit after one with a larger id: resuming "after this id" would skip it, re-reading a
time window would repeat others. Its position puts it after everything already delivered, and
`Last-Event-ID` resumes from the position of that event, so nothing delivered comes again.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self

import anyio
import orjson
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.types import Receive, Send
from starlette.types import Scope as ASGIScope

from mpesa_bridge.core.errors import InvalidRequest, RateLimited
from mpesa_bridge.core.payments.entity import OutboxEvent, Subject
from mpesa_bridge.core.payments.public import event_public
from mpesa_bridge.realtime.bus import EventBus, Scope, Subscription

EVENT_ID = re.compile(r"^evt_[0-9a-z]{26}$")
POSITION = re.compile(r"^(0|[1-9][0-9]{0,17})$")  # a resume point the server gave; fits a BIGINT
PAGE_SIZE = 100
FROM_THE_START = 0  # positions start at 1
SHUTDOWN_GRACE = 1.0  # seconds a stream has, when the server stops, to say goodbye with a retry: hint


class StreamEvents(Protocol):
    """What a stream reads (storage: `SqlEventRepository`)."""

    async def stream_position(
        self, project_id: str, mode: str, event_id: str, *, subject: Subject | None = None
    ) -> int | None: ...

    async def stream_tail(self, project_id: str, mode: str) -> int: ...

    async def stream_after(
        self, project_id: str, mode: str, position: int, *, subject: Subject | None = None, limit: int = 100
    ) -> list[tuple[OutboxEvent, int]]: ...


class StreamReader(Protocol):
    @property
    def events(self) -> StreamEvents: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class EventStore(Protocol):
    def read(self) -> StreamReader: ...


@dataclass(frozen=True)
class StreamOptions:
    heartbeat: float = 15.0  # seconds between comment lines
    max_age: float = 1800.0  # seconds before the server ends the stream with a retry: hint
    retry: float = 2.0  # seconds a client should wait before reconnecting
    poll_interval: float = 10.0  # seconds between reads when the bus stays quiet
    key_recheck: float = 60.0  # seconds between checks that a key-opened stream's key still works
    page_size: int = PAGE_SIZE

    @property
    def retry_ms(self) -> int:
        return round(self.retry * 1000)


@dataclass(frozen=True)
class ResumePoint:
    """Where a stream starts (`cursor`, a position) and the id its opening message carries (`id`)."""

    cursor: int
    id: str


async def resume_point(store: EventStore, scope: Scope, last_event_id: str | None) -> ResumePoint:
    """Where a new connection starts: after `Last-Event-ID` (an event id, or a position a stream
    opened with); else a payment's first event, or for a project stream what comes next.

    A position is taken as it is: positions only grow (the counter of migration 0004 never goes
    back, even when old events are pruned), so one the server gave is never ahead of a later event,
    and a made-up one only delays its own stream."""
    if last_event_id is not None and POSITION.fullmatch(last_event_id):
        return ResumePoint(int(last_event_id), last_event_id)
    async with store.read() as uow:
        if last_event_id is None:
            if scope.subject is not None:
                return ResumePoint(FROM_THE_START, str(FROM_THE_START))
            tail = await uow.events.stream_tail(scope.project_id, scope.mode)
            return ResumePoint(tail, str(tail))
        if not EVENT_ID.fullmatch(last_event_id):
            raise InvalidRequest(
                "Last-Event-ID must be an event id (evt_…) or a stream position", param="Last-Event-ID"
            )
        found = await uow.events.stream_position(scope.project_id, scope.mode, last_event_id, subject=scope.subject)
    if found is None:  # also what another tenant's (or another payment's) event id gets
        raise InvalidRequest(
            f"Last-Event-ID '{last_event_id}' is not an event of this stream (or no longer kept)",
            code="last_event_id_unknown",
            param="Last-Event-ID",
        )
    return ResumePoint(found, last_event_id)


class TenantTails:
    """Each tenant's last committed position, read at most once per `ttl` for all the streams of a
    process. A stream woken by its timer (not by the bus) reads its page only if its tenant's tail
    moved since its last timed read: ten thousand idle streams cost one small query per tenant per
    interval, not ten thousand page reads."""

    def __init__(self, store: EventStore, ttl: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._ttl = ttl
        self._monotonic = monotonic
        self._known: dict[tuple[str, str], tuple[float, int]] = {}
        self._reading: dict[tuple[str, str], asyncio.Future[int]] = {}

    async def tail(self, project_id: str, mode: str) -> int:
        key = (project_id, mode)
        known = self._known.get(key)
        if known is not None and self._monotonic() - known[0] < self._ttl:
            return known[1]
        pending = self._reading.get(key)
        if pending is not None:  # one query answers every stream that asks meanwhile
            return await asyncio.shield(pending)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._reading[key] = future
        try:
            async with self._store.read() as uow:
                value = await uow.events.stream_tail(project_id, mode)
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved here; the waiters get it too
            raise
        finally:
            self._reading.pop(key, None)
        self._known[key] = (self._monotonic(), value)
        future.set_result(value)
        return value


class OpenStreams:
    """The SSE streams open in this process, counted per credential and per client address; a
    stream past either cap is refused (429) before it opens, so one key or one address cannot hold
    hundreds of connections, tasks and subscriptions.

    In process memory: each instance caps its own streams (what a stream holds is held by the
    process). The place is given back by the release `admit` returns — called once the response
    ends, however it ends; buckets that reach zero are dropped."""

    def __init__(self, per_credential: int, per_address: int, retry_after: int) -> None:
        self._per_credential = per_credential
        self._per_address = per_address
        self._retry_after = retry_after
        self._open: Counter[str] = Counter()

    def admit(self, credential: str, address: str) -> Callable[[], None]:
        """Count one more stream for `credential` ("key:<key id>", "client secret:<payment id>") and
        `address`, or raise RateLimited (nothing counted); the release it returns is idempotent."""
        kind = credential.partition(":")[0]
        buckets = [
            (credential, self._per_credential, f"for this {kind}"),
            (f"address:{address}", self._per_address, "from this address"),
        ]
        for bucket, cap, whose in buckets:
            if self._open[bucket] >= cap:
                raise RateLimited(
                    f"Too many open event streams {whose} (at most {cap}): close one, or retry later.",
                    retry_after=self._retry_after,
                    limit=cap,
                    code="too_many_streams",
                )
        for bucket, _, _ in buckets:
            self._open[bucket] += 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            for bucket, _, _ in buckets:
                self._open[bucket] -= 1
                if self._open[bucket] <= 0:
                    del self._open[bucket]

        return release

    def counts(self) -> dict[str, int]:
        """Every bucket with a stream open: {"key:<id>": n, "address:<ip>": m, …}."""
        return dict(self._open)


class EventStream:
    """One SSE connection's messages, from `cursor` on."""

    def __init__(
        self,
        store: EventStore,
        bus: EventBus,
        scope: Scope,
        cursor: int,
        options: StreamOptions,
        *,
        still_valid: Callable[[], Awaitable[bool]] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        tails: TenantTails | None = None,
        resume_id: str | None = None,
    ) -> None:
        self._store = store
        self._resume_id = resume_id if resume_id is not None else str(cursor)
        self._tails = tails  # None: every timed wake reads its page
        self._seen_tail: int | None = None
        self._bus = bus
        self.scope = scope
        self.cursor = cursor
        self._options = options
        self._still_valid = still_valid  # a key's stream: ends once the key stops working
        self._monotonic = monotonic
        self.stopping = anyio.Event()  # set when the server shuts down (sse-starlette sets it)

    async def messages(self) -> AsyncIterator[ServerSentEvent]:
        options = self._options
        ends_at = self._monotonic() + options.max_age
        check_at = self._monotonic() + options.key_recheck
        yield ServerSentEvent(id=self._resume_id, retry=options.retry_ms)  # the resume point, before anything else
        with self._bus.subscribe(self.scope) as doorbell, self._ring_when_stopping(doorbell):
            rung = True  # the first read is unconditional
            while True:
                doorbell.clear()  # a ring while we read means: read again
                page = await self._next_page() if rung or await self._tenant_moved() else []
                for event, position in page:
                    yield event_message(event)
                    self.cursor = position
                now = self._monotonic()
                if now >= ends_at or self.stopping.is_set():
                    reason = "server stopping" if self.stopping.is_set() else "maximum connection age reached"
                    yield ServerSentEvent(comment=f"{reason}: reconnect", retry=options.retry_ms)
                    return
                if self._still_valid is not None and now >= check_at:
                    if not await self._still_valid():
                        yield ServerSentEvent(comment="credentials no longer valid")
                        return  # no retry hint: a reconnect would be refused
                    check_at = now + options.key_recheck
                rung = True
                if len(page) < options.page_size:
                    next_check = check_at if self._still_valid is not None else ends_at
                    rung = await doorbell.wait(min(options.poll_interval, ends_at - now, next_check - now))
                    rung = rung or self.stopping.is_set()

    async def _tenant_moved(self) -> bool:
        """After a timed wake: has anything committed in the tenant since the last timed read?
        The tail is noted before the read, so an event committed during or after it moves the tail."""
        if self._tails is None:
            return True
        tail = await self._tails.tail(self.scope.project_id, self.scope.mode)
        if tail == self._seen_tail:
            return False
        self._seen_tail = tail
        return True

    @contextlib.contextmanager
    def _ring_when_stopping(self, doorbell: Subscription) -> Iterator[None]:
        async def ring() -> None:
            await self.stopping.wait()
            doorbell.ring()

        watcher = asyncio.create_task(ring(), name="sse-stopping")
        try:
            yield
        finally:
            watcher.cancel()

    async def _next_page(self) -> list[tuple[OutboxEvent, int]]:
        scope = self.scope
        async with self._store.read() as uow:
            return await uow.events.stream_after(
                scope.project_id, scope.mode, self.cursor, subject=scope.subject, limit=self._options.page_size
            )


def event_message(event: OutboxEvent) -> ServerSentEvent:
    return ServerSentEvent(data=orjson.dumps(event_public(event)).decode(), event=event.type, id=event.id)


def allowed_origin(allowed: Sequence[str], origin: str | None) -> str | None:
    """The Access-Control-Allow-Origin value for a request from `origin` (None: no header)."""
    if "*" in allowed:
        return "*"
    return origin if origin is not None and origin in allowed else None


class _StreamResponse(EventSourceResponse):
    """An SSE response that calls `on_close` once it is over: finished, client gone, server stopping,
    or cancelled."""

    def __init__(self, *args: Any, on_close: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_close = on_close

    async def __call__(self, scope: ASGIScope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_close()


def sse_response(
    stream: EventStream,
    options: StreamOptions,
    *,
    origin: str | None = None,
    on_close: Callable[[], None] = lambda: None,
) -> EventSourceResponse:
    headers = {}
    if origin is not None:
        headers["Access-Control-Allow-Origin"] = origin
        if origin != "*":
            headers["Vary"] = "Origin"
    return _StreamResponse(
        stream.messages(),
        on_close=on_close,
        headers=headers,
        ping=options.heartbeat,
        ping_message_factory=lambda: ServerSentEvent(comment="heartbeat"),
        shutdown_event=stream.stopping,
        shutdown_grace_period=SHUTDOWN_GRACE,
    )
