"""/v1/admin: projects and their keys, for the operator (admin token from the environment)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from mpesa_bridge.api.deps import AdminDep, RuntimeDep
from mpesa_bridge.api.idempotency import idempotent
from mpesa_bridge.api.responses import JSONResponse
from mpesa_bridge.api.routing import ParsedBodyRoute
from mpesa_bridge.api.schemas import (
    BODY_REFUSED,
    RATE_LIMITED,
    DarajaSettings,
    DarajaSettingsPublic,
    ErrorResponse,
    KeyCreated,
    ProjectCreate,
    ProjectCreated,
    ProjectList,
    ProjectPublic,
)
from mpesa_bridge.api.v1.keys import KeyPublic, key_public
from mpesa_bridge.core.payments.public import iso
from mpesa_bridge.core.projects import (
    DarajaConfig,
    DarajaEnvironment,
    DarajaSettingsInput,
    Mode,
    Project,
    ShortcodeType,
)
from mpesa_bridge.runtime import Runtime, simulator_daraja

ADMIN_SCOPE = "admin"  # the operator's Idempotency-Keys, apart from every project's

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[AdminDep], route_class=ParsedBodyRoute)
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse},
    401: {"model": ErrorResponse},
    404: {
        "model": ErrorResponse,
        "description": "no such project or key (and every route while no admin token is set)",
    },
    429: RATE_LIMITED,
}
_WRITE_ERRORS = {**_ERRORS, **BODY_REFUSED}
_CREATE_ERRORS: dict[int | str, dict[str, Any]] = {
    **_WRITE_ERRORS,
    409: {"model": ErrorResponse, "description": "idempotency_key_in_use"},
    422: {"model": ErrorResponse, "description": "idempotency_key_reused"},
}


def to_input(given: DarajaSettings) -> DarajaSettingsInput:
    return DarajaSettingsInput(
        environment=DarajaEnvironment(given.environment),
        consumer_key=given.consumer_key,
        consumer_secret=given.consumer_secret,
        short_code=given.short_code,
        passkey=given.passkey,
        shortcode_type=ShortcodeType(given.shortcode_type),
        till_number=given.till_number,
        initiator_name=given.initiator_name,
        initiator_password=given.initiator_password,
    )


def project_public(project: Project, configs: dict[Mode, DarajaConfig]) -> dict[str, Any]:
    return {
        "id": project.id,
        "object": "project",
        "name": project.name,
        "created_at": iso(project.created_at),
        "require_signed_requests": project.require_signed_requests,
        "has_signing_secret": project.signing_secret_sealed is not None,
        "confirm_by_query": project.confirm_by_query,
        "daraja": {
            mode.value: {
                "environment": str(c.environment),
                "short_code": c.short_code,
                "shortcode_type": str(c.shortcode_type),
                "till_number": c.till_number,
                "updated_at": iso(c.updated_at),
                "initiator_name": c.initiator_name,
            }
            for mode, c in configs.items()
        },
    }


@router.post("/projects", status_code=201, response_model=ProjectCreated, responses=_CREATE_ERRORS)
async def create_project(
    request: Request,
    runtime: RuntimeDep,
    body: ProjectCreate,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Response:
    """Create a project with its test and live secret keys (shown once, in this response only).
    With an `Idempotency-Key`, a retry returns the same project instead of making a second one."""
    return await idempotent(request, runtime, ADMIN_SCOPE, lambda: _create_project(runtime, body))


async def _create_project(runtime: Runtime, body: ProjectCreate) -> Response:
    daraja: dict[Mode, DarajaSettingsInput] = {}
    if body.test is not None:
        daraja[Mode.TEST] = to_input(body.test)
    elif runtime.settings.resolved_simulator_url:
        daraja[Mode.TEST] = simulator_daraja(runtime.settings)
    if body.live is not None:
        daraja[Mode.LIVE] = to_input(body.live)
    project, keys = await runtime.projects.create_project(body.name, daraja)
    configs = await runtime.projects.daraja_configs(project.id)
    out = project_public(project, configs)
    out["secret_keys"] = {mode.value: issued.secret for mode, issued in keys.items()}
    return JSONResponse(out, status_code=201)


@router.get("/projects", response_model=ProjectList, responses=_ERRORS)
async def list_projects(runtime: RuntimeDep) -> JSONResponse:
    projects = await runtime.projects.list_projects()
    data = [project_public(p, await runtime.projects.daraja_configs(p.id)) for p in projects]
    return JSONResponse({"object": "list", "data": data})


@router.put("/projects/{project_id}/daraja/{mode}", response_model=DarajaSettingsPublic, responses=_WRITE_ERRORS)
async def put_daraja_settings(runtime: RuntimeDep, project_id: str, mode: Mode, body: DarajaSettings) -> JSONResponse:
    """Set one mode's Daraja settings. Credentials are sealed under the master key; never returned."""
    config = await runtime.projects.set_daraja(project_id, mode, to_input(body))
    return JSONResponse(project_public(Project(project_id, "", config.updated_at), {mode: config})["daraja"][mode])


@router.post("/projects/{project_id}/keys/{mode}", status_code=201, response_model=KeyCreated, responses=_CREATE_ERRORS)
async def create_key(
    request: Request,
    runtime: RuntimeDep,
    project_id: str,
    mode: Mode,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Response:
    """Issue another secret key for a mode (shown once); `/v1/keys/rotate` also retires the old one."""

    async def issue() -> Response:
        issued = await runtime.projects.issue_key(project_id, mode)
        out = {"object": "api_key", "id": issued.key.id, "mode": mode.value, "secret_key": issued.secret}
        return JSONResponse(out, status_code=201)

    return await idempotent(request, runtime, ADMIN_SCOPE, issue)


class ProjectUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Strict: a security switch is a JSON boolean, never "true", "no" or 1.
    require_signed_requests: bool | None = Field(None, strict=True, description="refuse unsigned secret-key requests")
    confirm_by_query: bool | None = Field(None, strict=True, description="declare success only after STK Query agrees")
    signing_secret: Literal["generate", "none"] | None = Field(
        None, description="generate: a dedicated signing secret (shown once); none: sign with the secret key"
    )


class ProjectUpdated(ProjectPublic):
    signing_secret: str | None = Field(None, description="shown once, when generated")


@router.patch("/projects/{project_id}", response_model=ProjectUpdated, responses=_WRITE_ERRORS)
async def update_project(runtime: RuntimeDep, project_id: str, body: ProjectUpdate) -> JSONResponse:
    """Security settings of a project: signed requests, its signing secret, confirm-by-query."""
    project, secret = await runtime.projects.update_security(
        project_id,
        require_signed_requests=body.require_signed_requests,
        confirm_by_query=body.confirm_by_query,
        signing_secret=body.signing_secret,
    )
    out = project_public(project, await runtime.projects.daraja_configs(project_id))
    out["signing_secret"] = secret
    return JSONResponse(out)


@router.post("/keys/{key_id}/revoke", response_model=KeyPublic, responses=_WRITE_ERRORS)
async def revoke_key(runtime: RuntimeDep, key_id: str) -> JSONResponse:
    """Revoke any key at once (in every instance within MPESA_BRIDGE_KEY_CACHE_TTL)."""
    return JSONResponse(key_public(await runtime.projects.revoke_key(key_id)))
