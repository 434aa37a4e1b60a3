"""Rows ↔ the core's plain dataclasses, on SQLAlchemy Core: the one mapping every repository uses.

An entity is a dataclass of the core; its table has a column for each field except, at the end of
the dataclass, fields that are never stored (`Payment.client_secret`). `EntityRows` selects the
columns in the dataclass's field order, so a row builds its entity positionally, and writes the
fields back as column values.

Persistence is explicit: nothing is written unless a repository's write verb is called. A
repository of a write unit of work keeps what each entity held when it was loaded (`Loaded`), so
that `save` sends only the columns the use case changed — and nothing at all when it changed
none. Values are compared, not tracked: a JSON column changed in place (not reassigned) is not
seen, so entities never mutate their dicts and lists, they replace them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

E = TypeVar("E")

_KEY_PREFIX = "_key_"  # bind names of the WHERE clause of an update: never a column's name


class EntityRows(Generic[E]):
    """How the rows of `table` become `entity` objects and back."""

    def __init__(self, table: sa.Table, entity: type[E], *, key: Sequence[str] = ("id",)) -> None:
        fields = [f.name for f in dataclasses.fields(entity)]  # type: ignore[arg-type]
        stored = [name for name in fields if name in table.c]
        if fields[: len(stored)] != stored:
            # Positional construction needs the stored fields first; the others need defaults.
            raise TypeError(f"{entity.__name__}: fields that are not columns of {table.name} must come last")
        self.table = table
        self.entity = entity
        self.names: tuple[str, ...] = tuple(stored)
        self.key: tuple[str, ...] = tuple(key)
        self._key_at = tuple(self.names.index(k) for k in self.key)
        self.columns: tuple[sa.Column[Any], ...] = tuple(table.c[name] for name in self.names)
        where = sa.and_(*(table.c[k] == sa.bindparam(_KEY_PREFIX + k) for k in self.key))
        self._update = sa.update(table).where(where)
        self._insert = sa.insert(table)

    def select(self) -> sa.Select[Any]:
        """SELECT of the entity's columns, in its field order (add the WHERE clause)."""
        return sa.select(*self.columns)

    def build(self, row: Sequence[Any]) -> E:
        return self.entity(*row)

    def values(self, entity: E) -> dict[str, Any]:
        return dict(zip(self.names, self.row_of(entity), strict=True))

    def row_of(self, entity: E) -> tuple[Any, ...]:
        """The entity's stored fields, in column order: what a row of it holds."""
        return tuple(getattr(entity, name) for name in self.names)

    def key_of(self, entity: E) -> tuple[Any, ...]:
        return tuple(getattr(entity, k) for k in self.key)

    def key_of_row(self, row: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(row[i] for i in self._key_at)

    async def insert(self, conn: AsyncConnection, entities: Sequence[E]) -> None:
        """One INSERT for all of them (a multi-row statement or the driver's batch)."""
        if entities:
            rows = [self.values(e) for e in entities]
            await conn.execute(self._insert, rows if len(rows) > 1 else rows[0])

    async def update(self, conn: AsyncConnection, changes: Sequence[tuple[tuple[Any, ...], Mapping[str, Any]]]) -> None:
        """UPDATE each (key, changed columns): one statement per set of changed columns, batched."""
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for key, changed in changes:
            params = dict(changed)
            params.update({_KEY_PREFIX + k: v for k, v in zip(self.key, key, strict=True)})
            by_columns.setdefault(tuple(changed), []).append(params)
        for batch in by_columns.values():
            await conn.execute(self._update, batch if len(batch) > 1 else batch[0])


class Loaded(Generic[E]):
    """What the entities a write unit of work loaded held at load time, by key: `save` writes the
    difference. An entity saved is remembered as saved (a second `save` writes only newer changes)."""

    def __init__(self, rows: EntityRows[E]) -> None:
        self._rows = rows
        self._seen: dict[tuple[Any, ...], tuple[Any, ...]] = {}

    def build(self, result: Iterable[Sequence[Any]]) -> list[E]:
        out = []
        for row in result:
            values = tuple(row)
            self._seen[self._rows.key_of_row(values)] = values
            out.append(self._rows.build(values))
        return out

    def remember(self, entity: E) -> None:
        """An entity this unit of work inserted: later saves compare with what was inserted."""
        self._seen[self._rows.key_of(entity)] = self._rows.row_of(entity)

    def changes(self, entity: E) -> tuple[tuple[Any, ...], dict[str, Any]]:
        key = self._rows.key_of(entity)
        before = self._seen.get(key)
        if before is None:
            raise LookupError(f"{type(entity).__name__} {key} was not loaded in this unit of work: load it to save it")
        now = self._rows.row_of(entity)
        changed = {name: value for name, value, old in zip(self._rows.names, now, before, strict=True) if value != old}
        return key, changed

    async def save(self, conn: AsyncConnection, entities: Sequence[E]) -> None:
        changes = []
        for entity in entities:
            key, changed = self.changes(entity)
            if changed:
                changes.append((key, changed))
                self.remember(entity)
        await self._rows.update(conn, changes)
