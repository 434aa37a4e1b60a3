"""The associated data each sealed secret is bound to, defined once for who seals and who re-seals.

A value sealed under one context does not open under another, so a ciphertext copied onto another
row (another project, mode, endpoint or idempotency key) is useless. `storage.sealed` re-seals every
value under the context it was sealed with: a context written twice would drift and break rotation.
The webhook endpoints' context is `core.webhooks.endpoints.secret_context`.
"""

from __future__ import annotations


def signing_context(project_id: str) -> str:
    """A project's request-signing secret (`projects.signing_secret_sealed`)."""
    return f"signing:{project_id}"


def daraja_context(project_id: str, mode: str) -> str:
    """A project mode's Daraja credentials (`daraja_configs`); `mode` is the Mode's value."""
    return f"daraja:{project_id}:{mode}"


def idempotency_context(scope: str, key: str) -> str:
    """The stored answer of an `Idempotency-Key` (`idempotency_keys.response_body`)."""
    return f"idempotency:{scope}:{key}"


def idempotency_secret_context(scope: str, key: str) -> str:
    """The client secret of what an `Idempotency-Key` created (`idempotency_keys.resource_secret`)."""
    return f"idempotency:{scope}:{key}:secret"


def c2b_context(project_id: str, mode: str) -> str:
    """A project mode's C2B validation signing secret (`c2b_settings.secret_sealed`)."""
    return f"c2b:{project_id}:{mode}"
