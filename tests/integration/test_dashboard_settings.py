"""The settings pages over HTTP, in-process, on SQLite and PostgreSQL: roles, CSRF, Daraja settings
never shown back, the connection test against the simulator, callback options, the time zone, and
API keys (create, rotate with a grace period on the ManualClock, revoke), each recorded as activity."""

from __future__ import annotations

import re
from importlib.resources import files
from typing import Any

import httpx
import pytest

from mpesa_bridge.core.projects import Mode, hash_secret_key
from mpesa_bridge.core.projects import Tenant as Scope
from mpesa_bridge.dashboard.i18n import catalogue
from mpesa_bridge.dashboard.pages import people as people_page
from mpesa_bridge.dashboard.pages import settings as settings_page
from mpesa_bridge.simulator.config import SANDBOX_CONSUMER_KEY, SANDBOX_CONSUMER_SECRET
from tests.fixtures.bridge import InProcessBridge
from tests.fixtures.dashboard import People, csrf_in, post_form_async

_SECRET_KEY = re.compile(r"sk_(?:test|live)_[A-Za-z0-9]{32}")
PAYMENT = {"phone": "0708374149", "amount": 10, "account_reference": "INV1"}


@pytest.fixture
async def shop(bridge: InProcessBridge) -> Any:
    tenant = await bridge.create_project("Shop")
    people = People(bridge, tenant)
    yield people
    await people.aclose()


async def post(client: httpx.AsyncClient, path: str, data: dict[str, str]) -> httpx.Response:
    return await post_form_async(client, path, data, token_from="/dashboard/settings/keys")


async def test_viewer_is_refused_every_settings_page_and_developer_the_owner_actions(shop: People) -> None:
    viewer = await shop.as_("viewer")
    for path in ("/dashboard/settings", "/dashboard/settings/keys", "/dashboard/settings/daraja/test"):
        response = await viewer.get(path)
        assert response.status_code == 403, path
        assert "Not allowed" in response.text
    token = csrf_in((await viewer.get("/dashboard/account")).text)
    refused = await viewer.post("/dashboard/settings/keys/create", data={"csrf_token": token, "mode": "test"})
    assert refused.status_code == 403
    assert not _SECRET_KEY.search(refused.text)

    developer = await shop.as_("developer")
    assert (await developer.get("/dashboard/settings")).status_code == 200
    assert "Rename the project" not in (await developer.get("/dashboard/settings")).text
    renamed = await post(developer, "/dashboard/settings/name", {"name": "Taken over"})
    assert renamed.status_code == 403
    zone = await post(developer, "/dashboard/settings/time-zone", {"time_zone": "UTC"})
    assert zone.status_code == 403
    projects = await shop.bridge.runtime.projects.list_projects()
    assert [p.name for p in projects] == ["Shop"]


async def test_a_post_without_or_with_a_wrong_csrf_token_is_refused(shop: People) -> None:
    owner = await shop.as_("owner")
    missing = await owner.post("/dashboard/settings/keys/create", data={"mode": "test"})
    wrong = await owner.post("/dashboard/settings/name", data={"name": "X", "csrf_token": "nope" * 10})
    assert missing.status_code == wrong.status_code == 403
    assert "Form refused" in missing.text
    keys = await shop.bridge.runtime.projects.list_keys(shop.tenant.project_id)
    assert len(keys) == 2  # the project's own two, nothing created
    assert (await shop.bridge.runtime.projects.list_projects())[0].name == "Shop"


async def test_owner_renames_the_project_and_sets_a_valid_time_zone_recorded_as_activity(shop: People) -> None:
    owner = await shop.as_("owner")
    assert (await post(owner, "/dashboard/settings/name", {"name": "Duka Kuu"})).status_code == 303
    bad = await post(owner, "/dashboard/settings/time-zone", {"time_zone": "Mars/Olympus"})
    assert bad.status_code == 400
    assert "such as Africa/Nairobi" in bad.text
    assert (await post(owner, "/dashboard/settings/time-zone", {"time_zone": "Europe/London"})).status_code == 303
    project = (await shop.bridge.runtime.projects.list_projects())[0]
    assert (project.name, project.time_zone) == ("Duka Kuu", "Europe/London")
    page = (await owner.get("/dashboard/settings")).text
    assert "project.renamed" in page and "project.time_zone_changed" in page
    assert "owner@example.com" in page  # who did it


