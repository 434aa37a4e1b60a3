"""Where seen request signatures are remembered: this process, or Redis when instances share one."""

from __future__ import annotations

from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from mpesa_bridge.core.signing import MemoryReplayGuard, ReplayGuard
from mpesa_bridge.logging import get_logger

log = get_logger("mpesa_bridge.replay")


class RedisReplayGuard:
    """SET NX with an expiry: the first instance to see a signature wins, every other refuses it.

    If Redis cannot be reached the signature is checked against this process's memory instead
    (logged as an error): replays across instances are then possible until Redis is back, but
    signed requests keep working."""

    def __init__(self, url: str, prefix: str = "mpesa-bridge:sig:") -> None:
        self._redis = aioredis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._prefix = prefix
        self._fallback = MemoryReplayGuard()

    async def first_use(self, signature: str, ttl: float) -> bool:
        try:
            stored = await self._redis.set(self._prefix + signature, b"1", nx=True, px=max(1, int(ttl * 1000)))
        except (RedisError, OSError) as exc:
            log.error("replay.redis_unavailable", error=type(exc).__name__)
            return await self._fallback.first_use(signature, ttl)
        return bool(stored) and await self._fallback.first_use(signature, ttl)

    async def aclose(self) -> None:
        await self._redis.aclose()


class ClosableReplayGuard(ReplayGuard, Protocol):
    """A replay guard the app owns: closed with the app (a Redis client, or nothing to close)."""

    async def aclose(self) -> None: ...


class LocalReplayGuard(MemoryReplayGuard):
    """This process's memory: nothing to close."""

    async def aclose(self) -> None:
        return None


def replay_guard_for(redis_url: str | None) -> ClosableReplayGuard:
    return RedisReplayGuard(redis_url) if redis_url else LocalReplayGuard()
