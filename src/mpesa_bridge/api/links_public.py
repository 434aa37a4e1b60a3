"""The public page of a payment link, `GET /l/{slug}`: no key, anyone with the URL.

Each visit opens a fresh checkout session for the link (`PaymentLinkService.open_session`) and
sends the browser to the session's hosted page (`303 See Other` to its `url`). A link that is
deactivated, expired or has taken its `max_payments` answers `410 Gone` with a short page that
says so politely; an unknown slug is `404`. Neither page names the merchant's project or data
beyond the link's own title.
"""

from __future__ import annotations

import html
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from mpesa_bridge.core.errors import NotFound
from mpesa_bridge.core.links.service import LinkUnavailable
from mpesa_bridge.runtime import Runtime

router = APIRouter(include_in_schema=False)

_NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}}</style>
</head><body><h1>{title}</h1><p>{message}</p></body></html>
"""
_SLUG_MAX = 32


def _page(status: int, title: str, message: str) -> HTMLResponse:
    body = _PAGE.format(title=html.escape(title), message=html.escape(message))
    return HTMLResponse(body, status_code=status, headers=_NO_STORE)


@router.get("/l/{slug}")
async def open_payment_link(request: Request, slug: str) -> Response:
    runtime: Runtime = request.app.state.runtime
    not_found = _page(
        404, "Payment link not found", "This payment link does not exist. Check the address you were given."
    )
    if len(slug) > _SLUG_MAX or not slug.isascii() or not slug.isalnum():
        return not_found
    try:
        link = await runtime.links.by_slug(slug)
    except NotFound:
        return not_found
    try:
        session = await runtime.links.open_session(link)
    except LinkUnavailable as exc:
        return _page(410, link.title, f"{exc.message} Sorry — please ask whoever shared it for a new one.")
    # The hosted page acts with the session's client secret (docs/checkout.md): this page made the
    # session, so it hands the secret on to the customer's browser, and to no one else.
    target = f"{session.url}?{urlencode({'client_secret': session.client_secret or ''})}"
    return RedirectResponse(target, status_code=303, headers=_NO_STORE)
