"""The checkout session use cases: open, read, list, expire (secret key); read and pay (client secret).

A browser holding a session's client secret may read that session, start an STK push for it to
the phone its customer types, and try again after a failure — nothing else. The push goes through
`PaymentService.create`, with its guards and its one rule: record the payment, then push, never
a second prompt. The payment claims the session in the transaction that inserts it
(`core.checkout.payments`), so a session has at most one payment in flight and is paid once.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence

from mpesa_bridge.core.checkout.entity import (
    ID_PREFIX,
    CheckoutEventType,
    CheckoutSession,
    CheckoutStatus,
)
from mpesa_bridge.core.checkout.payments import refusal, session_event
from mpesa_bridge.core.checkout.validation import CheckoutCreate, check_pay_amount
from mpesa_bridge.core.clock import Clock
from mpesa_bridge.core.errors import AuthenticationFailed, Conflict, NotFound
from mpesa_bridge.core.idempotency import bind_key
from mpesa_bridge.core.ids import new_id
from mpesa_bridge.core.payments.entity import Payment
from mpesa_bridge.core.payments.stk import (
    CLIENT_SECRET_MARK,
    CLIENT_SECRET_MAX_LENGTH,
    INVALID_CLIENT_SECRET,
    PaymentService,
    new_client_secret,
    token_hash,
)
from mpesa_bridge.core.payments.validation import PaymentCreate
from mpesa_bridge.core.phone import normalise_phone
from mpesa_bridge.core.ports import IdempotencyBinding, UnitOfWorkFactory
from mpesa_bridge.core.projects import Mode, Tenant

EXPIRE_BATCH = 200


class CheckoutService:
    """Checkout sessions for the API and the maintenance loop. Services never commit: units of work do."""

    def __init__(
        self,
        db: UnitOfWorkFactory,
        payments: PaymentService,
        clock: Clock,
        page_url: Callable[[str], str],
    ) -> None:
        self._db = db
        self._payments = payments
        self._clock = clock
        self._page_url = page_url

    async def create(
        self,
        tenant: Tenant,
        request: CheckoutCreate,
        idempotency: IdempotencyBinding | None = None,
        *,
        payment_link_id: str | None = None,
        client_side: bool = False,
    ) -> CheckoutSession:
        """Open a session. With `idempotency`, the key is bound to it in the inserting transaction;
        `payment_link_id` names the payment link that opened it (core/links/); `client_side` marks
        one a publishable key opened for an amount the browser chose (core/browser.py)."""
        now = self._clock.now()
        session_id = new_id(ID_PREFIX, now)
        client_secret = new_client_secret(session_id)
        session = CheckoutSession(
            id=session_id,
            project_id=tenant.project_id,
            mode=tenant.mode.value,
            status=CheckoutStatus.OPEN,
            amount=request.amount,
            amount_min=request.amount_min,
            amount_max=request.amount_max,
            reference=request.reference,
            description=request.description,
            metadata=request.metadata,
            success_url=request.success_url,
            cancel_url=request.cancel_url,
            url=self._page_url(session_id),
            expires_at=request.expires_at,
            client_secret_hash=token_hash(client_secret),
            created_at=now,
            updated_at=now,
            payment_link_id=payment_link_id,
            client_side=client_side,
        )
        async with self._db.write() as uow:
            await uow.checkout_sessions.add(session)
            if idempotency is not None:
                await bind_key(uow, idempotency, session.id, client_secret)
        session.client_secret = client_secret
        return session

    async def get(self, tenant: Tenant, session_id: str) -> CheckoutSession:
        async with self._db.read() as uow:
            session = await uow.checkout_sessions.get(tenant, session_id)
        if session is None:
            raise NotFound(f"No such checkout session: '{session_id}'", param="id")
        return session

    async def list(self, tenant: Tenant, starting_after: str | None, limit: int) -> Sequence[CheckoutSession]:
        async with self._db.read() as uow:
            return await uow.checkout_sessions.list(tenant, starting_after, limit)

    async def reread_with_payment(self, session: CheckoutSession, payment_id: str) -> tuple[CheckoutSession, Payment]:
        """The session and one of its payments as they stand now, read together: an outcome applied
        since the push shows in both (never a session with nothing in flight beside a pending payment)."""
        async with self._db.read() as uow:
            found = await uow.checkout_sessions.find(session.id)
            payment = await uow.payments.find(payment_id)
        if found is None or payment is None:  # pragma: no cover - sessions and payments are never deleted
            raise NotFound(f"No such checkout session: '{session.id}'", param="id")
        return found, payment

    async def with_latest_payment(self, session: CheckoutSession) -> tuple[CheckoutSession, Payment | None]:
        """The session as it stands now and its latest payment, read in one unit of work (one
        snapshot): never a session still open beside the payment that completed it."""
        async with self._db.read() as uow:
            found = await uow.checkout_sessions.find(session.id)
            if found is None:  # pragma: no cover - sessions are never deleted
                raise NotFound(f"No such checkout session: '{session.id}'", param="id")
            payment = None if found.last_payment_id is None else await uow.payments.find(found.last_payment_id)
        return found, payment

    async def c2b_receipt(self, session: CheckoutSession) -> str | None:
        """The M-Pesa receipt (TransID) of the C2B payment that completed `session`, if one did."""
        if session.paid_c2b_payment_id is None:
            return None
        async with self._db.read() as uow:
            paid = await uow.c2b.payment(Tenant(session.project_id, Mode(session.mode)), session.paid_c2b_payment_id)
        return paid.trans_id if paid is not None else None

    async def expire(self, tenant: Tenant, session_id: str) -> CheckoutSession:
        """open -> expired now, at the merchant's word; refused while a payment is in flight."""
        now = self._clock.now()
        async with self._db.write() as uow:
            session = await uow.checkout_sessions.get(tenant, session_id)
            if session is None:
                raise NotFound(f"No such checkout session: '{session_id}'", param="id")
            expired = await uow.checkout_sessions.expire(session_id, now, due_only=False)
            if expired is None:
                if session.status is CheckoutStatus.OPEN:
                    raise Conflict(
                        "A payment for this checkout session is in progress; it cannot be expired now.",
                        code="checkout_session_payment_in_progress",
                    )
                raise Conflict(f"This checkout session is already {session.status}.", code="checkout_session_not_open")
            await uow.events.add(session_event(expired, CheckoutEventType.EXPIRED, now))
        return expired

    async def expire_due(self) -> int:
        """The maintenance pass: expire the open sessions whose time has come and that have no
        payment in flight (one with a payment in flight waits for its outcome). How many expired."""
        now = self._clock.now()
        count = 0
        async with self._db.write() as uow:
            for session_id in await uow.checkout_sessions.due_to_expire(now, EXPIRE_BATCH):
                # Conditional: a payment that claimed the session meanwhile keeps it open.
                expired = await uow.checkout_sessions.expire(session_id, now, due_only=True)
                if expired is not None:
                    await uow.events.add(session_event(expired, CheckoutEventType.EXPIRED, now))
                    count += 1
        return count

    async def authenticate_client_secret(self, secret: str) -> CheckoutSession:
        """The session a client secret opens. Every failure — malformed, unknown, wrong — looks the same."""
        session_id, mark, _ = secret.partition(CLIENT_SECRET_MARK)
        well_formed = secret.isascii() and secret.isprintable() and len(secret) <= CLIENT_SECRET_MAX_LENGTH
        if not mark or not session_id.startswith(ID_PREFIX + "_") or not well_formed:
            raise AuthenticationFailed(INVALID_CLIENT_SECRET, code="invalid_client_secret")
        async with self._db.read() as uow:
            session = await uow.checkout_sessions.find(session_id)
        if session is None or not hmac.compare_digest(session.client_secret_hash, token_hash(secret)):
            raise AuthenticationFailed(INVALID_CLIENT_SECRET, code="invalid_client_secret")
        return session

    async def pay(self, session: CheckoutSession, *, phone: object, amount: object) -> Payment:
        """Start an STK push for the session (whose client secret the caller holds) to `phone`.

        Refused before anything is sent when the session is not open, has expired or has a payment
        in flight; the claim in the inserting transaction makes the last check race-free."""
        now = self._clock.now()
        if session.status is not CheckoutStatus.OPEN or session.expires_at <= now:
            raise refusal(session, now)
        request = PaymentCreate(
            phone=normalise_phone(phone),
            amount=check_pay_amount(session, amount),
            account_reference=session.reference,
            description=session.description,
            metadata=dict(session.metadata),
        )
        tenant = Tenant(session.project_id, Mode(session.mode))
        return await self._payments.create(tenant, request, checkout_session_id=session.id)
