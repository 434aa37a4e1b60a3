"""The balance query entity: one Account Balance request of a project's short code and its answer.

    pending ──► completed   (the Result came: accounts and amounts)
       └──────► failed      (Daraja refused it, it was never sent, the Result said no, the
                             request timed out in Daraja's queue, or no Result came within the
                             deadline: `no_result`, `core.result_deadline`)

A balance query moves no money: a lost answer leaves it `pending` (a Result may still come) until
the deadline gives it up, and asking again is always safe — a new query, never a re-send of this one.

Amounts are whole shillings, like every amount of the bridge. Daraja gives balances with cents
("228037.50"); the cents are dropped, rounding down (228037.50 -> 228037; -1540.50 -> -1541), so a
balance is never shown higher than it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

BALANCE_QUERY = "balance_query"
ID_PREFIX = "bq"


class BalanceQueryStatus(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self is not BalanceQueryStatus.PENDING


class BalanceQueryEventType:
    COMPLETED = "balance_query.completed"
    FAILED = "balance_query.failed"

    ALL = (COMPLETED, FAILED)


@dataclass(frozen=True)
class AccountBalance:
    """One account of the Result: its headline balance and the four amounts Daraja sends, in
    shillings (daraja.md §10: their meaning differs between sources, so all four are kept)."""

    name: str
    currency: str
    available: int
    amounts: tuple[int, ...]


def shillings(cents: int) -> int:
    """Whole shillings of an amount in cents, rounded down (floor): never more than there is."""
    return cents // 100


def account_from_cents(name: str, currency: str, amounts_cents: tuple[int, ...]) -> AccountBalance:
    amounts = tuple(shillings(c) for c in amounts_cents)
    return AccountBalance(name=name, currency=currency, available=amounts[0] if amounts else 0, amounts=amounts)


@dataclass(eq=False)
class BalanceQuery:
    id: str
    project_id: str
    mode: str
    status: BalanceQueryStatus
    short_code: str
    daraja_environment: str
    callback_token_hash: str
    created_at: datetime
    updated_at: datetime
    conversation_id: str | None = None
    originator_conversation_id: str | None = None
    result_code: str | None = None
    result_desc: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    # [{"name", "currency", "available", "amounts"}]: AccountBalance as stored (whole shillings)
    accounts: list[dict[str, Any]] = field(default_factory=list)
    balances_at: datetime | None = None  # Daraja's BOCompletedTime
    completed_at: datetime | None = None

    def account_balances(self) -> list[AccountBalance]:
        return [
            AccountBalance(a["name"], a["currency"], int(a["available"]), tuple(int(x) for x in a["amounts"]))
            for a in self.accounts
        ]


def stored_accounts(accounts: tuple[AccountBalance, ...]) -> list[dict[str, Any]]:
    return [
        {"name": a.name, "currency": a.currency, "available": a.available, "amounts": list(a.amounts)} for a in accounts
    ]
