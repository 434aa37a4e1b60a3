"""`Idempotency-Key` on every POST that creates something.

Same key + same request within the TTL: the stored response, byte for byte, and nothing runs
again (no second STK prompt). Same key + a different request: 422 `idempotency_key_reused`. Same
key while the first request still runs: 409 `idempotency_key_in_use`. Keys are scoped to the
project and mode. Responses of 5xx, 409 and 429 are not stored, so the client may retry them
with the same key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable

from fastapi import Request
from starlette.responses import Response

from mpesa_bridge.api.errors import render_bridge_error
from mpesa_bridge.core.errors import BridgeError, Conflict, InvalidRequest, Unprocessable
from mpesa_bridge.runtime import Runtime
from mpesa_bridge.storage import idempotency

HEADER = "idempotency-key"
# "Try again later" answers are not remembered: a retry with the same key must be able to succeed.
RETRYABLE = frozenset({409, 429})
REPLAYED = "Idempotent-Replayed"


def _request_hash(request: Request, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.url.path.encode(), request.url.query.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _key(request: Request) -> str | None:
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not 1 <= len(key) <= 255 or not key.isprintable():
        raise InvalidRequest("Idempotency-Key must be 1 to 255 printable characters", param="Idempotency-Key")
    return key


async def idempotent(
    request: Request, runtime: Runtime, scope: str, handler: Callable[[], Awaitable[Response]]
) -> Response:
    key = _key(request)
    if key is None:
        return await handler()
    settings = runtime.settings
    claim = await idempotency.claim(
        runtime.db,
        scope,
        key,
        _request_hash(request, await request.body()),
        runtime.clock.now(),
        ttl=settings.idempotency_ttl,
        lock_timeout=settings.idempotency_lock_timeout,
    )
    if claim.outcome == "replay":
        headers = {REPLAYED: "true"}
        body = _open(runtime, scope, key, claim.body or b"")
        return Response(body, status_code=claim.status or 200, media_type="application/json", headers=headers)
    if claim.outcome == "reused":
        raise Unprocessable(
            "This Idempotency-Key was used with a different request.",
            code="idempotency_key_reused",
            param="Idempotency-Key",
        )
    if claim.outcome == "in_progress":
        raise Conflict("A request with this Idempotency-Key is still being processed.", code="idempotency_key_in_use")
    return await _run_and_store(request, runtime, scope, key, handler)


async def _run_and_store(
    request: Request, runtime: Runtime, scope: str, key: str, handler: Callable[[], Awaitable[Response]]
) -> Response:
    try:
        response = await handler()
    except BridgeError as exc:
        response = render_bridge_error(request, exc)
    except BaseException:
        await idempotency.release(runtime.db, scope, key)
        raise
    if response.status_code >= 500 or response.status_code in RETRYABLE:
        await idempotency.release(runtime.db, scope, key)
    else:
        sealed = _seal(runtime, scope, key, bytes(response.body))
        await idempotency.complete(runtime.db, scope, key, response.status_code, sealed)
    return response


def _seal(runtime: Runtime, scope: str, key: str, body: bytes) -> bytes:
    # Stored answers hold phone numbers and, for key rotation, a new secret key: sealed at rest
    # like every other secret, so a copy of the database alone reveals nothing usable.
    return runtime.box.seal(body.decode(), context=f"idempotency:{scope}:{key}").encode()


def _open(runtime: Runtime, scope: str, key: str, stored: bytes) -> bytes:
    return runtime.box.open(stored.decode(), context=f"idempotency:{scope}:{key}").encode()
