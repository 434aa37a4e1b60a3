"""The people use cases: accounts, sign-in with backoff and lockout, sessions, invitations, resets.

Errors (all `BridgeError`s, each with a stable code):

    SignInFailed     — wrong email or password (one message for both), or a disabled account
    LockedOut        — too many failures in a row; `retry_after` seconds
    InvalidRequest   — a weak password, a malformed email, a used or expired link (`param` says which)
    Conflict         — the email already has an account
    NotFound         — no such person or membership
    Forbidden        — the person's role does not allow it

Sessions: a new random token at every sign-in (never one the browser brought: no fixation), stored
as its SHA-256; idle expiry and absolute expiry; changing the password or disabling the account
ends every other session. Hashing runs in a thread so that a sign-in never stalls the loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from mpesa_bridge.core.clock import Clock
from mpesa_bridge.core.errors import BridgeError, Conflict, InvalidRequest, NotFound
from mpesa_bridge.core.ids import new_id
from mpesa_bridge.core.people.entity import (
    AuditEntry,
    DashboardSession,
    Membership,
    OneTimeToken,
    Role,
    TokenKind,
    User,
    at_least,
)
from mpesa_bridge.core.people.passwords import PasswordHasher, check_strength
from mpesa_bridge.core.people.ports import Mailer, PeopleStore

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s.]{2,63}$")


class SignInFailed(BridgeError):
    code = "sign_in_failed"


class LockedOut(BridgeError):
    code = "locked_out"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Forbidden(BridgeError):
    code = "forbidden"


@dataclass(frozen=True)
class PeoplePolicy:
    """Time limits and thresholds, as data (`Settings` fills them)."""

    idle: timedelta = timedelta(minutes=30)
    absolute: timedelta = timedelta(hours=12)
    touch_every: timedelta = timedelta(seconds=60)  # last_seen_at written at most this often
    backoff_after: int = 3  # failures in a row before each further one locks the account
    backoff_base: timedelta = timedelta(seconds=2)  # doubled with every further failure
    lock_max: timedelta = timedelta(minutes=15)
    reset_valid: timedelta = timedelta(hours=1)
    invite_valid: timedelta = timedelta(days=7)
    signup: bool = False

    def lock_for(self, failures: int) -> timedelta:
        if failures < self.backoff_after:
            return timedelta(0)
        wait: timedelta = self.backoff_base * (2 ** (failures - self.backoff_after))
        return min(wait, self.lock_max)


@dataclass(frozen=True)
class Identity:
    """The signed-in person behind a request: their account, session and roles."""

    user: User
    session: DashboardSession
    roles: dict[str, Role] = field(default_factory=dict)

    def role_in(self, project_id: str | None) -> Role | None:
        if project_id is None:
            return None
        if self.user.is_admin:
            return Role.OWNER
        return self.roles.get(project_id)

    def can(self, project_id: str | None, needed: Role) -> bool:
        role = self.role_in(project_id)
        return role is not None and at_least(role, needed)


@dataclass(frozen=True)
class SignedIn:
    token: str  # the cookie's value: exists in clear only here
    identity: Identity


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normalise_email(email: str) -> str:
    cleaned = email.strip().lower()
    if not _EMAIL.match(cleaned):
        raise InvalidRequest("Enter an email address like name@example.com.", code="invalid_email", param="email")
    return cleaned


class PeopleService:
    def __init__(
        self,
        store: PeopleStore,
        hasher: PasswordHasher,
        clock: Clock,
        mailer: Mailer,
        policy: PeoplePolicy | None = None,
        *,
        link_base: str = "",
    ) -> None:
        self._store = store
        self._hasher = hasher
        self._clock = clock
        self._mailer = mailer
        self.policy = policy or PeoplePolicy()
        self._link_base = link_base.rstrip("/")

    # --- accounts -----------------------------------------------------------------------------

    async def create_user(self, email: str, password: str, *, name: str = "", is_admin: bool = False) -> User:
        email = normalise_email(email)
        check_strength(password, email)
        hashed = await asyncio.to_thread(self._hasher.hash, password)
        now = self._clock.now()
        user = User(new_id("usr", now), email, name.strip()[:200], hashed, is_admin, now, now)
        async with self._store.write() as uow:
            if await uow.people.user_by_email(email) is not None:
                raise Conflict("An account with this email exists already.", code="email_taken", param="email")
            await uow.people.add_user(user)
        return user

    async def ensure_dev_user(self, email: str, password: str) -> User:
        """Development only (`serve --dev`): the platform admin `email` with `password`, created or
        given that password (the strength rules still apply)."""
        email = normalise_email(email)
        check_strength(password, email)
        hashed = await asyncio.to_thread(self._hasher.hash, password)
        now = self._clock.now()
        async with self._store.write() as uow:
            user = await uow.people.user_by_email(email)
            if user is None:
                user = User(new_id("usr", now), email, "Developer", hashed, True, now, now)
                await uow.people.add_user(user)
            else:
                user.password_hash, user.is_admin, user.disabled_at, user.updated_at = hashed, True, None, now
                user.failed_logins, user.locked_until = 0, None
                await uow.people.save_user(user)
        return user

    async def signup(self, email: str, password: str, name: str = "") -> User:
        if not self.policy.signup:
            raise Forbidden("Sign-up is closed here: ask an owner for an invitation.", code="signup_closed")
        return await self.create_user(email, password, name=name)

    async def count_users(self) -> int:
        async with self._store.read() as uow:
            return await uow.people.count_users()

    async def users(self) -> Sequence[User]:
        async with self._store.read() as uow:
            return await uow.people.users()

    async def set_disabled(self, by: Identity, user_id: str, disabled: bool) -> User:
        """Platform admins disable and re-enable accounts; a disabled person's sessions end at once."""
        if not by.user.is_admin:
            raise Forbidden("Only a platform admin can do this.")
        if user_id == by.user.id:
            raise InvalidRequest("You cannot disable your own account.", param="user")
        now = self._clock.now()
        async with self._store.write() as uow:
            user = await uow.people.user(user_id)
            if user is None:
                raise NotFound("No such person.")
            user.disabled_at = now if disabled else None
            user.updated_at = now
            await uow.people.save_user(user)
            if disabled:
                await uow.people.delete_sessions_of(user_id)
            await uow.people.add_audit(self._audit(by, "user.disabled" if disabled else "user.enabled", target=user_id))
        return user

    # --- signing in and sessions --------------------------------------------------------------

    async def sign_in(
        self, email: str, password: str, *, ip: str | None = None, user_agent: str | None = None
    ) -> SignedIn:
        now = self._clock.now()
        try:
            email = normalise_email(email)
        except InvalidRequest:
            email = ""
        async with self._store.read() as uow:
            user = await uow.people.user_by_email(email) if email else None
        if user is not None and user.locked_until is not None and user.locked_until > now:
            wait = int((user.locked_until - now).total_seconds()) + 1
            raise LockedOut(f"Too many failed attempts. Try again in {wait} seconds.", retry_after=wait)
        ok = await asyncio.to_thread(self._hasher.verify, user.password_hash if user else None, password)
        if user is None:
            raise SignInFailed("Wrong email or password.")
        async with self._store.write() as uow:
            current = await uow.people.user(user.id)
            if current is None:
                raise SignInFailed("Wrong email or password.")
            if not ok:
                current.failed_logins += 1
                lock = self.policy.lock_for(current.failed_logins)
                current.locked_until = now + lock if lock else None
                await uow.people.save_user(current)
            elif current.disabled:
                ok = False
            else:
                current.failed_logins = 0
                current.locked_until = None
                current.last_login_at = now
                if self._hasher.needs_rehash(current.password_hash):
                    current.password_hash = await asyncio.to_thread(self._hasher.hash, password)
                await uow.people.save_user(current)
                token, session = self._new_session(current.id, now, ip, user_agent)
                memberships = await uow.people.memberships_of(current.id)
                if memberships:
                    session.project_id = memberships[0].project_id
                await uow.people.add_session(session)
        if not ok:
            raise SignInFailed("Wrong email or password.")
        return SignedIn(token, Identity(current, session, {m.project_id: m.role for m in memberships}))

    def _new_session(
        self, user_id: str, now: datetime, ip: str | None, user_agent: str | None
    ) -> tuple[str, DashboardSession]:
        token = secrets.token_urlsafe(32)
        session = DashboardSession(
            id=digest(token),
            user_id=user_id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
            expires_at=now + self.policy.absolute,
            ip=ip,
            user_agent=(user_agent or "")[:300] or None,
        )
        return token, session

    async def identify(self, token: str) -> Identity | None:
        """The person behind a session cookie, or None when it is unknown, idle too long, past its
        absolute expiry, or its account is disabled. Activity is written at most once a minute."""
        if not token or len(token) > 200:
            return None
        now = self._clock.now()
        session_id = digest(token)
        async with self._store.read() as uow:
            session = await uow.people.session(session_id)
            if session is None:
                return None
            user = await uow.people.user(session.user_id)
            memberships = await uow.people.memberships_of(session.user_id) if user else []
        expired = now >= session.expires_at or now - session.last_seen_at >= self.policy.idle
        if user is None or user.disabled or expired:
            async with self._store.write() as uow:
                await uow.people.delete_session(session_id)
            return None
        if now - session.last_seen_at >= self.policy.touch_every:
            async with self._store.write() as uow:
                current = await uow.people.session(session_id)
                if current is not None:
                    current.last_seen_at = now
                    await uow.people.save_session(current)
                    session = current
        return Identity(user, session, {m.project_id: m.role for m in memberships})

    async def prune_sessions(self) -> int:
        """Delete the sessions past their absolute expiry or idle too long (housekeeping: a session
        is refused by `identify` either way; this keeps the table from growing)."""
        now = self._clock.now()
        async with self._store.write() as uow:
            return await uow.people.delete_expired_sessions(now, now - self.policy.idle)

    async def sign_out(self, token: str) -> None:
        async with self._store.write() as uow:
            await uow.people.delete_session(digest(token))

    async def sign_out_everywhere(self, who: Identity) -> int:
        async with self._store.write() as uow:
            ended = await uow.people.delete_sessions_of(who.user.id)
            await uow.people.add_audit(self._audit(who, "user.signed_out_everywhere"))
        return ended

    async def look_at(self, who: Identity, project_id: str, mode: str) -> None:
        """Switch the session to another project or mode (one the person belongs to)."""
        if who.role_in(project_id) is None:
            raise NotFound("No such project.")
        if mode not in ("test", "live"):
            raise InvalidRequest("Mode is test or live.", param="mode")
        async with self._store.write() as uow:
            session = await uow.people.session(who.session.id)
            if session is not None:
                session.project_id = project_id
                session.mode = mode
                await uow.people.save_session(session)

    async def change_password(self, who: Identity, current: str, new: str) -> None:
        """Needs the current password; every other session of the person ends."""
        ok = await asyncio.to_thread(self._hasher.verify, who.user.password_hash, current)
        if not ok:
            raise InvalidRequest("Your current password is not right.", code="wrong_password", param="current")
        check_strength(new, who.user.email)
        hashed = await asyncio.to_thread(self._hasher.hash, new)
        async with self._store.write() as uow:
            user = await uow.people.user(who.user.id)
            if user is None:
                raise NotFound("No such person.")
            user.password_hash = hashed
            user.updated_at = self._clock.now()
            await uow.people.save_user(user)
            await uow.people.delete_sessions_of(user.id, keep=who.session.id)
            await uow.people.add_audit(self._audit(who, "user.password_changed"))

    # --- one-time links -----------------------------------------------------------------------

    async def request_reset(self, email: str) -> None:
        """Email a reset link if the account exists; say nothing either way (no account probing)."""
        try:
            email = normalise_email(email)
        except InvalidRequest:
            return
        now = self._clock.now()
        async with self._store.write() as uow:
            user = await uow.people.user_by_email(email)
            if user is None or user.disabled:
                return
            token, row = self._new_token(TokenKind.RESET, email, now, self.policy.reset_valid, user_id=user.id)
            await uow.people.add_token(row)
        link = f"{self._link_base}/dashboard/reset/{token}"
        await self._mailer.send(
            email,
            "Reset your mpesa-bridge password",
            f"Someone asked to reset the password of {email}.\n\nTo choose a new one, open:\n{link}\n\n"
            f"The link works once, for {_human(self.policy.reset_valid)}. If it was not you, ignore this email.",
        )

    async def reset_password(self, token: str, new: str) -> User:
        now = self._clock.now()
        row = await self._valid_token(token, TokenKind.RESET, now)
        check_strength(new, row.email)
        hashed = await asyncio.to_thread(self._hasher.hash, new)
        async with self._store.write() as uow:
            if not await uow.people.use_token(row.id, now):
                raise _used_link()
            user = await uow.people.user(row.user_id or "")
            if user is None:
                raise _used_link()
            user.password_hash = hashed
            user.failed_logins = 0
            user.locked_until = None
            user.updated_at = now
            await uow.people.save_user(user)
            await uow.people.delete_sessions_of(user.id)
        return user

    async def invite(self, by: Identity, project_id: str, email: str, role: Role) -> OneTimeToken:
        """Owners invite by a single-use link that expires (`PeoplePolicy.invite_valid`)."""
        if not by.can(project_id, Role.OWNER):
            raise Forbidden("Only an owner can invite people.")
        email = normalise_email(email)
        now = self._clock.now()
        token, row = self._new_token(
            TokenKind.INVITE,
            email,
            now,
            self.policy.invite_valid,
            project_id=project_id,
            role=role,
            created_by=by.user.id,
        )
        async with self._store.write() as uow:
            await uow.people.add_token(row)
            await uow.people.add_audit(self._audit(by, "member.invited", project_id, target=email, detail=role.value))
        link = f"{self._link_base}/dashboard/invite/{token}"
        await self._mailer.send(
            email,
            "You are invited to mpesa-bridge",
            f"{by.user.name or by.user.email} invited you to a project on mpesa-bridge as {role.value}.\n\n"
            f"To accept, open:\n{link}\n\nThe link works once, for {_human(self.policy.invite_valid)}.",
        )
        return row

    async def revoke_invite(self, by: Identity, project_id: str, invite_id: str) -> OneTimeToken:
        """An owner withdraws a pending invitation: its link stops working (marked used, kept for
        the record). `invite_id` is the stored id (the link's hash), never the link itself."""
        if not by.can(project_id, Role.OWNER):
            raise Forbidden("Only an owner can withdraw an invitation.")
        async with self._store.write() as uow:
            row = await uow.people.token(invite_id)
            if row is None or row.kind != TokenKind.INVITE or row.project_id != project_id:
                raise NotFound("No such invitation.")
            if not await uow.people.use_token(row.id, self._clock.now()):
                raise _used_link()
            await uow.people.add_audit(
                self._audit(by, "member.invite_revoked", project_id, target=row.email, detail=str(row.role))
            )
        return row

    async def invitation(self, token: str) -> tuple[OneTimeToken, bool]:
        """The invitation behind a link, and whether its email has an account already."""
        row = await self._valid_token(token, TokenKind.INVITE, self._clock.now())
        async with self._store.read() as uow:
            exists = await uow.people.user_by_email(row.email) is not None
        return row, exists

    async def accept_invite(self, token: str, *, password: str, name: str = "") -> User:
        """A new person chooses a password; a person with an account proves it with theirs."""
        now = self._clock.now()
        row = await self._valid_token(token, TokenKind.INVITE, now)
        async with self._store.read() as uow:
            existing = await uow.people.user_by_email(row.email)
        if existing is not None:
            if not await asyncio.to_thread(self._hasher.verify, existing.password_hash, password):
                raise InvalidRequest("Your password is not right.", code="wrong_password", param="password")
            hashed = None
        else:
            check_strength(password, row.email)
            hashed = await asyncio.to_thread(self._hasher.hash, password)
        async with self._store.write() as uow:
            if not await uow.people.use_token(row.id, now):
                raise _used_link()
            user = await uow.people.user_by_email(row.email)
            if user is None:
                assert hashed is not None
                user = User(new_id("usr", now), row.email, name.strip()[:200], hashed, False, now, now)
                await uow.people.add_user(user)
            await uow.people.put_membership(Membership(user.id, row.project_id or "", row.role or Role.VIEWER, now))
            await uow.people.add_audit(
                AuditEntry(new_id("aud", now), now, user.id, "member.joined", row.project_id, detail=str(row.role))
            )
        return user

    def _new_token(
        self, kind: TokenKind, email: str, now: datetime, valid: timedelta, **extra: object
    ) -> tuple[str, OneTimeToken]:
        token = secrets.token_urlsafe(32)
        return token, OneTimeToken(digest(token), kind, email, now, now + valid, **extra)  # type: ignore[arg-type]

    async def _valid_token(self, token: str, kind: TokenKind, now: datetime) -> OneTimeToken:
        if not token or len(token) > 200:
            raise _used_link()
        async with self._store.read() as uow:
            row = await uow.people.token(digest(token))
        if row is None or row.kind != kind or row.used_at is not None or row.expires_at <= now:
            raise _used_link()
        return row

    # --- projects' people ---------------------------------------------------------------------

    async def add_member(self, project_id: str, user_id: str, role: Role) -> None:
        """Used when a person creates a project (they own it) and by the CLI."""
        async with self._store.write() as uow:
            await uow.people.put_membership(Membership(user_id, project_id, role, self._clock.now()))

    async def members(self, who: Identity, project_id: str) -> Sequence[tuple[Membership, User]]:
        if not who.can(project_id, Role.VIEWER):
            raise NotFound("No such project.")
        async with self._store.read() as uow:
            return await uow.people.members_of(project_id)

    async def pending_invites(self, who: Identity, project_id: str) -> Sequence[OneTimeToken]:
        if not who.can(project_id, Role.OWNER):
            return []
        async with self._store.read() as uow:
            return await uow.people.pending_invites(project_id, self._clock.now())

    async def set_role(self, who: Identity, project_id: str, user_id: str, role: Role | None) -> None:
        """Change a member's role, or remove them (`role=None`). A project keeps at least one owner."""
        if not who.can(project_id, Role.OWNER):
            raise Forbidden("Only an owner can change who belongs to the project.")
        async with self._store.write() as uow:
            members = await uow.people.members_of(project_id)
            target = next((m for m, _ in members if m.user_id == user_id), None)
            if target is None:
                raise NotFound("No such member.")
            owners = [m for m, _ in members if m.role == Role.OWNER]
            if target.role == Role.OWNER and role != Role.OWNER and len(owners) == 1:
                raise InvalidRequest("A project needs an owner: make someone else owner first.", param="role")
            if role is None:
                await uow.people.remove_membership(user_id, project_id)
            else:
                await uow.people.put_membership(Membership(user_id, project_id, role, target.created_at))
            action = "member.removed" if role is None else "member.role_changed"
            await uow.people.add_audit(self._audit(who, action, project_id, target=user_id, detail=str(role)))

    # --- the audit trail ----------------------------------------------------------------------

    async def record(
        self,
        who: Identity,
        action: str,
        project_id: str | None = None,
        *,
        target: str | None = None,
        detail: str | None = None,
    ) -> None:
        async with self._store.write() as uow:
            await uow.people.add_audit(self._audit(who, action, project_id, target=target, detail=detail))

    async def record_by_key(
        self, key_id: str, action: str, project_id: str, *, target: str | None = None, detail: str | None = None
    ) -> None:
        """An entry for a change made through the API with a secret key: `user_id` is `key:<key id>`."""
        now = self._clock.now()
        entry = AuditEntry(
            new_id("aud", now), now, f"key:{key_id}", action, project_id, target, (detail or "")[:500] or None
        )
        async with self._store.write() as uow:
            await uow.people.add_audit(entry)

    async def audit(self, who: Identity, project_id: str | None, limit: int = 100) -> Sequence[AuditEntry]:
        if project_id is None and not who.user.is_admin:
            raise Forbidden("Only a platform admin can read the whole audit trail.")
        if project_id is not None and not who.can(project_id, Role.OWNER):
            raise Forbidden("Only an owner can read the project's audit trail.")
        async with self._store.read() as uow:
            return await uow.people.audit(project_id, limit)

    def _audit(
        self,
        who: Identity,
        action: str,
        project_id: str | None = None,
        *,
        target: str | None = None,
        detail: str | None = None,
    ) -> AuditEntry:
        now = self._clock.now()
        return AuditEntry(
            new_id("aud", now), now, who.user.id, action, project_id, target, (detail or "")[:500] or None
        )


def _used_link() -> InvalidRequest:
    return InvalidRequest("This link has expired or was used already.", code="link_invalid", param="token")


def _human(span: timedelta) -> str:
    hours = int(span.total_seconds() // 3600)
    return (
        f"{hours // 24} days"
        if hours >= 48
        else f"{hours} hours"
        if hours >= 2
        else f"{int(span.total_seconds() // 60)} minutes"
    )
