"""Where seen request signatures are remembered: this process, or Redis when instances share one."""

from __future__ import annotations

import redis.asyncio as aioredis

from mpesa_bridge.core.signing import MemoryReplayGuard, ReplayGuard


class RedisReplayGuard:
    """SET NX with an expiry: the first instance to see a signature wins, every other refuses it."""

    def __init__(self, url: str, prefix: str = "mpesa-bridge:sig:") -> None:
        self._redis = aioredis.from_url(url)
        self._prefix = prefix

    async def first_use(self, signature: str, ttl: float) -> bool:
        stored = await self._redis.set(self._prefix + signature, b"1", nx=True, px=max(1, int(ttl * 1000)))
        return bool(stored)

    async def aclose(self) -> None:
        await self._redis.aclose()


def replay_guard_for(redis_url: str | None) -> ReplayGuard:
    return RedisReplayGuard(redis_url) if redis_url else MemoryReplayGuard()
