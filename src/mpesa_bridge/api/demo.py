"""/demo: make a test payment with a chosen magic outcome and watch it change live (sandbox only).

The page is the bridge's own HTML and script (no CDN). It talks to the public API like any
merchant page would: it creates the payment with a test secret key typed into the page (or
passed in the URL fragment, which never reaches a server) and follows it with the payment's
`client_secret` over SSE, falling back to polling.
"""

from __future__ import annotations

import html
from importlib.resources import files

from fastapi import APIRouter, FastAPI
from starlette.responses import HTMLResponse, Response

from mpesa_bridge.api.routing import add_routes
from mpesa_bridge.simulator import MAGIC_NUMBERS

router = APIRouter(include_in_schema=False)
_STATIC = files("mpesa_bridge.api") / "static"


def _options() -> str:
    rows = []
    for phone, scenario in MAGIC_NUMBERS.items():
        label = html.escape(f"{scenario.name.replace('_', ' ')} — {phone}")
        rows.append(f'<option value="{phone}">{label}</option>')
    return "\n".join(rows)


@router.get("/demo")
async def demo_page() -> HTMLResponse:
    page = (_STATIC / "demo.html").read_text(encoding="utf-8").replace("{{OPTIONS}}", _options())
    return HTMLResponse(page, headers={"Content-Security-Policy": "default-src 'self'; style-src 'self'"})


@router.get("/demo/demo.js")
async def demo_script() -> Response:
    return Response((_STATIC / "demo.js").read_bytes(), media_type="text/javascript")


@router.get("/demo/demo.css")
async def demo_style() -> Response:
    return Response((_STATIC / "demo.css").read_bytes(), media_type="text/css")


def install_demo(app: FastAPI) -> None:
    add_routes(app, router)
