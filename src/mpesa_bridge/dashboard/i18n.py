"""English and Swahili labels.

Templates write English and wrap it: `{{ t("Payments") }}`. Swahili is looked up in the JSON files
of `locales/sw/` (one per area, `{"English": "Kiswahili"}`), merged once; a missing entry shows the
English (and `tests/unit/test_dashboard_i18n.py` fails, so none is missing for long). Placeholders
use `str.format` names: `t("{count} payments", count=n)`.

The language is the person's choice (the switch in the page footer, kept in the `mb_lang` cookie),
else the browser's `Accept-Language`, else English.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from importlib.resources import files
from typing import Any

LANGUAGES = {"en": "English", "sw": "Kiswahili"}
COOKIE = "mb_lang"


@cache
def catalogue(language: str) -> dict[str, str]:
    if language == "en":
        return {}
    merged: dict[str, str] = {}
    folder = files("mpesa_bridge.dashboard") / "locales" / language
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            merged.update(json.loads(entry.read_text(encoding="utf-8")))
    return merged


def translator(language: str) -> Callable[..., str]:
    words = catalogue(language)

    def t(text: str, /, **values: Any) -> str:
        found = words.get(text, text)
        return found.format(**values) if values else found

    return t


def choose(cookie: str | None, accept_language: str | None) -> str:
    if cookie in LANGUAGES:
        return cookie
    for part in (accept_language or "").split(","):
        code = part.split(";", 1)[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return "en"
