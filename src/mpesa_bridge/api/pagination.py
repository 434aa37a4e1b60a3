"""What every list endpoint shares: aware time filters and cursor pages (`has_more`, `next_cursor`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from mpesa_bridge.api.responses import JSONResponse
from mpesa_bridge.core.clock import ensure_utc
from mpesa_bridge.core.errors import InvalidRequest


class HasId(Protocol):
    id: str


T = TypeVar("T", bound=HasId)


def aware(value: datetime | None, param: str) -> datetime | None:
    """A created_gte/created_lte filter: a time zone is required, the value is kept in UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise InvalidRequest(f"{param} needs a time zone, e.g. 2026-01-31T00:00:00Z", param=param)
    return ensure_utc(value)


def list_page(rows: Sequence[T], limit: int, render: Callable[[T], dict[str, Any]]) -> JSONResponse:
    """Repositories fetch `limit + 1` rows: the extra one only says that there is a next page."""
    page = list(rows[:limit])
    has_more = len(rows) > limit
    return JSONResponse(
        {
            "object": "list",
            "data": [render(row) for row in page],
            "has_more": has_more,
            "next_cursor": page[-1].id if has_more and page else None,
        }
    )
