"""The dashboard's payment search on SQLAlchemy Core (`core.payments.search.PaymentSearchReader`).

Keyset pages over indexes that already hold the order, so a page costs the same at the first row
and at the millionth (measured by `python -m bench.dashboard_scale`):

- "created" sorts are id order (ids begin with their creation time): `ix_payments_tenant_id`, or
  `ix_payments_tenant_status_id` per status. A time window is also an id window (`core.ids`), so
  the scan starts and stops at the window's edges.
- Several statuses: one ordered, limited scan per status, merged (UNION ALL, then the first
  `limit`). An `IN (...)` over the status index would lose the order: the planner would then read
  every matching row of the tenant and sort them to keep fifty.
- "amount" sorts: `ix_payments_tenant_amount_id` (migration 0011).
- Text: the ids matching the receipt (`ix_payments_mpesa_receipt_number`, 0011), the id (the
  primary key) or the reference prefix (`ix_payments_tenant_reference`), each by its own index.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mpesa_bridge.core.ids import id_ceiling, id_floor
from mpesa_bridge.core.payments.entity import Payment
from mpesa_bridge.core.payments.search import CursorKey, PaymentPage, PaymentSearch, encode_cursor, sort_key
from mpesa_bridge.core.payments.status import PaymentStatus
from mpesa_bridge.storage import tables
from mpesa_bridge.storage.payments import PAYMENT_ID_PREFIX, PAYMENTS

_c = tables.payments.c
_TOP = "\U0010ffff"  # sorts after any character a reference may hold: the end of a prefix's range


def _text_ids(q: PaymentSearch, text: str) -> sa.CompoundSelect[Any]:
    """The ids `text` names, each arm served by its own index."""
    tenant = (_c.project_id == q.project_id, _c.mode == q.mode)
    return sa.union(
        sa.select(_c.id).where(*tenant, _c.id == text),
        sa.select(_c.id).where(*tenant, _c.mpesa_receipt_number == text.upper()),
        sa.select(_c.id).where(*tenant, _c.account_reference >= text, _c.account_reference < text + _TOP),
    )


def _filters(q: PaymentSearch) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = [_c.project_id == q.project_id, _c.mode == q.mode]
    # A time bound is also an id bound: the (tenant[, status], id) indexes stop at the window's edge.
    if q.created_from is not None:
        where += [_c.created_at >= q.created_from, _c.id >= id_floor(PAYMENT_ID_PREFIX, q.created_from)]
    if q.created_before is not None:
        where += [_c.created_at < q.created_before, _c.id < id_ceiling(PAYMENT_ID_PREFIX, q.created_before)]
    if q.phone is not None:
        where.append(_c.phone == q.phone)
    if q.amount_min is not None:
        where.append(_c.amount >= q.amount_min)
    if q.amount_max is not None:
        where.append(_c.amount <= q.amount_max)
    if q.needs_attention is not None:
        where.append(_c.needs_attention == q.needs_attention)
    if q.text is not None:
        where.append(_c.id.in_(_text_ids(q, q.text)))
    return where


def _after(q: PaymentSearch, after: CursorKey | None) -> list[sa.ColumnElement[bool]]:
    if after is None:
        return []
    if q.by_amount:
        pair, key = sa.tuple_(_c.amount, _c.id), sa.tuple_(sa.literal(after[0]), sa.literal(after[-1]))
        return [pair < key if q.descending else pair > key]
    return [_c.id < after[0] if q.descending else _c.id > after[0]]


def _order(q: PaymentSearch, columns: Any) -> list[sa.ColumnElement[Any]]:
    keys = [columns.amount, columns.id] if q.by_amount else [columns.id]
    return [k.desc() if q.descending else k.asc() for k in keys]


def _statement(q: PaymentSearch, after: CursorKey | None, limit: int) -> sa.Select[Any]:
    where = _filters(q) + _after(q, after)
    statuses = q.statuses if len(q.statuses) < len(PaymentStatus) else ()
    if len(statuses) <= 1:
        if statuses:
            where.append(_c.status == statuses[0])
        return PAYMENTS.select().where(*where).order_by(*_order(q, _c)).limit(limit)
    # One ordered scan per status, each stopping at `limit`, merged: see the module docstring.
    arms = [
        _all_of(PAYMENTS.select().where(*where, _c.status == s).order_by(*_order(q, _c)).limit(limit).subquery())
        for s in statuses
    ]
    merged = sa.union_all(*arms).subquery()
    return _all_of(merged).order_by(*_order(q, merged.c)).limit(limit)


def _all_of(rows: sa.Subquery) -> sa.Select[Any]:
    """SELECT a subquery's payment columns, in the entity's field order (SQLite wants each arm of
    a UNION that is ordered and limited wrapped this way)."""
    return sa.select(*(rows.c[name] for name in PAYMENTS.names))


class SqlPaymentSearch:
    """Keyset search over one tenant's payments, on the caller's connection (a read unit of work's)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def _fetch(self, q: PaymentSearch, after: CursorKey | None, limit: int) -> list[Payment]:
        return [PAYMENTS.build(row) for row in await self._c.execute(_statement(q, after, limit))]

    async def search(self, q: PaymentSearch) -> PaymentPage:
        found = await self._fetch(q, q.after, q.limit + 1)
        items = tuple(found[: q.limit])
        more = len(found) > q.limit
        return PaymentPage(items, encode_cursor(q.sort, sort_key(q.sort, items[-1])) if more else None)

    async def iter_all(self, q: PaymentSearch, batch: int = 1000) -> AsyncIterator[Payment]:
        if batch < 1:
            raise ValueError("batch must be at least 1")
        after: CursorKey | None = None
        while True:
            rows = await self._fetch(q, after, batch)
            for payment in rows:
                yield payment
            if len(rows) < batch:
                return
            after = sort_key(q.sort, rows[-1])
