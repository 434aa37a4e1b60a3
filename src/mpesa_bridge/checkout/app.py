"""The hosted payment page, included in the HTTP server by `api/app.py`.

    GET  /pay/{session_id}?client_secret=…   the page: a phone form, "check your phone", the outcome
    POST /pay/{session_id}                   the form: start the STK push, then 303 back to the page
    GET  /l/{slug}                           a payment link's page: the same form, no session yet
    POST /l/{slug}                           its form: open a checkout session, push, 303 to /pay/{id}
    GET  /pay/assets/{name}                  its own CSS and script (nothing external)
    GET  /v1/widget.js                       the widget merchants embed on their own site

The session's `url` carries no secret: the merchant's server sends the customer to
`url + "?client_secret=" + client_secret`, so the page can do what the client secret may do and
nothing else. The client secret is also the form's CSRF token: it comes back in the POST body, and a
page on another site cannot know it. Pages work without JavaScript (a status page that refreshes
itself); with it, `static/pay.js` follows the session's SSE and swaps the page in place.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, Protocol
from urllib.parse import urlencode

from fastapi import APIRouter
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from mpesa_bridge.checkout import words
from mpesa_bridge.core.checkout.entity import CheckoutSession, CheckoutStatus
from mpesa_bridge.core.checkout.validation import AmountRule, check_pay_amount
from mpesa_bridge.core.errors import AuthenticationFailed, BridgeError, NotFound, RateLimited
from mpesa_bridge.core.links.entity import PaymentLink
from mpesa_bridge.core.links.service import LinkUnavailable
from mpesa_bridge.core.payments.entity import Payment
from mpesa_bridge.core.phone import mask_phone, normalise_phone
from mpesa_bridge.routes import WIDGET_PATH
from mpesa_bridge.runtime import Runtime

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # The page's address holds the client secret: no Referer to the shop, nothing cached.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
ASSETS = {"pay.css": "text/css; charset=utf-8", "pay.js": "text/javascript; charset=utf-8"}
SCRIPT = "text/javascript; charset=utf-8"
FAILED = {"failed", "cancelled", "expired"}
REFRESH_SECONDS = 2
REDIRECT_SECONDS = 3
SLUG_MAX = 32  # longer than any slug the bridge draws: refused before a look-up

env = Environment(
    loader=PackageLoader("mpesa_bridge.checkout", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


class PhoneLimiter(Protocol):
    """The per-phone STK allowance of `POST /v1/checkout_sessions/{id}/pay` (the HTTP server's limiter)."""

    async def check_phone(self, project_id: str, mode: str, phone: str) -> None: ...
    async def hit_phone(self, project_id: str, mode: str, phone: str) -> object: ...
    # Sessions opened with a publishable key (client-side amounts) have a stricter allowance too.
    async def check_browser_phone(self, project_id: str, mode: str, phone: str) -> None: ...
    async def hit_browser_phone(self, project_id: str, mode: str, phone: str) -> object: ...


def checkout_router(limiter_of: Callable[[], PhoneLimiter]) -> APIRouter:
    """The hosted page's routes; `limiter_of` gives the running server's rate limiter."""
    router = APIRouter(include_in_schema=False)

    @router.get("/pay/assets/{name}")
    async def asset(name: str) -> Response:
        if name not in ASSETS:
            return page_response("missing.html", "en", {}, status=404)
        body = (files("mpesa_bridge.checkout") / "static" / name).read_bytes()
        return Response(body, media_type=ASSETS[name], headers={"Cache-Control": "public, max-age=300"})

    @router.get(WIDGET_PATH)
    async def widget() -> Response:
        """The widget merchants embed with a <script> tag on their own site (static/widget.js)."""
        body = (files("mpesa_bridge.checkout") / "static" / "widget.js").read_bytes()
        headers = {"Cache-Control": "public, max-age=300", "Cross-Origin-Resource-Policy": "cross-origin"}
        return Response(body, media_type=SCRIPT, headers=headers)

    @router.get("/pay/{session_id}")
    async def show(request: Request, session_id: str) -> Response:
        language = language_of(request, request.query_params.get("lang"))
        session = await _session(request, session_id, request.query_params.get("client_secret"))
        if session is None:
            return page_response("missing.html", language, {}, status=404)
        runtime = runtime_of(request)
        now, payment = await runtime.checkout.with_latest_payment(session)
        context = page_context(runtime, now, payment, request.query_params["client_secret"], language)
        context["receipt"] = await _receipt(runtime, now, payment)
        return page_response("pay.html", language, context)

    @router.post("/pay/{session_id}")
    async def pay(request: Request, session_id: str) -> Response:
        form = await request.form()
        secret, phone, amount = (_field(form.get(name)) for name in ("client_secret", "phone", "amount"))
        language = language_of(request, _field(form.get("lang")))
        session = await _session(request, session_id, secret)
        if session is None or secret is None:
            return page_response("missing.html", language, {}, status=404)
        return await _push_then_page(runtime_of(request), limiter_of(), session, secret, phone, amount, language)

    @router.get("/l/{slug}")
    async def link_page(request: Request, slug: str) -> Response:
        """A payment link's page: the form, and nothing written (robots that preview links open no session)."""
        language = language_of(request, request.query_params.get("lang"))
        found = await _usable_link(request, slug, language)
        if isinstance(found, Response):
            return found
        return page_response("pay.html", language, link_context(found, language))

    @router.post("/l/{slug}")
    async def pay_link(request: Request, slug: str) -> Response:
        """The link's form: checked, then a checkout session is opened and pushed for, then 303 to its page."""
        form = await request.form()
        phone, amount = (_field(form.get(name)) for name in ("phone", "amount"))
        language = language_of(request, _field(form.get("lang")))
        found = await _usable_link(request, slug, language)
        if isinstance(found, Response):
            return found
        link, runtime = found, runtime_of(request)
        try:  # nothing is opened for a form that could not be paid
            normalise_phone(phone or "")
            check_pay_amount(link, _chosen(amount) if link.amount is None else None)
        except BridgeError as refused:
            context = link_context(link, language)
            context.update(error=refusal_words(refused, link, language), phone=phone or "", amount_entered=amount or "")
            return page_response("pay.html", language, context, status=400)
        try:
            session = await runtime.links.open_session(link)
        except LinkUnavailable as gone:
            return _gone(link, gone, language)
        secret = session.client_secret or ""
        return await _push_then_page(runtime, limiter_of(), session, secret, phone, amount, language)

    return router


async def _push_then_page(
    runtime: Runtime,
    limiter: PhoneLimiter,
    session: CheckoutSession,
    secret: str,
    phone: str | None,
    amount: str | None,
    language: str,
) -> Response:
    """Start the session's push and 303 to its page; a refusal (a prompt already open on the phone,
    a limit) is the session's page again with the reason beside the form."""
    try:
        await _start_push(runtime, limiter, session, phone or "", amount)
    except BridgeError as refused:
        now, payment = await runtime.checkout.with_latest_payment(session)
        context = page_context(runtime, now, payment, secret, language)
        context["receipt"] = await _receipt(runtime, now, payment)
        context.update(error=refusal_words(refused, session, language), phone=phone or "", amount_entered=amount or "")
        return page_response("pay.html", language, context, status=400 if refused.code != "rate_limited" else 429)
    return RedirectResponse(page_url(session.id, secret, language), status_code=303)


def _chosen(amount: str | None) -> object:
    """A form's amount: digits as an int, anything else as typed (the amount rule refuses it)."""
    return int(amount) if amount and amount.strip().isdigit() else amount


async def _usable_link(request: Request, slug: str, language: str) -> PaymentLink | Response:
    """The link `slug` names if it takes payments now; else its page: 404 (unknown) or 410 (why not)."""
    if len(slug) > SLUG_MAX or not slug.isascii() or not slug.isalnum():
        return page_response("missing.html", language, {}, status=404)
    runtime = runtime_of(request)
    try:
        link = await runtime.links.by_slug(slug)
        await runtime.links.ensure_open(link)
    except NotFound:
        return page_response("missing.html", language, {}, status=404)
    except LinkUnavailable as gone:
        return _gone(link, gone, language)
    return link


def _gone(link: PaymentLink, why: LinkUnavailable, language: str) -> HTMLResponse:
    return page_response("gone.html", language, {"title": link.title, "reason": why.message}, status=410)


@dataclass(frozen=True)
class LinkView:
    """A payment link as the page's form shows it, before any checkout session exists."""

    id: str
    description: str
    reference: str
    amount: int | None
    amount_min: int | None
    amount_max: int | None
    success_url: None = None
    cancel_url: None = None


def link_context(link: PaymentLink, language: str) -> dict[str, Any]:
    view = LinkView(
        id="",
        description=f"{link.title} — {link.description}" if link.description else link.title,
        reference=link.slug,
        amount=link.amount,
        amount_min=link.amount_min,
        amount_max=link.amount_max,
    )
    here = f"/l/{link.slug}"
    return {
        "session": view,
        "state": "form",
        "payment": None,
        "masked_phone": "",
        "amount": link.amount,
        "failure": None,
        "secret": "",
        "form_action": here,
        "self_url": f"{here}?" + urlencode({"lang": language}),
        "other_languages": {
            code: f"{here}?" + urlencode({"lang": code}) for code in words.LANGUAGES if code != language
        },
        "refresh_seconds": REFRESH_SECONDS,
        "redirect_seconds": REDIRECT_SECONDS,
        "error": None,
        "phone": "",
        "amount_entered": "",
    }


async def _start_push(
    runtime: Runtime, limiter: PhoneLimiter, session: CheckoutSession, phone: str, amount: str | None
) -> None:
    msisdn = normalise_phone(phone)
    chosen = _chosen(amount) if session.customer_chooses_amount else None
    await limiter.check_phone(session.project_id, session.mode, msisdn)
    if session.client_side:
        await limiter.check_browser_phone(session.project_id, session.mode, msisdn)
    await runtime.checkout.pay(session, phone=msisdn, amount=chosen)
    with contextlib.suppress(RateLimited):  # counted once a push was attempted, as the API does
        await limiter.hit_phone(session.project_id, session.mode, msisdn)
    if session.client_side:
        with contextlib.suppress(RateLimited):
            await limiter.hit_browser_phone(session.project_id, session.mode, msisdn)


async def _session(request: Request, session_id: str, secret: str | None) -> CheckoutSession | None:
    """The session this client secret opens, if it is `session_id`'s; None for anything else."""
    if not secret:
        return None
    try:
        session = await runtime_of(request).checkout.authenticate_client_secret(secret)
    except (AuthenticationFailed, NotFound):
        return None
    return session if session.id == session_id else None


def refusal_words(refused: BridgeError, session: AmountRule, language: str) -> str:
    """A refused form in the customer's words (and language) where we have them, else the bridge's message."""
    known = words.REFUSALS.get(refused.code)
    if known is None:
        return str(refused)
    low, high = (f"{n:,}" if n is not None else "" for n in (session.amount_min, session.amount_max))
    return words.translator(language)(known, low=low, high=high)


def _field(value: object) -> str | None:
    return value if isinstance(value, str) else None


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def language_of(request: Request, asked: str | None) -> str:
    return words.choose(asked, request.headers.get("accept-language"))


def page_url(session_id: str, secret: str, language: str) -> str:
    return f"/pay/{session_id}?" + urlencode({"client_secret": secret, "lang": language})


async def _receipt(runtime: Runtime, session: CheckoutSession, payment: Payment | None) -> str:
    """The M-Pesa receipt a paid page shows: the succeeded STK payment's, or the TransID of the C2B
    payment (paybill or till) that completed the session."""
    if session.status is not CheckoutStatus.COMPLETE:
        return ""
    if session.paid_c2b_payment_id is not None:
        return await runtime.checkout.c2b_receipt(session) or ""
    return (payment.mpesa_receipt_number or "") if payment is not None else ""


def state_of(session: CheckoutSession, payment: Payment | None, runtime: Runtime) -> str:
    if session.status is CheckoutStatus.COMPLETE:
        return "paid"
    if session.active_payment_id is not None:
        return "waiting"
    if session.status is CheckoutStatus.EXPIRED or session.expires_at <= runtime.clock.now():
        return "expired"
    return "form"


def page_context(
    runtime: Runtime, session: CheckoutSession, payment: Payment | None, secret: str, language: str
) -> dict[str, Any]:
    state = state_of(session, payment, runtime)
    failure = None
    if state == "form" and payment is not None and str(payment.status) in FAILED:
        failure = words.failure_words(str(payment.status), payment.failure_code)
    amount = session.amount if session.amount is not None else (payment.amount if payment is not None else None)
    return {
        "session": session,
        "state": state,
        "payment": payment,
        "masked_phone": mask_phone(payment.phone) if payment is not None else "",
        "amount": amount,
        "failure": failure,
        "secret": secret,
        "form_action": f"/pay/{session.id}",
        "self_url": page_url(session.id, secret, language),
        "other_languages": {code: page_url(session.id, secret, code) for code in words.LANGUAGES if code != language},
        "refresh_seconds": REFRESH_SECONDS,
        "redirect_seconds": REDIRECT_SECONDS,
        "error": None,
        "phone": "",
        "amount_entered": "",
    }


def page_response(template: str, language: str, context: dict[str, Any], *, status: int = 200) -> HTMLResponse:
    page = {"t": words.translator(language), "language": language, "languages": words.LANGUAGES, **context}
    body = env.get_template(template).render(page)
    return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)
