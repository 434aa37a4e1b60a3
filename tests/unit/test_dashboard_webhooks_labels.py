"""Every label of the webhook and attention pages has its Kiswahili (locales/sw/webhooks.json,
attention.json)."""

from __future__ import annotations

import json
import re
from importlib.resources import files

import pytest

TEMPLATES = files("mpesa_bridge.dashboard") / "templates"
LOCALES = files("mpesa_bridge.dashboard") / "locales" / "sw"
_LABEL = re.compile(r"""(?<![A-Za-z_.])t\(\s*(["'])((?:(?!\1).)*)\1""")
_NOTICE = re.compile(r'^\s*"[a-z]+": "([^"]+)",?$', re.MULTILINE)


def labels(template: str) -> set[str]:
    text = (TEMPLATES / template).read_text(encoding="utf-8")
    return {m.group(2) for m in _LABEL.finditer(text)} | set(_NOTICE.findall(text))


@pytest.mark.parametrize(
    ("area", "templates"),
    [
        (
            "webhooks",
            [
                "webhooks.html",
                "webhooks_endpoint.html",
                "webhooks_deliveries.html",
                "webhooks_secret.html",
                "webhooks_macros.html",
            ],
        ),
        ("attention", ["attention.html"]),
    ],
)
def test_every_label_has_its_swahili(area: str, templates: list[str]) -> None:
    swahili = json.loads((LOCALES / f"{area}.json").read_text(encoding="utf-8"))
    wanted = set().union(*(labels(t) for t in templates))
    assert len(wanted) > 20
    assert sorted(wanted - set(swahili)) == []
    for english, translated in swahili.items():  # the same placeholders
        assert re.findall(r"{(\w+)}", english) == re.findall(r"{(\w+)}", translated), english
