"""Every label a dashboard template wraps in t("…") has its Swahili, and the fixed words the pages
translate at run time (statuses, roles, modes, error titles) too."""

from __future__ import annotations

import re
from importlib.resources import files

from mpesa_bridge.core.payments.status import PaymentStatus
from mpesa_bridge.core.payouts.status import PayoutStatus
from mpesa_bridge.core.payouts.validation import COMMAND_IDS
from mpesa_bridge.core.people.entity import Role
from mpesa_bridge.dashboard import i18n
from mpesa_bridge.dashboard.pages.c2b import WORDS as C2B_WORDS

LABEL = re.compile(r"""\bt\(\s*(?:"([^"]+)"|'([^']+)')""")
TEMPLATES = files("mpesa_bridge.dashboard") / "templates"
PAGES = files("mpesa_bridge.dashboard") / "pages"
# The navigation's entries: ("/dashboard/…", "Label", "role") in base.html, shown through t(label).
NAV = re.compile(r'\("/dashboard/[^"]*", "([^"]+)"')
# Section titles and facts the analytics page builds: _section("Revenue", …), {"median": …}.
SECTION = re.compile(r'_section\(\s*"([^"]+)"')
# Titles and messages the pages pass to templates that show them through t().
TITLE = re.compile(r"""["'](?:title|message|label)["']\s*:\s*["']([^"']+)["']""")


def labels() -> set[str]:
    found: set[str] = set()
    for entry in TEMPLATES.iterdir():
        if entry.name.endswith(".html"):
            text = entry.read_text(encoding="utf-8")
            found |= {a or b for a, b in LABEL.findall(text)} | set(NAV.findall(text))
    for entry in PAGES.iterdir():
        if entry.name.endswith(".py"):
            text = entry.read_text(encoding="utf-8")
            found |= set(TITLE.findall(text)) | {a or b for a, b in LABEL.findall(text)} | set(SECTION.findall(text))
    found |= {s.value for s in PaymentStatus} | {r.value for r in Role} | {"test mode", "live mode"}
    found |= set(C2B_WORDS.values())  # the C2B pages' words for codes (statuses, rules, reasons)
    found |= {s.value for s in PayoutStatus} | set(COMMAND_IDS)  # the payouts page shows them through t()
    return found


def test_every_label_has_its_swahili() -> None:
    swahili = i18n.catalogue("sw")
    missing = sorted(label for label in labels() if label not in swahili)
    assert not missing, f"locales/sw/*.json lacks: {missing}"


def test_placeholders_survive_the_translation() -> None:
    for english, swahili in i18n.catalogue("sw").items():
        assert set(re.findall(r"{\w+}", english)) == set(re.findall(r"{\w+}", swahili)), english


def test_the_language_is_the_choice_then_the_browser_then_english() -> None:
    assert i18n.choose("sw", "en") == "sw"
    assert i18n.choose(None, "fr-FR,sw;q=0.8") == "sw"
    assert i18n.choose("xx", "fr") == "en"
    assert i18n.translator("sw")("{n} succeeded of {m}", n=2, m=3) == "2 yamefaulu kati ya 3"
    assert i18n.translator("en")("Not in any catalogue") == "Not in any catalogue"
