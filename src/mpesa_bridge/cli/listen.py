"""`mpesa-bridge listen` and `mpesa-bridge trigger`: local development without a tunnel.

`listen` streams a project's events from a bridge (SSE, `GET /v1/events/stream`) and POSTs each
one, signed the Standard Webhooks way, to a local URL — printing one line per delivery, like
`stripe listen`. `trigger` makes a test-mode payment that the simulator drives to an outcome.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
import typer
from standardwebhooks import Webhook

from mpesa_bridge.cli import app
from mpesa_bridge.cli.progress import progress_bar

# The simulator's magic numbers that end a payment in each state (see README).
OUTCOMES = {
    "payment.succeeded": "254708374149",
    "payment.failed": "254700000001",
    "payment.cancelled": "254700001032",
    "payment.expired": "254700001019",
}
FINAL = {"succeeded", "failed", "cancelled", "expired"}
DEFAULT_RETRY = 2.0  # seconds before reconnecting until the bridge says otherwise (retry:)

ApiUrl = Annotated[str, typer.Option(envvar="MPESA_BRIDGE_API_URL", help="the bridge's base URL")]
ApiKey = Annotated[str, typer.Option(envvar="MPESA_BRIDGE_API_KEY", help="a secret key (sk_test_… for trigger)")]


def new_signing_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


async def sse_events(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], on_connect: Callable[[], None] | None = None
) -> AsyncIterator[dict[str, str]]:
    """Parse a text/event-stream into messages ({"id", "event", "data", "retry"}, each field only when
    sent): comment-only blocks (heartbeats) are skipped, but an id-only message is yielded — it is
    the stream's resume point."""
    async with client.stream("GET", url, headers=headers, timeout=httpx.Timeout(10, read=None)) as response:
        if response.status_code != 200:
            body = (await response.aread()).decode(errors="replace")[:300]
            raise typer.BadParameter(f"the bridge answered {response.status_code}: {body}")
        if on_connect is not None:
            on_connect()
        message: dict[str, str] = {}
        async for line in response.aiter_lines():
            if not line:
                if message:
                    yield message
                message = {}
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            message[field] = message[field] + "\n" + value if field == "data" and field in message else value


class Resume:
    """What EventSource keeps across reconnects: the last event id (set by any message with an `id:`,
    an id-only one included) and the reconnect delay (`retry:`, milliseconds)."""

    def __init__(self, delay: float = DEFAULT_RETRY) -> None:
        self.last_id: str | None = None
        self.delay = delay

    def note(self, message: dict[str, str]) -> None:
        event_id = message.get("id")
        if event_id is not None and "\0" not in event_id:
            self.last_id = event_id
        retry = message.get("retry", "")
        if retry.isdigit():
            self.delay = int(retry) / 1000

    def headers(self, key: str) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {key}"}
        if self.last_id:
            headers["Last-Event-ID"] = self.last_id
        return headers


async def forward(
    http: httpx.AsyncClient, webhook: Webhook, target: str, message: dict[str, str]
) -> tuple[int | None, str]:
    body = message["data"]
    event = json.loads(body)
    stamp = datetime.now(UTC)
    headers = {
        "webhook-id": event["id"],
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": webhook.sign(event["id"], stamp, body),
        "content-type": "application/json",
    }
    try:
        response = await http.post(target, content=body.encode(), headers=headers, timeout=10)
    except httpx.HTTPError as exc:
        return None, type(exc).__name__
    return response.status_code, ""


async def listen_forever(api_url: str, key: str, target: str, secret: str, events: set[str] | None) -> None:
    webhook = Webhook(secret)
    resume = Resume()
    ready = False

    def announce() -> None:
        nonlocal ready
        if not ready:  # once connected, so that nothing made after "Ready!" is missed
            ready = True
            typer.echo(f"Ready! Your webhook signing secret is {secret}")
            typer.echo(f"Forwarding events from {api_url} to {target} (Ctrl-C to stop)")

    url = api_url.rstrip("/") + "/v1/events/stream"
    async with httpx.AsyncClient() as http:
        while True:
            try:
                async for message in sse_events(http, url, resume.headers(key), announce):
                    resume.note(message)
                    if "data" in message and (not events or message.get("event") in events):
                        await forward_one(http, webhook, target, message)
            except httpx.HTTPError as exc:
                typer.echo(f"connection lost ({type(exc).__name__}); reconnecting…", err=True)
                await asyncio.sleep(1)
                continue
            # The bridge ended the stream (its maximum age, or it is stopping): come back as told,
            # from the last id seen, so that nothing committed meanwhile is missed.
            typer.echo(f"stream ended by the bridge; reconnecting in {resume.delay:g}s", err=True)
            await asyncio.sleep(resume.delay)


