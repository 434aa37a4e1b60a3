"""`Idempotency-Key` on every POST that creates something.

Same key + same request within the TTL: the stored response, byte for byte, and nothing runs
again (no second STK prompt). Same key + a different request: 422 `idempotency_key_reused`. Same
key while the first request still runs: 409 `idempotency_key_in_use`. Keys are scoped to the
project and mode. Responses of 5xx, 409 and 429 are not stored, so the client may retry them
with the same key.

A creating request binds the key to what it created in the same transaction
(`idempotent_creation`): if its process dies after that, a retry answers with the created
resource instead of running again (storage.idempotency explains the recovery points).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable

from fastapi import Request
from starlette.responses import Response

from mpesa_bridge.api.errors import render_bridge_error
from mpesa_bridge.core.errors import BridgeError, Conflict, InvalidRequest, Unprocessable
from mpesa_bridge.core.ports import IdempotencyBinding
from mpesa_bridge.core.sealing import idempotency_context, idempotency_secret_context
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


Handler = Callable[[], Awaitable[Response]]
# A creating handler gets the key's binding (None without a key) to pass to the core's use case.
CreatingHandler = Callable[[IdempotencyBinding | None], Awaitable[Response]]
# Builds the answer for a resource an earlier request created: (resource id, its client secret).
Recover = Callable[[str, str | None], Awaitable[Response]]


async def idempotent(request: Request, runtime: Runtime, scope: str, handler: Handler) -> Response:
    """For requests whose effect is not bound to a resource: a crashed first request is run again
    by a retry after the lock timeout."""

    async def run(_binding: IdempotencyBinding | None) -> Response:
        return await handler()

    return await idempotent_creation(request, runtime, scope, run, recover=None)


async def idempotent_creation(
    request: Request, runtime: Runtime, scope: str, handler: CreatingHandler, recover: Recover | None
) -> Response:
    """Like `idempotent`, for a request whose use case binds the key to what it creates in the same
    transaction (`IdempotencyBinding`). After that recovery point a retry never runs the request
    again: it answers with the created resource, whatever the moment the first request died."""
    key = _key(request)
    if key is None:
        return await handler(None)
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
        body = _open(runtime, idempotency_context(scope, key), claim.body or b"")
        return Response(body, status_code=claim.status or 200, media_type="application/json", headers=headers)
    if claim.outcome == "reused":
        raise Unprocessable(
            "This Idempotency-Key was used with a different request.",
            code="idempotency_key_reused",
            param="Idempotency-Key",
        )
    if claim.outcome == "in_progress":
        raise Conflict("A request with this Idempotency-Key is still being processed.", code="idempotency_key_in_use")
    owner = claim.owner or ""
    if claim.outcome == "recover":
        resource_id = claim.resource_id or ""
        secret = claim.resource_secret
        opened = _open(runtime, idempotency_secret_context(scope, key), secret.encode()).decode() if secret else None
        if recover is None:  # pragma: no cover - only creating routes bind a resource
            raise Conflict("This Idempotency-Key belongs to another operation.", code="idempotency_key_in_use")
        recovered = recover
        return await _run_and_store(request, runtime, scope, key, owner, lambda: recovered(resource_id, opened), True)

    binding = IdempotencyBinding(
        scope, key, owner, seal=lambda text: runtime.box.seal(text, context=idempotency_secret_context(scope, key))
    )
    return await _run_and_store(request, runtime, scope, key, owner, lambda: handler(binding), False)


async def _run_and_store(
    request: Request, runtime: Runtime, scope: str, key: str, owner: str, handler: Handler, replayed: bool
) -> Response:
    try:
        response = await handler()
    except BridgeError as exc:
        response = render_bridge_error(request, exc)
    except BaseException:
        await idempotency.release(runtime.db, scope, key, owner)
        raise
    if response.status_code >= 500 or response.status_code in RETRYABLE:
        await idempotency.release(runtime.db, scope, key, owner)
        return response
    sealed = _seal(runtime, idempotency_context(scope, key), bytes(response.body))
    await idempotency.complete(runtime.db, scope, key, owner, response.status_code, sealed)
    if replayed:
        response.headers[REPLAYED] = "true"
    return response


def _seal(runtime: Runtime, context: str, body: bytes) -> bytes:
    # Stored answers hold phone numbers and, for key rotation, a new secret key: sealed at rest
    # like every other secret, so a copy of the database alone reveals nothing usable.
    return runtime.box.seal(body.decode(), context=context).encode()


def _open(runtime: Runtime, context: str, stored: bytes) -> bytes:
    return runtime.box.open(stored.decode(), context=context).encode()
