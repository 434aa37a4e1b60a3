"""Who is asking, and may they: the session cookie, the project being looked at, roles, CSRF.

Every page depends on `page(role)`: it finds the person behind the `mb_session` cookie
(`PeopleService.identify`: idle and absolute expiry, disabled accounts), the project and mode the
session looks at, refuses a role below `role`, and — for a POST — checks the CSRF token. Forms send
the token in a hidden `csrf_token` field, scripts in an `X-CSRF-Token` header; a signed-in session's
token is stored with the session, a signed-out form's (sign-in, reset, invitation) is the `mb_csrf`
cookie's. A cross-site `Origin` is refused as well, whatever the token.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from mpesa_bridge.core.errors import BridgeError
from mpesa_bridge.core.people.entity import Role, at_least
from mpesa_bridge.core.people.service import Forbidden, Identity
from mpesa_bridge.core.projects import Mode, Project, Tenant
from mpesa_bridge.runtime import Runtime

SESSION_COOKIE = "mb_session"
CSRF_COOKIE = "mb_csrf"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class NotSignedIn(BridgeError):
    code = "not_signed_in"


class NoProject(BridgeError):
    """Signed in, but belonging to no project yet: the page to create one (or wait for an invitation)."""

    code = "no_project"


class CsrfRefused(BridgeError):
    code = "csrf_refused"


@dataclass(frozen=True)
class Viewer:
    """The signed-in person and the project and mode they are looking at."""

    identity: Identity
    projects: Sequence[Project]  # every project they may open
    project: Project | None
    mode: Mode

    @property
    def user(self) -> Any:
        return self.identity.user

    @property
    def role(self) -> Role | None:
        return self.identity.role_in(self.project.id if self.project else None)

    def can(self, needed: Role | str) -> bool:
        role = self.role
        return role is not None and at_least(role, Role(needed))

    @property
    def tenant(self) -> Tenant:
        if self.project is None:
            raise NoProject("Create a project first.")
        return Tenant(self.project.id, self.mode)


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime_of()
    return runtime


def cookie_secure(request: Request) -> bool:
    return request.url.scheme == "https" or runtime_of(request).settings.resolved_public_base_url.startswith("https:")


async def current_viewer(request: Request) -> Viewer:
    cached: Viewer | None = getattr(request.state, "viewer", None)
    if cached is not None:
        return cached
    runtime = runtime_of(request)
    token = request.cookies.get(SESSION_COOKIE, "")
    identity = await runtime.people.identify(token) if token else None
    if identity is None:
        raise NotSignedIn("Sign in to continue.")
    everything = await runtime.projects.list_projects()
    projects = [p for p in everything if identity.role_in(p.id) is not None]
    wanted = identity.session.project_id
    project = next((p for p in projects if p.id == wanted), projects[0] if projects else None)
    viewer = Viewer(identity, projects, project, Mode(identity.session.mode))
    request.state.viewer = viewer
    request.state.csrf_token = identity.session.csrf_token
    return viewer


def page(role: Role | None = Role.VIEWER, *, project: bool = True) -> Callable[[Request], Awaitable[Viewer]]:
    """A page's dependency: signed in, `role` or above in the project looked at (`None`: any signed-in
    person, with or without a project), and a valid CSRF token on a POST."""

    async def dependency(request: Request) -> Viewer:
        viewer = await current_viewer(request)
        if request.method in UNSAFE:
            await check_csrf(request, viewer.identity.session.csrf_token)
        if role is not None or project:
            if viewer.project is None:
                raise NoProject("Create a project first.")
            if role is not None and not viewer.can(role):
                raise Forbidden("Your role in this project does not allow this page.")
        return viewer

    return dependency


def anonymous_csrf(request: Request) -> str:
    """The CSRF token of a signed-out form: the `mb_csrf` cookie's, or a new one set with the page."""
    token = request.cookies.get(CSRF_COOKIE, "")
    if len(token) < 32:
        token = secrets.token_urlsafe(32)
        request.state.set_csrf_cookie = token
    request.state.csrf_token = token
    return token


async def anonymous_form(request: Request) -> None:
    """A signed-out form's POST: its token must match its `mb_csrf` cookie."""
    await check_csrf(request, request.cookies.get(CSRF_COOKIE, ""))
    request.state.csrf_token = request.cookies.get(CSRF_COOKIE, "")


async def check_csrf(request: Request, expected: str) -> None:
    origin = request.headers.get("origin")
    if origin is not None and origin != "null" and origin not in _own_origins(request):
        raise CsrfRefused("This form was sent from another site.")
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise CsrfRefused("This form was sent from another site.")
    sent = request.headers.get("x-csrf-token")
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else None
    if not expected or not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise CsrfRefused("The form had expired or did not come from this dashboard. Reload the page and try again.")


def _own_origins(request: Request) -> set[str]:
    """The origins a form of ours is sent from: the address asked, and the public base URL (behind a
    proxy that ends TLS, the address asked is http while the browser's origin is https)."""
    base = runtime_of(request).settings.resolved_public_base_url.rstrip("/")
    scheme, _, rest = base.partition("://")
    return {f"{request.url.scheme}://{request.headers.get('host', '')}", f"{scheme}://{rest.split('/', 1)[0]}"}
