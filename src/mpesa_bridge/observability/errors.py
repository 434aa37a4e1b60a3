"""Optional error reporting to Sentry (or any server that speaks its envelope protocol).

Off unless MPESA_BRIDGE_SENTRY_DSN is set. What leaves the machine is scrubbed by `scrub_event`
(Sentry's `before_send`) and `scrub_breadcrumb`, with the rules of the logs (`logging.py`):

- phone numbers (254…, +254…, 07…/01…) masked as 2547****5678, wherever they appear;
- secret keys (sk_test_/sk_live_), publishable keys (pk_…), client secrets, webhook secrets
  (whsec_…) and bearer credentials redacted in every string;
- any value under a name that says secret, password, passkey, token, authorization, credential
  (SecurityCredential, consumer_secret, …) replaced by "[redacted]", and in free text the word
  after such a name ("passkey: …", "password=…");
- request bodies, cookies and query strings never sent (`max_request_body_size="never"`, and
  removed again here), local variables never collected, no tracing, and Sentry's own scrubber
  left on (personal data off, its default).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, cast

from mpesa_bridge import __version__
from mpesa_bridge.config import Settings
from mpesa_bridge.logging import _is_secret, _scrub_value, get_logger

if TYPE_CHECKING:
    from sentry_sdk.types import Event, Hint

log = get_logger("mpesa_bridge.errors")

# What the logs' rules do not cover: publishable keys and whatever follows "Bearer ".
_MORE_SECRETS = re.compile(r"\b(?:pk_(?:test|live)_[A-Za-z0-9]+|(?<=Bearer )[^\s\"']+)", re.IGNORECASE)
# A secret named in free text ("passkey: …", "password=…", "SecurityCredential …"): its value goes.
_NAMED_SECRET = re.compile(
    r"(?i)\b(pass(?:word|key)|[a-z_]*secret|securitycredential|credential)(\W{1,4})([^\s\"',;&}\]]+)"
)
_DROPPED_REQUEST_PARTS = ("data", "cookies", "query_string", "env")
REDACTED = "[redacted]"


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        value = _NAMED_SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", value)
        return _MORE_SECRETS.sub(REDACTED, _scrub_value(value))
    if isinstance(value, dict):
        return {k: (REDACTED if _is_secret(k) else _scrub(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return _scrub_value(value)  # numbers: a phone number given as an int


def scrub_event(event: Event, _hint: Hint | None = None) -> Event:
    """Sentry's `before_send`: the event with no phone number, secret or request body left in it."""
    request = event.get("request")
    if isinstance(request, dict):
        for part in _DROPPED_REQUEST_PARTS:
            request.pop(part, None)
    return cast("Event", _scrub(event))


def scrub_breadcrumb(crumb: dict[str, Any], _hint: Hint | None = None) -> dict[str, Any]:
    return cast("dict[str, Any]", _scrub(crumb))


def report_exception(exc: BaseException | None = None) -> None:
    """Send an error (default: the one being handled) to Sentry: a request's unexpected error
    (`api/middleware.py`), a worker's failed pass (`workers/loop.py`). A no-op unless configured."""
    if _configured:
        import sentry_sdk

        sentry_sdk.capture_exception(exc)


_configured = False


def configure_error_reporting(settings: Settings) -> bool:
    """Start Sentry's client when a DSN is set (once per process; a second call replaces it)."""
    if settings.sentry_dsn is None:
        return False
    import sentry_sdk  # only where it is used: most installations never report
    from sentry_sdk.integrations.fastapi import FastApiIntegration
    from sentry_sdk.integrations.starlette import StarletteIntegration

    global _configured
    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        environment=settings.sentry_environment or settings.env,
        release=settings.sentry_release or f"mpesa-bridge@{__version__}",
        sample_rate=settings.sentry_sample_rate,
        max_request_body_size="never",
        include_local_variables=False,  # locals hold keys, passkeys and phone numbers
        traces_sample_rate=None,  # errors only: no performance data leaves the machine
        auto_session_tracking=False,  # nor release-health sessions
        before_send=scrub_event,
        before_breadcrumb=scrub_breadcrumb,
        # Only what we chose: no library patched behind our back (HTTP clients, SQL, Redis).
        auto_enabling_integrations=False,
        integrations=[StarletteIntegration(), FastApiIntegration()],
    )
    _configured = True
    log.info("errors.reporting_enabled", environment=settings.sentry_environment or settings.env)
    return True
