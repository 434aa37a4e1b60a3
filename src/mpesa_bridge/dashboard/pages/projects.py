"""Projects: create one (its creator owns it), and switch the project or mode being looked at.

GET  /dashboard/projects/new      the form (also where a person with no project lands)
POST /dashboard/projects          create; shows its test and live secret keys once
POST /dashboard/projects/switch   project_id, mode
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mpesa_bridge.core.people.entity import Role
from mpesa_bridge.core.people.service import Forbidden
from mpesa_bridge.core.projects import DarajaSettingsInput, Mode
from mpesa_bridge.dashboard.auth import SESSION_COOKIE, Viewer, page, runtime_of
from mpesa_bridge.dashboard.pages.access import form_of, safe_next
from mpesa_bridge.dashboard.web import render
from mpesa_bridge.runtime import simulator_daraja

router = APIRouter()
SignedInDep = Annotated[Viewer, Depends(page(None, project=False))]
MAX_NAME = 200


def may_create(viewer: Viewer, signup: bool) -> bool:
    """Platform admins create projects; so do owners, and anyone when sign-up is open."""
    owns = any(viewer.identity.role_in(p.id) == Role.OWNER for p in viewer.projects)
    return viewer.user.is_admin or owns or signup


@router.get("/projects/new")
async def new_project_page(request: Request, viewer: SignedInDep) -> Response:
    allowed = may_create(viewer, runtime_of(request).people.policy.signup)
    return render(request, "project_new.html", {"allowed": allowed, "errors": {}, "name": ""})


@router.post("/projects")
async def create_project(request: Request, viewer: SignedInDep) -> Response:
    runtime = runtime_of(request)
    if not may_create(viewer, runtime.people.policy.signup):
        raise Forbidden("Ask a platform admin to create a project for you, or an owner to invite you to theirs.")
    form = await form_of(request)
    name = form.get("name", "").strip()
    if not name or len(name) > MAX_NAME:
        errors = {"name": f"Give the project a name of 1 to {MAX_NAME} characters."}
        return render(request, "project_new.html", {"allowed": True, "errors": errors, "name": name}, status=400)
    daraja: dict[Mode, DarajaSettingsInput] = {}
    if runtime.settings.resolved_simulator_url:
        daraja[Mode.TEST] = simulator_daraja(runtime.settings)
    project, keys = await runtime.projects.create_project(name, daraja)
    await runtime.people.add_member(project.id, viewer.user.id, Role.OWNER)
    await runtime.people.record(viewer.identity, "project.created", project.id, target=project.id, detail=name)
    identity = await runtime.people.identify(request.cookies.get(SESSION_COOKIE, ""))
    if identity is not None:  # now an owner of the new project: look at it
        await runtime.people.look_at(identity, project.id, "test")
    secrets = {mode.value: issued.secret for mode, issued in keys.items()}
    return render(request, "project_created.html", {"created": project, "secrets": secrets})


@router.post("/projects/switch")
async def switch(request: Request, viewer: SignedInDep) -> Response:
    form = await form_of(request)
    mode = form.get("mode", viewer.mode.value)
    project_id = form.get("project_id", viewer.project.id if viewer.project else "")
    await runtime_of(request).people.look_at(viewer.identity, project_id, mode)
    return RedirectResponse(safe_next(form.get("next")), status_code=303)
