"""Socket.IO at /socket.io: payment updates pushed to the sockets allowed to see them.

A client authenticates in the connect `auth` payload — `{"key": "sk_…"}` for a whole project mode,
`{"client_secret": "pay_…_secret_…"}` for one payment — and is put in exactly one room:

    tenant:<project id>:<mode>   a secret key's sockets
    payment:<payment id>         a client secret's sockets

A connect without valid credentials is refused. Sockets cannot join rooms themselves (no client
event is handled), and every emit names its rooms: nothing is ever sent to all sockets.

Limits, so that a WebSocket is no way around the HTTP API's (docs/security.md, "Socket.IO limits"):

- A refused connect spends the client address's authentication-failure budget, the one HTTP 401s
  spend (`ConnectBudget`, wired to `api/ratelimit.py`); once it is spent, connects from the address
  are refused before any credential is looked up, and the connection is closed. A connection is
  also closed after `max_connect_failures` refused connects of its own.
- An Engine.IO packet larger than `max_message_bytes` closes the connection before it is parsed
  (Engine.IO's `max_http_buffer_size`, which it checks on WebSocket frames and polling bodies).
- An Engine.IO session that has not joined (a connect accepted) within `join_timeout` is closed.
- New sessions per address are limited before they reach this module (`RateLimitMiddleware`).

Rooms and emits follow the event's subject (type + id; `payment:` is a payment's room).
Each payment event is emitted under three names, to the payment's room and its tenant's room:
`payment.updated` (the event, as webhooks carry it) and, for clients of the earlier system,
`transaction:<payment id>` and `transaction-updated` (the payment object alone).

With Redis, the server's client manager is python-socketio's `AsyncRedisManager`: an emit on one
instance reaches the sockets of every instance. A process without a Socket.IO server (the
`worker`) emits through a write-only manager on the same channel (`RedisSocketEmitter`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import socketio

from mpesa_bridge.core.accounts import ProjectService
from mpesa_bridge.core.errors import AuthenticationFailed, RateLimited
from mpesa_bridge.core.payments.entity import PAYMENT, OutboxEvent, Subject
from mpesa_bridge.core.payments.public import event_public
from mpesa_bridge.core.payments.stk import PaymentService
from mpesa_bridge.logging import get_logger
from mpesa_bridge.observability.instruments import REALTIME_CONNECTIONS

log = get_logger("mpesa_bridge.realtime")

CHANNEL = "mpesa-bridge:socketio"
PATH = "socket.io"
LEGACY_UPDATED = "transaction-updated"

KEY_RECHECK_INTERVAL = 60.0  # seconds; a revoked key's sockets are disconnected within this
JOIN_TIMEOUT = 5.0  # seconds an Engine.IO session has to join before it is closed
MAX_CONNECT_FAILURES = 3  # refused connects after which a connection is closed
MAX_MESSAGE_BYTES = 65_536  # as the HTTP API's body limit; a connect's payload is a few hundred bytes
NAMESPACE = "/"


@dataclass(frozen=True)
class Grant:
    """What a connect's credentials open: its rooms and, for a key, how to check it still may."""

    rooms: list[str]
    still_valid: Callable[[], Awaitable[bool]] | None = None


Authorize = Callable[[Any], Awaitable[Grant]]


class ConnectBudget(Protocol):
    """The client address's budget of failed authentications, shared with the HTTP API; the address
    is read from the connection's ASGI scope."""

    async def check(self, scope: dict[str, Any]) -> None:
        """RateLimited if the address has no failure left: refuse before looking credentials up."""

    async def spend(self, scope: dict[str, Any]) -> None:
        """Count one refused connect against the address."""


def tenant_room(project_id: str, mode: str) -> str:
    return f"tenant:{project_id}:{mode}"


def payment_room(payment_id: str) -> str:
    return subject_room(Subject(PAYMENT, payment_id))


def subject_room(subject: Subject) -> str:
    """A subject's room: `payment:pay_…` for a payment, as clients have always joined it."""
    return f"{subject.type}:{subject.id}"


