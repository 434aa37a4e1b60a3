"""What a project lets browsers do: its allowed origins and its client-side amounts.

- **Allowed origins** are exact origins — `https://shop.example`, `http://localhost:3000` — the
  value a browser puts in its `Origin` header: a scheme (http or https), a host, an optional port,
  nothing else (no path, query, user or wildcard). A default port is dropped (`https://x:443` is
  `https://x`) and scheme and host are lower-cased, as browsers send them. A project's list decides
  which pages may call the routes a client secret or a publishable key opens; an empty list falls
  back to the server-wide `MPESA_BRIDGE_REALTIME_CORS_ORIGINS` (`origin_allowed`).
- **Client-side amounts** (off by default): with them on, anyone who has the project's publishable
  key — every visitor of a page that carries it — can open a checkout session for an amount they
  choose, within the payment limits and the project's `client_side_amount_max`, and send the
  prompt to any phone. Only the rate limits per address and per phone bound that.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from mpesa_bridge.core.errors import InvalidRequest, PermissionDenied
from mpesa_bridge.core.projects import Project

MAX_ORIGINS = 20
MAX_ORIGIN_LENGTH = 200
_ORIGIN = re.compile(
    r"^(?P<scheme>https?)://(?P<host>\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*)"
    r"(?::(?P<port>[0-9]{1,5}))?$"
)
_DEFAULT_PORTS = {"http": 80, "https": 443}
ORIGIN_RULE = "an origin such as https://shop.example or http://localhost:3000 (scheme, host, optional port)"
CLIENT_SIDE_AMOUNTS_OFF = (
    "This project does not accept amounts chosen in the browser: its owner can turn on "
    "'client-side amounts' in the project settings (client_side_amounts)."
)


def check_origin(value: object) -> str:
    """One allowed origin, normalised as a browser sends it, or InvalidRequest (param `allowed_origins`)."""
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_ORIGIN_LENGTH:
        raise InvalidRequest(f"Each allowed origin is {ORIGIN_RULE}.", code="invalid_origin", param="allowed_origins")
    text = value.strip()
    if text.endswith("/") and text.count("/") == 3:  # "https://shop.example/": the bare root, as pasted
        text = text[:-1]
    match = _ORIGIN.fullmatch(text.lower())
    if match is None:
        raise InvalidRequest(
            f"{text[:100]!r} is not {ORIGIN_RULE}: no path, no wildcard.",
            code="invalid_origin",
            param="allowed_origins",
        )
    scheme, host, port = match["scheme"], match["host"], match["port"]
    if port is not None:
        number = int(port)
        if not 1 <= number <= 65535:
            raise InvalidRequest(f"{text[:100]!r} has no valid port.", code="invalid_origin", param="allowed_origins")
        if number != _DEFAULT_PORTS[scheme]:
            return f"{scheme}://{host}:{number}"
    return f"{scheme}://{host}"


def check_origins(values: object) -> list[str]:
    """A project's list of allowed origins: each checked, duplicates dropped, order kept."""
    if not isinstance(values, list | tuple):
        raise InvalidRequest(
            "allowed_origins is a list of origins such as ['https://shop.example'].",
            code="invalid_origin",
            param="allowed_origins",
        )
    out: list[str] = []
    for value in values:
        origin = check_origin(value)
        if origin not in out:
            out.append(origin)
    if len(out) > MAX_ORIGINS:
        raise InvalidRequest(
            f"At most {MAX_ORIGINS} allowed origins.", code="too_many_origins", param="allowed_origins"
        )
    return out


def parse_origin_lines(text: str) -> list[str]:
    """The dashboard's text box: one origin per line (commas and spaces also separate)."""
    return check_origins([part for part in re.split(r"[\s,]+", text) if part])


def origin_allowed(project_origins: Sequence[str], fallback: Iterable[str], origin: str) -> bool:
    """Whether a page at `origin` may call a route of a project with `project_origins`.

    A project's own list, when it has one, is the whole rule; an empty list falls back to the
    server-wide list (`*` there allows any origin)."""
    if project_origins:
        return origin in project_origins
    allowed = set(fallback)
    return "*" in allowed or origin in allowed


def check_client_amount_max(value: object, highest: int) -> int | None:
    """The most a browser-chosen amount may be (None: the payment limit `highest`)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= highest:
        raise InvalidRequest(
            f"client_side_amount_max is a whole number of shillings from 1 to {highest}, or null.",
            code="invalid_amount",
            param="client_side_amount_max",
        )
    return value


def check_client_side_amount(project: Project, amount: int) -> int:
    """A browser-chosen amount (already within the payment limits): refused unless the project
    turned client-side amounts on, and above the project's own maximum."""
    if not project.client_side_amounts:
        raise PermissionDenied(CLIENT_SIDE_AMOUNTS_OFF, code="client_side_amounts_disabled")
    ceiling = project.client_side_amount_max
    if ceiling is not None and amount > ceiling:
        raise InvalidRequest(
            f"amount must be at most {ceiling} shillings for this project.",
            code="amount_above_client_side_max",
            param="amount",
        )
    return amount
