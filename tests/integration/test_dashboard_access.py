"""The dashboard's doors over plain HTTP, in-process, on SQLite and PostgreSQL: sign-in, CSRF,
session fixation, idle and absolute expiry, lockout, sign-out everywhere, resets, invitations,
disabled accounts, and one project's people kept out of another project."""

from __future__ import annotations

import re

import pytest

from mpesa_bridge.core.people.entity import Role
from tests.fixtures.bridge import InProcessBridge
from tests.fixtures.dashboard import (
    PASSWORD,
    add_account,
    browser_client,
    csrf_in,
    post_form_async,
    sign_in_async,
)

LINK = re.compile(r"http://bridge\.test(/dashboard/(?:reset|invite)/[A-Za-z0-9_\-]+)")


async def setup(bridge: InProcessBridge, role: str = "owner") -> tuple[str, str]:
    tenant = await bridge.create_project("Shop")
    email = f"{role}@example.com"
    await add_account(bridge.runtime, email, project_id=tenant.project_id, role=role)
    return tenant.project_id, email


def sent_links(bridge: InProcessBridge) -> list[str]:
    mailer = bridge.runtime.people._mailer
    return [m.group(1) for _, _, body in mailer.sent for m in [LINK.search(body)] if m]  # type: ignore[attr-defined]


async def test_signing_in_sets_a_private_cookie_and_shows_the_project(bridge: InProcessBridge) -> None:
    _, email = await setup(bridge)
    async with browser_client(bridge.app) as client:
        answer = await sign_in_async(client, email)
        assert answer.status_code == 303 and answer.headers["location"] == "/dashboard/"
        cookie = next(h for h in answer.headers.get_list("set-cookie") if h.startswith("mb_session="))
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/dashboard" in cookie
        page = await client.get("/dashboard/")
    assert page.status_code == 200 and "Shop" in page.text and "Overview" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"


async def test_pages_send_the_signed_out_to_sign_in_and_back(bridge: InProcessBridge) -> None:
    async with browser_client(bridge.app) as client:
        answer = await client.get("/dashboard/account?tab=sessions")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/dashboard/signin?next=/dashboard/account%3Ftab%3Dsessions"


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/dashboard\\@evil", "/other"])
async def test_the_next_page_is_never_another_site(bridge: InProcessBridge, target: str) -> None:
    _, email = await setup(bridge)
    async with browser_client(bridge.app) as client:
        page = await client.get("/dashboard/signin")
        answer = await client.post(
            "/dashboard/signin",
            data={"csrf_token": csrf_in(page.text), "email": email, "password": PASSWORD, "next": target},
        )
    assert answer.status_code == 303 and answer.headers["location"] == "/dashboard/"


async def test_a_wrong_password_and_an_unknown_email_get_the_same_answer(bridge: InProcessBridge) -> None:
    _, email = await setup(bridge)
    async with browser_client(bridge.app) as client:
        wrong = await sign_in_async(client, email, "not the password at all")
        unknown = await sign_in_async(client, "nobody@example.com", PASSWORD)
    assert wrong.status_code == unknown.status_code == 400
    assert "Wrong email or password." in wrong.text and "Wrong email or password." in unknown.text
    assert "mb_session" not in wrong.headers.get("set-cookie", "")


async def test_failures_in_a_row_lock_the_account_with_growing_waits(bridge: InProcessBridge) -> None:
    _, email = await setup(bridge)
    async with browser_client(bridge.app) as client:
        for _ in range(3):
            assert (await sign_in_async(client, email, "wrong password 123")).status_code == 400
        locked = await sign_in_async(client, email)  # the right password, during the wait
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) in (2, 3)
        bridge.clock.advance(3)
        assert (await sign_in_async(client, email, "wrong password 123")).status_code == 400  # 4th: 4 s
        bridge.clock.advance(3)
        assert (await sign_in_async(client, email)).status_code == 429
        bridge.clock.advance(2)
        assert (await sign_in_async(client, email)).status_code == 303
        # A success resets the count: one new failure does not lock.
        async with browser_client(bridge.app) as other:
            assert (await sign_in_async(other, email, "wrong password 123")).status_code == 400
            assert (await sign_in_async(other, email)).status_code == 303


