"""Project administration and the decrypted-account cache used on the payment path."""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from mpesa_bridge.core.browser import check_client_amount_max, check_origins
from mpesa_bridge.core.clock import Clock
from mpesa_bridge.core.crypto import SecretBox
from mpesa_bridge.core.errors import AuthenticationFailed, InvalidRequest, NotFound
from mpesa_bridge.core.ids import new_id
from mpesa_bridge.core.ports import UnitOfWorkFactory
from mpesa_bridge.core.projects import (
    ApiKey,
    DarajaAccount,
    DarajaConfig,
    DarajaEnvironment,
    DarajaSettingsInput,
    Mode,
    Project,
    PublishableKey,
    ShortcodeType,
    Tenant,
    display_key,
    generate_publishable_key,
    generate_secret_key,
    hash_secret_key,
    key_mode,
    missing_config,
    publishable_key_mode,
)
from mpesa_bridge.core.sealing import daraja_context, signing_context

INVALID_KEY_MESSAGE = "Invalid API key provided."
LAST_USED_EVERY = timedelta(seconds=60)  # last_used_at is recorded at most this often per key
KEY_CACHE_SIZE = 10_000  # remembered look-ups, found or not (a spray of random keys evicts the oldest)


@dataclass(frozen=True)
class Caller:
    """An authenticated request's key and tenant."""

    key: ApiKey
    tenant: Tenant
    project: Project


@dataclass(frozen=True)
class IssuedKey:
    """A secret key at the only moment it exists in clear."""

    key: ApiKey
    secret: str


MAX_PROJECT_NAME = 200


@dataclass(frozen=True)
class DarajaSummary:
    """What may be shown of a mode's Daraja settings: never a secret, only the consumer key's last 4."""

    mode: Mode
    environment: DarajaEnvironment
    short_code: str
    shortcode_type: ShortcodeType
    till_number: str | None
    consumer_key_end: str
    updated_at: datetime
    initiator_name: str | None = None  # the password is never shown back


def check_time_zone(name: str) -> str:
    """A zoneinfo name (`Africa/Nairobi`), or InvalidRequest: the dashboard buckets days in it."""
    name = name.strip()
    if not name or name not in available_timezones():
        raise InvalidRequest(
            "Choose a time zone by its name, such as Africa/Nairobi.", code="invalid_time_zone", param="time_zone"
        )
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidRequest(f"Unknown time zone: {name}", code="invalid_time_zone", param="time_zone") from exc
    return name


@dataclass(frozen=True)
class BrowserCaller:
    """A request made with a publishable key: the project mode it names, nothing more."""

    tenant: Tenant
    project: Project


_UNSET: object = object()


