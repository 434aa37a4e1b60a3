"""The small protocols through which the core talks to the world.

    DarajaGateway   — STK push and query, Dynamic QR (adapter: `daraja.gateway`)
    UnitOfWork      — one transaction over the repositories (adapter: `storage.db`)
    ReadUnitOfWork  — the same, read-only: its repositories have no write verbs
    Clock           — `core.clock`

Gateway errors (raised by DarajaGateway, caught by the use cases):

    GatewayError
    ├── PushRejected        — Daraja refused the push; no prompt was shown (definitive)
    ├── PushNotSent         — the push never reached Daraja, or was refused before processing
    ├── PushOutcomeUnknown  — sent, but we could not learn the answer: never retried, reconciled
    ├── QueryPending        — STK Query: "The transaction is being processed"
    ├── QueryFailed         — STK Query could not be answered now
    ├── QrRefused           — Dynamic QR: the request broke Daraja's rules (also an InvalidRequest: 400)
    └── QrUnavailable       — Dynamic QR: Daraja unreachable, throttling, refusing the credentials
                              (also an UpstreamUnavailable: 502)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from types import TracebackType
from typing import Protocol, Self

from mpesa_bridge.core.balances.ports import BalanceQueryReader, BalanceQueryRepository
from mpesa_bridge.core.c2b.ports import C2BReader, C2BRepository
from mpesa_bridge.core.checkout.entity import CheckoutSession
from mpesa_bridge.core.errors import BridgeError, ConfigurationMissing, InvalidRequest, UpstreamUnavailable
from mpesa_bridge.core.links.entity import LinkTotals, PaymentLink
from mpesa_bridge.core.payments.entity import (
    InboundCallback,
    OutboxEvent,
    Payment,
    PaymentEvidence,
)
from mpesa_bridge.core.payments.status import PaymentStatus
from mpesa_bridge.core.payouts.ports import PayoutReader, PayoutRepository, StatusQueryReader, StatusQueryRepository
from mpesa_bridge.core.projects import ApiKey, DarajaAccount, DarajaConfig, Mode, Project, PublishableKey, Tenant
from mpesa_bridge.core.reversals.ports import ReversalReader, ReversalRepository


class GatewayError(BridgeError):
    code = "daraja_error"


class PushRejected(GatewayError):
    code = "daraja_rejected"


class PushNotSent(GatewayError):
    code = "daraja_unavailable"


class PushOutcomeUnknown(GatewayError):
    code = "daraja_no_answer"


class QueryPending(GatewayError):
    code = "still_processing"


class QueryFailed(GatewayError):
    code = "query_failed"


class QrRefused(GatewayError, InvalidRequest):
    """`param` names the field at fault, in the API's terms (merchant_name, reference, …)."""

    code = "invalid_for_daraja"


class QrUnavailable(GatewayError, UpstreamUnavailable):
    code = "daraja_unavailable"


class InitiatorUnavailable(GatewayError, ConfigurationMissing):
    """No SecurityCredential can be made: the mode has no initiator (`initiator_not_configured`) or
    the environment's certificate cannot be had (`certificate_unavailable`). Nothing was sent."""

    code = "initiator_not_configured"


@dataclass(frozen=True)
class StkPushCommand:
    account: DarajaAccount
    amount: int
    phone: str
    callback_url: str
    account_reference: str
    description: str


@dataclass(frozen=True)
class PushAccepted:
    merchant_request_id: str
    checkout_request_id: str


@dataclass(frozen=True)
class QueryAnswer:
    result_code: str
    result_desc: str


@dataclass(frozen=True)
class DynamicQrCommand:
    """An M-Pesa Dynamic QR to draw: `trx_code` is BG, WA, PB, SM or SB; `cpi` the party paid."""

    account: DarajaAccount
    merchant_name: str
    reference: str
    amount: int
    trx_code: str
    cpi: str
    size: int


@dataclass(frozen=True)
class DynamicQrImage:
    png: bytes
    request_id: str
    description: str


class DarajaGateway(Protocol):
    async def stk_push(self, command: StkPushCommand) -> PushAccepted: ...

    async def stk_query(self, account: DarajaAccount, checkout_request_id: str) -> QueryAnswer: ...

    async def dynamic_qr(self, command: DynamicQrCommand) -> DynamicQrImage:
        """Raises `QrRefused` (with `param`) or `QrUnavailable`."""
        ...


