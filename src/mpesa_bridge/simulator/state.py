"""What the simulated gateway remembers: access tokens and STK pushes (with the per-phone lock)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from . import ids
from .scenarios import Scenario
from .validation import StkPushRequest


class TokenStore:
    """Access tokens minted by OAuth; each lives `ttl` seconds by the injected clock.

    Earlier tokens stay valid after a new one is minted: the portal FAQ says otherwise, but
    developers report old tokens working until expiry (daraja.md section 2).
    """

    def __init__(self, ttl: int, now: Callable[[], datetime]) -> None:
        self._ttl = timedelta(seconds=ttl)
        self._now = now
        self._expiry: dict[str, datetime] = {}

    def issue(self) -> str:
        token = ids.access_token()
        self._expiry[token] = self._now() + self._ttl
        return token

    def is_valid(self, token: str) -> bool:
        expiry = self._expiry.get(token)
        if expiry is None:
            return False
        if self._now() >= expiry:
            del self._expiry[token]
            return False
        return True


@dataclass(frozen=True)
class CallbackAttempt:
    """One POST to the CallBackURL: `status_code` is None when the request itself failed."""

    at: datetime
    body: dict[str, Any]
    status_code: int | None = None
    error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass
class PushRecord:
    """An accepted STK push and what became of it (for the query endpoint and for tests)."""

    merchant_request_id: str
    checkout_request_id: str
    request: StkPushRequest
    scenario: Scenario
    created_at: datetime
    decided_at: datetime | None = None
    receipt_number: str | None = None
    callbacks: list[CallbackAttempt] = field(default_factory=list)

    @property
    def phone_number(self) -> str:
        return self.request.phone_number

    @property
    def party_a(self) -> str:
        return self.request.party_a

    @property
    def amount(self) -> int:
        return self.request.amount

    @property
    def callback_url(self) -> str:
        return self.request.callback_url

    @property
    def result_code(self) -> int:
        return self.scenario.result_code

    @property
    def result_desc(self) -> str:
        return self.scenario.result_desc

    @property
    def decided(self) -> bool:
        """True once the customer has acted (the outcome is final and visible to STK Query)."""
        return self.decided_at is not None

    @property
    def callbacks_sent(self) -> int:
        return len(self.callbacks)


class PushLedger:
    """Pushes by CheckoutRequestID, and which phones have an unresolved push."""

    def __init__(self) -> None:
        self._pushes: dict[str, PushRecord] = {}
        self._locked_phones: dict[str, str] = {}  # phone -> CheckoutRequestID holding it
        self._receipts: set[str] = set()

    def __iter__(self) -> Iterator[PushRecord]:
        return iter(list(self._pushes.values()))

    def get(self, checkout_request_id: str) -> PushRecord | None:
        return self._pushes.get(checkout_request_id)

    def is_locked(self, phone: str) -> bool:
        return phone in self._locked_phones

    def new_checkout_request_id(self, moment: datetime, phone: str) -> str:
        # Two pushes to one phone in the same millisecond (a frozen test clock) must not collide.
        candidate = ids.checkout_request_id(moment, phone)
        while candidate in self._pushes:
            moment += timedelta(milliseconds=1)
            candidate = ids.checkout_request_id(moment, phone)
        return candidate

    def add(self, record: PushRecord) -> None:
        self._pushes[record.checkout_request_id] = record
        self._locked_phones[record.phone_number] = record.checkout_request_id

    def decide(self, record: PushRecord, moment: datetime) -> None:
        """The customer acted: fix the outcome, issue the receipt, release the phone."""
        record.decided_at = moment
        if record.scenario.succeeded:
            record.receipt_number = self._new_receipt(moment)
        if self._locked_phones.get(record.phone_number) == record.checkout_request_id:
            del self._locked_phones[record.phone_number]

    def _new_receipt(self, moment: datetime) -> str:
        receipt = ids.receipt_number(moment)
        while receipt in self._receipts:
            receipt = ids.receipt_number(moment)
        self._receipts.add(receipt)
        return receipt
