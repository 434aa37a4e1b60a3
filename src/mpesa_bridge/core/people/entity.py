"""People, their roles per project, their dashboard sessions and their one-time links.

A person has one account (`User`) and a role in each project they belong to (`Membership`). The
platform admin (`User.is_admin`) sees every project and acts in each as an owner. A signed-in
browser holds a `DashboardSession`, found by the hash of its cookie; a password reset or an
invitation is a `OneTimeToken`, found by the hash of its link. Neither a cookie nor a link is
stored in clear.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Role(StrEnum):
    OWNER = "owner"  # everything, including people and Daraja settings
    DEVELOPER = "developer"  # keys, webhooks, settings, payments
    VIEWER = "viewer"  # reads only


RANK = {Role.VIEWER: 0, Role.DEVELOPER: 1, Role.OWNER: 2}


def at_least(role: Role, needed: Role) -> bool:
    return RANK[role] >= RANK[needed]


class TokenKind(StrEnum):
    INVITE = "invite"
    RESET = "reset"


@dataclass(eq=False)
class User:
    id: str
    email: str  # stored lower-cased: the sign-in name
    name: str
    password_hash: str
    is_admin: bool
    created_at: datetime
    updated_at: datetime
    disabled_at: datetime | None = None
    failed_logins: int = 0  # consecutive failed sign-ins; reset by a success
    locked_until: datetime | None = None
    last_login_at: datetime | None = None
    language: str = "en"

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None


@dataclass(eq=False)
class Membership:
    user_id: str
    project_id: str
    role: Role
    created_at: datetime


@dataclass(eq=False)
class DashboardSession:
    id: str  # sha256 of the cookie's token
    user_id: str
    csrf_token: str  # sent back in every form; compared with this
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime  # absolute: no activity extends a session past it
    project_id: str | None = None  # the project the person is looking at
    mode: str = "test"
    ip: str | None = None
    user_agent: str | None = None


@dataclass(eq=False)
class OneTimeToken:
    id: str  # sha256 of the link's token
    kind: TokenKind
    email: str
    created_at: datetime
    expires_at: datetime
    user_id: str | None = None  # reset: whose password
    project_id: str | None = None  # invite: into which project
    role: Role | None = None  # invite: with which role
    created_by: str | None = None
    used_at: datetime | None = None


@dataclass(eq=False)
class AuditEntry:
    """Something a person did in the dashboard: who, when, to what."""

    id: str
    at: datetime
    user_id: str
    action: str  # dotted: "key.rotated", "payment.reviewed", "user.disabled"
    project_id: str | None = None
    target: str | None = None
    detail: str | None = None
