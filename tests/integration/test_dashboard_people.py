"""The people pages over HTTP, in-process, on SQLite and PostgreSQL: members listed to every member
and only theirs, owners invite (the link by the development mailer), change roles and remove; the
platform admin's list of accounts, where disabling one ends its sessions."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.fixtures.bridge import InProcessBridge
from tests.fixtures.dashboard import PASSWORD, add_account, browser_client, csrf_in, post_form_async, sign_in_async

_LINK = re.compile(r"/dashboard/invite/[A-Za-z0-9_-]+")


class Shop:
    def __init__(self, bridge: InProcessBridge, project_id: str) -> None:
        self.bridge, self.project_id = bridge, project_id
        self.clients: list[httpx.AsyncClient] = []
        self.ids: dict[str, str] = {}

    async def person(self, email: str, role: str | None = None, *, admin: bool = False) -> httpx.AsyncClient:
        project = self.project_id if role is not None else None
        self.ids[email] = await add_account(
            self.bridge.runtime, email, project_id=project, role=role or "owner", admin=admin
        )
        return await self.signed_in(email)

    async def signed_in(self, email: str, password: str = PASSWORD) -> httpx.AsyncClient:
        client = browser_client(self.bridge.app)
        self.clients.append(client)
        assert (await sign_in_async(client, email, password)).status_code == 303
        return client


@pytest.fixture
async def shop(bridge: InProcessBridge) -> Any:
    tenant = await bridge.create_project("Shop")
    shop = Shop(bridge, tenant.project_id)
    yield shop
    for client in shop.clients:
        await client.aclose()


def members_of(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-member="([^"]+)" data-role="([^"]+)"', html))


async def post(client: httpx.AsyncClient, path: str, data: dict[str, str]) -> httpx.Response:
    return await post_form_async(client, path, data, token_from="/dashboard/people")


async def test_every_member_sees_the_people_of_their_project_only(shop: Shop) -> None:
    owner = await shop.person("owner@example.com", "owner")
    viewer = await shop.person("viewer@example.com", "viewer")
    other = await shop.bridge.create_project("Other")
    await add_account(shop.bridge.runtime, "stranger@example.com", project_id=other.project_id, role="owner")
    page = await viewer.get("/dashboard/people")
    assert page.status_code == 200
    assert members_of(page.text) == {"owner@example.com": "owner", "viewer@example.com": "viewer"}
    assert "stranger@example.com" not in page.text
    assert "Invite someone" not in page.text  # a viewer changes nothing
    assert "Invite someone" in (await owner.get("/dashboard/people")).text


async def test_only_owners_change_people_and_only_with_a_csrf_token(shop: Shop) -> None:
    await shop.person("owner@example.com", "owner")
    developer = await shop.person("dev@example.com", "developer")
    viewer_id = await add_account(shop.bridge.runtime, "v@example.com", project_id=shop.project_id, role="viewer")
    refused = await post(developer, "/dashboard/people/invite", {"email": "x@example.com", "role": "owner"})
    assert refused.status_code == 403
    promoted = await post(developer, f"/dashboard/people/{viewer_id}/role", {"role": "owner"})
    assert promoted.status_code == 403
    owner = shop.clients[0]
    no_token = await owner.post("/dashboard/people/invite", data={"email": "x@example.com", "role": "viewer"})
    assert no_token.status_code == 403
    assert shop.bridge.runtime.people._mailer.sent == []
    assert members_of((await owner.get("/dashboard/people")).text)["v@example.com"] == "viewer"


async def test_invite_accept_and_the_new_member_sees_the_project(shop: Shop) -> None:
    owner = await shop.person("owner@example.com", "owner")
    bad = await post(owner, "/dashboard/people/invite", {"email": "not-an-email", "role": "viewer"})
    assert bad.status_code == 400
    assert "name@example.com" in bad.text
    sent = await post(owner, "/dashboard/people/invite", {"email": "New@Example.com", "role": "developer"})
    assert sent.status_code == 303
    page = (await owner.get(sent.headers["location"])).text
    assert "The invitation was sent" in page
    assert 'data-invite="new@example.com"' in page
    to, _, body = shop.bridge.runtime.people._mailer.sent[-1]
    assert to == "new@example.com"
    link = _LINK.search(body)
    assert link is not None
    assert link.group(0) not in page  # the link is a credential: only in the email
    newcomer = browser_client(shop.bridge.app)
    shop.clients.append(newcomer)
    form = await newcomer.get(link.group(0))
    accepted = await newcomer.post(
        link.group(0), data={"csrf_token": csrf_in(form.text), "password": PASSWORD, "name": "Newcomer"}
    )
    assert accepted.status_code == 303
    home = await newcomer.get("/dashboard/")
    assert home.status_code == 200
    assert "Shop" in home.text
    people = await newcomer.get("/dashboard/people")
    assert members_of(people.text)["new@example.com"] == "developer"
    assert (await newcomer.get("/dashboard/settings")).status_code == 200  # a developer's page
    again = await newcomer.get(link.group(0))
    assert again.status_code == 400
    assert "expired or was used" in again.text
    assert 'data-invite="new@example.com"' not in (await owner.get("/dashboard/people")).text


async def test_owner_changes_roles_removes_and_keeps_one_owner(shop: Shop) -> None:
    owner = await shop.person("owner@example.com", "owner")
    member = await shop.person("member@example.com", "viewer")
    member_id = shop.ids["member@example.com"]
    assert (await member.get("/dashboard/settings")).status_code == 403
    assert (await post(owner, f"/dashboard/people/{member_id}/role", {"role": "developer"})).status_code == 303
    assert (await member.get("/dashboard/settings")).status_code == 200
    last = await post(owner, f"/dashboard/people/{shop.ids['owner@example.com']}/role", {"role": "viewer"})
    assert last.status_code == 400
    assert "needs an owner" in last.text
    assert (await post(owner, f"/dashboard/people/{member_id}/role", {"role": "remove"})).status_code == 303
    assert "member@example.com" not in members_of((await owner.get("/dashboard/people")).text)
    gone = await member.get("/dashboard/people")
    assert gone.status_code == 303  # no project any more: to the page that creates one
    activity = (await owner.get("/dashboard/settings")).text
    assert "member.role_changed" in activity and "member.removed" in activity


async def test_admin_lists_every_account_and_disabling_ends_sessions(shop: Shop) -> None:
    admin = await shop.person("admin@example.com", admin=True)
    owner = await shop.person("owner@example.com", "owner")
    other = await shop.bridge.create_project("Other")
    await add_account(shop.bridge.runtime, "stranger@example.com", project_id=other.project_id, role="viewer")
    assert (await owner.get("/dashboard/admin/users")).status_code == 403
    listing = await admin.get("/dashboard/admin/users")
    assert listing.status_code == 200
    for email in ("admin@example.com", "owner@example.com", "stranger@example.com"):
        assert f'data-user="{email}" data-state="active"' in listing.text
    token = csrf_in((await owner.get("/dashboard/people")).text)
    owner_id = shop.ids["owner@example.com"]
    refused = await owner.post(f"/dashboard/admin/users/{owner_id}/disable", data={"csrf_token": token})
    assert refused.status_code == 403
    users = "/dashboard/admin/users"
    disabled = await post_form_async(admin, f"{users}/{owner_id}/disable", {}, token_from=users)
    assert disabled.status_code == 303
    ended = await owner.get("/dashboard/people")
    assert ended.status_code == 303
    assert ended.headers["location"].startswith("/dashboard/signin")
    async with browser_client(shop.bridge.app) as again:
        assert (await sign_in_async(again, "owner@example.com")).status_code != 303
    assert 'data-user="owner@example.com" data-state="disabled"' in (await admin.get("/dashboard/admin/users")).text
    await post_form_async(admin, f"{users}/{owner_id}/enable", {}, token_from=users)
    await shop.signed_in("owner@example.com")


async def test_owner_withdraws_an_invitation_and_its_link_stops_working(shop: Shop) -> None:
    owner = await shop.person("owner@example.com", "owner")
    invited = await post(owner, "/dashboard/people/invite", {"email": "late@example.com", "role": "viewer"})
    assert invited.status_code == 303
    link = _LINK.search(shop.bridge.runtime.people._mailer.sent[-1][2])
    assert link is not None
    page = (await owner.get("/dashboard/people")).text
    withdraw = re.search(r'action="(/dashboard/people/invites/[0-9a-f]+/revoke)"', page)
    assert withdraw is not None
    other = await shop.bridge.create_project("Other")
    stranger = browser_client(shop.bridge.app)
    shop.clients.append(stranger)
    await add_account(shop.bridge.runtime, "stranger@example.com", project_id=other.project_id, role="owner")
    assert (await sign_in_async(stranger, "stranger@example.com")).status_code == 303
    foreign = await post_form_async(stranger, withdraw.group(1), {}, token_from="/dashboard/people")
    assert foreign.status_code == 404  # not an invitation of the stranger's project
    assert (await post(owner, withdraw.group(1), {})).status_code == 303
    assert 'data-invite="late@example.com"' not in (await owner.get("/dashboard/people")).text
    async with browser_client(shop.bridge.app) as anyone:
        assert (await anyone.get(link.group(0))).status_code == 400
    assert "member.invite_revoked" in (await owner.get("/dashboard/settings")).text
