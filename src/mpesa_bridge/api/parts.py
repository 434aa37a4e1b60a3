"""What only the HTTP app needs, built by its lifespan next to the runtime (`app.state.http`).

A worker or a CLI command builds the runtime alone: it has no requests to rate-limit, no signed
requests to guard against replays, no streams and no client addresses to read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from starlette.requests import HTTPConnection
from starlette.types import Scope

from mpesa_bridge.api.net import Networks
from mpesa_bridge.api.ratelimit import RateLimiter
from mpesa_bridge.api.replay import ClosableReplayGuard, replay_guard_for
from mpesa_bridge.realtime.sse import OpenStreams, TenantTails
from mpesa_bridge.runtime import Runtime


@dataclass(frozen=True)
class Streams:
    """What every SSE stream of one app (process) shares."""

    tails: TenantTails  # its tenants' tails, read once per poll interval for all idle streams
    open: OpenStreams  # the caps on open streams


@dataclass(frozen=True)
class HttpParts:
    networks: Networks
    rate_limiter: RateLimiter
    replay_guard: ClosableReplayGuard
    streams: Streams

    async def aclose(self) -> None:
        await self.rate_limiter.aclose()
        await self.replay_guard.aclose()


def build_http_parts(runtime: Runtime, networks: Networks) -> HttpParts:
    settings = runtime.settings
    return HttpParts(
        networks=networks,
        rate_limiter=RateLimiter.from_settings(settings),
        replay_guard=replay_guard_for(settings.redis_url),
        streams=Streams(
            TenantTails(runtime.db, settings.sse_poll_interval),
            OpenStreams(
                settings.sse_max_streams_per_key,
                settings.sse_max_streams_per_address,
                retry_after=max(1, math.ceil(settings.sse_retry_delay)),
            ),
        ),
    )


def http_parts(connection: HTTPConnection) -> HttpParts:
    parts: HttpParts = connection.app.state.http
    return parts


def http_parts_of(scope: Scope) -> HttpParts | None:
    """From an ASGI scope, for the middleware: None before the lifespan has built them."""
    parts = getattr(getattr(scope.get("app"), "state", None), "http", None)
    return parts if isinstance(parts, HttpParts) else None
