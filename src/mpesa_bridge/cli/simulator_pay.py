"""`mpesa-bridge simulator pay`: a customer paying a till or paybill on a running simulator (C2B).

It POSTs to the simulator's own `/simulator/c2b/payments`, which calls the ValidationURL and the
ConfirmationURL registered for the short code, like Safaricom; then it prints the TransID and what
the merchant answered (docs/simulator.md, "Customer payments").
"""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import typer

from mpesa_bridge.cli import simulator_app

DEFAULT_SIMULATOR_URL = "http://127.0.0.1:8001"
PAYMENTS_PATH = "/simulator/c2b/payments"
# The simulator answers after the validation (~8 s at most) and the confirmation (10 s at most).
TIMEOUT = httpx.Timeout(60.0, connect=5.0)


@simulator_app.command("pay")
def pay(
    amount: Annotated[int, typer.Option(envvar="MPESA_BRIDGE_PAY_AMOUNT", help="whole shillings", min=1)],
    till: Annotated[
        str | None, typer.Option(envvar="MPESA_BRIDGE_PAY_TILL", help="pay this till (Buy Goods)", show_default=False)
    ] = None,
    paybill: Annotated[
        str | None,
        typer.Option(envvar="MPESA_BRIDGE_PAY_PAYBILL", help="pay this paybill (Pay Bill)", show_default=False),
    ] = None,
    account: Annotated[
        str, typer.Option(envvar="MPESA_BRIDGE_PAY_ACCOUNT", help="the account number typed (paybill: required)")
    ] = "",
    phone: Annotated[
        str, typer.Option(envvar="MPESA_BRIDGE_PAY_PHONE", help="the paying phone, 254…")
    ] = "254708374149",
    first_name: Annotated[
        str, typer.Option(envvar="MPESA_BRIDGE_PAY_FIRST_NAME", help="the payer's first name, as M-Pesa sends it")
    ] = "JOHN",
    simulator_url: Annotated[
        str,
        typer.Option(
            envvar="MPESA_BRIDGE_SIMULATOR_URL",
            help="the running simulator's base URL (mounted in a bridge: http://127.0.0.1:8000/simulator)",
        ),
    ] = DEFAULT_SIMULATOR_URL,
) -> None:
    """A customer pays a till or paybill on a running simulator: validation, then confirmation, to the
    URLs registered for it (C2B). Prints the TransID and what the merchant answered."""
    if (till is None) == (paybill is None):
        typer.echo("error: give exactly one of --till and --paybill", err=True)
        raise typer.Exit(2)
    order: dict[str, Any] = {
        "type": "till" if till is not None else "paybill",
        "short_code": till if till is not None else paybill,
        "amount": amount,
        "account": account,
        "phone": phone,
        "first_name": first_name,
    }
    url = payments_url(simulator_url)
    try:
        with httpx.Client(timeout=TIMEOUT, trust_env=False) as client:
            response = client.post(url, json=order)
    except httpx.HTTPError as exc:
        typer.echo(f"error: cannot reach the simulator at {simulator_url}: {type(exc).__name__}", err=True)
        raise typer.Exit(1) from exc
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if response.status_code != 201 or not isinstance(answer, dict):
        typer.echo(f"error: the simulator answered {response.status_code}: {response.text[:300]}", err=True)
        raise typer.Exit(1)
    for line in describe(answer):
        typer.echo(line)


def payments_url(simulator_url: str) -> str:
    """A simulator mounted in a bridge (its URL ends in /simulator) takes payments at
    /simulator/c2b/payments, a standalone one at its own /simulator/c2b/payments."""
    base = simulator_url.rstrip("/")
    if base.endswith("/simulator"):
        return base + "/c2b/payments"
    return base + PAYMENTS_PATH


def describe(payment: dict[str, Any]) -> list[str]:
    """The lines `pay` prints for the simulator's answer."""
    lines = [f"TransID {payment.get('TransID')}  status {payment.get('status')}"]
    validation = payment.get("validation") or {}
    outcome = validation.get("outcome")
    call = validation.get("call") or {}
    if outcome == "not_registered":
        lines.append("no C2B URLs registered for this short code: nothing was sent")
    elif outcome == "not_enabled":
        lines.append("validation: not enabled for this short code")
    elif call:
        lines.append(f"validation: {outcome} ({_answer(call)})")
    confirmation = payment.get("confirmation")
    if confirmation:
        lines.append(f"confirmation: {_answer(confirmation)}")
    elif outcome != "not_registered":
        lines.append("confirmation: not sent")
    return lines


def _answer(call: dict[str, Any]) -> str:
    if call.get("http_status") is None:
        return f"no answer: {call.get('error')}"
    return f"HTTP {call.get('http_status')} {_compact(call.get('answer'))}"


def _compact(value: Any) -> str:
    import json

    return json.dumps(value, separators=(",", ":"))[:300] if value is not None else "(not JSON)"
