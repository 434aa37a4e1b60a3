"""Project administration and the decrypted-account cache used on the payment path."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mpesa_bridge.core.clock import Clock
from mpesa_bridge.core.crypto import SecretBox
from mpesa_bridge.core.errors import AuthenticationFailed, NotFound
from mpesa_bridge.core.ids import new_id
from mpesa_bridge.core.ports import UnitOfWorkFactory
from mpesa_bridge.core.projects import (
    ApiKey,
    DarajaAccount,
    DarajaConfig,
    DarajaSettingsInput,
    Mode,
    Project,
    Tenant,
    display_key,
    generate_secret_key,
    hash_secret_key,
    key_mode,
    missing_config,
)

INVALID_KEY_MESSAGE = "Invalid API key provided."


@dataclass(frozen=True)
class IssuedKey:
    """A secret key at the only moment it exists in clear."""

    key: ApiKey
    secret: str


class ProjectService:
    """Creates projects, seals their Daraja settings, issues and verifies secret keys."""

    def __init__(self, db: UnitOfWorkFactory, box: SecretBox, clock: Clock) -> None:
        self._db = db
        self._box = box
        self._clock = clock
        self._accounts: dict[tuple[str, Mode], DarajaAccount] = {}
        self._keys: dict[str, ApiKey] = {}

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
        return project, issued

    async def set_daraja(self, project_id: str, mode: Mode, given: DarajaSettingsInput) -> DarajaConfig:
        config = DarajaConfig.seal(project_id, mode, given, self._box, self._clock.now())
        async with self._db.write() as uow:
            if await uow.projects.get(project_id) is None:
                raise NotFound(f"No such project: '{project_id}'", param="project_id")
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
        """Resolve a secret key to its tenant. Every failure looks the same."""
        if key_mode(secret) is None:
            raise AuthenticationFailed(INVALID_KEY_MESSAGE)
        digest = hash_secret_key(secret)
        key = self._keys.get(digest)
        if key is None:
            async with self._db.read() as uow:
                key = await uow.projects.key_by_hash(digest)
            if key is None or key.revoked_at is not None:
                raise AuthenticationFailed(INVALID_KEY_MESSAGE)
            self._keys[digest] = key
        return Tenant(project_id=key.project_id, mode=Mode(key.mode))

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
