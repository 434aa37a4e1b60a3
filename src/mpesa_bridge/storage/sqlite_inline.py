"""SQLite on the event loop's own thread, for the single writer connection.

aiosqlite runs every call (cursor, execute, fetch, close, commit) in a thread of its own: each is a
hand-over between two threads and back, which costs more than the statement itself — measured with
`make bench` at 60+ hand-overs per payment created. The writer's statements are short (inserts and
updates by key), so this connection runs them where they are asked for, and keeps the one thing that
must not block the loop asynchronous: waiting for the database lock. The connection's busy timeout is
0; a statement refused with SQLITE_BUSY (another process holds the write lock) is retried after an
`asyncio.sleep`, with backoff, until `busy_timeout` seconds have passed — then the error is raised.

It speaks the part of aiosqlite's interface that SQLAlchemy's aiosqlite dialect uses, so the engine
is an ordinary `sqlite+aiosqlite` engine built with `async_creator`. Readers keep aiosqlite: a long
query (a report over a million rows) must not hold up the loop.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable
from typing import Any

_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6


def _is_busy(error: sqlite3.OperationalError) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    return "locked" in str(error) or "busy" in str(error)  # pragma: no cover - Python < 3.11


class _Immediate:
    """Stands in for aiosqlite's request queue (SQLAlchemy sets `isolation_level` through it)."""

    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as error:
            future.set_exception(error)


class InlineCursor:
    def __init__(self, connection: InlineConnection) -> None:
        self._connection = connection
        self._cursor = connection._conn.cursor()

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Any = None) -> InlineCursor:
        await self._connection._run(self._cursor.execute, sql, () if parameters is None else parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> InlineCursor:
        rows = list(parameters)  # retried as a whole if the lock is busy
        await self._connection._run(self._cursor.executemany, sql, rows)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class InlineConnection:
    def __init__(self, conn: sqlite3.Connection, busy_timeout: float) -> None:
        self._conn = conn
        self._connection: sqlite3.Connection | None = conn  # what SQLAlchemy checks before commit/rollback
        self._tx = _Immediate()
        self._busy_timeout = busy_timeout

    async def _run(self, function: Callable[..., Any], *args: Any) -> Any:
        deadline = time.monotonic() + self._busy_timeout
        pause = 0.001
        while True:
            try:
                return function(*args)
            except sqlite3.OperationalError as error:
                if not _is_busy(error) or time.monotonic() >= deadline:
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> InlineCursor:
        return InlineCursor(self)

    async def execute(self, sql: str, parameters: Any = None) -> InlineCursor:
        cursor = InlineCursor(self)
        return await cursor.execute(sql, parameters)

    async def commit(self) -> None:
        await self._run(self._conn.commit)

    async def rollback(self) -> None:
        self._conn.rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        """Close now (SQLAlchemy's forced termination; `close` is the same, there is no thread)."""
        if self._connection is not None:
            self._connection = None
            self._conn.close()


def inline_creator(database: str, busy_timeout: float) -> Callable[[], Any]:
    """An `async_creator` for `create_async_engine("sqlite+aiosqlite://…")`."""

    async def create() -> InlineConnection:
        conn = sqlite3.connect(database, timeout=0, isolation_level=None, check_same_thread=False)
        return InlineConnection(conn, busy_timeout)

    return create
