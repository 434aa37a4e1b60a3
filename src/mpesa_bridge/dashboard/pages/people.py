"""A project's people (every member sees them; owners change them) and, for platform admins, every
account on the bridge.

GET  /dashboard/people                      members and their roles; owners: pending invitations
POST /dashboard/people/invite               email + role: a single-use link by email (owner)
POST /dashboard/people/{user_id}/role       role = owner | developer | viewer | remove (owner)
POST /dashboard/people/invites/{invite_id}/revoke   the link stops working (owner)
GET  /dashboard/admin/users                 every account (platform admin)
POST /dashboard/admin/users/{user_id}/disable   ends the person's sessions at once
POST /dashboard/admin/users/{user_id}/enable

The use cases record themselves in the audit trail (`PeopleService`): who invited, changed,
removed, disabled whom, and when.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mpesa_bridge.core.errors import InvalidRequest
from mpesa_bridge.core.people.entity import Role
from mpesa_bridge.core.people.service import Forbidden
from mpesa_bridge.dashboard.auth import Viewer, page, runtime_of
from mpesa_bridge.dashboard.pages.access import form_of
from mpesa_bridge.dashboard.web import render

router = APIRouter()
MemberDep = Annotated[Viewer, Depends(page(Role.VIEWER))]
OwnerDep = Annotated[Viewer, Depends(page(Role.OWNER))]
SignedInDep = Annotated[Viewer, Depends(page(None, project=False))]
PEOPLE = "/dashboard/people"
USERS = "/dashboard/admin/users"
NOTICES = {
    "invited": "The invitation was sent. The link works once, for seven days.",
    "role": "The role was changed.",
    "withdrawn": "The invitation was withdrawn: its link no longer works.",
    "removed": "The person was removed from the project.",
    "disabled": "The account was disabled and its sessions ended.",
    "enabled": "The account was enabled again.",
}


@router.get("/people")
async def people_page(request: Request, viewer: MemberDep) -> Response:
    return await _people(request, viewer, notice=NOTICES.get(request.query_params.get("done", "")))


async def _people(
    request: Request,
    viewer: Viewer,
    *,
    notice: str | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    runtime = runtime_of(request)
    project_id = viewer.tenant.project_id
    members = await runtime.people.members(viewer.identity, project_id)
    invites = await runtime.people.pending_invites(viewer.identity, project_id)
    context = {
        "members": sorted(members, key=lambda pair: (pair[1].email,)),
        "invites": invites,
        "roles": [r.value for r in Role],
        "is_owner": viewer.can(Role.OWNER),
        "notice": notice,
        "errors": errors or {},
        "values": {"email": "", "role": Role.VIEWER.value, **(values or {})},
        "smtp": runtime.settings.smtp_url is not None,
        "production": runtime.settings.production,
    }
    return render(request, "people.html", context, status=status)


@router.post("/people/invite")
async def invite(request: Request, viewer: OwnerDep) -> Response:
    form = await form_of(request)
    email, role = form.get("email", "").strip(), form.get("role", "")
    try:
        chosen = _role(role)
        await runtime_of(request).people.invite(viewer.identity, viewer.tenant.project_id, email, chosen)
    except InvalidRequest as exc:
        errors = {exc.param or "email": str(exc)}
        return await _people(request, viewer, errors=errors, values={"email": email, "role": role}, status=400)
    return RedirectResponse(f"{PEOPLE}?done=invited", status_code=303)


@router.post("/people/{user_id}/role")
async def change_role(request: Request, user_id: str, viewer: OwnerDep) -> Response:
    wanted = (await form_of(request)).get("role", "")
    role = None if wanted == "remove" else _role(wanted)
    try:
        await runtime_of(request).people.set_role(viewer.identity, viewer.tenant.project_id, user_id, role)
    except InvalidRequest as exc:
        return await _people(request, viewer, errors={f"role-{user_id}": str(exc)}, status=400)
    return RedirectResponse(f"{PEOPLE}?done={'removed' if role is None else 'role'}", status_code=303)


@router.post("/people/invites/{invite_id}/revoke")
async def revoke_invite(request: Request, invite_id: str, viewer: OwnerDep) -> Response:
    await runtime_of(request).people.revoke_invite(viewer.identity, viewer.tenant.project_id, invite_id)
    return RedirectResponse(f"{PEOPLE}?done=withdrawn", status_code=303)


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise InvalidRequest("Choose owner, developer or viewer.", param="role") from None


# --- every account (platform admins) -------------------------------------------------------------


def _admin(viewer: Viewer) -> Viewer:
    if not viewer.user.is_admin:
        raise Forbidden("Only a platform admin can see every account.")
    return viewer


@router.get("/admin/users")
async def users_page(request: Request, viewer: SignedInDep) -> Response:
    _admin(viewer)
    users = await runtime_of(request).people.users()
    context = {
        "users": sorted(users, key=lambda u: u.email),
        "notice": NOTICES.get(request.query_params.get("done", "")),
        "me": viewer.user.id,
    }
    return render(request, "people_users.html", context)


@router.post("/admin/users/{user_id}/disable")
async def disable(request: Request, user_id: str, viewer: SignedInDep) -> Response:
    await runtime_of(request).people.set_disabled(_admin(viewer).identity, user_id, True)
    return RedirectResponse(f"{USERS}?done=disabled", status_code=303)


@router.post("/admin/users/{user_id}/enable")
async def enable(request: Request, user_id: str, viewer: SignedInDep) -> Response:
    await runtime_of(request).people.set_disabled(_admin(viewer).identity, user_id, False)
    return RedirectResponse(f"{USERS}?done=enabled", status_code=303)
