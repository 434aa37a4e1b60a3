"""What the reversal use cases need from the world: the Daraja call, the Result reader, storage.

The gateway raises the core's gateway errors (`core.ports`): `PushOutcomeUnknown` when the request
may have reached Daraja but its answer was lost (the reversal becomes `unknown`, never re-sent),
any other `GatewayError` when nothing was sent or Daraja refused it (`failed`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from mpesa_bridge.core.projects import DarajaAccount, Tenant
from mpesa_bridge.core.reversals.entity import Reversal


@dataclass(frozen=True)
class InitiatorQueued:
    """Daraja queued an initiator request: the Result (or a queue-timeout notice) comes later."""

    conversation_id: str
    originator_conversation_id: str


@dataclass(frozen=True)
class ReversalCommand:
    account: DarajaAccount
    original_receipt: str
    amount: int
    short_code: str
    result_url: str
    queue_timeout_url: str
    remarks: str


@dataclass(frozen=True)
class InitiatorResultNotice:
    """The common Result envelope of the initiator APIs (daraja.md §8), read by the Daraja adapter."""

    result_code: str
    result_desc: str
    conversation_id: str
    originator_conversation_id: str
    transaction_id: str


@dataclass(frozen=True)
class ReversalResult(InitiatorResultNotice):
    """A Reversal Result: the envelope and its parameters (daraja.md §11)."""

    amount: int | None = None
    original_transaction_id: str | None = None


class MalformedResult(ValueError):
    """A body that is not a Result envelope we can read."""


class ReversalGateway(Protocol):
    async def reverse(self, command: ReversalCommand) -> InitiatorQueued: ...


class ResultReader(Protocol):
    """Reads a Result body (raises `MalformedResult`); the Daraja adapter implements it."""

    def reversal(self, body: bytes) -> ReversalResult: ...

    def notice(self, body: bytes) -> InitiatorResultNotice: ...


@dataclass(frozen=True)
class ReversalFilter:
    payment_id: str | None = None
    starting_after: str | None = None
    limit: int = 20


class ReversalReader(Protocol):
    async def get(self, tenant: Tenant, reversal_id: str) -> Reversal | None: ...

    async def list(self, tenant: Tenant, query: ReversalFilter) -> Sequence[Reversal]:
        """Newest first, `limit + 1` at most (the extra one says there is a next page)."""
        ...

    async def for_payment(self, payment_id: str) -> Sequence[Reversal]:
        """Every reversal of a payment, oldest first."""
        ...

    async def find(self, reversal_id: str) -> Reversal | None:
        """Any tenant's reversal by id (for the reconciler, never for a caller)."""
        ...


class ReversalRepository(ReversalReader, Protocol):
    async def add(self, reversal: Reversal) -> None: ...

    async def save(self, reversal: Reversal) -> None: ...

    async def lock(self, reversal_id: str) -> Reversal | None: ...

    async def lock_by_callback_tokens(self, token_hashes: Sequence[str]) -> Mapping[str, Reversal]:
        """The reversals of these callback tokens, locked, by token hash."""
        ...

    async def stranded(self, before: datetime, limit: int) -> Sequence[str]:
        """Reversals still `sending` since before `before` (a crash between recording and sending)."""
        ...

    async def claim_due_for_query(self, now: datetime, limit: int, hold_until: datetime) -> Sequence[str]:
        """`sent`/`unknown` reversals with an OriginatorConversationID whose `next_query_at` has come,
        oldest due first (skipping rows another process has locked); their `next_query_at` becomes
        `hold_until`, so that no other pass takes them meanwhile."""
        ...
