"""The C2B aggregates' repository (SQLAlchemy Core): settings, registrations, validation answers,
incoming payments and expected payments. Tenant queries are scoped by project and mode; a
registration is found by its URL token's hash alone (the callback route knows no tenant).

`candidates` reads what a payment may pay from three tables — open expected payments (and those
already paid, to spot a second payment of one reference), open checkout sessions by reference (and
those a C2B payment completed, likewise; never a link's sessions), active payment links by slug —
read-only, for the matching engine (`core.c2b.matching`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mpesa_bridge.core.c2b.entity import (
    C2BPayment,
    C2BRegistration,
    C2BSettings,
    C2BStatus,
    C2BValidation,
    Candidate,
    ExpectedPayment,
    ExpectedStatus,
    MatchTarget,
)
from mpesa_bridge.core.checkout.entity import CheckoutStatus
from mpesa_bridge.core.projects import Tenant
from mpesa_bridge.storage import tables
from mpesa_bridge.storage.rows import EntityRows, Loaded

SETTINGS = EntityRows(tables.c2b_settings, C2BSettings, key=("project_id", "mode"))
REGISTRATIONS = EntityRows(tables.c2b_registrations, C2BRegistration)
VALIDATIONS = EntityRows(tables.c2b_validations, C2BValidation)
PAYMENTS = EntityRows(tables.c2b_payments, C2BPayment)
EXPECTED = EntityRows(tables.expected_payments, ExpectedPayment)
CANDIDATES_MAX = 500  # a review's suggestions look at the newest open ones only

_s, _r, _v, _p, _e = (
    tables.c2b_settings.c,
    tables.c2b_registrations.c,
    tables.c2b_validations.c,
    tables.c2b_payments.c,
    tables.expected_payments.c,
)
_cs, _pl = tables.checkout_sessions.c, tables.payment_links.c


def _normalised(column: Any) -> Any:
    for separator in (" ", "-", "_", ".", "/", "#", "\t"):
        column = sa.func.replace(column, separator, "")
    return sa.func.upper(column)


def _tenant(columns: Any, tenant: Tenant) -> sa.ColumnElement[bool]:
    return sa.and_(columns.project_id == tenant.project_id, columns.mode == tenant.mode.value)


class SqlC2BReader:
    """`core.c2b.ports.C2BReader`: values, no lock, no write."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def settings(self, tenant: Tenant) -> C2BSettings | None:
        row = (await self._c.execute(SETTINGS.select().where(_tenant(_s, tenant)))).first()
        return SETTINGS.build(row) if row is not None else None

    async def registration_by_token(self, token_hash: str) -> C2BRegistration | None:
        row = (await self._c.execute(REGISTRATIONS.select().where(_r.token_hash == token_hash))).first()
        return REGISTRATIONS.build(row) if row is not None else None

    async def registrations(self, tenant: Tenant) -> Sequence[C2BRegistration]:
        stmt = REGISTRATIONS.select().where(_tenant(_r, tenant)).order_by(_r.short_code)
        return [REGISTRATIONS.build(row) for row in await self._c.execute(stmt)]

    async def registration(self, tenant: Tenant, short_code: str) -> C2BRegistration | None:
        stmt = REGISTRATIONS.select().where(_tenant(_r, tenant), _r.short_code == short_code)
        row = (await self._c.execute(stmt)).first()
        return REGISTRATIONS.build(row) if row is not None else None

    async def payment(self, tenant: Tenant, payment_id: str) -> C2BPayment | None:
        row = (await self._c.execute(PAYMENTS.select().where(_tenant(_p, tenant), _p.id == payment_id))).first()
        return PAYMENTS.build(row) if row is not None else None

    async def payments(
        self, tenant: Tenant, status: C2BStatus | None, reference: str | None, starting_after: str | None, limit: int
    ) -> Sequence[C2BPayment]:
        stmt = PAYMENTS.select().where(_tenant(_p, tenant))
        if status is not None:
            stmt = stmt.where(_p.status == status.value)
        if reference is not None:
            stmt = stmt.where(_p.reference_key == reference)
        if starting_after is not None:
            stmt = stmt.where(_p.id < starting_after)
        stmt = stmt.order_by(_p.id.desc()).limit(limit + 1)
        return [PAYMENTS.build(row) for row in await self._c.execute(stmt)]

    async def payments_for_reference(self, tenant: Tenant, reference_key: str) -> Sequence[C2BPayment]:
        stmt = PAYMENTS.select().where(_tenant(_p, tenant), _p.reference_key == reference_key).order_by(_p.id)
        return [PAYMENTS.build(row) for row in await self._c.execute(stmt)]

    async def validations(self, tenant: Tenant, trans_id: str) -> Sequence[C2BValidation]:
        stmt = VALIDATIONS.select().where(_tenant(_v, tenant), _v.trans_id == trans_id).order_by(_v.id)
        return [VALIDATIONS.build(row) for row in await self._c.execute(stmt)]

    async def expected(self, tenant: Tenant, expected_id: str) -> ExpectedPayment | None:
        row = (await self._c.execute(EXPECTED.select().where(_tenant(_e, tenant), _e.id == expected_id))).first()
        return EXPECTED.build(row) if row is not None else None

    async def expected_list(
        self, tenant: Tenant, status: ExpectedStatus | None, starting_after: str | None, limit: int
    ) -> Sequence[ExpectedPayment]:
        stmt = EXPECTED.select().where(_tenant(_e, tenant))
        if status is not None:
            stmt = stmt.where(_e.status == status.value)
        if starting_after is not None:
            stmt = stmt.where(_e.id < starting_after)
        stmt = stmt.order_by(_e.id.desc()).limit(limit + 1)
        return [EXPECTED.build(row) for row in await self._c.execute(stmt)]

    async def candidates(self, tenant: Tenant, reference_key: str | None, at: datetime) -> Sequence[Candidate]:
        return [
            *await self._expected_candidates(tenant, reference_key),
            *await self._session_candidates(tenant, reference_key, at),
            *await self._link_candidates(tenant, reference_key, at),
        ]

    async def _expected_candidates(self, tenant: Tenant, key: str | None) -> list[Candidate]:
        stmt = sa.select(_e.id, _e.reference, _e.amount, _e.phone, _e.status, _e.c2b_payment_id, _e.created_at).where(
            _tenant(_e, tenant)
        )
        if key is not None:
            stmt = stmt.where(_e.reference_key == key, _e.status != ExpectedStatus.CANCELLED.value)
        else:
            stmt = stmt.where(_e.status == ExpectedStatus.OPEN.value)
        stmt = stmt.order_by(_e.id.desc()).limit(CANDIDATES_MAX)
        return [
            Candidate(
                MatchTarget.EXPECTED_PAYMENT,
                row.id,
                row.reference,
                row.amount,
                phone=row.phone,
                paid_by=row.c2b_payment_id if row.status == ExpectedStatus.PAID.value else None,
                created_at=row.created_at,
            )
            for row in await self._c.execute(stmt)
        ]

    async def _session_candidates(self, tenant: Tenant, key: str | None, at: datetime) -> list[Candidate]:
        # A link's sessions all carry the link's slug as reference: a payment of that slug pays the
        # link, not whichever visitor's session happens to be open.
        open_now = sa.and_(_cs.status == CheckoutStatus.OPEN.value, _cs.expires_at > at)
        stmt = sa.select(
            _cs.id, _cs.reference, _cs.amount, _cs.amount_min, _cs.amount_max, _cs.created_at, _cs.paid_c2b_payment_id
        ).where(_tenant(_cs, tenant), _cs.payment_link_id.is_(None))
        if key is not None:
            # Normalised in SQL as `normalise_reference` does in Python (case, spaces, - _ . / #).
            # Sessions a C2B payment completed come too, to spot a second payment of one reference.
            stmt = stmt.where(
                _normalised(_cs.reference) == key,
                sa.or_(
                    open_now,
                    sa.and_(_cs.status == CheckoutStatus.COMPLETE.value, _cs.paid_c2b_payment_id.is_not(None)),
                ),
            )
        else:
            stmt = stmt.where(open_now)
        stmt = stmt.order_by(_cs.id.desc()).limit(CANDIDATES_MAX)
        return [
            Candidate(
                MatchTarget.CHECKOUT_SESSION,
                row.id,
                row.reference,
                row.amount,
                row.amount_min,
                row.amount_max,
                paid_by=row.paid_c2b_payment_id,
                created_at=row.created_at,
            )
            for row in await self._c.execute(stmt)
        ]

    async def _link_candidates(self, tenant: Tenant, key: str | None, at: datetime) -> list[Candidate]:
        stmt = sa.select(_pl.id, _pl.slug, _pl.amount, _pl.amount_min, _pl.amount_max, _pl.created_at).where(
            _tenant(_pl, tenant), _pl.active.is_(True), sa.or_(_pl.expires_at.is_(None), _pl.expires_at > at)
        )
        if key is not None:
            stmt = stmt.where(_normalised(_pl.slug) == key)
        stmt = stmt.order_by(_pl.id.desc()).limit(CANDIDATES_MAX)
        return [
            Candidate(
                MatchTarget.PAYMENT_LINK,
                row.id,
                row.slug,
                row.amount,
                row.amount_min,
                row.amount_max,
                created_at=row.created_at,
            )
            for row in await self._c.execute(stmt)
        ]