@dataclass(frozen=True)
class QueryClaim:
    """A payment a reconciler has claimed to query: what the query needs, without a second read."""

    payment_id: str
    project_id: str
    mode: str
    checkout_request_id: str


@dataclass(frozen=True)
class PaymentFilter:
    status: PaymentStatus | None = None
    phone: str | None = None
    account_reference: str | None = None
    created_gte: datetime | None = None
    created_lte: datetime | None = None
    starting_after: str | None = None
    limit: int = 20


@dataclass(frozen=True)
class DayStatusTotal:
    """The payments of one status created on one Africa/Nairobi calendar day: how many, and their sum."""

    day: date
    status: PaymentStatus
    count: int
    amount: int


class PaymentReader(Protocol):
    """What a read unit of work may do with payments: look, never lock or write."""

    async def get(self, tenant: Tenant, payment_id: str) -> Payment | None: ...

    async def find(self, payment_id: str) -> Payment | None: ...

    async def by_checkout_request_id(self, checkout_request_id: str) -> Payment | None: ...

    async def open_for_phone(self, phone: str, since: datetime) -> Sequence[Payment]:
        """The open (pending or unknown) payments to `phone` created at or after `since`, of every
        shop and tenant: what the push guards look at, in one statement."""
        ...

    async def list(self, tenant: Tenant, query: PaymentFilter) -> Sequence[Payment]: ...

    async def day_totals(self, tenant: Tenant, since: datetime, before: datetime) -> Sequence[DayStatusTotal]:
        """Per Nairobi day and status, the payments created at or after `since` and before `before`."""
        ...

    async def stranded(self, before: datetime, limit: int) -> Sequence[str]: ...


class PaymentRepository(PaymentReader, Protocol):
    """Payments in a write unit of work. Nothing is written unless a verb says so: a use case that
    changes a payment it loaded calls `save` (or `save_many`) before its unit of work ends."""

    async def add(self, payment: Payment) -> None: ...

    async def save(self, payment: Payment) -> None:
        """Write what the use case changed on a payment this unit of work loaded or added."""
        ...

    async def save_many(self, payments: Sequence[Payment]) -> None:
        """`save` for several, batched (a callback batch's payments)."""
        ...

    async def lock(self, payment_id: str) -> Payment | None: ...

    async def lock_many(self, payment_ids: Sequence[str]) -> Sequence[Payment]: ...

    async def lock_by_callback_tokens(self, token_hashes: Sequence[str]) -> Mapping[str, Payment]:
        """The payments of these callback tokens, locked in one statement (in id order), by token
        hash; a token no payment has is absent."""
        ...

    async def adopt_daraja_ids(
        self, payment_id: str, merchant_request_id: str, checkout_request_id: str, at: datetime
    ) -> Payment | None:
        """Record the ids Daraja's answer to the push brings, in one conditional UPDATE: an id the
        payment already has (a callback that landed first carries them too) is kept, never
        clobbered. The payment as it now stands; None if there is no such payment."""
        ...

    async def lock_phone(self, short_code: str, phone: str) -> None: ...

    async def claim_due_for_query(self, now: datetime, limit: int, hold_until: datetime) -> Sequence[QueryClaim]:
        """Up to `limit` payments whose query is due at `now`, earliest first, their next query moved
        to `hold_until` in this transaction: another pass (another process too) skips them until then."""
        ...


class CheckoutSessionReader(Protocol):
    async def get(self, tenant: Tenant, session_id: str) -> CheckoutSession | None: ...

    async def find(self, session_id: str) -> CheckoutSession | None: ...

    async def list(self, tenant: Tenant, starting_after: str | None, limit: int) -> Sequence[CheckoutSession]:
        """Newest first, `limit + 1` at most (the extra one says there is a next page)."""
        ...

    async def due_to_expire(self, now: datetime, limit: int) -> Sequence[str]:
        """Open sessions past their expiry with no payment in flight, oldest first."""
        ...


