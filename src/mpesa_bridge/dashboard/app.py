"""The dashboard's ASGI app, mounted at /dashboard by `api/app.py`.

Pages are rendered on the server (Jinja2, `templates/`); the only scripts are ours (`static/`),
for live updates (EventSource), copy buttons and small conveniences — every page works without
them. Errors become pages: not signed in → the sign-in page (and back), a role too low → 403,
someone else's id → 404, a missing or wrong CSRF token → 403.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import files
from urllib.parse import quote

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from mpesa_bridge.core.errors import BridgeError, InvalidRequest, NotFound
from mpesa_bridge.core.people.service import Forbidden
from mpesa_bridge.dashboard.auth import CsrfRefused, NoProject, NotSignedIn
from mpesa_bridge.dashboard.pages import (
    access,
    analytics,
    attention,
    balances,
    c2b,
    links,
    overview,
    payment_detail,
    payments,
    payouts,
    people,
    projects,
    settings,
    webhooks,
)
from mpesa_bridge.dashboard.web import render
from mpesa_bridge.runtime import Runtime

PREFIX = "/dashboard"


def create_dashboard(runtime_of: Callable[[], Runtime]) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, redirect_slashes=False)
    app.state.runtime_of = runtime_of
    static = files("mpesa_bridge.dashboard") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    # payments before payment_detail: /payments/export.csv is not a payment id
    for module in (
        access,
        overview,
        projects,
        analytics,
        payments,
        payment_detail,
        settings,
        people,
        webhooks,
        attention,
        links,
        c2b,
        balances,
        payouts,
    ):
        app.include_router(module.router)
    _install_error_pages(app)
    return app


def _install_error_pages(app: FastAPI) -> None:
    @app.exception_handler(NotSignedIn)
    async def _sign_in_first(request: Request, exc: NotSignedIn) -> Response:
        if request.method != "GET" or request.headers.get("accept", "").startswith("text/event-stream"):
            return render(request, "error.html", {"title": "Signed out", "message": str(exc)}, status=401)
        wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{PREFIX}/signin?next={quote(wanted)}", status_code=303)

    @app.exception_handler(NoProject)
    async def _create_a_project(request: Request, exc: NoProject) -> Response:
        return RedirectResponse(f"{PREFIX}/projects/new", status_code=303)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        return render(request, "error.html", {"title": "Not allowed", "message": str(exc)}, status=403)

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, exc: CsrfRefused) -> Response:
        return render(request, "error.html", {"title": "Form refused", "message": str(exc)}, status=403)

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> Response:
        return render(request, "error.html", {"title": "Not found", "message": str(exc)}, status=404)

    @app.exception_handler(404)
    async def _no_page(request: Request, exc: Exception) -> Response:
        return render(request, "error.html", {"title": "Not found", "message": "There is no such page."}, status=404)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError) -> Response:
        return render(
            request,
            "error.html",
            {"title": "Bad request", "message": "Something in the address is not valid."},
            status=400,
        )

    @app.exception_handler(InvalidRequest)
    async def _invalid(request: Request, exc: InvalidRequest) -> Response:
        return render(request, "error.html", {"title": "Bad request", "message": str(exc)}, status=400)

    @app.exception_handler(BridgeError)
    async def _other(request: Request, exc: BridgeError) -> Response:
        return render(request, "error.html", {"title": "Could not do that", "message": str(exc)}, status=409)