async def test_daraja_settings_are_never_shown_back_and_blank_secrets_are_kept(shop: People) -> None:
    developer = await shop.as_("developer")
    secret, passkey, key = "s3cr3t-consumer-SECRET-x", "pass-KEY-0123456789-abcdef", "ck-visible-prefix-WXYZ"
    form = {
        "environment": "sandbox",
        "shortcode_type": "till",
        "short_code": "174379",
        "till_number": "5412345",
        "consumer_key": key,
        "consumer_secret": secret,
        "passkey": passkey,
    }
    saved = await post(developer, "/dashboard/settings/daraja/test", form)
    assert saved.status_code == 303, saved.text
    # A mistake: the secrets are not put back in the form either.
    wrong = await post(developer, "/dashboard/settings/daraja/test", {**form, "environment": "production"})
    assert wrong.status_code == 400
    # Only the shortcode changes: the secrets are kept.
    kept = await post(developer, "/dashboard/settings/daraja/test", {**form, "consumer_secret": "", "passkey": ""})
    assert kept.status_code == 303
    account = await shop.bridge.runtime.projects.account(Scope(shop.tenant.project_id, Mode.TEST))
    assert (account.consumer_secret, account.passkey, account.till_number) == (secret, passkey, "5412345")
    pages = [wrong.text]
    for path in ("/dashboard/settings", "/dashboard/settings/daraja/test", "/dashboard/settings/keys"):
        pages.append((await developer.get(path)).text)
    owner = await shop.as_("owner")
    pages.append((await owner.get("/dashboard/settings")).text)
    for html in pages:
        for value in (secret, passkey, key):
            assert value not in html
    assert "…WXYZ" in pages[1]  # the consumer key's last 4
    assert "daraja.updated" in pages[-1]


async def test_the_initiator_is_set_kept_and_removed_from_the_form(shop: People) -> None:
    developer = await shop.as_("developer")
    scope = Scope(shop.tenant.project_id, Mode.TEST)
    form = {"environment": "simulator", "shortcode_type": "paybill", "short_code": "174379"}
    form |= {"consumer_key": "", "consumer_secret": "", "passkey": ""}  # kept
    saved = await post(
        developer,
        "/dashboard/settings/daraja/test",
        {**form, "initiator_name": "duka_ops", "initiator_password": "Init-Pass-77"},
    )
    assert saved.status_code == 303, saved.text
    assert (await shop.bridge.runtime.projects.account(scope)).initiator_password == "Init-Pass-77"
    page = (await developer.get("/dashboard/settings/daraja/test")).text
    listing = (await developer.get("/dashboard/settings")).text
    assert 'value="duka_ops"' in page and "duka_ops" in listing
    assert "Init-Pass-77" not in page + listing
    kept = await post(developer, "/dashboard/settings/daraja/test", {**form, "initiator_name": "duka_ops2"})
    assert kept.status_code == 303
    account = await shop.bridge.runtime.projects.account(scope)
    assert (account.initiator_name, account.initiator_password) == ("duka_ops2", "Init-Pass-77")
    removed = await post(developer, "/dashboard/settings/daraja/test", {**form, "initiator_name": ""})
    assert removed.status_code == 303
    assert not (await shop.bridge.runtime.projects.account(scope)).has_initiator
    missing = await post(developer, "/dashboard/settings/daraja/test", {**form, "initiator_name": "new_ops"})
    assert missing.status_code == 400 and "initiator" in missing.text.lower()


async def test_the_connection_test_says_what_is_wrong(shop: People) -> None:
    developer = await shop.as_("developer")
    ok = await post(developer, "/dashboard/settings/daraja/test/test", {})
    assert ok.status_code == 200
    assert "Connected" in ok.text
    not_set = await post(developer, "/dashboard/settings/daraja/live/test", {})
    assert not_set.status_code == 422
    assert "no Daraja settings yet" in not_set.text
    form = {
        "environment": "simulator",
        "shortcode_type": "paybill",
        "short_code": "174379",
        "consumer_key": SANDBOX_CONSUMER_KEY,
        "consumer_secret": SANDBOX_CONSUMER_SECRET + "-wrong",
        "passkey": "",
    }
    assert (await post(developer, "/dashboard/settings/daraja/test", form)).status_code == 303
    wrong = await post(developer, "/dashboard/settings/daraja/test/test", {})
    assert wrong.status_code == 422
    assert "refused the consumer key and secret" in wrong.text
    assert SANDBOX_CONSUMER_SECRET not in wrong.text


async def test_callback_options_and_the_global_allow_list(shop: People) -> None:
    developer = await shop.as_("developer")
    page = (await developer.get("/dashboard/settings")).text
    assert 'data-allowlist="off"' in page  # development: off unless set
    assert "MPESA_BRIDGE_CALLBACK_ALLOWED_IPS" in page
    saved = await post(developer, "/dashboard/settings/callbacks", {"confirm_by_query": "on"})
    assert saved.status_code == 303
    project = (await shop.bridge.runtime.projects.list_projects())[0]
    assert (project.confirm_by_query, project.require_signed_requests) == (True, False)
    await post(developer, "/dashboard/settings/callbacks", {"require_signed_requests": "on"})
    project = (await shop.bridge.runtime.projects.list_projects())[0]
    assert (project.confirm_by_query, project.require_signed_requests) == (False, True)


