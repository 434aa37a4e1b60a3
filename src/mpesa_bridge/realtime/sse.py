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
import math
import re
import signal
import time
from collections import Counter
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Protocol, Self

import orjson
from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.types import Receive, Send
from starlette.types import Scope as ASGIScope

from mpesa_bridge.core.errors import InvalidRequest, RateLimited
from mpesa_bridge.core.payments.entity import OutboxEvent, Subject
from mpesa_bridge.core.payments.public import event_public
from mpesa_bridge.observability.instruments import REALTIME_CONNECTIONS
from mpesa_bridge.realtime.bus import EventBus, Scope, Subscription

EVENT_ID = re.compile(r"^evt_[0-9a-z]{26}$")
POSITION = re.compile(r"^(0|[1-9][0-9]{0,17})$")  # a resume point the server gave; fits a BIGINT
PAGE_SIZE = 100
FROM_THE_START = 0  # positions start at 1
SHUTDOWN_GRACE = 1.0  # seconds a stream has, when the server stops, to say goodbye with a retry: hint
STOP_POLL = 0.5  # seconds between looks at whether the server is stopping


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
        REALTIME_CONNECTIONS.labels("sse").inc()
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            REALTIME_CONNECTIONS.labels("sse").dec()
            for bucket, _, _ in buckets:
                self._open[bucket] -= 1
                if self._open[bucket] <= 0:
                    del self._open[bucket]

        return release

    def counts(self) -> dict[str, int]:
        """Every bucket with a stream open: {"key:<id>": n, "address:<ip>": m, …}."""
        return dict(self._open)


class EventStream:
    """One SSE connection's messages, from `cursor` on, heartbeats included.

    It waits in one place — its doorbell, with a deadline at the next heartbeat, timed read, key
    check or maximum age — and what happens around it rings that doorbell: the client leaving
    (`client_gone`), the server stopping (`server_stopping`)."""

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
        shown: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        self._store = store
        self._shown = shown  # what this stream's reader may see of an event (None: all of it)
        self._resume_id = resume_id if resume_id is not None else str(cursor)
        self._tails = tails  # None: every timed wake reads its page
        self._seen_tail: int | None = None
        self._bus = bus
        self.scope = scope
        self.cursor = cursor
        self._options = options
        self._still_valid = still_valid  # a key's stream: ends once the key stops working
        self._monotonic = monotonic
        self._doorbell: Subscription | None = None  # while subscribed
        self.stopping = False  # the server shuts down: say goodbye with a retry: hint
        self.gone = False  # the client left: end without a word

    def server_stopping(self) -> None:
        self.stopping = True
        self._ring()

    def client_gone(self) -> None:
        self.gone = True
        self._ring()

    def _ring(self) -> None:
        if self._doorbell is not None:
            self._doorbell.ring()

    async def messages(self) -> AsyncGenerator[Message, None]:
        options = self._options
        opened = self._monotonic()
        ends_at = opened + options.max_age
        check_at = opened + options.key_recheck
        beat_at = opened + options.heartbeat if options.heartbeat > 0 else math.inf
        yield Message(id=self._resume_id, retry=options.retry_ms)  # the resume point, before anything else
        with self._bus.subscribe(self.scope) as doorbell:
            self._doorbell = doorbell
            try:
                rung = True  # the first read is unconditional
                while not self.gone:
                    doorbell.clear()  # a ring while we read means: read again
                    page = await self._next_page() if rung or await self._tenant_moved() else []
                    for index in range(len(page)):  # no loop variable keeps an event while we wait
                        yield event_message(page[index][0], self._shown)
                        self.cursor = page[index][1]
                    full = len(page) >= options.page_size
                    page = []  # an idle stream holds none of what it sent (issue 10)
                    now = self._monotonic()
                    if self.gone:
                        return
                    if now >= ends_at or self.stopping:
                        reason = "server stopping" if self.stopping else "maximum connection age reached"
                        yield Message(comment=f"{reason}: reconnect", retry=options.retry_ms)
                        return
                    if self._still_valid is not None and now >= check_at:
                        if not await self._still_valid():
                            yield Message(comment="credentials no longer valid")
                            return  # no retry hint: a reconnect would be refused
                        check_at = now + options.key_recheck
                    rung = True
                    if not full:
                        next_check = check_at if self._still_valid is not None else ends_at
                        wake_at = now + min(options.poll_interval, ends_at - now, next_check - now)
                        while True:  # until rung or the timed wake; heartbeats meanwhile
                            rung = await doorbell.wait(min(wake_at, beat_at) - now)
                            rung = rung or self.stopping or self.gone
                            now = self._monotonic()
                            if rung:
                                break
                            if now >= beat_at:
                                yield HEARTBEAT
                                beat_at = max(beat_at + options.heartbeat, now)
                            if now >= wake_at:
                                break
            finally:
                self._doorbell = None

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

    async def _next_page(self) -> list[tuple[OutboxEvent, int]]:
        scope = self.scope
        async with self._store.read() as uow:
            return await uow.events.stream_after(
                scope.project_id, scope.mode, self.cursor, subject=scope.subject, limit=self._options.page_size
            )


