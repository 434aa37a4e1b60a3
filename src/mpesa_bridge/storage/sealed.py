"""Every secret sealed under the master key: list them, re-seal them under the current key, verify them.

Sealed values live in `daraja_configs` (consumer key, consumer secret, passkey, initiator password;
associated data `daraja:<project id>:<mode>`), `projects.signing_secret_sealed` (`signing:<project
id>`) and `webhook_endpoints` (current and previous signing secret; `webhook:<endpoint id>`) and
`idempotency_keys` (the stored answer, as bytes, and the created resource's client secret;
`idempotency:<scope>:<key>[:secret]`). The contexts are defined once, in `core.sealing`. A new
sealed column must be added to SOURCES, or a rotation would leave it under the old key.

`reseal_all` works in small transactions of `batch` rows, so running servers wait at most one short
batch for a row; each value is replaced only if it is still the one that was read (a concurrent
write wins), and values already under the current key are skipped — it can be interrupted and run
again. `verify_sealed` opens one value per key id (or all of them) and names the key ids the
configured keys cannot open; `check_master_keys` turns that into a startup error.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mpesa_bridge.config import ConfigError
from mpesa_bridge.core.crypto import MasterKeyError, SecretBox
from mpesa_bridge.core.projects import Mode
from mpesa_bridge.core.sealing import (
    daraja_context,
    idempotency_context,
    idempotency_secret_context,
    signing_context,
)
from mpesa_bridge.core.webhooks.endpoints import secret_context
from mpesa_bridge.storage import tables
from mpesa_bridge.storage.db import Database

MALFORMED = "malformed"
_CAS_ATTEMPTS = 5


@dataclass(frozen=True)
class SealedValue:
    """One sealed secret and where it lives. `sealed` is ciphertext; nothing here is key material."""

    table: str
    key: tuple[str, ...]  # the row's primary key
    column: str
    context: str  # the AES-GCM associated data it was sealed with
    sealed: str = field(repr=False)

    @property
    def key_id(self) -> str:
        parts = self.sealed.split(".", 2)
        return parts[1] if len(parts) == 3 and parts[1] else MALFORMED

    @property
    def location(self) -> str:
        return f"{self.table}[{'/'.join(self.key)}].{self.column}"


@dataclass(frozen=True)
class _Source:
    table: sa.Table
    pk: tuple[str, ...]
    columns: tuple[str, ...]
    context: Callable[[Any], str]
    key: Callable[[Any], tuple[str, ...]]
    # Columns holding the sealed text as bytes (LargeBinary): decoded to read, encoded to write.
    binary: frozenset[str] = frozenset()
    # A column whose context differs from `context` (one row, two contexts).
    contexts: dict[str, Callable[[Any], str]] = field(default_factory=dict)

    def context_of(self, row: Any, column: str) -> str:
        return self.contexts.get(column, self.context)(row)

    def stored(self, column: str, sealed: str) -> str | bytes:
        return sealed.encode() if column in self.binary else sealed


SOURCES: tuple[_Source, ...] = (
    _Source(
        tables.projects,
        ("id",),
        ("signing_secret_sealed",),
        lambda row: signing_context(row.id),
        lambda row: (str(row.id),),
    ),
    _Source(
        tables.daraja_configs,
        ("project_id", "mode"),
        ("consumer_key_sealed", "consumer_secret_sealed", "passkey_sealed", "initiator_password_sealed"),
        lambda row: daraja_context(row.project_id, Mode(row.mode).value),
        lambda row: (str(row.project_id), Mode(row.mode).value),
    ),
    _Source(
        tables.webhook_endpoints,
        ("id",),
        ("secret_sealed", "previous_secret_sealed"),
        lambda row: secret_context(row.id),
        lambda row: (str(row.id),),
    ),
    _Source(
        tables.idempotency_keys,
        ("scope", "key"),
        ("response_body", "resource_secret"),
        lambda row: idempotency_context(row.scope, row.key),
        lambda row: (str(row.scope), str(row.key)),
        binary=frozenset({"response_body"}),
        contexts={"resource_secret": lambda row: idempotency_secret_context(row.scope, row.key)},
    ),
)


@dataclass
class SealFailure:
    value: SealedValue
    reason: str  # "key not configured", "does not open" or "malformed"


@dataclass
class ResealReport:
    key_id: str  # the current master key's id: everything that opened is now sealed under it
    resealed: int = 0
    already_current: int = 0
    failed: list[SealFailure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass
class VerifyReport:
    configured: tuple[str, ...]  # configured key ids, the current one first
    counts: dict[str, int] = field(default_factory=dict)  # stored values per key id
    opened: int = 0  # values opened successfully
    unknown: dict[str, int] = field(default_factory=dict)  # key id -> values; no such key is configured
    failed: list[SealedValue] = field(default_factory=list)  # a configured key id, but they do not open

    @property
    def ok(self) -> bool:
        return not self.unknown and not self.failed

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def problem_key_ids(self) -> list[str]:
        return sorted(set(self.unknown) | {v.key_id for v in self.failed})


def _after(columns: Sequence[sa.ColumnElement[Any]], values: Sequence[Any]) -> sa.ColumnElement[bool]:
    """Rows whose key sorts after `values` (keyset pagination without row-value syntax)."""
    return sa.or_(
        *(sa.and_(*(columns[j] == values[j] for j in range(i)), columns[i] > values[i]) for i in range(len(columns)))
    )


async def _page(conn: AsyncConnection, source: _Source, after: tuple[Any, ...] | None, limit: int) -> list[Any]:
    table = source.table
    pk = [table.c[name] for name in source.pk]
    columns = [table.c[name] for name in source.columns]
    query = sa.select(*pk, *columns).where(sa.or_(*(c.is_not(None) for c in columns))).order_by(*pk).limit(limit)
    if after is not None:
        query = query.where(_after(pk, after))
    return list((await conn.execute(query)).all())


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _values(source: _Source, row: Any) -> list[SealedValue]:
    key = source.key(row)
    return [
        SealedValue(source.table.name, key, column, source.context_of(row, column), _text(getattr(row, column)))
        for column in source.columns
        if getattr(row, column) is not None
    ]


def _where_key(source: _Source, key: tuple[str, ...]) -> list[sa.ColumnElement[bool]]:
    return [source.table.c[name] == value for name, value in zip(source.pk, key, strict=True)]


async def _present(db: Database) -> list[_Source]:
    """The sources whose table exists (a database not yet migrated, or migrated only part of the way)."""
    async with db.read_engine.connect() as conn:
        names = set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))
    return [source for source in SOURCES if source.table.name in names]


async def sealed_values(db: Database, *, batch: int = 500) -> AsyncIterator[SealedValue]:
    """Every sealed value in the database, read in short transactions of `batch` rows."""
    for source in await _present(db):
        after: tuple[Any, ...] | None = None
        while True:
            async with db.read() as uow:
                rows = await _page(uow.connection, source, after, batch)
            for row in rows:
                for value in _values(source, row):
                    yield value
            if len(rows) < batch:
                break
            after = tuple(getattr(row, name) for name in source.pk)


def _failure(value: SealedValue, box: SecretBox) -> SealFailure:
    if value.key_id == MALFORMED:
        return SealFailure(value, "malformed")
    if value.key_id not in box.key_ids:
        return SealFailure(value, "key not configured")
    return SealFailure(value, "does not open")


async def _reseal_one(
    conn: AsyncConnection, source: _Source, value: SealedValue, box: SecretBox
) -> tuple[str, SealedValue]:
    """Re-seal one value: "resealed", "current", "gone" or "failed" (with the value as last read).

    The update only replaces the value that was read (compare and set): a concurrent write wins,
    and the value is read again."""
    column = source.table.c[value.column]
    for _ in range(_CAS_ATTEMPTS):
        if value.key_id == box.current_key_id:
            return "current", value
        try:
            plaintext = box.open(value.sealed, context=value.context)
        except MasterKeyError:
            return "failed", value
        update = (
            sa.update(source.table)
            .where(*_where_key(source, value.key), column == source.stored(value.column, value.sealed))
            .values({value.column: source.stored(value.column, box.seal(plaintext, context=value.context))})
        )
        result = await conn.execute(update)
        if getattr(result, "rowcount", 0) == 1:
            return "resealed", value
        # Someone changed it since we read it: look again.
        now = await conn.execute(sa.select(column).where(*_where_key(source, value.key)))
        sealed = now.scalar_one_or_none()
        if sealed is None:
            return "gone", value
        value = replace(value, sealed=_text(sealed))
    return "failed", value  # pragma: no cover - rewritten five times during one batch


async def reseal_all(db: Database, box: SecretBox, batch: int = 100) -> ResealReport:
    """Re-seal under the current key every value sealed under another one, `batch` rows per transaction.

    Values that do not open are left as they are and listed in the report; the others are still
    re-sealed. Safe to interrupt and to run again: what is already current is skipped.
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    report = ResealReport(key_id=box.current_key_id)
    for source in await _present(db):
        after: tuple[Any, ...] | None = None
        while True:
            async with db.write() as uow:
                rows = await _page(uow.connection, source, after, batch)
                for row in rows:
                    for value in _values(source, row):
                        outcome, last = await _reseal_one(uow.connection, source, value, box)
                        if outcome == "resealed":
                            report.resealed += 1
                        elif outcome == "current":
                            report.already_current += 1
                        elif outcome == "failed":
                            report.failed.append(_failure(last, box))
            if len(rows) < batch:
                break
            after = tuple(getattr(row, name) for name in source.pk)
            await asyncio.sleep(0)  # let this process's other work in between batches
    return report