async def test_a_rotated_key_works_during_the_grace_and_stops_after(shop: People) -> None:
    bridge = shop.bridge
    developer = await shop.as_("developer")
    old = {"Authorization": f"Bearer {shop.tenant.test_key}"}
    answer = await post(
        developer, "/dashboard/settings/keys/rotate", {"mode": "test", "grace": "0", "grace_seconds": "60"}
    )
    assert answer.status_code == 200
    revealed = set(_SECRET_KEY.findall(answer.text))
    assert len(revealed) == 1
    new = {"Authorization": f"Bearer {revealed.pop()}"}
    listing = (await developer.get("/dashboard/settings/keys")).text
    assert not _SECRET_KEY.search(listing)  # shown once, never again
    assert 'data-state="in grace"' in listing
    assert (await bridge.client.post("/v1/payments", json=PAYMENT, headers=old)).status_code == 201
    bridge.clock.advance(59)
    assert (await bridge.client.post("/v1/payments", json=PAYMENT, headers=old)).status_code == 201
    bridge.clock.advance(2)
    assert (await bridge.client.post("/v1/payments", json=PAYMENT, headers=old)).status_code == 401
    assert (await bridge.client.post("/v1/payments", json=PAYMENT, headers=new)).status_code == 201
    assert 'data-state="expired"' in (await developer.get("/dashboard/settings/keys")).text
    live = {"Authorization": f"Bearer {shop.tenant.live_key}"}
    assert (await bridge.client.get("/v1/payments", headers=live)).status_code == 200  # the other mode untouched


async def test_create_and_revoke_a_key(shop: People) -> None:
    bridge = shop.bridge
    developer = await shop.as_("developer")
    created = await post(developer, "/dashboard/settings/keys/create", {"mode": "live"})
    secret = _SECRET_KEY.findall(created.text)[0]
    assert secret.startswith("sk_live_")
    auth = {"Authorization": f"Bearer {secret}"}
    assert (await bridge.client.get("/v1/payments", headers=auth)).status_code == 200
    key = next(
        k
        for k in await bridge.runtime.projects.list_keys(shop.tenant.project_id)
        if k.key_hash == hash_secret_key(secret)
    )
    revoked = await post(developer, f"/dashboard/settings/keys/{key.id}/revoke", {})
    assert revoked.status_code == 303
    assert (await bridge.client.get("/v1/payments", headers=auth)).status_code == 401
    other = await bridge.create_project("Other")
    foreign = next(k for k in await bridge.runtime.projects.list_keys(other.project_id))
    assert (await post(developer, f"/dashboard/settings/keys/{foreign.id}/revoke", {})).status_code == 404
    assert (await bridge.client.get("/v1/payments", headers=other.headers())).status_code == 200
    owner = await shop.as_("owner")
    activity = (await owner.get("/dashboard/settings")).text
    assert "key.created" in activity and "key.revoked" in activity
    assert "developer@example.com" in activity


MY_TEMPLATES = ("settings", "settings_daraja", "settings_keys", "settings_key", "people", "people_users")
LABEL = re.compile(r't\("([^"]+)"')
FIELD_NAMES = {"environment", "form", "shortcode_type", "grace", "role", "role-"}  # errors.get("…"), not labels


def test_every_label_of_these_pages_has_a_swahili_translation() -> None:
    folder = files("mpesa_bridge.dashboard") / "templates"
    words = catalogue("sw")
    missing = set()
    for name in MY_TEMPLATES:
        labels = set(LABEL.findall((folder / f"{name}.html").read_text(encoding="utf-8")))
        missing |= {label for label in labels - FIELD_NAMES if label not in words}
    # Labels chosen at run time: notices, connection problems, states, modes, environments.
    dynamic = [
        *settings_page.NOTICES.values(),
        *settings_page.CONNECTION_PROBLEMS.values(),
        *people_page.NOTICES.values(),
    ]
    dynamic += [
        "active",
        "in grace",
        "expired",
        "revoked",
        "test mode",
        "live mode",
        "simulator",
        "sandbox",
        "production",
    ]
    dynamic += ["owner", "developer", "viewer", "paybill", "till", "reject", "quarantine"]
    missing |= {label for label in dynamic if label not in words}
    assert not missing


async def test_the_settings_page_in_swahili(shop: People) -> None:
    owner = await shop.as_("owner")
    owner.cookies.set("mb_lang", "sw", domain="bridge.test", path="/")
    page = (await owner.get("/dashboard/settings")).text
    assert "Mipangilio" in page and "Jaribu muunganisho" in page