class CheckoutSessionRepository(CheckoutSessionReader, Protocol):
    """Checkout sessions in a write unit of work. Every change is a conditional UPDATE decided in
    the database, so that two transactions racing cannot both win."""

    async def add(self, session: CheckoutSession) -> None: ...

    async def claim(self, session_id: str, payment_id: str, now: datetime) -> bool:
        """Make `payment_id` the session's payment in flight, if the session is open, unexpired and
        has none in flight. False when another transaction (or an earlier one) holds it."""
        ...

    async def release(self, session_id: str, payment_id: str, at: datetime) -> None:
        """The payment in flight ended without success: the session may take another."""
        ...

    async def complete(self, session_id: str, payment_id: str, at: datetime) -> CheckoutSession | None:
        """open -> complete, paid by `payment_id`; None (nothing changed) unless the session was open."""
        ...

    async def complete_by_c2b(self, session_id: str, c2b_payment_id: str, at: datetime) -> CheckoutSession | None:
        """open and unexpired -> complete, paid by the C2B payment `c2b_payment_id` (a payment in
        flight loses its claim: its success, if it comes, is flagged paid twice); None (nothing
        changed) otherwise."""
        ...

    async def expire(self, session_id: str, now: datetime, *, due_only: bool) -> CheckoutSession | None:
        """open -> expired when no payment is in flight (and, with `due_only`, its time has come);
        None (nothing changed) otherwise."""
        ...


class PaymentLinkReader(Protocol):
    async def get(self, tenant: Tenant, link_id: str) -> PaymentLink | None: ...

    async def by_slug(self, slug: str) -> PaymentLink | None: ...

    async def list(self, tenant: Tenant, starting_after: str | None, limit: int) -> Sequence[PaymentLink]:
        """Newest first, `limit + 1` at most (the extra one says there is a next page)."""
        ...

    async def totals(self, link_id: str) -> LinkTotals:
        """The succeeded payments of the link's checkout sessions: how many, and their sum."""
        ...


class PaymentLinkRepository(PaymentLinkReader, Protocol):
    """Payment links in a write unit of work: `add`, and `save` of a link loaded by `lock`."""

    async def add(self, link: PaymentLink) -> None:
        """Insert the link; raises `SlugTaken` (the unit of work is then spoiled) if its slug is in use."""
        ...

    async def lock(self, tenant: Tenant, link_id: str) -> PaymentLink | None: ...

    async def save(self, link: PaymentLink) -> None: ...


class EventReader(Protocol):
    async def for_payment(self, payment_id: str) -> Sequence[OutboxEvent]: ...


class EventRepository(EventReader, Protocol):
    async def add(self, event: OutboxEvent) -> None:
        """Written in this unit of work's transaction (with its other new rows, at the latest
        before it commits) and announced once it has committed."""
        ...


class EvidenceReader(Protocol):
    async def for_payment(self, payment_id: str) -> Sequence[PaymentEvidence]: ...


class EvidenceRepository(EvidenceReader, Protocol):
    async def add(self, evidence: PaymentEvidence) -> None: ...


class CallbackReader(Protocol):
    async def unprocessed(self, due_by: datetime, limit: int) -> Sequence[str]:
        """The ids of `received` callbacks of every kind due by `due_by` (never tried, or their retry is
        due), oldest first: the inbox applies each through its kind's handler.

        A callback waiting for its retry, or `failed`, is not among them: it cannot hide newer ones."""
        ...

    async def needing_review(self, tenant: Tenant, limit: int) -> Sequence[InboundCallback]:
        """The tenant's callbacks the inbox flagged or gave up on (`flagged`, `failed`), newest
        first: those tied to a payment of the tenant (by payment id or callback token)."""
        ...

    async def get(self, tenant: Tenant, callback_id: str) -> InboundCallback | None:
        """One callback tied to a payment of the tenant; None for any other."""
        ...

    async def for_payment(self, payment_id: str) -> Sequence[InboundCallback]:
        """Every callback stored about a payment, in the order they arrived."""
        ...


class CallbackRepository(CallbackReader, Protocol):
    async def add_many(self, callbacks: Sequence[InboundCallback]) -> None: ...

    async def save_many(self, callbacks: Sequence[InboundCallback]) -> None:
        """Write what the handler made of callbacks this unit of work locked (state, attempts, …)."""
        ...

    async def lock_many(self, callback_ids: Sequence[str]) -> Sequence[InboundCallback]:
        """The callbacks among `callback_ids` that no other transaction holds, locked, in id order."""
        ...


