"""`.env.example` and `docs/configuration.md` name every setting, and nothing that is not one.

Variables that are not `Settings` fields are allowed only where the code reads them itself: CLI
options with an `envvar` (e.g. the standalone simulator's host and port, `projects set-daraja`'s
Daraja credentials) and the test suite's own switches (read in `tests/conftest.py` and
`tests/fixtures/`). Both lists are collected from the code, not written down here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main

from mpesa_bridge.cli import register_commands
from mpesa_bridge.config import Settings

app = register_commands()

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "MPESA_BRIDGE_"
DOCUMENTS = [".env.example", "docs/configuration.md"]

# A whole variable name; `MPESA_BRIDGE_SIMULATOR_*`-style wildcards are not names and do not match.
NAME = re.compile(rf"\b{PREFIX}[A-Z0-9_]+\b(?!\*)")
# `# MPESA_BRIDGE_PORT=8000` (commented) or `MPESA_BRIDGE_PORT=8000`.
ASSIGNMENT = re.compile(rf"^#?\s*({PREFIX}[A-Z0-9_]+)=(.*)$", re.MULTILINE)


def read(relative: str) -> str:
    return (ROOT / relative).read_text(encoding="utf-8")


def setting_names() -> set[str]:
    return {PREFIX + field.upper() for field in Settings.model_fields}


def _commands(command: Any) -> Iterator[Any]:
    # Typer builds Click-style commands (its own vendored Click in recent versions): walk them by shape.
    yield command
    for sub in getattr(command, "commands", {}).values():
        yield from _commands(sub)


def cli_names() -> set[str]:
    """Every MPESA_BRIDGE_* variable a CLI option reads (Click's `envvar`)."""
    names: set[str] = set()
    for command in _commands(typer.main.get_command(app)):
        for param in command.params:
            envvar = getattr(param, "envvar", None)
            if isinstance(envvar, str):
                names.add(envvar)
            elif envvar:
                names.update(envvar)
    return {name for name in names if name.startswith(PREFIX)}


def suite_names() -> set[str]:
    sources = [ROOT / "tests" / "conftest.py", *sorted((ROOT / "tests" / "fixtures").glob("*.py"))]
    return {name for path in sources for name in NAME.findall(path.read_text(encoding="utf-8"))}


def test_the_cli_collection_finds_the_variables_it_must() -> None:
    # Guards the collectors: if they silently found nothing, every check below would be too lenient.
    assert {PREFIX + "SIMULATOR_HOST", PREFIX + "SIMULATOR_PORT", PREFIX + "DARAJA_PASSKEY"} <= cli_names()
    assert PREFIX + "REQUIRE_SERVICES" in suite_names()


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_setting_is_documented(document: str) -> None:
    named = set(NAME.findall(read(document)))
    missing = sorted(setting_names() - named)
    assert not missing, f"{document} does not mention: {', '.join(missing)}"


@pytest.mark.parametrize("document", DOCUMENTS)
def test_no_unknown_variable_is_documented(document: str) -> None:
    known = setting_names() | cli_names() | suite_names()
    unknown = sorted(set(NAME.findall(read(document))) - known)
    assert not unknown, f"{document} names variables the code does not read: {', '.join(unknown)}"


def test_env_example_has_one_assignment_per_setting() -> None:
    assigned = [name for name, _ in ASSIGNMENT.findall(read(".env.example"))]
    duplicates = sorted({name for name in assigned if assigned.count(name) > 1})
    assert not duplicates, f".env.example assigns more than once: {', '.join(duplicates)}"
    missing = sorted(setting_names() - set(assigned))
    assert not missing, f".env.example has no `{PREFIX}<NAME>=` line for: {', '.join(missing)}"


def test_env_example_lines_show_the_real_defaults() -> None:
    values = {name: value.strip() for name, value in ASSIGNMENT.findall(read(".env.example"))}
    for field_name, field in Settings.model_fields.items():
        shown = values[PREFIX + field_name.upper()]
        if field.default is None:
            assert shown == "", f"{field_name} has no default, but .env.example shows {shown!r}"
            continue
        parsed = Settings(_env_file=None, **{field_name: shown})  # type: ignore[call-arg]
        assert getattr(parsed, field_name) == field.default, f".env.example shows {shown!r} for {field_name}"
