"""The people aggregate's repository: accounts, memberships, dashboard sessions, one-time links and
the audit log (`core.people.ports`), with its own units of work over `Database` (as webhooks)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mpesa_bridge.core.people.entity import AuditEntry, DashboardSession, Membership, OneTimeToken, TokenKind, User
from mpesa_bridge.storage import tables
from mpesa_bridge.storage.db import Database, SqlReadUnitOfWork, SqlUnitOfWork
from mpesa_bridge.storage.rows import EntityRows, Loaded

USERS = EntityRows(tables.users, User)
MEMBERSHIPS = EntityRows(tables.memberships, Membership, key=("user_id", "project_id"))
SESSIONS = EntityRows(tables.dashboard_sessions, DashboardSession)
TOKENS = EntityRows(tables.one_time_tokens, OneTimeToken)
AUDIT = EntityRows(tables.audit_log, AuditEntry)
_u = tables.users.c
_m = tables.memberships.c
_s = tables.dashboard_sessions.c
_t = tables.one_time_tokens.c
_a = tables.audit_log.c
_USER_BY_ID = USERS.select().where(_u.id == sa.bindparam("id"))
_SESSION_BY_ID = SESSIONS.select().where(_s.id == sa.bindparam("id"))
_MEMBERSHIPS_OF = MEMBERSHIPS.select().where(_m.user_id == sa.bindparam("user_id")).order_by(_m.created_at)


class SqlPeopleReader:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def _users(self, stmt: sa.Select[Any], params: dict[str, Any] | None = None) -> list[User]:
        return [USERS.build(row) for row in await self._c.execute(stmt, params)]

    async def _sessions(self, stmt: sa.Select[Any], params: dict[str, Any] | None = None) -> list[DashboardSession]:
        return [SESSIONS.build(row) for row in await self._c.execute(stmt, params)]

    async def user(self, user_id: str) -> User | None:
        found = await self._users(_USER_BY_ID, {"id": user_id})
        return found[0] if found else None

    async def user_by_email(self, email: str) -> User | None:
        found = await self._users(USERS.select().where(_u.email == email))
        return found[0] if found else None

    async def users(self) -> Sequence[User]:
        return await self._users(USERS.select().order_by(_u.created_at))

    async def count_users(self) -> int:
        return int((await self._c.execute(sa.select(sa.func.count()).select_from(tables.users))).scalar_one())

    async def memberships_of(self, user_id: str) -> Sequence[Membership]:
        return [MEMBERSHIPS.build(row) for row in await self._c.execute(_MEMBERSHIPS_OF, {"user_id": user_id})]

    async def members_of(self, project_id: str) -> Sequence[tuple[Membership, User]]:
        stmt = (
            sa.select(*MEMBERSHIPS.columns, *USERS.columns)
            .join_from(tables.memberships, tables.users, _m.user_id == _u.id)
            .where(_m.project_id == project_id)
            .order_by(_u.email)
        )
        width = len(MEMBERSHIPS.columns)
        return [(MEMBERSHIPS.build(row[:width]), USERS.build(row[width:])) for row in await self._c.execute(stmt)]

    async def session(self, session_id: str) -> DashboardSession | None:
        found = await self._sessions(_SESSION_BY_ID, {"id": session_id})
        return found[0] if found else None

    async def token(self, token_id: str) -> OneTimeToken | None:
        row = (await self._c.execute(TOKENS.select().where(_t.id == token_id))).first()
        return TOKENS.build(row) if row is not None else None

    async def pending_invites(self, project_id: str, now: datetime) -> Sequence[OneTimeToken]:
        stmt = (
            TOKENS.select()
            .where(_t.project_id == project_id, _t.kind == TokenKind.INVITE, _t.used_at.is_(None), _t.expires_at > now)
            .order_by(_t.created_at)
        )
        return [TOKENS.build(row) for row in await self._c.execute(stmt)]

    async def audit(self, project_id: str | None, limit: int) -> Sequence[AuditEntry]:
        stmt = AUDIT.select()
        if project_id is not None:
            stmt = stmt.where(_a.project_id == project_id)
        return [AUDIT.build(row) for row in await self._c.execute(stmt.order_by(_a.id.desc()).limit(limit))]


class SqlPeopleRepository(SqlPeopleReader):
    def __init__(self, conn: AsyncConnection, *, lock: bool) -> None:
        super().__init__(conn)
        self._lock = lock
        self._loaded_users = Loaded(USERS)
        self._loaded_sessions = Loaded(SESSIONS)

    async def _users(self, stmt: sa.Select[Any], params: dict[str, Any] | None = None) -> list[User]:
        if self._lock:  # a sign-in's failure count is read and written under the row's lock
            stmt = stmt.with_for_update(of=tables.users)
        return self._loaded_users.build(await self._c.execute(stmt, params))

    async def _sessions(self, stmt: sa.Select[Any], params: dict[str, Any] | None = None) -> list[DashboardSession]:
        return self._loaded_sessions.build(await self._c.execute(stmt, params))

    async def add_user(self, user: User) -> None:
        await USERS.insert(self._c, [user])
        self._loaded_users.remember(user)

    async def save_user(self, user: User) -> None:
        await self._loaded_users.save(self._c, [user])

    async def put_membership(self, membership: Membership) -> None:
        where = sa.and_(_m.user_id == membership.user_id, _m.project_id == membership.project_id)
        updated = await self._c.execute(sa.update(tables.memberships).where(where).values(role=membership.role))
        if updated.rowcount == 0:
            await MEMBERSHIPS.insert(self._c, [membership])

    async def remove_membership(self, user_id: str, project_id: str) -> None:
        await self._c.execute(sa.delete(tables.memberships).where(_m.user_id == user_id, _m.project_id == project_id))

    async def add_session(self, session: DashboardSession) -> None:
        await SESSIONS.insert(self._c, [session])
        self._loaded_sessions.remember(session)

    async def save_session(self, session: DashboardSession) -> None:
        await self._loaded_sessions.save(self._c, [session])

    async def delete_session(self, session_id: str) -> None:
        await self._c.execute(sa.delete(tables.dashboard_sessions).where(_s.id == session_id))

    async def delete_sessions_of(self, user_id: str, keep: str | None = None) -> int:
        stmt = sa.delete(tables.dashboard_sessions).where(_s.user_id == user_id)
        if keep is not None:
            stmt = stmt.where(_s.id != keep)
        return int((await self._c.execute(stmt)).rowcount)

    async def delete_expired_sessions(self, now: datetime, idle_before: datetime) -> int:
        stmt = sa.delete(tables.dashboard_sessions).where(sa.or_(_s.expires_at <= now, _s.last_seen_at < idle_before))
        return int((await self._c.execute(stmt)).rowcount)

    async def add_token(self, token: OneTimeToken) -> None:
        await TOKENS.insert(self._c, [token])

    async def use_token(self, token_id: str, at: datetime) -> bool:
        stmt = sa.update(tables.one_time_tokens).where(_t.id == token_id, _t.used_at.is_(None)).values(used_at=at)
        return int((await self._c.execute(stmt)).rowcount) == 1

    async def add_audit(self, entry: AuditEntry) -> None:
        await AUDIT.insert(self._c, [entry])


class SqlPeopleUnitOfWork:
    """A `Database` unit of work with the people repository on its connection."""

    people: Any  # SqlPeopleRepository in a write unit, SqlPeopleReader in a read one

    def __init__(self, inner: SqlReadUnitOfWork | SqlUnitOfWork, *, write: bool, lock: bool) -> None:
        self._inner = inner
        self._write = write
        self._lock = lock

    async def __aenter__(self) -> Self:
        await self._inner.__aenter__()
        conn = self._inner.connection
        self.people = SqlPeopleRepository(conn, lock=self._lock) if self._write else SqlPeopleReader(conn)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._inner.__aexit__(exc_type, exc, tb)


class PeopleStorage:
    """Units of work for the people use cases (`core.people.ports.PeopleStore`)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def write(self) -> SqlPeopleUnitOfWork:
        return SqlPeopleUnitOfWork(self._db.write(), write=True, lock=not self._db.sqlite)

    def read(self) -> SqlPeopleUnitOfWork:
        return SqlPeopleUnitOfWork(self._db.read(), write=False, lock=False)
