"""The payment link aggregate's repositories (SQLAlchemy Core).

A link is read by tenant (the API), by slug (the public page) and summed up with its sessions'
payments and the C2B payments matched to it (`totals`). Tenant queries are scoped by project and mode."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from mpesa_bridge.core.c2b.entity import C2BStatus, MatchTarget
from mpesa_bridge.core.links.entity import LinkTotals, PaymentLink, SlugTaken
from mpesa_bridge.core.payments.status import PaymentStatus
from mpesa_bridge.core.projects import Tenant
from mpesa_bridge.storage import tables
from mpesa_bridge.storage.rows import EntityRows, Loaded

LINKS = EntityRows(tables.payment_links, PaymentLink)
_c = tables.payment_links.c
_BY_TENANT_ID = LINKS.select().where(
    _c.id == sa.bindparam("id"), _c.project_id == sa.bindparam("project_id"), _c.mode == sa.bindparam("mode")
)
_BY_TENANT_ID_LOCKED = _BY_TENANT_ID.with_for_update()
_BY_SLUG = LINKS.select().where(_c.slug == sa.bindparam("slug"))
_pay = tables.payments.c
_cs = tables.checkout_sessions.c
# A link's payments are its sessions' payments (ix_checkout_sessions_payment_link_id, then
# ix_payments_checkout_session_id); a session paid twice counts twice: the money moved twice.
_TOTALS = (
    sa.select(sa.func.count(_pay.id), sa.func.coalesce(sa.func.sum(_pay.amount), 0))
    .select_from(tables.payments.join(tables.checkout_sessions, _pay.checkout_session_id == _cs.id))
    .where(_cs.payment_link_id == sa.bindparam("link_id"), _pay.status == PaymentStatus.SUCCEEDED)
)
# And the C2B payments (paybill/till, with the link's slug as account number) matched to the link
# (ix_c2b_payments_matched_id): a matched C2B payment is terminal money, never unmatched again.
_c2b = tables.c2b_payments.c
_C2B_TOTALS = sa.select(sa.func.count(_c2b.id), sa.func.coalesce(sa.func.sum(_c2b.amount), 0)).where(
    _c2b.matched_id == sa.bindparam("link_id"),
    _c2b.matched_type == MatchTarget.PAYMENT_LINK,
    _c2b.status == C2BStatus.MATCHED,
)


class SqlPaymentLinkReader:
    """Links as values; no lock, no write (`core.ports.PaymentLinkReader`)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def _first(self, stmt: sa.Executable, params: dict[str, Any]) -> PaymentLink | None:
        row = (await self._c.execute(stmt, params)).first()
        return LINKS.build(row) if row is not None else None

    async def get(self, tenant: Tenant, link_id: str) -> PaymentLink | None:
        params = {"id": link_id, "project_id": tenant.project_id, "mode": tenant.mode.value}
        return await self._first(_BY_TENANT_ID, params)

    async def by_slug(self, slug: str) -> PaymentLink | None:
        return await self._first(_BY_SLUG, {"slug": slug})

    async def list(self, tenant: Tenant, starting_after: str | None, limit: int) -> Sequence[PaymentLink]:
        stmt = LINKS.select().where(_c.project_id == tenant.project_id, _c.mode == tenant.mode.value)
        if starting_after is not None:
            stmt = stmt.where(_c.id < starting_after)
        stmt = stmt.order_by(_c.id.desc()).limit(limit + 1)
        return [LINKS.build(row) for row in await self._c.execute(stmt)]

    async def totals(self, link_id: str) -> LinkTotals:
        count, amount = (await self._c.execute(_TOTALS, {"link_id": link_id})).one()
        c2b_count, c2b_amount = (await self._c.execute(_C2B_TOTALS, {"link_id": link_id})).one()
        return LinkTotals(payments=int(count) + int(c2b_count), amount=int(amount) + int(c2b_amount))


class SqlPaymentLinkRepository(SqlPaymentLinkReader):
    """Links in a write unit of work: what `lock` loads it remembers, and `save` writes the changes."""

    def __init__(self, conn: AsyncConnection, *, lock: bool) -> None:
        super().__init__(conn)
        self._lock = lock
        self._loaded = Loaded(LINKS)

    async def add(self, link: PaymentLink) -> None:
        try:
            await LINKS.insert(self._c, [link])
        except IntegrityError as exc:  # the slug's unique index (or, as unlikely, the id)
            raise SlugTaken(link.slug) from exc
        self._loaded.remember(link)

    async def lock(self, tenant: Tenant, link_id: str) -> PaymentLink | None:
        params = {"id": link_id, "project_id": tenant.project_id, "mode": tenant.mode.value}
        found = self._loaded.build(await self._c.execute(_BY_TENANT_ID_LOCKED if self._lock else _BY_TENANT_ID, params))
        return found[0] if found else None

    async def save(self, link: PaymentLink) -> None:
        await self._loaded.save(self._c, [link])
