"""What the balance query use cases need: the Daraja call, the Result reader, storage."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from mpesa_bridge.core.balances.entity import AccountBalance, BalanceQuery
from mpesa_bridge.core.projects import DarajaAccount, Tenant
from mpesa_bridge.core.reversals.ports import InitiatorQueued, InitiatorResultNotice


@dataclass(frozen=True)
class BalanceCommand:
    account: DarajaAccount
    short_code: str
    result_url: str
    queue_timeout_url: str
    remarks: str


@dataclass(frozen=True)
class BalanceResult(InitiatorResultNotice):
    """An Account Balance Result: the envelope, its accounts (whole shillings) and Daraja's time."""

    accounts: tuple[AccountBalance, ...] = ()
    completed_at: datetime | None = None


class BalanceGateway(Protocol):
    async def account_balance(self, command: BalanceCommand) -> InitiatorQueued: ...


class BalanceResultReader(Protocol):
    def balance(self, body: bytes) -> BalanceResult: ...

    def notice(self, body: bytes) -> InitiatorResultNotice: ...


class BalanceQueryReader(Protocol):
    async def get(self, tenant: Tenant, query_id: str) -> BalanceQuery | None: ...

    async def list(self, tenant: Tenant, starting_after: str | None, limit: int) -> Sequence[BalanceQuery]:
        """Newest first, `limit + 1` at most."""
        ...


class BalanceQueryRepository(BalanceQueryReader, Protocol):
    async def add(self, query: BalanceQuery) -> None: ...

    async def save(self, query: BalanceQuery) -> None: ...

    async def lock(self, query_id: str) -> BalanceQuery | None: ...

    async def lock_by_callback_tokens(self, token_hashes: Sequence[str]) -> Mapping[str, BalanceQuery]: ...

    async def stale_pending(self, before: datetime, limit: int) -> Sequence[str]:
        """Ids of `pending` queries created before `before`, oldest first (`core.result_deadline`)."""
        ...
