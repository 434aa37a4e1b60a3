"""Structured logs (structlog): dotted event names, a request id on every line, nothing secret.

Phone numbers (254…, +254… or 07…/01…) are masked wherever they appear in an event's values,
tracebacks included; API secret keys (sk_test_…, sk_live_…) are redacted wherever they appear;
keys, tokens, passwords and Daraja credentials are dropped by name before rendering.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from mpesa_bridge.core.phone import mask_phone

# 2547XXXXXXXX / 2541XXXXXXXX (also after + or 00), or the local 07XXXXXXXX / 01XXXXXXXX: masked as 254….
_MSISDN = re.compile(r"(?<![0-9])(?:(?:00)?254|0)([17][0-9]{8})(?![0-9])")
# Secret keys, payments' client secrets and webhook signing secrets, wherever they appear in text.
_API_KEY = re.compile(
    r"\b(?:sk_(?:test|live)_[A-Za-z0-9]+|pay_[A-Za-z0-9]+_secret_[A-Za-z0-9_\-]+|whsec_[A-Za-z0-9+/=]+)"
)
# Daraja's CheckoutRequestIDs end with the payer's nine subscriber digits (ws_CO_<time><ms><phone>).
_CHECKOUT = re.compile(r"\b(ws_CO_[0-9]*?)([0-9]{5})([0-9]{4})\b")
_SECRET_WORDS = (
    "secret",
    "password",
    "passkey",
    "token",
    "authorization",
    "api_key",
    "master_key",
    "consumer_key",
    "credential",
)


def _mask_match(match: re.Match[str]) -> str:
    return mask_phone("254" + match.group(1))


def _scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        value = _CHECKOUT.sub(lambda m: f"{m.group(1)}*****{m.group(3)}", value)
        return _API_KEY.sub("[redacted]", _MSISDN.sub(_mask_match, value))
    if isinstance(value, int) and not isinstance(value, bool) and _MSISDN.fullmatch(str(value)):
        return mask_phone(str(value))
    if isinstance(value, dict):
        return {k: ("[redacted]" if _is_secret(k) else _scrub_value(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub_value(v) for v in value]
    return value


def _is_secret(key: object) -> bool:
    lowered = str(key).lower()
    return any(word in lowered for word in _SECRET_WORDS)


def scrub(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        event[key] = "[redacted]" if _is_secret(key) else _scrub_value(event[key])
    return event


def configure_logging(level: str = "INFO", *, json: bool = False) -> None:
    # Never rich tracebacks: they print local variables, and locals hold keys and credentials.
    console = structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    renderer: Any = structlog.processors.JSONRenderer() if json else console
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,  # before scrub: a traceback may quote a phone number
            scrub,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping().get(level.upper(), 20)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str = "mpesa_bridge") -> Any:
    return structlog.get_logger(name)
