"""Binding an `Idempotency-Key` to what a request creates, in the transaction that creates it.

After that commit (a recovery point) a retry with the key answers with the created resource and
never creates again — a second payment, prompt, session or link. Every creating use case binds
through `bind_key`.
"""

from __future__ import annotations

from mpesa_bridge.core.errors import Conflict
from mpesa_bridge.core.ports import IdempotencyBinding, UnitOfWork


async def bind_key(uow: UnitOfWork, binding: IdempotencyBinding, resource_id: str, secret: str | None = None) -> None:
    """Bind the key to `resource_id` (with `secret` sealed beside it, for a replay to show once more);
    `Conflict` — the caller's transaction then rolls back — when another request took the key over
    (this one outlived the lock timeout before creating anything): one resource per key."""
    sealed = binding.seal(secret) if secret is not None else None
    if not await uow.idempotency.bind(binding.scope, binding.key, binding.owner, resource_id, sealed):
        raise Conflict("A request with this Idempotency-Key is still being processed.", code="idempotency_key_in_use")
