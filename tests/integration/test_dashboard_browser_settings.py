"""The settings page's "Web pages" card over HTTP, in-process, on SQLite and PostgreSQL: the
publishable keys shown, client-side amounts and allowed origins editable by an owner only (CSRF,
validation, the activity list), and a new publishable key."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.fixtures.bridge import InProcessBridge
from tests.fixtures.dashboard import People, csrf_in, post_form_async

FORM = {"client_side_amounts": "on", "client_side_amount_max": "3000", "allowed_origins": "https://shop.example\n"}


@pytest.fixture
async def shop(bridge: InProcessBridge) -> Any:
    people = People(bridge, await bridge.create_project("Shop"))
    yield people
    await people.aclose()


async def post(client: httpx.AsyncClient, path: str, data: dict[str, str]) -> httpx.Response:
    return await post_form_async(client, path, data, token_from="/dashboard/account")


async def test_the_owner_sees_the_keys_and_what_client_side_amounts_allow_then_saves(shop: People) -> None:
    owner = await shop.as_("owner")
    keys = await shop.bridge.runtime.projects.publishable_keys(shop.tenant.project_id)
    page = (await owner.get("/dashboard/settings")).text
    for key in keys.values():
        assert key.key in page
    assert "start a payment of any amount they choose" in page and "to any phone number" in page
    assert 'action="/dashboard/settings/browser"' in page

    saved = await post(owner, "/dashboard/settings/browser", FORM)
    assert saved.status_code == 303 and saved.headers["location"].endswith("?done=browser")
    project = await shop.project()
    assert (project.client_side_amounts, project.client_side_amount_max) == (True, 3000)
    assert project.allowed_origins == ["https://shop.example"]
    after = (await owner.get(saved.headers["location"])).text
    assert "The settings for web pages were saved." in after
    assert "project.browser_settings_changed" in after and "allowed_origins=https://shop.example" in after

    off = await post(owner, "/dashboard/settings/browser", {"client_side_amounts": "off", "allowed_origins": ""})
    assert off.status_code == 303
    project = await shop.project()
    assert (project.client_side_amounts, project.client_side_amount_max, project.allowed_origins) == (False, None, [])


async def test_the_owner_turns_the_earlier_systems_calls_on_and_off(shop: People) -> None:
    owner = await shop.as_("owner")
    page = (await owner.get("/dashboard/settings")).text
    assert 'name="legacy_api"' in page and "/api/v1/transactions/stk-push" in page
    on = await post(owner, "/dashboard/settings/browser", {"client_side_amounts": "off", "legacy_api": "on"})
    assert on.status_code == 303
    assert (await shop.project()).legacy_api is True
    pushed = await shop.bridge.client.post(
        "/api/v1/transactions/stk-push",
        json={"phoneNumber": "0708374149", "amount": 5},
        headers={"x-api-key": shop.tenant.test_key},
    )
    assert pushed.status_code == 200, pushed.text
    assert "legacy_api=True" in (await owner.get("/dashboard/settings")).text  # in the activity list
    off = await post(owner, "/dashboard/settings/browser", {"client_side_amounts": "off"})
    assert off.status_code == 303 and (await shop.project()).legacy_api is False


async def test_invalid_values_are_shown_back_with_the_reason_and_nothing_is_saved(shop: People) -> None:
    owner = await shop.as_("owner")
    for form, said in (
        ({**FORM, "allowed_origins": "https://shop.example/checkout"}, "no path, no wildcard"),
        ({**FORM, "allowed_origins": "*"}, "no path, no wildcard"),
        ({**FORM, "client_side_amount_max": "lots"}, "whole number of shillings"),
        ({**FORM, "client_side_amount_max": "0"}, "from 1 to"),
    ):
        refused = await post(owner, "/dashboard/settings/browser", form)
        assert refused.status_code == 400, form
        assert said in refused.text and 'aria-invalid="true"' in refused.text
        assert form["allowed_origins"] in refused.text  # what was typed is kept
    project = await shop.project()
    assert (project.client_side_amounts, project.allowed_origins) == (False, [])


async def test_developers_and_viewers_cannot_change_them_and_csrf_is_enforced(shop: People) -> None:
    developer = await shop.as_("developer")
    page = (await developer.get("/dashboard/settings")).text
    assert 'action="/dashboard/settings/browser"' not in page
    assert "Only an owner can change the settings for web pages" in page
    for path, form in (
        ("/dashboard/settings/browser", FORM),
        ("/dashboard/settings/publishable-key/rotate", {"mode": "test"}),
    ):
        assert (await post(developer, path, form)).status_code == 403
    viewer = await shop.as_("viewer")
    token = csrf_in((await viewer.get("/dashboard/account")).text)
    refused = await viewer.post("/dashboard/settings/browser", data={**FORM, "csrf_token": token})
    assert refused.status_code == 403

    owner = await shop.as_("owner")
    missing = await owner.post("/dashboard/settings/browser", data=FORM)
    wrong = await owner.post("/dashboard/settings/browser", data={**FORM, "csrf_token": "nope" * 10})
    assert missing.status_code == wrong.status_code == 403
    project = await shop.project()
    assert (project.client_side_amounts, project.allowed_origins) == (False, [])


async def test_the_owner_makes_a_new_publishable_key_recorded_as_activity(shop: People) -> None:
    owner = await shop.as_("owner")
    before = await shop.bridge.runtime.projects.publishable_keys(shop.tenant.project_id)
    rotated = await post(owner, "/dashboard/settings/publishable-key/rotate", {"mode": "live"})
    assert rotated.status_code == 303
    after = await shop.bridge.runtime.projects.publishable_keys(shop.tenant.project_id)
    assert after["live"].key != before["live"].key and after["test"].key == before["test"].key
    page = (await owner.get(rotated.headers["location"])).text
    assert after["live"].key in page and before["live"].key in page  # the activity names both
    assert "publishable_key.rotated" in page and "the old one stopped working" in page
