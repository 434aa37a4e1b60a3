"""Rendering: one Jinja2 environment, the page context every template gets, and the headers every
dashboard response carries (a strict Content-Security-Policy: only the bridge's own files)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse

from mpesa_bridge.core.payments.status import PaymentStatus
from mpesa_bridge.core.phone import mask_phone
from mpesa_bridge.dashboard import i18n

NAIROBI = ZoneInfo("Africa/Nairobi")
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def shillings(amount: int | None) -> str:
    return "—" if amount is None else f"KES {amount:,}"


def local_time(value: datetime | None, zone: str = "Africa/Nairobi", *, seconds: bool = False) -> str:
    if value is None:
        return "—"
    shown = value.astimezone(ZoneInfo(zone))
    return shown.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def iso(value: datetime | None) -> str:
    return "" if value is None else value.isoformat()


env = Environment(
    loader=PackageLoader("mpesa_bridge.dashboard", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
env.filters["kes"] = shillings
env.filters["local"] = local_time
env.filters["iso"] = iso
env.filters["masked"] = mask_phone
env.globals["Markup"] = Markup


def language_of(request: Request) -> str:
    return i18n.choose(request.cookies.get(i18n.COOKIE), request.headers.get("accept-language"))


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, *, status: int = 200
) -> HTMLResponse:
    """A page: `template` with the request's language, its signed-in person (`viewer`, or None) and
    the CSRF token that its forms must send back."""
    language = language_of(request)
    page: dict[str, Any] = {
        "request": request,
        "t": i18n.translator(language),
        "language": language,
        "languages": i18n.LANGUAGES,
        "viewer": getattr(request.state, "viewer", None),
        "csrf_token": getattr(request.state, "csrf_token", ""),
        "path": request.url.path,
        "zone": "Africa/Nairobi",
    }
    viewer = page["viewer"]
    if viewer is not None and viewer.project is not None:
        page["zone"] = viewer.project.time_zone
    page["status_labels"] = {s.value: page["t"](s.value) for s in PaymentStatus}
    page.update(context or {})
    body = env.get_template(template).render(page)
    response = HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)
    cookie = getattr(request.state, "set_csrf_cookie", None)
    if cookie:
        response.set_cookie(
            "mb_csrf", cookie, httponly=True, samesite="lax", secure=request.url.scheme == "https", path="/dashboard"
        )
    return response
