"""The protocols C2B talks to the world through: its repository (in the unit of work as `c2b`),
Daraja's URL registration, and the merchant's server asked to validate a payment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from mpesa_bridge.core.c2b.entity import (
    C2BPayment,
    C2BRegistration,
    C2BSettings,
    C2BStatus,
    C2BValidation,
    Candidate,
    ExpectedPayment,
    ExpectedStatus,
)
from mpesa_bridge.core.projects import DarajaAccount, Tenant


class C2BReader(Protocol):
    async def settings(self, tenant: Tenant) -> C2BSettings | None: ...

    async def registration_by_token(self, token_hash: str) -> C2BRegistration | None: ...

    async def registrations(self, tenant: Tenant) -> Sequence[C2BRegistration]: ...

    async def registration(self, tenant: Tenant, short_code: str) -> C2BRegistration | None: ...

    async def payment(self, tenant: Tenant, payment_id: str) -> C2BPayment | None: ...

    async def payments(
        self, tenant: Tenant, status: C2BStatus | None, reference: str | None, starting_after: str | None, limit: int
    ) -> Sequence[C2BPayment]:
        """Newest first, `limit + 1` at most (the extra one says there is more)."""
        ...

    async def payments_for_reference(self, tenant: Tenant, reference_key: str) -> Sequence[C2BPayment]: ...

    async def validations(self, tenant: Tenant, trans_id: str) -> Sequence[C2BValidation]: ...

    async def expected(self, tenant: Tenant, expected_id: str) -> ExpectedPayment | None: ...

    async def expected_list(
        self, tenant: Tenant, status: ExpectedStatus | None, starting_after: str | None, limit: int
    ) -> Sequence[ExpectedPayment]: ...

    async def candidates(self, tenant: Tenant, reference_key: str | None, at: datetime) -> Sequence[Candidate]:
        """What a payment of `reference_key` may pay (every open one of the tenant when None, for
        suggestions): open expected payments (and those paid, with `paid_by`), open checkout
        sessions, active payment links (by slug)."""
        ...


class C2BRepository(C2BReader, Protocol):
    async def save_settings(self, settings: C2BSettings) -> None: ...

    async def save_registration(self, registration: C2BRegistration) -> None:
        """Insert, or replace the tenant's registration of the same short code."""
        ...

    async def add_validation(self, validation: C2BValidation) -> None: ...

    async def add_payment(self, payment: C2BPayment) -> bool:
        """False (nothing written) when the tenant already has a payment with this TransID."""
        ...

    async def lock_payment(self, tenant: Tenant, payment_id: str) -> C2BPayment | None: ...

    async def save_payment(self, payment: C2BPayment) -> None: ...

    async def add_expected(self, expected: ExpectedPayment) -> None: ...

    async def lock_expected(self, tenant: Tenant, expected_id: str) -> ExpectedPayment | None: ...

    async def save_expected(self, expected: ExpectedPayment) -> None: ...


@dataclass(frozen=True)
class C2BRegisterCommand:
    account: DarajaAccount
    short_code: str
    response_type: str
    confirmation_url: str
    validation_url: str
    version: int


class C2BGateway(Protocol):
    async def c2b_register(self, command: C2BRegisterCommand) -> str:
        """Daraja's OriginatorCoversationID; raises `C2BRegisterRefused` or `C2BRegisterUnavailable`."""
        ...


@dataclass(frozen=True)
class MerchantAnswer:
    """What the merchant's server said: `accepted` None when it did not say (late, error, garbage)."""

    accepted: bool | None
    result_code: str | None = None
    late: bool = False
    error: str | None = None
    latency_ms: int = 0


class MerchantAsker(Protocol):
    async def ask(self, url: str, mode: str, headers: dict[str, str], body: bytes, deadline: float) -> MerchantAnswer:
        """POST the signed validation request; never raises."""
        ...


class MalformedC2B(ValueError):
    """A body that is no C2B validation or confirmation payload."""


@dataclass(frozen=True)
class IncomingC2B:
    """A validation or confirmation body, read by the Daraja adapter (`daraja.gateway.read_c2b_body`)."""

    transaction_type: str
    trans_id: str
    trans_time: datetime
    amount: int
    short_code: str
    bill_ref_number: str
    invoice_number: str
    org_account_balance: str | None
    third_party_trans_id: str
    msisdn: str
    msisdn_kind: str
    customer_name: str
    first_name: str = ""


class C2BBodyReader(Protocol):
    def __call__(self, body: bytes) -> IncomingC2B:
        """Raises `MalformedC2B`."""
        ...