async def forward_one(http: httpx.AsyncClient, webhook: Webhook, target: str, message: dict[str, str]) -> None:
    status, error = await forward(http, webhook, target, message)
    when = time.strftime("%Y-%m-%d %H:%M:%S")
    answer = f"[{status}]" if status is not None else f"[error: {error}]"
    typer.echo(f"{when}  --> {message.get('event')} [{message.get('id')}]  <-- {answer} POST {target}")


@app.command()
def listen(
    forward_to: Annotated[str, typer.Option(envvar="MPESA_BRIDGE_FORWARD_TO", help="local URL to POST each event to")],
    key: ApiKey,
    api_url: ApiUrl = "http://127.0.0.1:8000",
    secret: Annotated[
        str | None, typer.Option(envvar="MPESA_BRIDGE_LISTEN_SECRET", help="whsec_… to sign with (default: new)")
    ] = None,
    events: Annotated[
        str | None, typer.Option(envvar="MPESA_BRIDGE_LISTEN_EVENTS", help="comma-separated event types to forward")
    ] = None,
) -> None:
    """Forward a project's events to a local URL, signed like real webhooks (no tunnel needed)."""
    signing_secret = secret or new_signing_secret()
    wanted = {e.strip() for e in events.split(",")} if events else None
    try:
        asyncio.run(listen_forever(api_url, key, forward_to, signing_secret, wanted))
    except KeyboardInterrupt:  # pragma: no cover - interactive
        raise typer.Exit(0) from None


async def create_and_wait(
    api_url: str, key: str, phone: str, amount: int, wait: float, on_poll: Callable[[float], None] | None = None
) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=api_url, headers={"Authorization": f"Bearer {key}"}) as http:
        body = {"phone": phone, "amount": amount, "account_reference": "TRIGGER", "description": "Triggered"}
        response = await http.post("/v1/payments", json=body)
        if response.status_code != 201:
            raise typer.BadParameter(f"the bridge answered {response.status_code}: {response.text[:300]}")
        payment: dict[str, Any] = response.json()
        started = time.monotonic()
        deadline = started + wait
        while payment["status"] not in FINAL and time.monotonic() < deadline:
            await asyncio.sleep(0.25)
            payment = (await http.get(f"/v1/payments/{payment['id']}")).json()
            if on_poll is not None:
                on_poll(time.monotonic() - started)
        return payment


@app.command()
def trigger(
    event: Annotated[
        str, typer.Argument(help="payment.succeeded, payment.failed, payment.cancelled or payment.expired")
    ],
    key: ApiKey,
    api_url: ApiUrl = "http://127.0.0.1:8000",
    amount: Annotated[int, typer.Option(envvar="MPESA_BRIDGE_TRIGGER_AMOUNT", help="shillings")] = 10,
    wait: Annotated[
        float, typer.Option(envvar="MPESA_BRIDGE_TRIGGER_WAIT", help="seconds to wait for the outcome (0: don't)")
    ] = 30.0,
) -> None:
    """Make a test-mode payment that the simulator drives to EVENT."""
    if event not in OUTCOMES:
        raise typer.BadParameter(f"choose one of: {', '.join(OUTCOMES)}", param_hint="EVENT")
    if not key.startswith("sk_test_"):
        raise typer.BadParameter("trigger only works with a test key (sk_test_…)", param_hint="--key")
    if wait <= 0:
        payment = asyncio.run(create_and_wait(api_url, key, OUTCOMES[event], amount, wait))
    else:
        with progress_bar("waiting for the outcome", unit="s") as report:
            payment = asyncio.run(
                create_and_wait(
                    api_url, key, OUTCOMES[event], amount, wait, lambda elapsed: report(int(elapsed), int(wait))
                )
            )
    typer.echo(f"{payment['id']}  {payment['status']}")
