"""Signing in and out, password resets, invitations, sign-up, and the person's own account page.

GET/POST /dashboard/signin              email + password; backoff and lockout after failures
POST     /dashboard/signout             this browser
GET/POST /dashboard/forgot              emails a reset link (says the same whether the account exists)
GET/POST /dashboard/reset/{token}       choose a new password (the link works once, for an hour)
GET/POST /dashboard/invite/{token}      join a project (new people choose a password)
GET/POST /dashboard/signup              only when MPESA_BRIDGE_DASHBOARD_SIGNUP=true
GET      /dashboard/account             the person's account
POST     /dashboard/account/password    change the password (other sessions end)
POST     /dashboard/account/signout-everywhere
GET      /dashboard/language?set=sw     English or Swahili (a cookie)
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mpesa_bridge.core.errors import BridgeError, InvalidRequest
from mpesa_bridge.core.people.service import LockedOut, SignedIn, SignInFailed
from mpesa_bridge.dashboard import i18n
from mpesa_bridge.dashboard.auth import (
    SESSION_COOKIE,
    Viewer,
    anonymous_csrf,
    anonymous_form,
    cookie_secure,
    current_viewer,
    page,
    runtime_of,
)
from mpesa_bridge.dashboard.web import render

router = APIRouter()
HOME = "/dashboard/"
SignedInDep = Annotated[Viewer, Depends(page(None, project=False))]


def safe_next(target: str | None) -> str:
    """Only a dashboard path of this site: never another site (`//evil`, `https://…`, `/\\evil`)."""
    if not target or not target.startswith("/dashboard") or target.startswith("//") or "\\" in target:
        return HOME
    return target


async def form_of(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def start_session(request: Request, signed: SignedIn, target: str) -> Response:
    response = RedirectResponse(target, status_code=303)
    max_age = int(runtime_of(request).people.policy.absolute.total_seconds())
    response.set_cookie(
        SESSION_COOKIE,
        signed.token,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=cookie_secure(request),
        path="/dashboard",
    )
    return response


def end_session(target: str) -> Response:
    response = RedirectResponse(target, status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/dashboard")
    return response


def _client(request: Request) -> tuple[str | None, str | None]:
    return (request.client.host if request.client else None), request.headers.get("user-agent")


@router.get("/signin")
async def signin_page(request: Request, next: str | None = None) -> Response:
    try:
        await current_viewer(request)
        return RedirectResponse(safe_next(next), status_code=303)
    except BridgeError:
        pass
    anonymous_csrf(request)
    runtime = runtime_of(request)
    return render(
        request, "signin.html", {"next": safe_next(next), "email": "", "signup": runtime.people.policy.signup}
    )


@router.post("/signin", dependencies=[Depends(anonymous_form)])
async def signin(request: Request) -> Response:
    form = await form_of(request)
    runtime = runtime_of(request)
    target = safe_next(form.get("next"))
    ip, agent = _client(request)
    context: dict[str, Any] = {"next": target, "email": form.get("email", ""), "signup": runtime.people.policy.signup}
    try:
        signed = await runtime.people.sign_in(form.get("email", ""), form.get("password", ""), ip=ip, user_agent=agent)
    except LockedOut as exc:
        response = render(request, "signin.html", {**context, "error": str(exc)}, status=429)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except SignInFailed as exc:
        return render(request, "signin.html", {**context, "error": str(exc)}, status=400)
    # Whatever session the browser brought is ended: the new one has a new token (no fixation).
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        await runtime.people.sign_out(old)
    return start_session(request, signed, target)


@router.post("/signout")
async def signout(request: Request, viewer: SignedInDep) -> Response:
    await runtime_of(request).people.sign_out(request.cookies.get(SESSION_COOKIE, ""))
    return end_session("/dashboard/signin")


@router.get("/forgot")
async def forgot_page(request: Request) -> Response:
    anonymous_csrf(request)
    return render(request, "forgot.html", {"sent": False, "email": ""})


@router.post("/forgot", dependencies=[Depends(anonymous_form)])
async def forgot(request: Request) -> Response:
    form = await form_of(request)
    await runtime_of(request).people.request_reset(form.get("email", ""))
    return render(request, "forgot.html", {"sent": True, "email": form.get("email", "")})


@router.get("/reset/{token}")
async def reset_page(request: Request, token: str) -> Response:
    anonymous_csrf(request)
    return render(request, "reset.html", {"token": token, "errors": {}})


@router.post("/reset/{token}", dependencies=[Depends(anonymous_form)])
async def reset(request: Request, token: str) -> Response:
    form = await form_of(request)
    try:
        await runtime_of(request).people.reset_password(token, form.get("password", ""))
    except InvalidRequest as exc:
        return render(
            request, "reset.html", {"token": token, "errors": {exc.param or "password": str(exc)}}, status=400
        )
    return render(request, "message.html", {"title": "Password changed", "message": "Sign in with your new password."})


@router.get("/invite/{token}")
async def invite_page(request: Request, token: str) -> Response:
    anonymous_csrf(request)
    invite, exists = await runtime_of(request).people.invitation(token)
    return render(request, "invite.html", {"token": token, "invite": invite, "exists": exists, "errors": {}})


@router.post("/invite/{token}", dependencies=[Depends(anonymous_form)])
async def accept_invite(request: Request, token: str) -> Response:
    form = await form_of(request)
    people = runtime_of(request).people
    invite, exists = await people.invitation(token)
    try:
        user = await people.accept_invite(token, password=form.get("password", ""), name=form.get("name", ""))
    except InvalidRequest as exc:
        context = {"token": token, "invite": invite, "exists": exists, "errors": {exc.param or "password": str(exc)}}
        return render(request, "invite.html", context, status=400)
    ip, agent = _client(request)
    signed = await people.sign_in(user.email, form.get("password", ""), ip=ip, user_agent=agent)
    if invite.project_id:
        await people.look_at(signed.identity, invite.project_id, "test")
    return start_session(request, signed, HOME)


@router.get("/signup")
async def signup_page(request: Request) -> Response:
    if not runtime_of(request).people.policy.signup:
        return render(
            request,
            "message.html",
            {"title": "Sign-up is closed", "message": "Ask an owner for an invitation."},
            status=404,
        )
    anonymous_csrf(request)
    return render(request, "signup.html", {"errors": {}, "email": "", "name": ""})


@router.post("/signup", dependencies=[Depends(anonymous_form)])
async def signup(request: Request) -> Response:
    form = await form_of(request)
    people = runtime_of(request).people
    try:
        user = await people.signup(form.get("email", ""), form.get("password", ""), form.get("name", ""))
    except BridgeError as exc:
        context = {
            "errors": {exc.param or "email": str(exc)},
            "email": form.get("email", ""),
            "name": form.get("name", ""),
        }
        return render(request, "signup.html", context, status=400)
    ip, agent = _client(request)
    signed = await people.sign_in(user.email, form.get("password", ""), ip=ip, user_agent=agent)
    return start_session(request, signed, "/dashboard/projects/new")


@router.get("/account")
async def account_page(request: Request, viewer: SignedInDep) -> Response:
    return render(request, "account.html", {"errors": {}, "changed": False})


@router.post("/account/password")
async def change_password(request: Request, viewer: SignedInDep) -> Response:
    form = await form_of(request)
    try:
        await runtime_of(request).people.change_password(
            viewer.identity, form.get("current", ""), form.get("password", "")
        )
    except InvalidRequest as exc:
        return render(
            request, "account.html", {"errors": {exc.param or "password": str(exc)}, "changed": False}, status=400
        )
    return render(request, "account.html", {"errors": {}, "changed": True})


@router.post("/account/signout-everywhere")
async def signout_everywhere(request: Request, viewer: SignedInDep) -> Response:
    await runtime_of(request).people.sign_out_everywhere(viewer.identity)
    return end_session("/dashboard/signin")


@router.get("/language")
async def language(request: Request, set: str = "en", next: str | None = None) -> Response:
    response = RedirectResponse(safe_next(next), status_code=303)
    if set in i18n.LANGUAGES:
        response.set_cookie(i18n.COOKIE, set, max_age=365 * 86400, samesite="lax", path="/dashboard")
    return response
