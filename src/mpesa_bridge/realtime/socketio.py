"""Socket.IO at /socket.io: payment updates pushed to the sockets allowed to see them.

A client authenticates in the connect `auth` payload — `{"key": "sk_…"}` for a whole project mode,
`{"client_secret": "pay_…_secret_…"}` for one payment — and is put in exactly one room:

    tenant:<project id>:<mode>   a secret key's sockets
    payment:<payment id>         a client secret's sockets

A connect without valid credentials is refused. Sockets cannot join rooms themselves (no client
event is handled), and every emit names its rooms: nothing is ever sent to all sockets.

Each event is emitted under three names, to the payment's room and its tenant's room:
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
from typing import Any

import socketio

from mpesa_bridge.core.accounts import ProjectService
from mpesa_bridge.core.errors import AuthenticationFailed
from mpesa_bridge.core.payments.entity import OutboxEvent
from mpesa_bridge.core.payments.public import event_public
from mpesa_bridge.core.payments.stk import PaymentService
from mpesa_bridge.logging import get_logger

log = get_logger("mpesa_bridge.realtime")

CHANNEL = "mpesa-bridge:socketio"
PATH = "socket.io"
UPDATED = "payment.updated"
LEGACY_UPDATED = "transaction-updated"

KEY_RECHECK_INTERVAL = 60.0  # seconds; a revoked key's sockets are disconnected within this


@dataclass(frozen=True)
class Grant:
    """What a connect's credentials open: its rooms and, for a key, how to check it still may."""

    rooms: list[str]
    still_valid: Callable[[], Awaitable[bool]] | None = None


Authorize = Callable[[Any], Awaitable[Grant]]


def tenant_room(project_id: str, mode: str) -> str:
    return f"tenant:{project_id}:{mode}"


def payment_room(payment_id: str) -> str:
    return f"payment:{payment_id}"


def emits_for(event: OutboxEvent) -> list[tuple[str, dict[str, Any]]]:
    """(name, payload) of everything one event is emitted as; nothing for events about no payment."""
    if event.payment_id is None:
        return []
    payment = event.data.get("object", {})
    return [
        (UPDATED, event_public(event)),
        (f"transaction:{event.payment_id}", payment),
        (LEGACY_UPDATED, payment),
    ]


def rooms_for(event: OutboxEvent) -> list[str]:
    assert event.payment_id is not None
    return [tenant_room(event.project_id, event.mode), payment_room(event.payment_id)]


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
            try:
                again = await self._projects.authenticate_key(key)
            except AuthenticationFailed:
                return False
            return not again.project.require_signed_requests

        return Grant([tenant_room(caller.tenant.project_id, caller.tenant.mode.value)], still_valid)


class SocketGateway:
    """The Socket.IO server and its ASGI app (mounted by `api/app.py` at /socket.io)."""

    def __init__(
        self,
        *,
        redis_url: str | None = None,
        cors_origins: list[str] | str = "*",
        key_recheck_interval: float = KEY_RECHECK_INTERVAL,
    ) -> None:
        manager = socketio.AsyncRedisManager(redis_url, channel=CHANNEL) if redis_url else socketio.AsyncManager()
        self.server = socketio.AsyncServer(
            async_mode="asgi",
            client_manager=manager,
            cors_allowed_origins=cors_origins,
            cors_credentials=False,  # credentials travel in the connect payload, never in cookies
            logger=False,
            engineio_logger=False,
        )
        self.server.on("connect", self._connect)
        self.server.on("disconnect", self._disconnected)
        self.app = socketio.ASGIApp(self.server, socketio_path=PATH)
        self._authorize: Authorize | None = None
        self._redis = redis_url is not None
        self._key_recheck_interval = key_recheck_interval
        self._checks: dict[str, Callable[[], Awaitable[bool]]] = {}  # sid -> its key's check
        self._rechecking: asyncio.Task[None] | None = None

    def bind(self, authorize: Authorize) -> None:
        """Start accepting connections (before this every connect is refused), and with Redis start
        listening for other instances' emits now rather than at the first connect."""
        self._authorize = authorize
        if self._redis and not self.server.manager_initialized:
            self.server.manager_initialized = True
            self.server.manager.initialize()
        self._rechecking = asyncio.create_task(self._recheck_forever(), name="socketio-key-recheck")

    async def _connect(self, sid: str, _environ: dict[str, Any], auth: Any) -> None:
        if self._authorize is None:
            raise Refused("unavailable", "The server is starting; try again.")
        grant = await self._authorize(auth)
        for room in grant.rooms:
            await self.server.enter_room(sid, room)
        if grant.still_valid is not None:
            self._checks[sid] = grant.still_valid

    async def _disconnected(self, sid: str, _reason: Any = None) -> None:
        self._checks.pop(sid, None)

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