class ProjectReader(Protocol):
    async def get(self, project_id: str) -> Project | None: ...

    async def list(self) -> Sequence[Project]: ...

    async def daraja_config(self, project_id: str, mode: Mode) -> DarajaConfig | None: ...

    async def all_daraja_configs(self) -> Sequence[DarajaConfig]: ...

    async def key_with_project(self, key_hash: str) -> tuple[ApiKey, Project] | None:
        """The key with this SHA-256 and its project, in one statement (None: no such key)."""
        ...

    async def key(self, key_id: str) -> ApiKey | None: ...

    async def keys(self, project_id: str) -> Sequence[ApiKey]: ...

    async def publishable_keys(self, project_id: str) -> Sequence[PublishableKey]: ...

    async def publishable_key_with_project(self, key: str) -> tuple[PublishableKey, Project] | None:
        """The publishable key and its project, in one statement (None: no such key)."""
        ...

    async def project_of_checkout_session(self, session_id: str) -> Project | None:
        """The project a checkout session belongs to (None: no such session): for its CORS origins."""
        ...


class ProjectRepository(ProjectReader, Protocol):
    async def add(self, project: Project) -> None: ...

    async def save(self, project: Project) -> None:
        """Write what the use case changed on a project this unit of work loaded."""
        ...

    async def put_daraja_config(self, config: DarajaConfig) -> None:
        """Insert or replace the settings of the config's project mode."""
        ...

    async def add_key(self, key: ApiKey) -> None: ...

    async def save_key(self, key: ApiKey) -> None:
        """Write what the use case changed on a key this unit of work loaded (revoked, expires)."""
        ...

    async def save_keys(self, keys: Sequence[ApiKey]) -> None: ...

    async def touch_key(self, key_id: str, at: datetime) -> None: ...

    async def put_publishable_key(self, key: PublishableKey) -> None:
        """Insert or replace the publishable key of the key's project mode."""
        ...


@dataclass(frozen=True)
class IdempotencyBinding:
    """The `Idempotency-Key` a creating request holds: bound to what it creates, in the same
    transaction (a recovery point), so that a retry after a crash answers with that and never
    creates — or prompts — a second time. `seal` seals a secret for storage beside the binding."""

    scope: str
    key: str
    owner: str
    seal: Callable[[str], str]


class IdempotencyRepository(Protocol):
    async def bind(self, scope: str, key: str, owner: str, resource_id: str, resource_secret: str | None) -> bool:
        """False when the claim is no longer this request's (taken over or gone): roll back."""
        ...


class ReadUnitOfWork(Protocol):
    """One read-only transaction: its repositories have no write verbs (a write there is a type
    error, and the adapter refuses one at run time too). Leaving the block rolls back."""

    @property
    def payments(self) -> PaymentReader: ...

    @property
    def events(self) -> EventReader: ...

    @property
    def evidence(self) -> EvidenceReader: ...

    @property
    def callbacks(self) -> CallbackReader: ...

    @property
    def projects(self) -> ProjectReader: ...

    @property
    def checkout_sessions(self) -> CheckoutSessionReader: ...

    @property
    def payment_links(self) -> PaymentLinkReader: ...

    @property
    def c2b(self) -> C2BReader: ...

    @property
    def reversals(self) -> ReversalReader: ...

    @property
    def balance_queries(self) -> BalanceQueryReader: ...

    @property
    def payouts(self) -> PayoutReader: ...

    @property
    def status_queries(self) -> StatusQueryReader: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class UnitOfWork(ReadUnitOfWork, Protocol):
    """One transaction. Leaving the block without error commits; an error rolls back."""

    @property
    def payments(self) -> PaymentRepository: ...

    @property
    def events(self) -> EventRepository: ...

    @property
    def evidence(self) -> EvidenceRepository: ...

    @property
    def callbacks(self) -> CallbackRepository: ...

    @property
    def projects(self) -> ProjectRepository: ...

    @property
    def idempotency(self) -> IdempotencyRepository: ...

    @property
    def checkout_sessions(self) -> CheckoutSessionRepository: ...

    @property
    def payment_links(self) -> PaymentLinkRepository: ...

    @property
    def c2b(self) -> C2BRepository: ...

    @property
    def reversals(self) -> ReversalRepository: ...

    @property
    def balance_queries(self) -> BalanceQueryRepository: ...

    @property
    def payouts(self) -> PayoutRepository: ...

    @property
    def status_queries(self) -> StatusQueryRepository: ...


class UnitOfWorkFactory(Protocol):
    def write(self) -> UnitOfWork: ...

    def read(self) -> ReadUnitOfWork: ...
