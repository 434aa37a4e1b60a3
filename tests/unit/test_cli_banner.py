"""`serve --dev`'s banner says which Daraja the development project talks to (issue 9 #18)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mpesa_bridge.cli.dev import banner, daraja_description
from mpesa_bridge.config import Settings


def settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path, **values)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("values", "said"),
    [
        ({}, "built-in Daraja simulator"),
        ({"simulator_url": "http://127.0.0.1:8001/"}, "standalone Daraja simulator at http://127.0.0.1:8001"),
        (
            {"simulator_enabled": False, "simulator_url": "http://127.0.0.1:8001"},
            "standalone Daraja simulator at http://127.0.0.1:8001",
        ),
        ({"simulator_enabled": False}, "no Daraja simulator"),
    ],
)
def test_the_banner_names_the_daraja_in_use(tmp_path: Path, values: dict[str, object], said: str) -> None:
    text = banner(
        "http://127.0.0.1:8000",
        "proj_1",
        "sk_test_x",
        daraja_description(settings(tmp_path, **values)),
        ("dev@example.com", "pw"),
    )
    first_line = text.strip().splitlines()[0]
    assert said in first_line
    if "standalone" in said or "no Daraja" in said:
        assert "built-in" not in first_line
