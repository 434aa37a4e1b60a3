"""Boolean flags shown as flags in `--help`, never with a `<bool>` placeholder.

Typer's rich help prints every option's type, a flag's too (`--dev <bool>`, `--help <bool>`), which
reads as if the flag took a value. A flag takes none: its type column is left empty. Every boolean
option of the CLI is declared `--x/--no-x` (a variable can switch it on, the command line off), and
tests/integration/test_cli.py keeps both rules for every command.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperOption

_original = TyperOption.display_type_rich


def _display_type(self: TyperOption, ctx: Any) -> str | None:
    if self.is_flag and not self.count:
        return None
    result: Any = _original(self, ctx)
    return result if result is None else str(result)


def show_flags_as_flags() -> None:
    """Idempotent: the help of every command built afterwards (or rendered afterwards) uses it."""
    setattr(TyperOption, "display_type_rich", _display_type)  # noqa: B010 - a method of a library class
