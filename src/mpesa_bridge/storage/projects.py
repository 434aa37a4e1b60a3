"""The project aggregate's repository: projects, their Daraja settings per mode, their API keys and
publishable keys."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from mpesa_bridge.core.projects import ApiKey, DarajaConfig, Mode, Project, PublishableKey
from mpesa_bridge.storage import tables
from mpesa_bridge.storage.rows import EntityRows, Loaded

PROJECTS = EntityRows(tables.projects, Project)
CONFIGS = EntityRows(tables.daraja_configs, DarajaConfig, key=("project_id", "mode"))
KEYS = EntityRows(tables.api_keys, ApiKey)
PUBLISHABLE = EntityRows(tables.publishable_keys, PublishableKey, key=("project_id", "mode"))
_PROJECT_BY_ID = PROJECTS.select().where(tables.projects.c.id == sa.bindparam("id"))


class SqlProjectReader:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def _projects(self, stmt: sa.Select[Any], params: dict[str, Any] | None = None) -> list[Project]:
        return [PROJECTS.build(row) for row in await self._c.execute(stmt, params)]

    async def _keys(self, stmt: sa.Select[Any]) -> list[ApiKey]:
        return [KEYS.build(row) for row in await self._c.execute(stmt)]

    async def get(self, project_id: str) -> Project | None:
        found = await self._projects(_PROJECT_BY_ID, {"id": project_id})
        return found[0] if found else None

    async def list(self) -> Sequence[Project]:
        return await self._projects(PROJECTS.select().order_by(tables.projects.c.created_at))

    async def daraja_config(self, project_id: str, mode: Mode) -> DarajaConfig | None:
        c = tables.daraja_configs.c
        stmt = CONFIGS.select().where(c.project_id == project_id, c.mode == mode)
        row = (await self._c.execute(stmt)).first()
        return CONFIGS.build(row) if row is not None else None

    async def all_daraja_configs(self) -> Sequence[DarajaConfig]:
        return [CONFIGS.build(row) for row in await self._c.execute(CONFIGS.select())]

    async def key_with_project(self, key_hash: str) -> tuple[ApiKey, Project] | None:
        k = tables.api_keys.c
        stmt = (
            sa.select(*KEYS.columns, *PROJECTS.columns)
            .join_from(tables.api_keys, tables.projects, k.project_id == tables.projects.c.id)
            .where(k.key_hash == key_hash)
        )
        row = (await self._c.execute(stmt)).first()
        if row is None:
            return None
        width = len(KEYS.columns)
        return KEYS.build(row[:width]), PROJECTS.build(row[width:])

    async def key(self, key_id: str) -> ApiKey | None:
        found = await self._keys(KEYS.select().where(tables.api_keys.c.id == key_id))
        return found[0] if found else None

    async def keys(self, project_id: str) -> Sequence[ApiKey]:
        k = tables.api_keys.c
        return await self._keys(KEYS.select().where(k.project_id == project_id).order_by(k.created_at))

    async def publishable_keys(self, project_id: str) -> Sequence[PublishableKey]:
        stmt = PUBLISHABLE.select().where(tables.publishable_keys.c.project_id == project_id)
        return [PUBLISHABLE.build(row) for row in await self._c.execute(stmt)]

    async def publishable_key_with_project(self, key: str) -> tuple[PublishableKey, Project] | None:
        pk = tables.publishable_keys.c
        stmt = (
            sa.select(*PUBLISHABLE.columns, *PROJECTS.columns)
            .join_from(tables.publishable_keys, tables.projects, pk.project_id == tables.projects.c.id)
            .where(pk.key == key)
        )
        row = (await self._c.execute(stmt)).first()
        if row is None:
            return None
        width = len(PUBLISHABLE.columns)
        return PUBLISHABLE.build(row[:width]), PROJECTS.build(row[width:])

    async def project_of_checkout_session(self, session_id: str) -> Project | None:
        cs = tables.checkout_sessions.c
        stmt = (
            sa.select(*PROJECTS.columns)
            .join_from(tables.checkout_sessions, tables.projects, cs.project_id == tables.projects.c.id)
            .where(cs.id == session_id)
        )
        row = (await self._c.execute(stmt)).first()
        return PROJECTS.build(row) if row is not None else None


class SqlProjectRepository(SqlProjectReader):
    def __init__(self, conn: AsyncConnection) -> None:
        super().__init__(conn)
        self._loaded_projects = Loaded(PROJECTS)
        self._loaded_keys = Loaded(KEYS)

    async def _projects(self, stmt: sa.Select[Any], params: dict[str, Any] | None = None) -> list[Project]:
        return self._loaded_projects.build(await self._c.execute(stmt, params))

    async def _keys(self, stmt: sa.Select[Any]) -> list[ApiKey]:
        return self._loaded_keys.build(await self._c.execute(stmt))

    async def add(self, project: Project) -> None:
        await PROJECTS.insert(self._c, [project])
        self._loaded_projects.remember(project)

    async def save(self, project: Project) -> None:
        await self._loaded_projects.save(self._c, [project])

    async def put_daraja_config(self, config: DarajaConfig) -> None:
        """Insert or replace the settings of the config's project mode (one statement)."""
        t = tables.daraja_configs
        values = CONFIGS.values(config)
        insert = (postgresql.insert(t) if self._c.dialect.name == "postgresql" else sqlite.insert(t)).values(values)
        replaced = {name: insert.excluded[name] for name in CONFIGS.names if name not in CONFIGS.key}
        await self._c.execute(insert.on_conflict_do_update(index_elements=list(CONFIGS.key), set_=replaced))

    async def add_key(self, key: ApiKey) -> None:
        await KEYS.insert(self._c, [key])
        self._loaded_keys.remember(key)

    async def save_key(self, key: ApiKey) -> None:
        await self._loaded_keys.save(self._c, [key])

    async def save_keys(self, keys: Sequence[ApiKey]) -> None:
        await self._loaded_keys.save(self._c, keys)

    async def put_publishable_key(self, key: PublishableKey) -> None:
        """Insert or replace the publishable key of the key's project mode (one statement)."""
        t = tables.publishable_keys
        insert = (postgresql.insert(t) if self._c.dialect.name == "postgresql" else sqlite.insert(t)).values(
            PUBLISHABLE.values(key)
        )
        replaced = {name: insert.excluded[name] for name in PUBLISHABLE.names if name not in PUBLISHABLE.key}
        await self._c.execute(insert.on_conflict_do_update(index_elements=list(PUBLISHABLE.key), set_=replaced))

    async def touch_key(self, key_id: str, at: datetime) -> None:
        k = tables.api_keys.c
        await self._c.execute(sa.update(tables.api_keys).where(k.id == key_id).values(last_used_at=at))
