"""core/browser.py: allowed origins (checked and normalised as browsers send them; the fallback rule)
and client-side amounts (the switch and the project's maximum); ProjectService's publishable keys
and browser settings over the shared in-memory ports."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mpesa_bridge.core.accounts import ProjectService
from mpesa_bridge.core.browser import (
    MAX_ORIGINS,
    check_client_amount_max,
    check_client_side_amount,
    check_origin,
    check_origins,
    origin_allowed,
    parse_origin_lines,
)
from mpesa_bridge.core.clock import ManualClock
from mpesa_bridge.core.crypto import SecretBox
from mpesa_bridge.core.errors import AuthenticationFailed, InvalidRequest, PermissionDenied
from mpesa_bridge.core.projects import Mode, Project, generate_publishable_key, publishable_key_mode
from tests.fixtures.memory import MemoryDatabase


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("https://shop.example", "https://shop.example"),
        ("HTTPS://Shop.Example", "https://shop.example"),
        ("https://shop.example/", "https://shop.example"),
        ("https://shop.example:443", "https://shop.example"),
        ("http://shop.example:80", "http://shop.example"),
        ("https://shop.example:8443", "https://shop.example:8443"),
        ("http://localhost:3000", "http://localhost:3000"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("  https://duka.co.ke  ", "https://duka.co.ke"),
    ],
)
def test_an_origin_is_stored_as_a_browser_sends_it(given: str, stored: str) -> None:
    assert check_origin(given) == stored


@pytest.mark.parametrize(
    "given",
    [
        "*",
        "null",
        "shop.example",
        "https://*.shop.example",
        "https://shop.example/checkout",
        "https://shop.example//",
        "https://shop.example?x=1",
        "https://shop.example#top",
        "https://me@shop.example",
        "ftp://shop.example",
        "javascript://shop.example",
        "https://shop.example:0",
        "https://shop.example:70000",
        "https://-shop.example",
        "https://shop_example.com",
        "",
        "https://" + "a" * 200 + ".example",
        7,
        None,
    ],
)
def test_anything_but_an_exact_origin_is_refused(given: object) -> None:
    with pytest.raises(InvalidRequest) as refused:
        check_origin(given)
    assert refused.value.code == "invalid_origin" and refused.value.param == "allowed_origins"


def test_a_list_drops_duplicates_keeps_order_and_is_bounded() -> None:
    assert check_origins(["https://b.example", "https://a.example", "HTTPS://B.example/"]) == [
        "https://b.example",
        "https://a.example",
    ]
    assert check_origins([]) == []
    with pytest.raises(InvalidRequest) as too_many:
        check_origins([f"https://s{i}.example" for i in range(MAX_ORIGINS + 1)])
    assert too_many.value.code == "too_many_origins"
    with pytest.raises(InvalidRequest):
        check_origins("https://a.example")
    assert parse_origin_lines("https://a.example\r\n\n https://b.example, http://localhost:3000 ") == [
        "https://a.example",
        "https://b.example",
        "http://localhost:3000",
    ]


def test_a_projects_own_list_is_the_rule_and_the_server_wide_list_only_its_fallback() -> None:
    own = ["https://shop.example"]
    assert origin_allowed(own, ["*"], "https://shop.example")
    assert not origin_allowed(own, ["*"], "https://evil.example")  # a project's list narrows even "*"
    assert not origin_allowed(own, ["https://evil.example"], "https://evil.example")
    assert origin_allowed([], ["*"], "https://any.example")
    assert origin_allowed([], ["https://a.example"], "https://a.example")
    assert not origin_allowed([], ["https://a.example"], "https://b.example")
    assert not origin_allowed([], [], "https://a.example")


def project(**settings: object) -> Project:
    return Project(id="proj_1", name="Shop", created_at=datetime(2026, 1, 1, tzinfo=UTC), **settings)  # type: ignore[arg-type]


def test_client_side_amounts_need_the_switch_and_respect_the_maximum() -> None:
    with pytest.raises(PermissionDenied) as off:
        check_client_side_amount(project(), 100)
    assert off.value.code == "client_side_amounts_disabled" and "client_side_amounts" in off.value.message
    assert check_client_side_amount(project(client_side_amounts=True), 250_000) == 250_000
    capped = project(client_side_amounts=True, client_side_amount_max=500)
    assert check_client_side_amount(capped, 500) == 500
    with pytest.raises(InvalidRequest) as above:
        check_client_side_amount(capped, 501)
    assert (above.value.code, above.value.param) == ("amount_above_client_side_max", "amount")
    assert check_client_amount_max(None, 250_000) is None and check_client_amount_max(1, 250_000) == 1
    for bad in (0, -1, 250_001, True, "10", 1.5):
        with pytest.raises(InvalidRequest):
            check_client_amount_max(bad, 250_000)


def test_publishable_keys_have_their_own_shape() -> None:
    for mode in Mode:
        key = generate_publishable_key(mode)
        assert key.startswith(f"pk_{mode.value}_") and len(key) == 32
        assert publishable_key_mode(key) is mode
    assert publishable_key_mode("sk_test_" + "a" * 32) is None
    assert publishable_key_mode("pk_test_short") is None


# --- ProjectService over the shared in-memory ports -------------------------------------------------


def _service(db: MemoryDatabase, ttl: float = 60.0) -> ProjectService:
    return ProjectService(
        db, SecretBox([bytes(range(32))]), ManualClock(datetime(2026, 1, 1, tzinfo=UTC)), key_cache_ttl=ttl
    )


async def test_a_new_project_has_a_publishable_key_per_mode_that_names_it_and_rotates() -> None:
    db = MemoryDatabase()
    service = _service(db)
    project, _ = await service.create_project("Shop")
    keys = await service.publishable_keys(project.id)
    assert set(keys) == set(Mode) and keys[Mode.LIVE].key.startswith("pk_live_")
    caller = await service.authenticate_publishable(keys[Mode.TEST].key)
    assert (caller.tenant.project_id, caller.tenant.mode, caller.project.id) == (project.id, Mode.TEST, project.id)
    new, old = await service.rotate_publishable_key(project.id, Mode.TEST)
    assert old.key == keys[Mode.TEST].key and new.key != old.key
    with pytest.raises(AuthenticationFailed):  # stops at once here, even with a long cache TTL
        await service.authenticate_publishable(old.key)
    assert (await service.authenticate_publishable(new.key)).tenant.mode is Mode.TEST
    assert (await service.publishable_keys(project.id))[Mode.LIVE].key == keys[Mode.LIVE].key
    with pytest.raises(AuthenticationFailed):
        await service.authenticate_publishable("sk_test_" + "a" * 32)


async def test_a_project_found_without_keys_gets_them_when_they_are_read() -> None:
    shop = project()
    db = MemoryDatabase(projects=[shop])
    keys = await _service(db).publishable_keys(shop.id)
    assert set(keys) == set(Mode)
    again = await _service(db).publishable_keys(shop.id)  # stored: the same keys the next time
    assert {m: k.key for m, k in again.items()} == {m: k.key for m, k in keys.items()}


async def test_browser_settings_are_checked_saved_and_seen_at_once_by_a_cached_key() -> None:
    db = MemoryDatabase()
    service = _service(db)
    shop, _ = await service.create_project("Shop")
    key = (await service.publishable_keys(shop.id))[Mode.TEST].key
    assert (await service.authenticate_publishable(key)).project.client_side_amounts is False  # now cached
    with pytest.raises(InvalidRequest):
        await service.update_browser_settings(shop.id, allowed_origins=["*"], highest_amount=250_000)
    changed = await service.update_browser_settings(
        shop.id,
        client_side_amounts=True,
        client_side_amount_max=900,
        allowed_origins=["https://Shop.example/"],
        highest_amount=250_000,
    )
    assert (changed.client_side_amounts, changed.client_side_amount_max, changed.allowed_origins) == (
        True,
        900,
        ["https://shop.example"],
    )
    seen = (await service.authenticate_publishable(key)).project
    assert seen.client_side_amounts and seen.allowed_origins == ["https://shop.example"]
    kept = await service.update_browser_settings(shop.id, client_side_amounts=False, highest_amount=250_000)
    assert kept.allowed_origins == ["https://shop.example"] and kept.client_side_amount_max == 900
