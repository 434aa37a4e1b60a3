"""`Authorization: Bearer <credentials>`, read one way for every route and middleware."""

from __future__ import annotations

from starlette.types import Scope


def bearer_token(header: str | None) -> str | None:
    """The credentials of a Bearer `Authorization` header value, or None (absent, another scheme, empty)."""
    scheme, _, value = (header or "").partition(" ")
    value = value.strip()
    return value if scheme.lower() == "bearer" and value else None


def scope_bearer_token(scope: Scope) -> str | None:
    """`bearer_token` of a raw ASGI scope's first `Authorization` header (below routing)."""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"authorization":
            return bearer_token(value.decode("latin-1"))
    return None
