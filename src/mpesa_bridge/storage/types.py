"""Column types that keep the domain's promises on both engines."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum, IntEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC in, aware UTC out — SQLite stores text and would hand back naive datetimes."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused by the database layer")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class StrEnumType(sa.TypeDecorator[Any]):
    """A str-valued enum stored as plain text (portable, and migrations stay simple)."""

    impl = sa.String(16)
    cache_ok = True

    def __init__(self, enum_cls: type[Enum], length: int = 16) -> None:
        super().__init__(length)
        self._enum = enum_cls

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else str(self._enum(value).value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else self._enum(value)


class IntEnumType(sa.TypeDecorator[Any]):
    impl = sa.SmallInteger
    cache_ok = True

    def __init__(self, enum_cls: type[IntEnum]) -> None:
        super().__init__()
        self._enum = enum_cls

    def process_bind_param(self, value: Any, dialect: Dialect) -> int | None:
        return None if value is None else int(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else self._enum(value)


JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
