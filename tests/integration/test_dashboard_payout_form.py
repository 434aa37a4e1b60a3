"""The dashboard's payout form over in-process HTTP, on SQLite and PostgreSQL: the form's token is
the payout's Idempotency-Key — a double click or a resent form shows the first payout and never
sends a second; a token used for other values, or no token, sends nothing."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.fixtures.bridge import InProcessBridge
from tests.fixtures.dashboard import People, csrf_in

FORM = {"phone": "0708374149", "amount": "150", "command_id": "BusinessPayment", "remarks": "Refund 9"}


@pytest.fixture
async def shop(bridge: InProcessBridge) -> Any:
    people = People(bridge, await bridge.create_project("Shop"))
    yield people
    await people.aclose()


def submission_in(html: str) -> str:
    found = re.search(r'name="submission" value="([^"]+)"', html)
    assert found, "the send form carries its token"
    return found.group(1)


async def payouts(shop: People) -> list[dict[str, Any]]:
    listed = await shop.bridge.client.get("/v1/payouts", headers=shop.tenant.headers())
    data: list[dict[str, Any]] = listed.json()["data"]
    return data


async def test_a_form_sent_twice_makes_one_payout(shop: People) -> None:
    developer = await shop.as_("developer")
    page = (await developer.get("/dashboard/payouts")).text
    form = {"csrf_token": csrf_in(page), "submission": submission_in(page), **FORM}
    first = await developer.post("/dashboard/payouts", data=form)
    again = await developer.post("/dashboard/payouts", data=form)  # a double click, a resent form
    assert first.status_code == again.status_code == 303, (first.text, again.text)
    assert first.headers["location"].split("?")[0] == again.headers["location"].split("?")[0]
    made = await payouts(shop)
    assert len(made) == 1 and made[0]["amount"] == 150
    assert first.headers["location"].split("?")[0].endswith(made[0]["id"])
    # Each drawing of the page has a token of its own: a second payout is a second form.
    fresh = (await developer.get("/dashboard/payouts")).text
    assert submission_in(fresh) != form["submission"]


async def test_a_token_used_for_other_values_or_none_sends_nothing(shop: People) -> None:
    developer = await shop.as_("developer")
    page = (await developer.get("/dashboard/payouts")).text
    form = {"csrf_token": csrf_in(page), "submission": submission_in(page), **FORM}
    assert (await developer.post("/dashboard/payouts", data=form)).status_code == 303
    changed = await developer.post("/dashboard/payouts", data={**form, "amount": "900"})
    assert changed.status_code == 409 and "already used" in changed.text
    missing = await developer.post("/dashboard/payouts", data={k: v for k, v in form.items() if k != "submission"})
    assert missing.status_code == 409
    assert len(await payouts(shop)) == 1
