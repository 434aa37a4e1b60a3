"""Starting an STK Push, reading payments (one, a page, daily totals), and asking Daraja now (refresh)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from mpesa_bridge.core.accounts import ProjectService
from mpesa_bridge.core.checkout.payments import claim_for_payment
from mpesa_bridge.core.clock import Clock
from mpesa_bridge.core.errors import AuthenticationFailed, Conflict, NotFound
from mpesa_bridge.core.idempotency import bind_key
from mpesa_bridge.core.ids import new_id, new_token
from mpesa_bridge.core.payments.entity import EventType, Payment, PaymentEvidence
from mpesa_bridge.core.payments.outcomes import Outcome, mark_unknown, record_outcome, write_event
from mpesa_bridge.core.payments.policy import GuardPolicy, ReconcilePolicy
from mpesa_bridge.core.payments.reconcile import settle_by_query
from mpesa_bridge.core.payments.status import Evidence, PaymentStatus
from mpesa_bridge.core.payments.totals import DayTotals, TotalsWindow, fold_days, totals_window
from mpesa_bridge.core.payments.validation import PaymentCreate
from mpesa_bridge.core.ports import (
    DarajaGateway,
    IdempotencyBinding,
    PaymentFilter,
    PushAccepted,
    PushNotSent,
    PushOutcomeUnknown,
    PushRejected,
    StkPushCommand,
    UnitOfWork,
    UnitOfWorkFactory,
)
from mpesa_bridge.core.projects import DarajaAccount, Tenant

CLIENT_SECRET_MARK = "_secret_"
CLIENT_SECRET_MAX_LENGTH = 128
INVALID_CLIENT_SECRET = "Invalid client secret provided."


def token_hash(token: str) -> str:
    """What is stored of a payment's callback token (the secret in its callback URL): the one
    definition for the payment that issues it and the callback route that looks it up."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_client_secret(payment_id: str) -> str:
    """`pay_…_secret_<random>`: lets a browser or app read this one payment's status, nothing else.
    It carries the payment id so that a single indexed look-up finds what it opens."""
    return f"{payment_id}{CLIENT_SECRET_MARK}{new_token()}"


