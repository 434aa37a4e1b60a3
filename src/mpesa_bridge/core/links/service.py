"""The payment link use cases: create, read, list, change (secret key); open a session (public).

A visit of a link's public URL opens a fresh checkout session for the link's amount
(`open_session`), recorded on the session as `payment_link_id`; the session's hosted page takes
the payment. A link whose `max_payments` succeeded payments are in opens no more sessions. That
count is read when a session is opened, so sessions opened before the last payment succeeded may
still be paid: a limit of N may collect a little more than N payments when customers race.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from mpesa_bridge.core.checkout.entity import CheckoutSession
from mpesa_bridge.core.checkout.service import CheckoutService
from mpesa_bridge.core.checkout.validation import DEFAULT_LIFETIME, CheckoutCreate
from mpesa_bridge.core.clock import Clock
from mpesa_bridge.core.errors import Conflict, NotFound
from mpesa_bridge.core.idempotency import bind_key
from mpesa_bridge.core.ids import new_id
from mpesa_bridge.core.links.entity import ID_PREFIX, LinkTotals, PaymentLink, SlugTaken
from mpesa_bridge.core.links.validation import LinkChanges, LinkCreate
from mpesa_bridge.core.ports import IdempotencyBinding, UnitOfWorkFactory
from mpesa_bridge.core.projects import Mode, Tenant

SLUG_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"  # no 0/o, 1/l/i: read aloud or typed from paper
SLUG_LENGTH = 10  # ~49 bits: not guessable, short enough to type
SLUG_ATTEMPTS = 5  # slugs drawn before giving up (one clash in 10^6 links is likely; five in a row never)
SESSION_DESCRIPTION = "Payment link"  # Daraja's TransactionDesc: at most 13 characters
SESSION_MIN_LIFETIME = timedelta(minutes=1)


class LinkUnavailable(Conflict):
    """The link opens no session now: `payment_link_inactive`, `payment_link_expired` or
    `payment_link_exhausted` (its `max_payments` succeeded payments are in)."""


def new_slug() -> str:
    return "".join(secrets.choice(SLUG_ALPHABET) for _ in range(SLUG_LENGTH))


class PaymentLinkService:
    """Payment links for the API and the public page. Services never commit: units of work do."""

    def __init__(
        self, db: UnitOfWorkFactory, checkout: CheckoutService, clock: Clock, page_url: Callable[[str], str]
    ) -> None:
        self._db = db
        self._checkout = checkout
        self._clock = clock
        self._page_url = page_url

    async def create(
        self, tenant: Tenant, request: LinkCreate, idempotency: IdempotencyBinding | None = None
    ) -> PaymentLink:
        """A new link with a fresh random slug; a slug already taken (rare: ~49 bits) is drawn again.
        With `idempotency`, the key is bound to the link in the inserting transaction."""
        for _ in range(SLUG_ATTEMPTS - 1):
            with contextlib.suppress(SlugTaken):
                return await self._create_once(tenant, request, idempotency)
        return await self._create_once(tenant, request, idempotency)  # the last draw's SlugTaken goes up

    async def _create_once(
        self, tenant: Tenant, request: LinkCreate, idempotency: IdempotencyBinding | None
    ) -> PaymentLink:
        now = self._clock.now()
        slug = new_slug()
        link = PaymentLink(
            id=new_id(ID_PREFIX, now),
            project_id=tenant.project_id,
            mode=tenant.mode.value,
            slug=slug,
            title=request.title,
            description=request.description,
            amount=request.amount,
            amount_min=request.amount_min,
            amount_max=request.amount_max,
            active=request.active,
            expires_at=request.expires_at,
            max_payments=request.max_payments,
            collect=list(request.collect),
            metadata=request.metadata,
            url=self._page_url(slug),
            created_at=now,
            updated_at=now,
        )
        async with self._db.write() as uow:
            await uow.payment_links.add(link)
            if idempotency is not None:
                await bind_key(uow, idempotency, link.id)
        return link

    async def get(self, tenant: Tenant, link_id: str) -> PaymentLink:
        async with self._db.read() as uow:
            link = await uow.payment_links.get(tenant, link_id)
        if link is None:
            raise _missing(link_id)
        return link

    async def get_with_totals(self, tenant: Tenant, link_id: str) -> tuple[PaymentLink, LinkTotals]:
        async with self._db.read() as uow:
            link = await uow.payment_links.get(tenant, link_id)
            if link is None:
                raise _missing(link_id)
            return link, await uow.payment_links.totals(link.id)

    async def list(self, tenant: Tenant, starting_after: str | None, limit: int) -> Sequence[PaymentLink]:
        async with self._db.read() as uow:
            return await uow.payment_links.list(tenant, starting_after, limit)

    async def update(self, tenant: Tenant, link_id: str, changes: LinkChanges) -> tuple[PaymentLink, LinkTotals]:
        async with self._db.write() as uow:
            link = await uow.payment_links.lock(tenant, link_id)
            if link is None:
                raise _missing(link_id)
            for name, value in changes.values.items():
                setattr(link, name, value)
            if changes.values:
                link.updated_at = self._clock.now()
            await uow.payment_links.save(link)
            return link, await uow.payment_links.totals(link.id)

    async def by_slug(self, slug: str) -> PaymentLink:
        async with self._db.read() as uow:
            link = await uow.payment_links.by_slug(slug)
        if link is None:
            raise NotFound("No such payment link.", param="slug")
        return link

    async def ensure_open(self, link: PaymentLink) -> None:
        """`LinkUnavailable` saying why if `link` takes no payment now; nothing is written either way
        (its page is shown on every visit, link-preview robots included)."""
        await self._ensure_open(link, self._clock.now())

    async def open_session(self, link: PaymentLink) -> CheckoutSession:
        """A new checkout session for a customer of `link`, or `LinkUnavailable` saying why not."""
        now = self._clock.now()
        await self._ensure_open(link, now)
        expires_at = now + DEFAULT_LIFETIME
        if link.expires_at is not None:
            expires_at = min(expires_at, link.expires_at)
        request = CheckoutCreate(
            amount=link.amount,
            amount_min=link.amount_min,
            amount_max=link.amount_max,
            reference=link.slug,  # Daraja's AccountReference: ≤ 12 letters and digits, as a slug is
            description=SESSION_DESCRIPTION,
            metadata=dict(link.metadata),
            expires_at=expires_at,
            success_url=None,
            cancel_url=None,
        )
        tenant = Tenant(link.project_id, Mode(link.mode))
        return await self._checkout.create(tenant, request, payment_link_id=link.id)

    async def _ensure_open(self, link: PaymentLink, now: datetime) -> None:
        if not link.active:
            raise LinkUnavailable("This payment link is no longer active.", code="payment_link_inactive")
        if link.expired(now + SESSION_MIN_LIFETIME):
            raise LinkUnavailable("This payment link has expired.", code="payment_link_expired")
        if link.max_payments is not None:
            async with self._db.read() as uow:
                totals = await uow.payment_links.totals(link.id)
            if totals.payments >= link.max_payments:
                raise LinkUnavailable(
                    "This payment link has taken all the payments it was set up for.", code="payment_link_exhausted"
                )


def _missing(link_id: str) -> NotFound:
    return NotFound(f"No such payment link: '{link_id}'", param="id")