async def test_the_lock_stops_at_fifteen_minutes(bridge: InProcessBridge) -> None:
    _, email = await setup(bridge)
    async with browser_client(bridge.app) as client:
        for _ in range(12):
            await sign_in_async(client, email, "wrong password 123")
            bridge.clock.advance(15 * 60)
        await sign_in_async(client, email, "wrong password 123")
        locked = await sign_in_async(client, email)
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) == 15 * 60 + 1


async def test_a_state_change_without_the_right_csrf_token_is_refused(bridge: InProcessBridge) -> None:
    _, email = await setup(bridge)
    async with browser_client(bridge.app) as client, browser_client(bridge.app) as other:
        await sign_in_async(client, email)
        await sign_in_async(other, email)
        others_token = csrf_in((await other.get("/dashboard/account")).text)
        path = "/dashboard/account/signout-everywhere"
        missing = await client.post(path, data={})
        wrong = await client.post(path, data={"csrf_token": "x" * 43})
        borrowed = await client.post(path, data={"csrf_token": others_token})
        own = csrf_in((await client.get("/dashboard/account")).text)
        cross_site = await client.post(path, data={"csrf_token": own}, headers={"Origin": "https://evil.example"})
        assert [r.status_code for r in (missing, wrong, borrowed, cross_site)] == [403, 403, 403, 403]
        assert "Form refused" in missing.text
        assert (await client.get("/dashboard/")).status_code == 200  # nothing happened
        assert (await post_form_async(client, path, {})).status_code == 303  # the real form works


async def test_signing_in_needs_the_csrf_cookie_of_the_sign_in_page(bridge: InProcessBridge) -> None:
    _, email = await setup(bridge)
    async with browser_client(bridge.app) as attacker, browser_client(bridge.app) as victim:
        token = csrf_in((await attacker.get("/dashboard/signin")).text)
        # Login CSRF: a form on another site posts the attacker's token; the victim has no such cookie.
        answer = await victim.post(
            "/dashboard/signin", data={"csrf_token": token, "email": email, "password": PASSWORD}
        )
    assert answer.status_code == 403


async def test_a_session_planted_before_sign_in_is_never_the_signed_in_one(bridge: InProcessBridge) -> None:
    _, email = await setup(bridge)
    await add_account(bridge.runtime, "attacker@example.com")
    async with browser_client(bridge.app) as attacker, browser_client(bridge.app) as victim:
        await sign_in_async(attacker, "attacker@example.com")
        planted = attacker.cookies["mb_session"]
        form = await victim.get("/dashboard/signin")  # the victim opens the sign-in page, then the cookie is planted
        victim.cookies.set("mb_session", planted, domain="bridge.test", path="/dashboard")
        answer = await victim.post(
            "/dashboard/signin", data={"csrf_token": csrf_in(form.text), "email": email, "password": PASSWORD}
        )
        assert answer.status_code == 303
        assert victim.cookies["mb_session"] != planted
        assert (await victim.get("/dashboard/account")).text.count(email) >= 1
        # The planted session was ended by the sign-in over it: the attacker is signed out.
        assert (await attacker.get("/dashboard/")).status_code == 303
    async with browser_client(bridge.app) as guess:
        guess.cookies.set("mb_session", "chosen-by-the-attacker", domain="bridge.test", path="/dashboard")
        await sign_in_async(guess, email)
        assert guess.cookies["mb_session"] != "chosen-by-the-attacker"


async def test_a_session_ends_when_idle_and_at_its_absolute_expiry(bridge: InProcessBridge) -> None:
    _, email = await setup(bridge)
    policy = bridge.runtime.people.policy
    async with browser_client(bridge.app) as client:
        await sign_in_async(client, email)
        bridge.clock.advance(policy.idle.total_seconds() - 5)
        assert (await client.get("/dashboard/")).status_code == 200  # activity moves the idle limit
        bridge.clock.advance(policy.idle.total_seconds() - 5)
        assert (await client.get("/dashboard/")).status_code == 200
        bridge.clock.advance(policy.idle.total_seconds() + 1)
        assert (await client.get("/dashboard/")).status_code == 303
    async with browser_client(bridge.app) as client:
        await sign_in_async(client, email)
        step = policy.idle.total_seconds() / 2
        elapsed = 0.0
        while elapsed + step < policy.absolute.total_seconds():
            bridge.clock.advance(step)
            elapsed += step
            assert (await client.get("/dashboard/")).status_code == 200
        bridge.clock.advance(policy.absolute.total_seconds() - elapsed)
        assert (await client.get("/dashboard/")).status_code == 303