async def verify_sealed(db: Database, box: SecretBox, *, check_all: bool = False) -> VerifyReport:
    """Open one stored value per key id (every value with `check_all`); report what does not open."""
    report = VerifyReport(configured=box.key_ids)
    counts: Counter[str] = Counter()
    tried: set[str] = set()
    async for value in sealed_values(db):
        kid = value.key_id
        counts[kid] += 1
        if kid == MALFORMED or kid not in box.key_ids:
            report.unknown[kid] = report.unknown.get(kid, 0) + 1
            continue
        if not check_all and kid in tried:
            continue
        tried.add(kid)
        try:
            box.open(value.sealed, context=value.context)
        except MasterKeyError:
            report.failed.append(value)
        else:
            report.opened += 1
    report.counts = dict(counts)
    return report


def describe_problems(report: VerifyReport) -> str:
    """What is wrong and what to set, naming key ids only (never key material)."""
    parts = []
    unknown = {k: n for k, n in report.unknown.items() if k != MALFORMED}
    if unknown:
        listed = ", ".join(f"{k} ({n} value{'s' if n != 1 else ''})" for k, n in sorted(unknown.items()))
        parts.append(
            f"stored secrets are sealed under master key id {listed}, which is not configured"
            f" (configured key ids: {', '.join(report.configured)}). Set MPESA_BRIDGE_MASTER_KEY to the key with"
            " that id or, while rotating, MPESA_BRIDGE_MASTER_KEY to the new key and MPESA_BRIDGE_OLD_MASTER_KEYS"
            " to the old one (then run `mpesa-bridge secrets rotate-master`)"
        )
    if MALFORMED in report.unknown:
        parts.append(f"{report.unknown[MALFORMED]} stored secret(s) are malformed")
    failed = sorted({v.key_id for v in report.failed})
    if failed:
        parts.append(
            f"stored secrets sealed under master key id {', '.join(failed)} do not open with the configured key"
            " of that id (damaged, or copied from another row); `mpesa-bridge secrets verify --all` lists them"
        )
    return "; ".join(parts)


async def check_master_keys(db: Database, box: SecretBox) -> None:
    """At startup: refuse a master key that cannot open what is stored (one value per key id).

    Passes on an empty or not yet migrated database. Raises `ConfigError` naming the key ids.
    """
    report = await verify_sealed(db, box)
    if not report.ok:
        raise ConfigError(f"the configured master keys cannot open the stored secrets: {describe_problems(report)}")