def emits_for(event: OutboxEvent) -> list[tuple[str, dict[str, Any]]]:
    """(name, payload) of everything one event is emitted as; nothing for events about no subject.

    Every subject's event goes out as `<subject type>.updated` (`payment.updated`); the names of
    the earlier system (`transaction:{id}`, `transaction-updated`) are a payment's only."""
    subject = event.subject
    if subject is None:
        return []
    emits = [(f"{subject.type}.updated", event_public(event))]
    if subject.type == PAYMENT:
        payment = event.data.get("object", {})
        emits += [(f"transaction:{subject.id}", payment), (LEGACY_UPDATED, payment)]
    return emits


def rooms_for(event: OutboxEvent) -> list[str]:
    subject = event.subject
    assert subject is not None
    return [tenant_room(event.project_id, event.mode), subject_room(subject)]


class Refused(socketio.exceptions.ConnectionRefusedError):  # type: ignore[misc]  # untyped library
    """A refused connect; the client's `connect_error` gets `{"message", "data": {"code"}}`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, {"code": code})


class SocketAuthorizer:
    """Turns a connect `auth` payload into the rooms its socket may join."""

    def __init__(self, projects: ProjectService, payments: PaymentService) -> None:
        self._projects = projects
        self._payments = payments

    async def __call__(self, auth: Any) -> Grant:
        if not isinstance(auth, dict):
            raise Refused("authentication_required", 'Send {"key": …} or {"client_secret": …} as auth.')
        key, secret = auth.get("key"), auth.get("client_secret")
        try:
            if isinstance(key, str):
                return await self._key_grant(key)
            if isinstance(secret, str):
                payment = await self._payments.authenticate_client_secret(secret)
                return Grant([payment_room(payment.id)])  # a payment's secret is never revoked
        except AuthenticationFailed as exc:
            raise Refused(exc.code, exc.message) from None
        raise Refused("authentication_required", 'Send {"key": …} or {"client_secret": …} as auth.')

    async def _key_grant(self, key: str) -> Grant:
        caller = await self._projects.authenticate_key(key)
        if caller.project.require_signed_requests:
            # A connect cannot be signed: for such a project a key alone opens nothing.
            raise Refused(
                "signed_requests_required",
                "This project requires signed requests: connect with a payment's client secret instead.",
            )

        async def still_valid() -> bool:
            return await self._projects.key_still_valid(key, signed=False)  # a connect is never signed

        return Grant([tenant_room(caller.tenant.project_id, caller.tenant.mode.value)], still_valid)


class SessionHooks(Protocol):
    def session_opened(self, eio_sid: str) -> None: ...

    def connect_started(self, eio_sid: str) -> None: ...

    async def connect_answered(self, eio_sid: str) -> None: ...

    def session_closed(self, eio_sid: str) -> None: ...


class _Server(socketio.AsyncServer):  # type: ignore[misc]  # untyped library
    """python-socketio's server, calling `hooks` when an Engine.IO session opens and closes and
    around the answering of a connect (after it, its refusal is queued): the library has no public
    hooks there. These private methods are pinned by requirements.lock and exercised by
    tests/integration/test_realtime_socketio_limits.py."""

    def __init__(self, hooks: SessionHooks, **options: Any) -> None:
        super().__init__(**options)
        self._hooks = hooks

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> None:
        await super()._handle_eio_connect(eio_sid, environ)
        self._hooks.session_opened(eio_sid)

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        if eio_sid not in self.environ:  # closed by us: what it had already sent is dropped unread
            return
        await super()._handle_eio_message(eio_sid, data)

    async def _handle_connect(self, eio_sid: str, namespace: str | None, data: Any) -> None:
        self._hooks.connect_started(eio_sid)
        await super()._handle_connect(eio_sid, namespace, data)
        await self._hooks.connect_answered(eio_sid)

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any) -> None:
        await super()._handle_eio_disconnect(eio_sid, reason)
        self._hooks.session_closed(eio_sid)


class SocketGateway:
    """The Socket.IO server and its ASGI app (mounted by `api/app.py` at /socket.io)."""

    def __init__(
        self,
        *,
        redis_url: str | None = None,
        cors_origins: list[str] | str = "*",
        key_recheck_interval: float = KEY_RECHECK_INTERVAL,
        join_timeout: float = JOIN_TIMEOUT,
        max_connect_failures: int = MAX_CONNECT_FAILURES,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        manager = socketio.AsyncRedisManager(redis_url, channel=CHANNEL) if redis_url else socketio.AsyncManager()
        self.server = _Server(
            self,
            async_mode="asgi",
            client_manager=manager,
            cors_allowed_origins=cors_origins,
            cors_credentials=False,  # credentials travel in the connect payload, never in cookies
            max_http_buffer_size=max_message_bytes,
            logger=False,
            engineio_logger=False,
        )
        self.server.on("connect", self._connect)
        self.server.on("disconnect", self._disconnected)
        self.app = socketio.ASGIApp(self.server, socketio_path=PATH)
        self._authorize: Authorize | None = None
        self._budget: ConnectBudget | None = None
        self._redis = redis_url is not None
        self._key_recheck_interval = key_recheck_interval
        self._join_timeout = join_timeout
        self._max_connect_failures = max_connect_failures
        self._checks: dict[str, Callable[[], Awaitable[bool]]] = {}  # sid -> its key's check
        self._connected: set[str] = set()  # sids counted in the open-connections gauge
        self._join_by: dict[str, float] = {}  # eio sid -> when it must have joined (loop time)
        self._deadlines: dict[str, asyncio.Task[None]] = {}  # eio sid -> the task that enforces it
        self._failures: dict[str, int] = {}  # eio sid -> its refused connects
        self._to_close: set[str] = set()  # eio sids to close once their connect is answered
        self._rechecking: asyncio.Task[None] | None = None

    def bind(self, authorize: Authorize, budget: ConnectBudget | None = None) -> None:
        """Start accepting connections (before this every connect is refused), counting refused ones
        against `budget`, and with Redis start listening for other instances' emits now rather than
        at the first connect."""
        self._authorize = authorize
        self._budget = budget
        if self._redis and not self.server.manager_initialized:
            self.server.manager_initialized = True
            self.server.manager.initialize()
        self._rechecking = asyncio.create_task(self._recheck_forever(), name="socketio-key-recheck")

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any) -> None:
        if self._authorize is None:
            raise Refused("unavailable", "The server is starting; try again.")
        eio_sid: str = self.server.manager.eio_sid_from_sid(sid, NAMESPACE)
        scope: dict[str, Any] = environ.get("asgi.scope", {})
        grant = await self._authorized(eio_sid, scope, auth)
        for room in grant.rooms:
            await self.server.enter_room(sid, room)
        if grant.still_valid is not None:
            self._checks[sid] = grant.still_valid
        self._connected.add(sid)
        REALTIME_CONNECTIONS.labels("socketio").inc()

    async def _authorized(self, eio_sid: str, scope: dict[str, Any], auth: Any) -> Grant:
        assert self._authorize is not None
        try:
            if self._budget is not None:
                await self._budget.check(scope)
            return await self._authorize(auth)
        except RateLimited as exc:
            self._to_close.add(eio_sid)  # nothing from this address will be looked up for a while
            raise Refused(exc.code, exc.message) from None
        except Refused:
            if self._budget is not None:
                await self._budget.spend(scope)
            self._failures[eio_sid] = failures = self._failures.get(eio_sid, 0) + 1
            if failures >= self._max_connect_failures:
                self._to_close.add(eio_sid)
            raise

    async def _disconnected(self, sid: str, _reason: Any = None) -> None:
        self._checks.pop(sid, None)
        if sid in self._connected:
            self._connected.discard(sid)
            REALTIME_CONNECTIONS.labels("socketio").dec()
        eio_sid = self.server.manager.eio_sid_from_sid(sid, NAMESPACE)
        if eio_sid in self.server.eio.sockets:  # left the namespace, kept the connection: join again
            self.session_opened(eio_sid)

    # --- SessionHooks: Engine.IO sessions, called by `_Server` -------------------------------------

    def session_opened(self, eio_sid: str) -> None:
        self._join_by[eio_sid] = asyncio.get_running_loop().time() + self._join_timeout
        self._arm(eio_sid)

    def connect_started(self, eio_sid: str) -> None:
        # A connect being answered (a slow database) is not the client's delay: the deadline waits.
        self._cancel_deadline(eio_sid)

    async def connect_answered(self, eio_sid: str) -> None:
        if eio_sid in self._to_close:
            log.info("realtime.socket_closed", reason="connect_refusals", failures=self._failures.get(eio_sid, 0))
            await self._close_session(eio_sid)
        elif self.server.manager.sid_from_eio_sid(eio_sid, NAMESPACE) is not None:
            self._join_by.pop(eio_sid, None)  # joined
        elif eio_sid in self._join_by:
            self._arm(eio_sid)  # the same deadline: refused connects, or other namespaces', never extend it

    def session_closed(self, eio_sid: str) -> None:
        self._cancel_deadline(eio_sid)
        self._join_by.pop(eio_sid, None)
        self._failures.pop(eio_sid, None)
        self._to_close.discard(eio_sid)

    def _arm(self, eio_sid: str) -> None:
        self._cancel_deadline(eio_sid)
        delay = max(0.0, self._join_by[eio_sid] - asyncio.get_running_loop().time())
        self._deadlines[eio_sid] = asyncio.create_task(self._join_deadline(eio_sid, delay), name="socketio-join")

    async def _join_deadline(self, eio_sid: str, delay: float) -> None:
        await asyncio.sleep(delay)
        self._deadlines.pop(eio_sid, None)  # before closing: the close must not cancel this task
        log.info("realtime.socket_closed", reason="not_joined")
        await self._close_session(eio_sid)

    def _cancel_deadline(self, eio_sid: str) -> None:
        deadline = self._deadlines.pop(eio_sid, None)
        if deadline is not None:
            deadline.cancel()

    async def _close_session(self, eio_sid: str) -> None:
        """Close an Engine.IO session now, whatever its client does."""
        eio = self.server.eio
        socket = eio.sockets.pop(eio_sid, None)
        if socket is None:
            return
        # Engine.IO's own disconnect waits until the client has read the CLOSE, which a hostile
        # client never does. So: close without waiting, then end the WebSocket writer with an empty
        # poll, which closes the connection. A polling client's next request finds no session.
        await socket.close(wait=False, reason=eio.reason.SERVER_DISCONNECT)
        socket.queue.put_nowait(None)

    async def recheck(self) -> int:
        """Disconnect the sockets whose key was revoked (or whose project now requires signing)."""
        dropped = 0
        for sid, still_valid in list(self._checks.items()):
            if not await still_valid():
                self._checks.pop(sid, None)
                await self.server.disconnect(sid)
                dropped += 1
        if dropped:
            log.info("realtime.sockets_dropped", reason="key_no_longer_valid", sockets=dropped)
        return dropped

    async def _recheck_forever(self) -> None:
        while True:
            await asyncio.sleep(self._key_recheck_interval)
            try:
                await self.recheck()
            except Exception:
                log.exception("realtime.recheck_failed")

    async def emit(self, event: OutboxEvent) -> None:
        for name, payload in emits_for(event):
            await self.server.emit(name, payload, to=rooms_for(event))

    async def aclose(self) -> None:
        self._authorize = None
        for deadline in list(self._deadlines.values()):
            deadline.cancel()
        self._deadlines.clear()
        if self._rechecking is not None:
            self._rechecking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._rechecking
        await self.server.shutdown()
        await _close_manager(self.server.manager)


class RedisSocketEmitter:
    """Emits to every instance's sockets without serving any (python-socketio's write-only manager)."""

    def __init__(self, redis_url: str) -> None:
        self.manager = socketio.AsyncRedisManager(
            redis_url, channel=CHANNEL, write_only=True, logger=logging.getLogger("mpesa_bridge.realtime.socketio")
        )

    async def emit(self, event: OutboxEvent) -> None:
        for name, payload in emits_for(event):
            await self.manager.emit(name, payload, namespace="/", room=rooms_for(event))

    async def aclose(self) -> None:
        await _close_manager(self.manager)


async def _close_manager(manager: Any) -> None:
    # python-socketio leaves its Redis listener task and connection open after shutdown().
    listener = getattr(manager, "thread", None)
    if isinstance(listener, asyncio.Task):
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
    redis = getattr(manager, "redis", None)
    if redis is not None:
        with contextlib.suppress(Exception):
            await redis.aclose()
