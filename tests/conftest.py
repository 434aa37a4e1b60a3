"""Shared test set-up: services (PostgreSQL, Redis, chromium) found or skipped loudly, env isolation.

`MPESA_BRIDGE_REQUIRE_SERVICES=1` turns every "service unavailable" skip into a failure, so CI
cannot pass by silently skipping the PostgreSQL half of the suite.
"""

from __future__ import annotations

import os

import pytest

pytest_plugins = ["tests.fixtures.services", "tests.fixtures.database", "tests.fixtures.bridge"]


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never read the developer's MPESA_BRIDGE_* variables or .env file."""
    for key in list(os.environ):
        if key.startswith("MPESA_BRIDGE_") and key != "MPESA_BRIDGE_REQUIRE_SERVICES":
            monkeypatch.delenv(key, raising=False)