class PaymentService:
    """The payment use cases the API calls. Services commit through units of work, one per step."""

    def __init__(
        self,
        db: UnitOfWorkFactory,
        daraja: DarajaGateway,
        projects: ProjectService,
        clock: Clock,
        callback_url: Callable[[str], str],
        policy: ReconcilePolicy | None = None,
        guards: GuardPolicy | None = None,
    ) -> None:
        self._db = db
        self._daraja = daraja
        self._projects = projects
        self._clock = clock
        self._callback_url = callback_url
        self._policy = policy or ReconcilePolicy()
        self._guards = guards or GuardPolicy()

    async def create(
        self,
        tenant: Tenant,
        request: PaymentCreate,
        idempotency: IdempotencyBinding | None = None,
        *,
        checkout_session_id: str | None = None,
    ) -> Payment:
        """Record the payment, then push. A crash between the two leaves a pending payment that
        reconciliation turns `unknown`: we never know whether a prompt was shown, so never re-push.

        With `idempotency`, the key is bound to the payment in the transaction that inserts it:
        whatever happens after that commit, a retry with the key answers with this payment.

        With `checkout_session_id`, the payment claims that session in the same transaction
        (`core.checkout.payments`): refused (409, nothing pushed) while another payment holds it."""
        account = await self._projects.account(tenant)
        token = new_token()
        payment = self._new_payment(tenant, request, account, token_hash(token))
        client_secret = new_client_secret(payment.id)
        payment.client_secret_hash = token_hash(client_secret)
        async with self._db.write() as uow:
            await self._refuse_if_in_flight(uow, payment)
            if checkout_session_id is not None:
                await claim_for_payment(uow, checkout_session_id, payment)
            await uow.payments.add(payment)
            await write_event(uow, payment, EventType.CREATED, payment.created_at)
            if idempotency is not None:
                await bind_key(uow, idempotency, payment.id, client_secret)
        command = StkPushCommand(
            account=account,
            amount=payment.amount,
            phone=payment.phone,
            callback_url=self._callback_url(token),
            account_reference=payment.account_reference,
            description=payment.description,
        )
        try:
            accepted = await self._daraja.stk_push(command)
        except PushOutcomeUnknown as exc:
            created = await self._after_push(payment.id, unknown=exc.code)
        except (PushRejected, PushNotSent) as exc:
            created = await self._after_push(payment.id, rejected=(exc.code, exc.message))
        else:
            created = await self._after_push(payment.id, accepted=accepted)
        created.client_secret = client_secret  # every event is written: only this answer shows it
        return created

    async def authenticate_client_secret(self, secret: str) -> Payment:
        """The payment a client secret opens. Every failure — malformed, unknown, wrong — looks the same."""
        payment_id, mark, _ = secret.partition(CLIENT_SECRET_MARK)
        # Printable ASCII only: it reaches the database as an id, and PostgreSQL refuses NUL in
        # text (a Socket.IO CONNECT never passes the HTTP edge checks).
        well_formed = secret.isascii() and secret.isprintable() and len(secret) <= CLIENT_SECRET_MAX_LENGTH
        if not mark or not payment_id.startswith("pay_") or not well_formed:
            raise AuthenticationFailed(INVALID_CLIENT_SECRET, code="invalid_client_secret")
        async with self._db.read() as uow:
            payment = await uow.payments.find(payment_id)
        stored = payment.client_secret_hash if payment is not None else None
        if payment is None or stored is None or not hmac.compare_digest(stored, token_hash(secret)):
            raise AuthenticationFailed(INVALID_CLIENT_SECRET, code="invalid_client_secret")
        return payment

    async def _refuse_if_in_flight(self, uow: UnitOfWork, payment: Payment) -> None:
        # Checked inside the inserting transaction, under a per-phone lock, so two concurrent
        # requests cannot both pass.
        windows = [w for w in (self._guards.duplicate_window, self._guards.phone_window) if w]
        if not windows:
            return
        await uow.payments.lock_phone(payment.business_short_code, payment.phone)
        now = payment.created_at
        open_now = await uow.payments.open_for_phone(payment.phone, now - timedelta(seconds=max(windows)))
        if self._guards.duplicate_window:
            since = now - timedelta(seconds=self._guards.duplicate_window)
            twin = next((p for p in open_now if p.created_at >= since and _same_request(p, payment)), None)
            if twin is not None:
                raise Conflict(
                    f"A payment for this phone, amount and reference is already in progress ({twin.id}).",
                    code="duplicate_in_flight",
                )
        if self._guards.phone_window:
            since = now - timedelta(seconds=self._guards.phone_window)
            if any(p.created_at >= since and p.business_short_code == payment.business_short_code for p in open_now):
                raise Conflict(
                    "A payment prompt is already on this phone; wait for it to finish.",
                    code="phone_busy",
                    param="phone",
                )

    async def get(self, tenant: Tenant, payment_id: str) -> Payment:
        async with self._db.read() as uow:
            payment = await uow.payments.get(tenant, payment_id)
        if payment is None:
            raise NotFound(f"No such payment: '{payment_id}'", param="id")
        return payment

    async def list(self, tenant: Tenant, query: PaymentFilter) -> Sequence[Payment]:
        async with self._db.read() as uow:
            return await uow.payments.list(tenant, query)

    async def daily_totals(
        self,
        tenant: Tenant,
        *,
        days: int | None = None,
        created_gte: datetime | None = None,
        created_lte: datetime | None = None,
    ) -> tuple[TotalsWindow, Sequence[DayTotals]]:
        """Per Africa/Nairobi day, the tenant's payments by status and what succeeded (core.payments.totals)."""
        window = totals_window(self._clock.now(), days=days, created_gte=created_gte, created_lte=created_lte)
        async with self._db.read() as uow:
            rows = await uow.payments.day_totals(tenant, window.since, window.before)
        return window, fold_days(window, rows)

    async def evidence(self, tenant: Tenant, payment_id: str) -> Sequence[PaymentEvidence]:
        await self.get(tenant, payment_id)
        async with self._db.read() as uow:
            return await uow.evidence.for_payment(payment_id)

    async def refresh(self, tenant: Tenant, payment_id: str) -> Payment:
        """Ask Daraja (STK Query) now, and apply what it says under the usual evidence rules."""
        payment = await self.get(tenant, payment_id)
        if payment.checkout_request_id is None:
            return payment
        account = await self._projects.account(tenant)
        await settle_by_query(self._db, self._daraja, account, payment.id, self._clock, self._policy)
        return await self.get(tenant, payment_id)

    def _new_payment(self, tenant: Tenant, req: PaymentCreate, account: DarajaAccount, cb_hash: str) -> Payment:
        now = self._clock.now()
        return Payment(
            id=new_id("pay", now),
            project_id=tenant.project_id,
            mode=tenant.mode.value,
            status=PaymentStatus.PENDING,
            amount=req.amount,
            phone=req.phone,
            account_reference=req.account_reference,
            description=req.description,
            metadata=req.metadata,
            business_short_code=account.short_code,
            party_b=account.party_b,
            transaction_type=account.transaction_type,
            daraja_environment=account.environment.value,
            callback_token_hash=cb_hash,
            created_at=now,
            updated_at=now,
            next_query_at=now + timedelta(seconds=self._policy.query_delay),
        )

    async def _after_push(
        self,
        payment_id: str,
        *,
        accepted: PushAccepted | None = None,
        rejected: tuple[str, str] | None = None,
        unknown: str | None = None,
    ) -> Payment:
        now = self._clock.now()
        async with self._db.write() as uow:
            if accepted is not None:
                # One conditional UPDATE: the ids a callback that landed first brought are kept.
                payment = await uow.payments.adopt_daraja_ids(
                    payment_id, accepted.merchant_request_id, accepted.checkout_request_id, now
                )
            else:
                payment = await uow.payments.lock(payment_id)
            if payment is None:  # pragma: no cover - we just wrote it
                raise NotFound(f"No such payment: '{payment_id}'")
            if rejected is not None:
                code, message = rejected
                outcome = Outcome(
                    PaymentStatus.FAILED, Evidence.DARAJA_ANSWER, code, result_desc=message, source="push"
                )
                await record_outcome(uow, payment, outcome, now)
            elif unknown is not None:
                await mark_unknown(uow, payment, unknown, now)
            await uow.payments.save(payment)
            return payment


def _same_request(one: Payment, other: Payment) -> bool:
    """The same tenant asking the same phone for the same amount against the same reference."""
    return (one.project_id, one.mode, one.amount, one.account_reference) == (
        other.project_id,
        other.mode,
        other.amount,
        other.account_reference,
    )
