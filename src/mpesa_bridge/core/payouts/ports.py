"""The ports of payouts and Transaction Status queries (composed into `core.ports.UnitOfWork`).

    InitiatorGateway       — B2C and Transaction Status requests (adapter: `daraja.payouts`)
    InitiatorResultReader  — reads the Results Daraja POSTs back (adapter: `daraja.payouts`)
    PayoutRepository, StatusQueryRepository — storage (`storage.payouts`, `storage.status_queries`)

The gateway raises the core's gateway errors (`core.ports`): `PushRejected` (Daraja refused the
request: nothing happened), `PushNotSent` (it never left, or the initiator cannot be made),
`PushOutcomeUnknown` (sent, answer lost: never sent again, settled by Transaction Status).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from mpesa_bridge.core.payouts.entity import Payout, PayoutSettings
from mpesa_bridge.core.payouts.status import PayoutStatus
from mpesa_bridge.core.projects import DarajaAccount, Tenant
from mpesa_bridge.core.status_queries.entity import StatusQuery


@dataclass(frozen=True)
class B2cCommand:
    account: DarajaAccount
    originator_conversation_id: str
    command_id: str
    amount: int
    phone: str
    remarks: str
    occasion: str
    result_url: str
    queue_timeout_url: str
    version: str = "v3"


@dataclass(frozen=True)
class StatusQueryCommand:
    account: DarajaAccount
    result_url: str
    queue_timeout_url: str
    transaction_id: str = ""
    original_conversation_id: str = ""
    remarks: str = "Status check"


@dataclass(frozen=True)
class InitiatorAck:
    """Daraja queued the request; the outcome comes later as a Result."""

    conversation_id: str
    originator_conversation_id: str


class InitiatorGateway(Protocol):
    async def b2c_payment(self, command: B2cCommand) -> InitiatorAck: ...

    async def transaction_status(self, command: StatusQueryCommand) -> InitiatorAck: ...


class MalformedResult(ValueError):
    """A POST to a ResultURL that is not a Result we can read."""


@dataclass(frozen=True)
class B2cResult:
    result_code: str
    result_desc: str
    originator_conversation_id: str
    conversation_id: str
    receipt: str | None = None
    amount: int | None = None
    recipient_name: str | None = None
    completed_at: datetime | None = None


@dataclass(frozen=True)
class StatusResult:
    """A Transaction Status Result; `details` are its parameters as the API shows them."""

    result_code: str
    result_desc: str
    originator_conversation_id: str
    conversation_id: str
    receipt: str | None = None
    transaction_status: str | None = None  # "Completed", "Declined", …
    amount: int | None = None
    looked_up_originator_id: str | None = None  # the B2C OriginatorConversationID the result is about
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def completed(self) -> bool:
        return (self.transaction_status or "").strip().lower() == "completed"


class InitiatorResultReader(Protocol):
    """Raises `MalformedResult` for a body that is not a Result."""

    def b2c(self, body: bytes) -> B2cResult: ...

    def transaction_status(self, body: bytes) -> StatusResult: ...


@dataclass(frozen=True)
class PayoutFilter:
    status: PayoutStatus | None = None
    starting_after: str | None = None
    limit: int = 20


class PayoutReader(Protocol):
    async def get(self, tenant: Tenant, payout_id: str) -> Payout | None: ...

    async def find(self, payout_id: str) -> Payout | None: ...

    async def list(self, tenant: Tenant, query: PayoutFilter) -> Sequence[Payout]:
        """Newest first, `limit + 1` at most (the extra one says there is a next page)."""
        ...

    async def committed_amount(self, tenant: Tenant, since: datetime, before: datetime) -> int:
        """The sum of the tenant's payouts created in [since, before) that are not failed or rejected."""
        ...

    async def settings(self, tenant: Tenant) -> PayoutSettings | None: ...

    async def stale(self, statuses: Sequence[PayoutStatus], before: datetime, limit: int) -> Sequence[str]:
        """Ids of payouts in `statuses` last changed before `before`, oldest first."""
        ...


class PayoutRepository(PayoutReader, Protocol):
    """Payouts in a write unit of work; a changed payout is written by `save`."""

    async def add(self, payout: Payout) -> None: ...

    async def save(self, payout: Payout) -> None: ...

    async def lock(self, payout_id: str) -> Payout | None: ...

    async def lock_by_callback_tokens(self, token_hashes: Sequence[str]) -> Mapping[str, Payout]: ...

    async def lock_tenant(self, tenant: Tenant) -> None:
        """Serialise the creations of one tenant's payouts (the daily limit is checked under it)."""
        ...

    async def claim_due_for_query(self, now: datetime, limit: int, hold_until: datetime) -> Sequence[str]:
        """Up to `limit` sent/unknown payouts whose status query is due, their next one moved to
        `hold_until` in this transaction (another pass skips them until then)."""
        ...

    async def put_settings(self, settings: PayoutSettings) -> None: ...


class StatusQueryReader(Protocol):
    async def get(self, tenant: Tenant, query_id: str) -> StatusQuery | None: ...

    async def list(self, tenant: Tenant, starting_after: str | None, limit: int) -> Sequence[StatusQuery]: ...

    async def for_payout(self, payout_id: str) -> Sequence[StatusQuery]: ...


class StatusQueryRepository(StatusQueryReader, Protocol):
    async def add(self, query: StatusQuery) -> None: ...

    async def save(self, query: StatusQuery) -> None: ...

    async def lock(self, query_id: str) -> StatusQuery | None: ...

    async def lock_by_callback_tokens(self, token_hashes: Sequence[str]) -> Mapping[str, StatusQuery]: ...

    async def stale_pending(self, before: datetime, limit: int) -> Sequence[str]:
        """Ids of `pending` queries created before `before`, oldest first (`core.result_deadline`)."""
        ...