@dataclass(frozen=True, slots=True)
class Message:
    """One SSE message: comment lines, then `id:`, `event:`, `data:` lines and `retry:`; CRLF ends
    each line and a blank line the message."""

    data: str | None = None
    event: str | None = None
    id: str | None = None
    retry: int | None = None
    comment: str | None = None

    def encode(self) -> bytes:
        lines: list[str] = []
        if self.comment is not None:
            lines += [f": {line}" for line in _LINE_BREAK.split(self.comment)]
        if self.id is not None:
            lines.append("id: " + _LINE_BREAK.sub("", self.id))
        if self.event is not None:
            lines.append("event: " + _LINE_BREAK.sub("", self.event))
        if self.data is not None:
            lines += [f"data: {line}" for line in _LINE_BREAK.split(self.data)]
        if self.retry is not None:
            lines.append(f"retry: {self.retry}")
        return "".join(line + "\r\n" for line in lines).encode() + b"\r\n"


_LINE_BREAK = re.compile(r"\r\n|\r|\n")
HEARTBEAT = Message(comment="heartbeat")


def event_message(event: OutboxEvent, shown: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> Message:
    public = event_public(event)
    return Message(data=orjson.dumps(shown(public) if shown else public).decode(), event=event.type, id=event.id)


def allowed_origin(allowed: Sequence[str], origin: str | None) -> str | None:
    """The Access-Control-Allow-Origin value for a request from `origin` (None: no header)."""
    if "*" in allowed:
        return "*"
    return origin if origin is not None and origin in allowed else None


class _StreamResponse(Response):
    """An SSE response that runs in the request's own task: it sends the stream's messages as they
    come, and calls `on_close` once it is over (finished, client gone, server stopping, cancelled).

    Besides that task, one task per stream waits on `receive()` for the client's disconnect; the
    server's shutdown is watched by one task for every stream of the process (`_ServerStop`).
    Stopping gives a stream SHUTDOWN_GRACE seconds to send its farewell, then ends it."""

    media_type = "text/event-stream"

    def __init__(self, stream: EventStream, *, headers: Mapping[str, str], on_close: Callable[[], None]) -> None:
        self.status_code = 200
        self.background = None
        all_headers = MutableHeaders(headers=dict(headers))
        all_headers.setdefault("Cache-Control", "no-store")
        all_headers["Connection"] = "keep-alive"
        all_headers["X-Accel-Buffering"] = "no"  # nginx: pass each message on at once
        self.init_headers(all_headers)
        self._stream = stream
        self._on_close = on_close

    async def __call__(self, scope: ASGIScope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            if scope.get("method", "GET") != "HEAD":  # HEAD: the headers alone, no stream
                await self._send_messages(receive, send)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            self._on_close()

    async def _send_messages(self, receive: Receive, send: Send) -> None:
        stream = self._stream
        client = asyncio.create_task(_until_disconnect(receive, stream), name="sse-client")
        messages = stream.messages()
        try:
            async with asyncio.timeout(None) as grace:

                def stopping() -> None:
                    stream.server_stopping()
                    grace.reschedule(asyncio.get_running_loop().time() + SHUTDOWN_GRACE)

                watcher = _ServerStop.watch(stopping)
                try:
                    async for message in messages:
                        await send({"type": "http.response.body", "body": message.encode(), "more_body": True})
                        if stream.gone:
                            break
                finally:
                    watcher.forget(stopping)
        except TimeoutError:
            if not grace.expired():
                raise
        finally:
            await messages.aclose()
            client.cancel()


async def _until_disconnect(receive: Receive, stream: EventStream) -> None:
    with contextlib.suppress(Exception):  # a receive that fails has lost its client too
        while (await receive())["type"] != "http.disconnect":
            pass  # a request body (none is expected): keep listening
    stream.client_gone()


class _ServerStop:
    """Tells the open streams of this event loop that the server is stopping: one task, running
    while a stream is open, looks every STOP_POLL seconds at the uvicorn server of this process
    (found through the SIGTERM handler it installs while it serves: `Server.handle_exit`), and
    calls every stream's callback once its `should_exit` is set — by a signal, or by a test."""

    _by_loop: ClassVar[dict[asyncio.AbstractEventLoop, _ServerStop]] = {}

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._callbacks: set[Callable[[], None]] = set()
        self._task = loop.create_task(self._watch(), name="sse-server-stop")

    @classmethod
    def watch(cls, callback: Callable[[], None]) -> _ServerStop:
        """Call `callback` once the server stops, unless `forget` comes first."""
        loop = asyncio.get_running_loop()
        watcher = cls._by_loop.get(loop)
        if watcher is None or watcher._task.done():
            watcher = cls._by_loop[loop] = cls(loop)
        watcher._callbacks.add(callback)
        return watcher

    def forget(self, callback: Callable[[], None]) -> None:
        self._callbacks.discard(callback)

    async def _watch(self) -> None:
        try:
            await asyncio.sleep(0)  # the first stream registers before the first look
            while self._callbacks:
                if _server_stopping():
                    callbacks, self._callbacks = self._callbacks, set()
                    for callback in callbacks:
                        callback()
                    return
                await asyncio.sleep(STOP_POLL)
        finally:
            if self._by_loop.get(self._loop) is self:
                del self._by_loop[self._loop]


def _server_stopping() -> bool:
    handler = signal.getsignal(signal.SIGTERM)
    server = getattr(handler, "__self__", None)
    return bool(getattr(server, "should_exit", False))


def sse_response(
    stream: EventStream,
    options: StreamOptions,
    *,
    origin: str | None = None,
    on_close: Callable[[], None] = lambda: None,
) -> Response:
    headers = {}
    if origin is not None:
        headers["Access-Control-Allow-Origin"] = origin
        if origin != "*":
            headers["Vary"] = "Origin"
    return _StreamResponse(stream, headers=headers, on_close=on_close)