async def test_sign_out_everywhere_and_a_password_change_end_the_other_sessions(bridge: InProcessBridge) -> None:
    _, email = await setup(bridge)
    async with browser_client(bridge.app) as laptop, browser_client(bridge.app) as phone:
        await sign_in_async(laptop, email)
        await sign_in_async(phone, email)
        changed = await post_form_async(
            laptop, "/dashboard/account/password", {"current": PASSWORD, "password": "a brand new passphrase"}
        )
        assert changed.status_code == 200 and "was changed" in changed.text
        assert (await laptop.get("/dashboard/")).status_code == 200
        assert (await phone.get("/dashboard/")).status_code == 303
        await sign_in_async(phone, email, "a brand new passphrase")
        assert (await post_form_async(phone, "/dashboard/account/signout-everywhere", {})).status_code == 303
        assert (await laptop.get("/dashboard/")).status_code == 303
        assert (await phone.get("/dashboard/")).status_code == 303


async def test_a_weak_new_password_is_refused_beside_its_field(bridge: InProcessBridge) -> None:
    _, email = await setup(bridge)
    async with browser_client(bridge.app) as client:
        await sign_in_async(client, email)
        answer = await post_form_async(
            client, "/dashboard/account/password", {"current": PASSWORD, "password": "short"}
        )
    assert answer.status_code == 400
    assert 'id="f-password-error"' in answer.text and "at least 10 characters" in answer.text


async def test_a_reset_link_works_once_within_the_hour(bridge: InProcessBridge) -> None:
    _, email = await setup(bridge)
    async with browser_client(bridge.app) as client:
        for address in (email, "nobody@example.com"):
            asked = await post_form_async(
                client, "/dashboard/forgot", {"email": address}, token_from="/dashboard/forgot"
            )
            assert asked.status_code == 200 and "If an account exists" in asked.text  # the same either way
        [link] = sent_links(bridge)
        page = await client.get(link)
        done = await client.post(link, data={"csrf_token": csrf_in(page.text), "password": "my new long passphrase"})
        assert done.status_code == 200 and "Password changed" in done.text
        again = await client.post(link, data={"csrf_token": csrf_in(page.text), "password": "another long passphrase"})
        assert again.status_code == 400 and "expired or was used" in again.text
        assert (await sign_in_async(client, email, "my new long passphrase")).status_code == 303
        await post_form_async(client, "/dashboard/forgot", {"email": email}, token_from="/dashboard/forgot")
        late = sent_links(bridge)[-1]
        bridge.clock.advance(3601)
        page = await client.get(late)
        expired = await client.post(late, data={"csrf_token": csrf_in(page.text), "password": "yet another passphrase"})
    assert expired.status_code == 400


async def test_an_invitation_makes_a_member_once(bridge: InProcessBridge) -> None:
    project_id, owner_email = await setup(bridge)
    async with browser_client(bridge.app) as owner:
        await sign_in_async(owner, owner_email)
        identity = await bridge.runtime.people.identify(owner.cookies["mb_session"])
        assert identity is not None
        await bridge.runtime.people.invite(identity, project_id, "new@example.com", Role.VIEWER)
    [link] = sent_links(bridge)
    async with browser_client(bridge.app) as newcomer:
        page = await newcomer.get(link)
        assert page.status_code == 200 and "new@example.com" in page.text
        joined = await newcomer.post(
            link, data={"csrf_token": csrf_in(page.text), "name": "New", "password": "newcomer passphrase"}
        )
        assert joined.status_code == 303
        overview = await newcomer.get("/dashboard/")
        assert overview.status_code == 200 and "Shop" in overview.text and "viewer" in overview.text
        reused = await newcomer.post(link, data={"csrf_token": csrf_in(page.text), "password": "newcomer passphrase"})
    assert reused.status_code == 400


async def test_a_disabled_account_is_signed_out_and_cannot_sign_in(bridge: InProcessBridge) -> None:
    _, email = await setup(bridge)
    await add_account(bridge.runtime, "root@example.com", admin=True)
    async with browser_client(bridge.app) as admin, browser_client(bridge.app) as person:
        await sign_in_async(admin, "root@example.com")
        await sign_in_async(person, email)
        identity = await bridge.runtime.people.identify(admin.cookies["mb_session"])
        user = await bridge.runtime.people.create_user("x@example.com", PASSWORD)  # any other account
        target = next(u for u in await bridge.runtime.people.users() if u.email == email)
        assert identity is not None and user is not None
        await bridge.runtime.people.set_disabled(identity, target.id, True)
        assert (await person.get("/dashboard/")).status_code == 303
        assert (await sign_in_async(person, email)).status_code == 400
        await bridge.runtime.people.set_disabled(identity, target.id, False)
        assert (await sign_in_async(person, email)).status_code == 303


