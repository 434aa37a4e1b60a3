"""What the people use cases need from storage (adapter: `storage.people`) and from email."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from mpesa_bridge.core.people.entity import AuditEntry, DashboardSession, Membership, OneTimeToken, User


class PeopleReader(Protocol):
    async def user(self, user_id: str) -> User | None: ...

    async def user_by_email(self, email: str) -> User | None: ...

    async def users(self) -> Sequence[User]: ...

    async def count_users(self) -> int: ...

    async def memberships_of(self, user_id: str) -> Sequence[Membership]: ...

    async def members_of(self, project_id: str) -> Sequence[tuple[Membership, User]]: ...

    async def session(self, session_id: str) -> DashboardSession | None: ...

    async def token(self, token_id: str) -> OneTimeToken | None: ...

    async def pending_invites(self, project_id: str, now: datetime) -> Sequence[OneTimeToken]: ...

    async def audit(self, project_id: str | None, limit: int) -> Sequence[AuditEntry]: ...


class PeopleRepository(PeopleReader, Protocol):
    async def add_user(self, user: User) -> None: ...

    async def save_user(self, user: User) -> None:
        """Write what the use case changed on a loaded user."""

    async def put_membership(self, membership: Membership) -> None:
        """Add the membership, or change its role when the person already belongs to the project."""

    async def remove_membership(self, user_id: str, project_id: str) -> None: ...

    async def add_session(self, session: DashboardSession) -> None: ...

    async def save_session(self, session: DashboardSession) -> None: ...

    async def delete_session(self, session_id: str) -> None: ...

    async def delete_sessions_of(self, user_id: str, keep: str | None = None) -> int:
        """Sign the person out everywhere (but `keep`, the session asking); how many ended."""

    async def delete_expired_sessions(self, now: datetime, idle_before: datetime) -> int: ...

    async def add_token(self, token: OneTimeToken) -> None: ...

    async def use_token(self, token_id: str, at: datetime) -> bool:
        """Mark the token used if it was not: True for exactly one caller (a link works once)."""

    async def add_audit(self, entry: AuditEntry) -> None: ...


class PeopleUnitOfWork(Protocol):
    people: PeopleRepository

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class PeopleReadUnitOfWork(Protocol):
    people: PeopleReader

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class PeopleStore(Protocol):
    def write(self) -> PeopleUnitOfWork: ...

    def read(self) -> PeopleReadUnitOfWork: ...


class Mailer(Protocol):
    """Sends an email; adapters: SMTP, or the log in development (`dashboard.mail`)."""

    async def send(self, to: str, subject: str, body: str) -> None: ...