class ProjectService:
    """Creates projects, seals their Daraja settings, issues and verifies secret keys."""

    def __init__(
        self,
        db: UnitOfWorkFactory,
        box: SecretBox,
        clock: Clock,
        *,
        key_cache_ttl: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._box = box
        self._clock = clock
        self._accounts: dict[tuple[str, Mode], DarajaAccount] = {}
        # digest -> (key, its project, when it was read): a short TTL bounds how long another
        # instance's revocation takes to reach this one; this instance's own revocations evict at once.
        # Misses are remembered too (None, None), so that an unknown key, a revoked one and an
        # expired one cost the same: one look-up per TTL. Bounded, oldest first out.
        self._keys: dict[str, tuple[ApiKey | None, Project | None, float]] = {}
        self._key_cache_ttl = key_cache_ttl
        self._monotonic = monotonic
        # Publishable keys and a checkout session's project (its CORS origins), by the same TTL.
        self._browser: dict[str, tuple[object | None, float]] = {}

    async def create_project(
        self, name: str, daraja: dict[Mode, DarajaSettingsInput] | None = None
    ) -> tuple[Project, dict[Mode, IssuedKey]]:
        now = self._clock.now()
        project = Project(id=new_id("proj", now), name=name.strip() or "Untitled project", created_at=now)
        configs = [DarajaConfig.seal(project.id, m, s, self._box, now) for m, s in (daraja or {}).items()]
        issued = {mode: self._new_key(project.id, mode) for mode in Mode}
        async with self._db.write() as uow:
            await uow.projects.add(project)
            for config in configs:
                await uow.projects.put_daraja_config(config)
            for item in issued.values():
                await uow.projects.add_key(item.key)
            for mode in Mode:
                await uow.projects.put_publishable_key(
                    PublishableKey(project.id, mode, generate_publishable_key(mode), now)
                )
        return project, issued

    async def set_daraja(self, project_id: str, mode: Mode, given: DarajaSettingsInput) -> DarajaConfig:
        config = DarajaConfig.seal(project_id, mode, given, self._box, self._clock.now())
        async with self._db.write() as uow:
            if await uow.projects.get(project_id) is None:
                raise NotFound(f"No such project: '{project_id}'", param="project_id")
            if given.initiator_name is None:
                config.keep_initiator_of(await uow.projects.daraja_config(project_id, mode))
            await uow.projects.put_daraja_config(config)
        self._accounts.pop((project_id, mode), None)
        return config

    async def issue_key(self, project_id: str, mode: Mode) -> IssuedKey:
        issued = self._new_key(project_id, mode)
        async with self._db.write() as uow:
            if await uow.projects.get(project_id) is None:
                raise NotFound(f"No such project: '{project_id}'", param="project_id")
            await uow.projects.add_key(issued.key)
        return issued

    async def list_projects(self) -> Sequence[Project]:
        async with self._db.read() as uow:
            return await uow.projects.list()

    async def daraja_configs(self, project_id: str) -> dict[Mode, DarajaConfig]:
        async with self._db.read() as uow:
            out = {}
            for mode in Mode:
                config = await uow.projects.daraja_config(project_id, mode)
                if config is not None:
                    out[mode] = config
            return out

    async def authenticate(self, secret: str) -> Tenant:
        return (await self.authenticate_key(secret)).tenant

    async def authenticate_key(self, secret: str) -> Caller:
        """Resolve a secret key. Every failure — malformed, unknown, revoked, expired — looks the same.

        Keys are found by their SHA-256 (an index look-up on a digest, so the comparison cannot
        leak the key through timing), then compared again in constant time."""
        if key_mode(secret) is None:
            raise AuthenticationFailed(INVALID_KEY_MESSAGE)
        digest = hash_secret_key(secret)
        key, project = await self._key(digest)
        now = self._clock.now()
        if key is None or project is None or not hmac.compare_digest(key.key_hash, digest) or not key.usable_at(now):
            raise AuthenticationFailed(INVALID_KEY_MESSAGE)
        if key.last_used_at is None or now - key.last_used_at >= LAST_USED_EVERY:
            key.last_used_at = now
            async with self._db.write() as uow:
                await uow.projects.touch_key(key.id, now)
        return Caller(key=key, tenant=Tenant(project_id=key.project_id, mode=Mode(key.mode)), project=project)

    async def key_still_valid(self, secret: str, *, signed: bool) -> bool:
        """Whether a connection a key opened (an SSE stream, a socket) may stay open: the one rule.

        The key must still authenticate (not revoked, not expired) and, once its project requires
        signed requests, the connection must have been opened by a signed request (`signed`)."""
        try:
            caller = await self.authenticate_key(secret)
        except AuthenticationFailed:
            return False
        return signed or not caller.project.require_signed_requests

    async def _key(self, digest: str) -> tuple[ApiKey | None, Project | None]:
        """The key and its project, read in one statement whatever the outcome, so that found and
        not found take the same path (no timing difference between unknown and revoked keys)."""
        cached = self._keys.get(digest)
        if cached is not None and self._monotonic() - cached[2] < self._key_cache_ttl:
            return cached[0], cached[1]
        async with self._db.read() as uow:
            found = await uow.projects.key_with_project(digest)
        key, project = found if found is not None else (None, None)
        self._keys.pop(digest, None)  # re-inserted last: the dict's order is the eviction order
        self._keys[digest] = (key, project, self._monotonic())
        if len(self._keys) > KEY_CACHE_SIZE:
            del self._keys[next(iter(self._keys))]
        return key, project

    async def rotate_key(self, caller: Caller, grace_seconds: float) -> tuple[IssuedKey, ApiKey]:
        """Issue a new key for the caller's mode; the calling key keeps working for `grace_seconds`."""
        issued = self._new_key(caller.tenant.project_id, caller.tenant.mode)
        now = self._clock.now()
        async with self._db.write() as uow:
            old = await uow.projects.key(caller.key.id)
            if old is None or not old.usable_at(now):
                raise AuthenticationFailed(INVALID_KEY_MESSAGE)
            ends = now + timedelta(seconds=grace_seconds)
            old.expires_at = min(old.expires_at, ends) if old.expires_at else ends
            await uow.projects.save_key(old)
            await uow.projects.add_key(issued.key)
        self._forget_key(old.key_hash)
        return issued, old

    async def rotate_mode_keys(
        self, project_id: str, mode: Mode, grace_seconds: float
    ) -> tuple[IssuedKey, list[ApiKey]]:
        """Operator rotation: a new key for the mode; every key still usable stops after the grace period."""
        issued = self._new_key(project_id, mode)
        now = self._clock.now()
        ends = now + timedelta(seconds=grace_seconds)
        async with self._db.write() as uow:
            if await uow.projects.get(project_id) is None:
                raise NotFound(f"No such project: '{project_id}'", param="project_id")
            old = [k for k in await uow.projects.keys(project_id) if Mode(k.mode) is mode and k.usable_at(now)]
            for key in old:
                key.expires_at = min(key.expires_at, ends) if key.expires_at else ends
            await uow.projects.save_keys(old)
            await uow.projects.add_key(issued.key)
        for key in old:
            self._forget_key(key.key_hash)
        return issued, old

    async def revoke_key(self, key_id: str, project_id: str | None = None) -> ApiKey:
        """Stop a key at once (in this instance now; in others within the key cache TTL)."""
        async with self._db.write() as uow:
            key = await uow.projects.key(key_id)
            if key is None or (project_id is not None and key.project_id != project_id):
                raise NotFound(f"No such key: '{key_id}'", param="key_id")
            key.revoked_at = key.revoked_at or self._clock.now()
            await uow.projects.save_key(key)
        self._forget_key(key.key_hash)
        return key

    async def list_keys(self, project_id: str, mode: Mode | None = None) -> Sequence[ApiKey]:
        async with self._db.read() as uow:
            keys = await uow.projects.keys(project_id)
        return [k for k in keys if mode is None or Mode(k.mode) is mode]

    def _forget_key(self, digest: str) -> None:
        self._keys.pop(digest, None)

    async def update_security(
        self,
        project_id: str,
        *,
        require_signed_requests: bool | None = None,
        confirm_by_query: bool | None = None,
        signing_secret: str | None = None,
    ) -> tuple[Project, str | None]:
        """Change a project's request-signing and confirmation settings.

        `signing_secret="generate"` issues a dedicated signing secret (returned once); `"none"`
        goes back to signing with the secret key itself."""
        new_secret = None
        async with self._db.write() as uow:
            project = await uow.projects.get(project_id)
            if project is None:
                raise NotFound(f"No such project: '{project_id}'", param="project_id")
            if require_signed_requests is not None:
                project.require_signed_requests = require_signed_requests
            if confirm_by_query is not None:
                project.confirm_by_query = confirm_by_query
            if signing_secret == "generate":
                new_secret = "mbsig_" + secrets.token_urlsafe(32)
                project.signing_secret_sealed = self._box.seal(new_secret, context=signing_context(project_id))
            elif signing_secret == "none":
                project.signing_secret_sealed = None
            await uow.projects.save(project)
        self._forget_project(project_id)
        return project, new_secret

    async def account(self, tenant: Tenant) -> DarajaAccount:
        cached = self._accounts.get((tenant.project_id, tenant.mode))
        if cached is not None:
            return cached
        async with self._db.read() as uow:
            config = await uow.projects.daraja_config(tenant.project_id, tenant.mode)
        if config is None:
            raise missing_config(tenant.mode)
        account = config.open(self._box)
        self._accounts[(tenant.project_id, tenant.mode)] = account
        return account

    async def rename_project(self, project_id: str, name: str) -> Project:
        name = name.strip()
        if not name or len(name) > MAX_PROJECT_NAME:
            raise InvalidRequest(
                f"Give the project a name of 1 to {MAX_PROJECT_NAME} characters.", code="invalid_name", param="name"
            )
        return await self._change_project(project_id, name=name)

    async def set_time_zone(self, project_id: str, time_zone: str) -> Project:
        """The zone the dashboard shows the project's days and hours in (stored times stay UTC)."""
        return await self._change_project(project_id, time_zone=check_time_zone(time_zone))

    async def _change_project(self, project_id: str, **changes: object) -> Project:
        async with self._db.write() as uow:
            project = await uow.projects.get(project_id)
            if project is None:
                raise NotFound(f"No such project: '{project_id}'", param="project_id")
            for name, value in changes.items():
                setattr(project, name, value)
            await uow.projects.save(project)
        self._forget_project(project_id)
        return project

    async def daraja_summaries(self, project_id: str) -> dict[Mode, DarajaSummary]:
        """Each configured mode's settings as they may be shown back: no secret, the key's last 4."""
        out = {}
        for mode, config in (await self.daraja_configs(project_id)).items():
            key = self._box.open(config.consumer_key_sealed, context=daraja_context(project_id, mode.value))
            out[mode] = DarajaSummary(
                mode=mode,
                environment=DarajaEnvironment(config.environment),
                short_code=config.short_code,
                shortcode_type=ShortcodeType(config.shortcode_type),
                till_number=config.till_number,
                consumer_key_end=key[-4:],
                updated_at=config.updated_at,
                initiator_name=config.initiator_name,
            )
        return out

    # --- publishable keys and browser settings (core/browser.py) -------------------------------

    async def publishable_keys(self, project_id: str) -> dict[Mode, PublishableKey]:
        """The project's publishable key per mode. Every project has both (created with it, or by
        migration 0016); a mode found without one gets it here, so none is ever missing."""
        async with self._db.read() as uow:
            found = {Mode(k.mode): k for k in await uow.projects.publishable_keys(project_id)}
        if len(found) < len(Mode):
            now = self._clock.now()
            async with self._db.write() as uow:
                if await uow.projects.get(project_id) is None:
                    raise NotFound(f"No such project: '{project_id}'", param="project_id")
                for mode in Mode:
                    if mode not in found:
                        found[mode] = PublishableKey(project_id, mode, generate_publishable_key(mode), now)
                        await uow.projects.put_publishable_key(found[mode])
        return found

    async def rotate_publishable_key(self, project_id: str, mode: Mode) -> tuple[PublishableKey, PublishableKey]:
        """A new publishable key for the mode; the old one stops at once (it is no secret: rotating
        is for a key that is being abused, and pages must then carry the new one). (new, old)."""
        old = (await self.publishable_keys(project_id))[mode]
        new = PublishableKey(project_id, mode, generate_publishable_key(mode), self._clock.now())
        async with self._db.write() as uow:
            await uow.projects.put_publishable_key(new)
        self._browser.pop("pk:" + old.key, None)
        return new, old

    async def authenticate_publishable(self, key: str) -> BrowserCaller:
        """Resolve a publishable key (cached for the key cache's TTL); AuthenticationFailed otherwise."""
        message = "Invalid publishable key provided."
        if publishable_key_mode(key) is None:
            raise AuthenticationFailed(message, code="invalid_publishable_key")

        async def load() -> object | None:
            async with self._db.read() as uow:
                return await uow.projects.publishable_key_with_project(key)

        found = await self._browser_cached("pk:" + key, load)
        if not isinstance(found, tuple):
            raise AuthenticationFailed(message, code="invalid_publishable_key")
        stored, project = found
        return BrowserCaller(tenant=Tenant(project_id=project.id, mode=Mode(stored.mode)), project=project)

    async def project_of_session(self, session_id: str) -> Project | None:
        """The project of a checkout session, for the origins its browser routes answer (cached)."""

        async def load() -> object | None:
            async with self._db.read() as uow:
                return await uow.projects.project_of_checkout_session(session_id)

        found = await self._browser_cached("cs:" + session_id, load)
        return found if isinstance(found, Project) else None

    async def _browser_cached(self, name: str, load: Callable[[], Awaitable[object | None]]) -> object | None:
        cached = self._browser.get(name)
        if cached is not None and self._monotonic() - cached[1] < self._key_cache_ttl:
            return cached[0]
        value = await load()
        self._browser.pop(name, None)
        self._browser[name] = (value, self._monotonic())
        if len(self._browser) > KEY_CACHE_SIZE:
            del self._browser[next(iter(self._browser))]
        return value

    async def update_browser_settings(
        self,
        project_id: str,
        *,
        client_side_amounts: bool | None = None,
        client_side_amount_max: object = _UNSET,
        allowed_origins: object = _UNSET,
        highest_amount: int,
    ) -> Project:
        """Change what browsers may do for the project: validated, then saved in one write."""
        changes: dict[str, object] = {}
        if client_side_amounts is not None:
            changes["client_side_amounts"] = bool(client_side_amounts)
        if client_side_amount_max is not _UNSET:
            changes["client_side_amount_max"] = check_client_amount_max(client_side_amount_max, highest_amount)
        if allowed_origins is not _UNSET:
            changes["allowed_origins"] = check_origins(allowed_origins)
        return await self._change_project(project_id, **changes)

    def _forget_project(self, project_id: str) -> None:
        # Cached keys and sessions carry their project: drop this one's, so a change shows at once here.
        self._keys = {d: entry for d, entry in self._keys.items() if entry[1] is None or entry[1].id != project_id}
        self._browser = {n: entry for n, entry in self._browser.items() if _project_id(entry[0]) != project_id}

    def _new_key(self, project_id: str, mode: Mode) -> IssuedKey:
        secret = generate_secret_key(mode)
        now = self._clock.now()
        key = ApiKey(
            id=new_id("key", now),
            project_id=project_id,
            mode=mode,
            key_hash=hash_secret_key(secret),
            display=display_key(secret),
            created_at=now,
        )
        return IssuedKey(key=key, secret=secret)


def _project_id(cached: object | None) -> str | None:
    if isinstance(cached, Project):
        return cached.id
    if isinstance(cached, tuple) and len(cached) == 2 and isinstance(cached[1], Project):
        return cached[1].id
    return None