async def test_one_projects_people_cannot_open_another_project(bridge: InProcessBridge) -> None:
    _, email = await setup(bridge)
    other = await bridge.create_project("Other shop")
    async with browser_client(bridge.app) as client:
        await sign_in_async(client, email)
        page = await client.get("/dashboard/")
        assert "Other shop" not in page.text
        switched = await post_form_async(
            client, "/dashboard/projects/switch", {"project_id": other.project_id, "mode": "test"}
        )
        assert switched.status_code == 404
        assert "Other shop" not in (await client.get("/dashboard/")).text


async def test_a_platform_admin_sees_every_project(bridge: InProcessBridge) -> None:
    await setup(bridge)
    await bridge.create_project("Other shop")
    await add_account(bridge.runtime, "root@example.com", admin=True)
    async with browser_client(bridge.app) as client:
        await sign_in_async(client, "root@example.com")
        page = await client.get("/dashboard/")
    assert "Shop" in page.text and "Other shop" in page.text


async def test_a_person_with_no_project_is_asked_to_create_one_or_wait(bridge: InProcessBridge) -> None:
    await add_account(bridge.runtime, "alone@example.com")
    async with browser_client(bridge.app) as client:
        await sign_in_async(client, "alone@example.com")
        home = await client.get("/dashboard/")
        assert home.status_code == 303 and home.headers["location"] == "/dashboard/projects/new"
        page = await client.get("/dashboard/projects/new")
        assert "You belong to no project yet" in page.text
        refused = await client.post("/dashboard/projects", data={"csrf_token": csrf_in(page.text), "name": "Mine"})
    assert refused.status_code == 403


async def test_an_owner_creates_a_project_and_sees_its_keys_once(bridge: InProcessBridge) -> None:
    _, email = await setup(bridge)
    async with browser_client(bridge.app) as client:
        await sign_in_async(client, email)
        made = await post_form_async(
            client, "/dashboard/projects", {"name": "Second shop"}, token_from="/dashboard/projects/new"
        )
        assert made.status_code == 200 and "Second shop" in made.text
        assert len(re.findall(r"sk_test_[A-Za-z0-9]{32}", made.text)) >= 1 and re.search(
            r"sk_live_[A-Za-z0-9]{32}", made.text
        )
        overview = await client.get("/dashboard/")
    assert "Second shop" in overview.text and re.search(r"sk_(test|live)_", overview.text) is None


async def test_the_language_follows_the_choice_then_the_browser(bridge: InProcessBridge) -> None:
    async with browser_client(bridge.app) as client:
        swahili = await client.get("/dashboard/signin", headers={"Accept-Language": "sw-KE,sw;q=0.9,en;q=0.5"})
        assert '<html lang="sw">' in swahili.text and "Ingia" in swahili.text
        chosen = await client.get("/dashboard/language?set=en&next=/dashboard/signin")
        assert chosen.status_code == 303
        english = await client.get("/dashboard/signin", headers={"Accept-Language": "sw"})
    assert '<html lang="en">' in english.text and "Sign in" in english.text


async def test_unknown_dashboard_pages_are_a_rendered_404(bridge: InProcessBridge) -> None:
    async with browser_client(bridge.app) as client:
        answer = await client.get("/dashboard/no-such-page")
    assert answer.status_code == 404 and "<h1>" in answer.text


async def test_housekeeping_deletes_only_the_sessions_that_ended(bridge: InProcessBridge) -> None:
    _, email = await setup(bridge)
    people = bridge.runtime.people
    async with browser_client(bridge.app) as old, browser_client(bridge.app) as fresh:
        await sign_in_async(old, email)
        bridge.clock.advance(people.policy.idle.total_seconds() - 60)
        await sign_in_async(fresh, email)
        bridge.clock.advance(61)  # the first is now idle too long; the second is a minute old
        assert await people.prune_sessions() == 1
        assert await people.prune_sessions() == 0
        assert (await fresh.get("/dashboard/")).status_code == 200
        assert (await old.get("/dashboard/")).status_code == 303