class SqlC2BRepository(SqlC2BReader):
    """`core.c2b.ports.C2BRepository`: what `lock_*` loads it remembers; `save_*` writes the changes."""

    def __init__(self, conn: AsyncConnection, *, lock: bool) -> None:
        super().__init__(conn)
        self._lock = lock
        self._payments = Loaded(PAYMENTS)
        self._expected = Loaded(EXPECTED)

    async def save_settings(self, settings: C2BSettings) -> None:
        values = SETTINGS.values(settings)
        changed = {k: v for k, v in values.items() if k not in ("project_id", "mode", "created_at")}
        result = await self._c.execute(
            sa.update(tables.c2b_settings)
            .where(_s.project_id == settings.project_id, _s.mode == settings.mode)
            .values(**changed)
        )
        if result.rowcount == 0:
            await SETTINGS.insert(self._c, [settings])

    async def save_registration(self, registration: C2BRegistration) -> None:
        values = REGISTRATIONS.values(registration)
        result = await self._c.execute(
            sa.update(tables.c2b_registrations)
            .where(_r.id == registration.id)
            .values(**{k: v for k, v in values.items() if k != "id"})
        )
        if result.rowcount == 0:
            await REGISTRATIONS.insert(self._c, [registration])

    async def add_validation(self, validation: C2BValidation) -> None:
        await VALIDATIONS.insert(self._c, [validation])

    async def add_payment(self, payment: C2BPayment) -> bool:
        # Looked up first (the same batch may hold a copy); a concurrent insert on another
        # connection fails the unique index, the inbox retries the callback alone, and it is found.
        stmt = sa.select(_p.id).where(
            _p.project_id == payment.project_id, _p.mode == payment.mode, _p.trans_id == payment.trans_id
        )
        if (await self._c.execute(stmt)).first() is not None:
            return False
        await PAYMENTS.insert(self._c, [payment])
        self._payments.remember(payment)
        return True

    async def lock_payment(self, tenant: Tenant, payment_id: str) -> C2BPayment | None:
        stmt = PAYMENTS.select().where(_tenant(_p, tenant), _p.id == payment_id)
        found = self._payments.build(await self._c.execute(stmt.with_for_update() if self._lock else stmt))
        return found[0] if found else None

    async def save_payment(self, payment: C2BPayment) -> None:
        await self._payments.save(self._c, [payment])

    async def add_expected(self, expected: ExpectedPayment) -> None:
        await EXPECTED.insert(self._c, [expected])
        self._expected.remember(expected)

    async def lock_expected(self, tenant: Tenant, expected_id: str) -> ExpectedPayment | None:
        stmt = EXPECTED.select().where(_tenant(_e, tenant), _e.id == expected_id)
        found = self._expected.build(await self._c.execute(stmt.with_for_update() if self._lock else stmt))
        return found[0] if found else None

    async def save_expected(self, expected: ExpectedPayment) -> None:
        await self._expected.save(self._c, [expected])
