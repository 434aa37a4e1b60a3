"""Every English sentence of the hosted page has its Swahili, and failures read as plain words."""

from __future__ import annotations

import re
from importlib.resources import files

from mpesa_bridge.checkout import words

T_CALL = re.compile(r"""\bt\(\s*"([^"]+)\"""")


def test_every_sentence_of_the_hosted_page_has_its_swahili() -> None:
    folder = files("mpesa_bridge.checkout") / "templates"
    used = {m for entry in folder.iterdir() for m in T_CALL.findall(entry.read_text(encoding="utf-8"))}
    used |= set(words.FAILURES.values()) | set(words.REFUSALS.values())
    used.add("The payment did not go through.")
    assert used - words.SWAHILI.keys() == set()
    assert len(used) > 20


def test_failures_in_plain_words() -> None:
    assert words.failure_words("failed", "insufficient_funds") == "There is not enough money in your M-Pesa account."
    assert words.failure_words("cancelled", None) == "You cancelled the payment on your phone."
    assert words.failure_words("expired", None) == "The prompt timed out before a PIN was entered."
    assert words.failure_words("failed", "wrong_pin") == "The M-Pesa PIN was wrong."
    assert words.failure_words("failed", "something_new") == "The payment did not go through."


def test_the_language_is_asked_then_the_browser_then_english() -> None:
    assert words.choose("sw", "en-GB") == "sw"
    assert words.choose(None, "sw-KE,sw;q=0.9,en;q=0.8") == "sw"
    assert words.choose("fr", "fr-FR,de") == "en"
    assert words.translator("sw")("Amount (KES {low} to {high})", low="50", high="500") == "Kiasi (KES 50 hadi 500)"
