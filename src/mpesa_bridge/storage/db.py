"""Engines, sessions and units of work.

SQLite allows one writer at a time. Writes therefore go through a pool of exactly one
connection (so writers queue in-process instead of failing with "database is locked"), each
transaction starts with `BEGIN IMMEDIATE` (so a writer in another process — `mpesa-bridge worker`
— waits on the busy timeout instead of deadlocking on a lock upgrade), and reads use their own
pool and see a consistent WAL snapshot. PostgreSQL uses one pool for both.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import orjson
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from mpesa_bridge.core.balances.ports import BalanceQueryReader
from mpesa_bridge.core.c2b.ports import C2BReader
from mpesa_bridge.core.payments.entity import OutboxEvent
from mpesa_bridge.core.ports import (
    CallbackReader,
    CheckoutSessionReader,
    EvidenceReader,
    PaymentLinkReader,
    PaymentReader,
    ProjectReader,
)
from mpesa_bridge.core.reversals.ports import ReversalReader
from mpesa_bridge.files import PRIVATE_DIR, PRIVATE_FILE, create_private_file, tighten
from mpesa_bridge.logging import get_logger
from mpesa_bridge.storage.balance_queries import SqlBalanceQueryReader, SqlBalanceQueryRepository
from mpesa_bridge.storage.c2b import SqlC2BReader, SqlC2BRepository
from mpesa_bridge.storage.callbacks import SqlCallbackReader, SqlCallbackRepository
from mpesa_bridge.storage.checkout import SqlCheckoutSessionReader, SqlCheckoutSessionRepository
from mpesa_bridge.storage.events import SqlEventReader, SqlEventRepository
from mpesa_bridge.storage.idempotency import SqlIdempotencyRepository
from mpesa_bridge.storage.links import SqlPaymentLinkReader, SqlPaymentLinkRepository
from mpesa_bridge.storage.payments import (
    SqlEvidenceReader,
    SqlEvidenceRepository,
    SqlPaymentReader,
    SqlPaymentRepository,
)
from mpesa_bridge.storage.payouts import SqlPayoutReader, SqlPayoutRepository
from mpesa_bridge.storage.pending import PendingRows
from mpesa_bridge.storage.projects import SqlProjectReader, SqlProjectRepository
from mpesa_bridge.storage.reversals import SqlReversalReader, SqlReversalRepository
from mpesa_bridge.storage.sqlite_inline import inline_creator
from mpesa_bridge.storage.status_queries import SqlStatusQueryReader, SqlStatusQueryRepository

SQLITE_BUSY_TIMEOUT_MS = 15_000


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


# JSON columns (a payment's metadata, an event's data) through orjson, not the json module: a
# fraction of the CPU per row. Only JSON values reach these columns: str keys, no datetimes, and
# integers within 64 bits (the edge refuses larger ones: core.payments.validation).
JSON_CODEC: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}

log = get_logger("mpesa_bridge.storage")

# Called with the outbox events of a write right after it committed (`Database.on_commit`).
CommitListener = Callable[[Sequence[OutboxEvent]], None]


class ReadOnlyTransaction(RuntimeError):
    """Something tried to write inside `Database.read()`: a bug (use `write()`)."""


def normalise_url(url: str) -> str:
    """Accept the URLs people paste (postgres://, postgresql://, sqlite:///) and pick async drivers."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql", "postgresql+psycopg2", "postgresql+psycopg"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def ensure_sqlite_dir(url: str) -> None:
    """Create the database's folder (0700) and the database itself (0600) before SQLite does.

    SQLite creates the file but not its folder, and creates it 0644 under the usual umask; its
    -wal, -shm and -journal files take the database's mode, so a private database keeps them
    private too. Files an older version left readable are tightened here, at every start.
    """
    if not is_sqlite(url):
        return
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if not path.parent.exists():
        path.parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    create_private_file(path)
    for name in (database, f"{database}-wal", f"{database}-shm", f"{database}-journal"):
        if tighten(Path(name), PRIVATE_FILE):
            log.warning("storage.permissions_tightened", path=name, mode=oct(PRIVATE_FILE))


def _sqlite_engine(url: str, *, writer: bool) -> AsyncEngine:
    ensure_sqlite_dir(url)
    if writer:
        # One connection, run on the event loop's thread (storage/sqlite_inline.py): its statements
        # are short, and a thread hand-over per call cost more than the statements (`make bench`).
        database = make_url(url).database or ":memory:"
        engine = create_async_engine(
            url,
            poolclass=AsyncAdaptedQueuePool,
            pool_size=1,
            max_overflow=0,
            pool_timeout=60,
            async_creator=inline_creator(database, SQLITE_BUSY_TIMEOUT_MS / 1000),
            **JSON_CODEC,
        )
    else:
        # Readers: enough kept open for a burst. A connection past the pool is opened and closed again
        # for one use (a thread and the PRAGMAs each time with aiosqlite), which under load costs more
        # than the queries.
        engine = create_async_engine(
            url,
            poolclass=AsyncAdaptedQueuePool,
            pool_size=16,
            max_overflow=16,
            pool_timeout=60,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            **JSON_CODEC,
        )
    busy_timeout_ms = 0 if writer else SQLITE_BUSY_TIMEOUT_MS  # the writer waits for the lock asynchronously

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (pysqlite's legacy mode).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        if not writer:
            cursor.execute("PRAGMA query_only=ON")  # a reader that tries to write fails loudly
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

    return engine


# A pooled PostgreSQL connection idle for longer than this is pinged before it is handed out; one
# in steady use is not. SQLAlchemy's pool_pre_ping pings at every checkout: three round trips
# with asyncpg (BEGIN, a statement, ROLLBACK), about a tenth of a payment's CPU (`make bench`, B2).
PING_IDLE_AFTER = 5.0
_IDLE_SINCE = "mpesa_bridge.idle_since"


def _ping_when_idle(engine: AsyncEngine) -> None:
    """Pessimistic disconnect handling for connections that sat idle: a server restart or an idle
    timeout kills those, not the ones in use. A dead one is replaced before anyone gets it."""

    @event.listens_for(engine.sync_engine, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)
        if since is None or time.monotonic() - since < PING_IDLE_AFTER:
            return
        try:
            dbapi_conn.ping()
        except Exception as exc:
            # The pool discards this connection and checks out another (a new one if need be).
            raise DisconnectionError("an idle pooled connection is gone") from exc


class Database:
    """Owns the engines; hands out units of work (`write()`, `read()`)."""

    def __init__(self, url: str, *, pool_size: int = 20) -> None:
        self.url = normalise_url(url)
        self.sqlite = is_sqlite(self.url)
        if self.sqlite:
            self.write_engine = _sqlite_engine(self.url, writer=True)
            self.read_engine = _sqlite_engine(self.url, writer=False)
        else:
            self.write_engine = create_async_engine(self.url, pool_size=pool_size, max_overflow=pool_size, **JSON_CODEC)
            _ping_when_idle(self.write_engine)
            self.read_engine = self.write_engine
        self._commit_listeners: list[CommitListener] = []

    @property
    def dialect(self) -> str:
        return "sqlite" if self.sqlite else "postgresql"

    def write(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.write_engine, lock=not self.sqlite, listeners=self._commit_listeners)

    def on_commit(self, listener: CommitListener) -> None:
        """Call `listener` with the outbox events of every committed write, right after the commit
        (never for a rollback). It must not block; an error it raises is logged, not passed on:
        the transaction is committed whatever a listener does."""
        self._commit_listeners.append(listener)

    def read(self) -> SqlReadUnitOfWork:
        return SqlReadUnitOfWork(self.read_engine, postgres=not self.sqlite)

    async def dispose(self) -> None:
        await self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()


async def _begin(engine: AsyncEngine, *, read_only: bool = False) -> AsyncConnection:
    """A pooled connection with its transaction begun (on PostgreSQL, when `read_only`: REPEATABLE
    READ, READ ONLY — one snapshot for every statement of the unit of work, as SQLite's deferred
    BEGIN gives in WAL mode; READ COMMITTED would let a session read before a commit and its payment
    read after it disagree); the connection goes back to the pool if the transaction cannot begin."""
    connection = await engine.connect()
    try:
        if read_only:
            connection = await connection.execution_options(postgresql_readonly=True, isolation_level="REPEATABLE READ")
        await connection.begin()
    except BaseException:
        await connection.close()
        raise
    return connection


class SqlReadUnitOfWork:
    """One connection, one read-only transaction, rolled back on exit. Its repositories are the
    readers, typed by the core's read-only protocols: a write verb inside `Database.read()` is a
    type error. At run time the database refuses a write too: PostgreSQL runs the transaction READ
    ONLY, and SQLite's reader connections are `query_only`."""

    connection: AsyncConnection
    payments: PaymentReader
    events: SqlEventReader  # realtime.sse's stream reads are on the concrete class
    evidence: EvidenceReader
    callbacks: CallbackReader
    projects: ProjectReader
    checkout_sessions: CheckoutSessionReader
    payment_links: PaymentLinkReader
    c2b: C2BReader
    reversals: ReversalReader
    balance_queries: BalanceQueryReader
    payouts: SqlPayoutReader
    status_queries: SqlStatusQueryReader

    def __init__(self, engine: AsyncEngine, *, postgres: bool) -> None:
        self._engine = engine
        self._postgres = postgres

    async def __aenter__(self) -> Self:
        self.connection = connection = await _begin(self._engine, read_only=self._postgres)
        self.payments = SqlPaymentReader(connection)
        self.events = SqlEventReader(connection)
        self.evidence = SqlEvidenceReader(connection)
        self.callbacks = SqlCallbackReader(connection)
        self.projects = SqlProjectReader(connection)
        self.checkout_sessions = SqlCheckoutSessionReader(connection)
        self.payment_links = SqlPaymentLinkReader(connection)
        self.c2b = SqlC2BReader(connection)
        self.reversals = SqlReversalReader(connection)
        self.balance_queries = SqlBalanceQueryReader(connection)
        self.payouts = SqlPayoutReader(connection)
        self.status_queries = SqlStatusQueryReader(connection)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await self.connection.rollback()
        finally:
            await self.connection.close()


class SqlUnitOfWork:
    """One connection, one transaction: commit on a clean exit, roll back on an error. New events
    and evidence are written together just before the commit; the events are announced to the
    `on_commit` listeners once it succeeded."""

    connection: AsyncConnection
    payments: SqlPaymentRepository
    events: SqlEventRepository
    evidence: SqlEvidenceRepository
    callbacks: SqlCallbackRepository
    projects: SqlProjectRepository
    idempotency: SqlIdempotencyRepository
    checkout_sessions: SqlCheckoutSessionRepository
    payment_links: SqlPaymentLinkRepository
    c2b: SqlC2BRepository
    reversals: SqlReversalRepository
    balance_queries: SqlBalanceQueryRepository
    payouts: SqlPayoutRepository
    status_queries: SqlStatusQueryRepository

    def __init__(self, engine: AsyncEngine, *, lock: bool, listeners: Sequence[CommitListener] = ()) -> None:
        self._engine = engine
        self._lock = lock
        self._listeners = listeners

    async def __aenter__(self) -> Self:
        self.connection = connection = await _begin(self._engine)
        # Row locks (FOR UPDATE) matter on PostgreSQL; SQLite's single writer already serialises.
        self.pending = PendingRows(connection)
        self.payments = SqlPaymentRepository(connection, lock=self._lock)
        self.events = SqlEventRepository(connection, self.pending)
        self.evidence = SqlEvidenceRepository(connection, self.pending)
        self.callbacks = SqlCallbackRepository(connection, lock=self._lock)
        self.projects = SqlProjectRepository(connection)
        self.idempotency = SqlIdempotencyRepository(connection)
        self.checkout_sessions = SqlCheckoutSessionRepository(connection)
        self.payment_links = SqlPaymentLinkRepository(connection, lock=self._lock)
        self.c2b = SqlC2BRepository(connection, lock=self._lock)
        self.reversals = SqlReversalRepository(connection, lock=self._lock)
        self.balance_queries = SqlBalanceQueryRepository(connection, lock=self._lock)
        self.payouts = SqlPayoutRepository(connection, lock=self._lock)
        self.status_queries = SqlStatusQueryRepository(connection, lock=self._lock)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        committed = False
        try:
            if exc_type is None:
                await self.pending.flush()
                await self.connection.commit()
                committed = True
            else:
                await self.connection.rollback()
        finally:
            if not committed and self.connection.in_transaction():
                await self.connection.rollback()  # the flush or the commit failed
            await self.connection.close()
        events = [row for row in self.pending.written if isinstance(row, OutboxEvent)]
        if committed and events:
            self._announce(events)

    def _announce(self, events: Sequence[OutboxEvent]) -> None:
        for listener in self._listeners:
            try:
                listener(events)
            except Exception:
                log.exception("db.on_commit_failed", events=len(events))
