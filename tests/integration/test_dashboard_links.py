"""The dashboard's payment links in-process, on SQLite and PostgreSQL: the list with each link's
totals and pages, the create form (every field the API takes, each refusal beside its field, in
English and Kiswahili), edit, deactivate and reactivate, who may change what (the server refuses a
viewer, not only the page), CSRF, projects and modes kept apart, the QR downloads of a link and of a
checkout session read back by a real decoder, and the audit trail."""

from __future__ import annotations

import contextlib
import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from mpesa_bridge.core.clock import ManualClock
from mpesa_bridge.core.projects import Mode
from mpesa_bridge.core.projects import Tenant as CoreTenant
from mpesa_bridge.dashboard.pages.links import PAGE
from mpesa_bridge.qr import qr_svg
from mpesa_bridge.storage.people import PeopleStorage
from tests.fixtures.bridge import InProcessBridge, Tenant
from tests.fixtures.dashboard import add_account, browser_client, csrf_in, post_form_async, sign_in_async
from tests.fixtures.qr import decode_png

NAIROBI = ZoneInfo("Africa/Nairobi")
LINK_ID = re.compile(r"/dashboard/links/(plink_[A-Za-z0-9]+)")


@pytest.fixture
def simulator_overrides(clock: ManualClock) -> dict[str, Any]:
    return {"now": clock.now}


async def shop(bridge: InProcessBridge, name: str) -> tuple[Tenant, dict[str, str]]:
    tenant = await bridge.create_project(name)
    emails = {}
    for role in ("owner", "developer", "viewer"):
        emails[role] = f"{role}-{name.lower()}@example.com"
        await add_account(bridge.runtime, emails[role], project_id=tenant.project_id, role=role)
    return tenant, emails


@contextlib.asynccontextmanager
async def person(bridge: InProcessBridge, email: str) -> AsyncIterator[httpx.AsyncClient]:
    async with browser_client(bridge.app) as client:
        response = await sign_in_async(client, email)
        assert response.status_code == 303, response.text
        yield client


def form(**fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"title": "School fees, term 1", "pricing": "fixed", "amount": "1500", "active": "on"}
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


async def create(client: httpx.AsyncClient, **fields: Any) -> str:
    response = await post_form_async(client, "/dashboard/links", form(**fields), token_from="/dashboard/links")
    assert response.status_code == 303, response.text
    found = LINK_ID.search(response.headers["location"])
    assert found and response.headers["location"].endswith("?done=created")
    return found.group(1)


async def api_link(bridge: InProcessBridge, tenant: Tenant, link_id: str) -> dict[str, Any]:
    response = await bridge.client.get(f"/v1/payment_links/{link_id}", headers=tenant.headers())
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def errors_of(html: str) -> dict[str, str]:
    """Each refusal shown beside its field: field name -> message."""
    found = dict(re.findall(r'id="f-([a-z_]+)-error" role="alert">([^<]+)<', html))
    return {k: v.replace("&#39;", "'") for k, v in found.items()}


async def audit(bridge: InProcessBridge, tenant: Tenant) -> list[tuple[str, str | None]]:
    """(action, target) of the project's audit trail, oldest first."""
    async with PeopleStorage(bridge.db).read() as uow:
        entries = await uow.people.audit(tenant.project_id, 100)
    return sorted((e.id, e.action, e.target) for e in entries)  # type: ignore[return-value]


async def open_session_of(bridge: InProcessBridge, link: dict[str, Any]) -> str:
    """A checkout session of `link`, as its page's form opens one (without the push)."""
    session = await bridge.runtime.links.open_session(await bridge.runtime.links.by_slug(link["slug"]))
    return session.id


async def test_a_developer_creates_links_and_the_list_shows_them_with_their_totals(bridge: InProcessBridge) -> None:
    tenant, emails = await shop(bridge, "Alpha")
    async with person(bridge, emails["developer"]) as dev, person(bridge, emails["owner"]) as owner:
        empty = await dev.get("/dashboard/links")
        assert empty.status_code == 200 and "No payment links yet" in empty.text
        assert 'action="/dashboard/links#create-title"' in empty.text  # the create form
        expires = (bridge.clock.now() + timedelta(days=30)).astimezone(NAIROBI).strftime("%Y-%m-%dT%H:%M")
        fixed = await create(
            dev,
            description="Pay before the 5th",
            expires_at=expires,
            max_payments="40",
            collect=["reference", "name"],
            metadata='{"class": "4B"}',
        )
        ranged = await create(dev, title="Harambee", pricing="range", amount="", amount_min="50", amount_max="5000")

        link = await api_link(bridge, tenant, fixed)  # made through the same service the API reads
        assert link["title"] == "School fees, term 1" and link["amount"] == 1500 and link["active"] is True
        assert link["description"] == "Pay before the 5th" and link["max_payments"] == 40
        assert link["collect"] == ["name", "reference"] and link["metadata"] == {"class": "4B"}
        assert link["expires_at"].startswith((bridge.clock.now() + timedelta(days=30)).strftime("%Y-%m-%dT"))
        other = await api_link(bridge, tenant, ranged)
        assert other["amount"] is None and (other["amount_min"], other["amount_max"]) == (50, 5000)

        detail = await dev.get(f"/dashboard/links/{fixed}?done=created")
        assert detail.status_code == 200 and "The link was created" in detail.text
        assert link["url"] in detail.text and f"/dashboard/links/{fixed}/qr.svg" in detail.text
        assert f"/dashboard/links/{fixed}/qr.png" in detail.text

        listed = await dev.get("/dashboard/links")
        rows = re.findall(r'<tr data-link="(plink_[^"]+)">', listed.text)
        assert rows == [ranged, fixed]  # newest first
        assert link["url"] in listed.text and other["url"] in listed.text
        assert "KES 1,500" in listed.text and "KES 50 to KES 5,000, the customer chooses" in listed.text
        assert listed.text.count("data:image/svg+xml;base64,") == 2  # each row's QR thumbnail

        trail = await audit(bridge, tenant)
        assert [(action, target) for _, action, target in trail] == [
            ("payment_link.created", fixed),
            ("payment_link.created", ranged),
        ]
        shown = await owner.get("/dashboard/settings")  # the owners' "Activity"
        assert shown.text.count("<code>payment_link.created</code>") == 2


async def test_the_list_shows_each_links_payments_and_pages_through_many(bridge: InProcessBridge) -> None:
    tenant, emails = await shop(bridge, "Alpha")
    async with person(bridge, emails["developer"]) as dev:
        paid = await create(dev, amount="250")
        link = await api_link(bridge, tenant, paid)
        session_id = await open_session_of(bridge, link)
        core = CoreTenant(tenant.project_id, Mode.TEST)
        session = await bridge.runtime.checkout.get(core, session_id)
        payment = await bridge.runtime.checkout.pay(session, phone="0708374149", amount=None)
        await bridge.wait_status(tenant, payment.id, "succeeded")
        for n in range(PAGE):
            bridge.clock.advance(1)  # ids are time-ordered: one page of newer links
            await bridge.runtime.links.create(core, _plain_link(bridge, f"Link {n}"))

        first = await dev.get("/dashboard/links")
        assert len(re.findall(r"<tr data-link=", first.text)) == PAGE and paid not in first.text
        next_url = re.search(r'href="(/dashboard/links\?after=[^"]+)" rel="next"', first.text)
        assert next_url, "a second page"
        second = await dev.get(next_url.group(1).replace("&amp;", "&"))
        row = re.search(rf'<tr data-link="{paid}">(.*?)</tr>', second.text, re.S)
        assert row, "the paid link is on the second page"
        assert re.search(r"data-link-payments>1<", row.group(1)) and "KES 250</td>" in row.group(1)
        detail = await dev.get(f"/dashboard/links/{paid}")
        assert re.search(r"data-link-payments>1<", detail.text) and re.search(r"data-link-amount>KES 250<", detail.text)


def _plain_link(bridge: InProcessBridge, title: str) -> Any:
    from mpesa_bridge.core.links.validation import validate_link_create

    return validate_link_create(
        title=title,
        description=None,
        amount=10,
        amount_min=None,
        amount_max=None,
        active=None,
        expires_at=None,
        max_payments=None,
        collect=None,
        metadata=None,
        limits=bridge.runtime.limits,
        now=bridge.clock.now(),
    )


async def test_a_refused_form_shows_every_error_beside_its_field_in_english_and_swahili(
    bridge: InProcessBridge,
) -> None:
    tenant, emails = await shop(bridge, "Alpha")
    past = (bridge.clock.now() - timedelta(hours=1)).astimezone(NAIROBI).strftime("%Y-%m-%dT%H:%M")
    bad = form(
        title="  ",
        pricing="range",
        amount="",
        amount_min="900",
        amount_max="100",
        expires_at=past,
        max_payments="0",
        metadata="not json",
    )
    async with person(bridge, emails["developer"]) as dev:
        refused = await post_form_async(dev, "/dashboard/links", bad, token_from="/dashboard/links")
        assert refused.status_code == 400
        assert errors_of(refused.text) == {
            "title": "Give the link a title.",
            "amount_min": "The lowest amount must not be above the highest.",
            "expires_at": "Choose a time between 1 minute and 366 days from now.",
            "max_payments": "Enter a whole number from 1 to 1000000, or leave it empty for no limit.",
            "metadata": "Enter a JSON object, or leave it empty.",
        }
        assert 'value="900"' in refused.text and "not json" in refused.text  # what was typed stays
        too_big = await post_form_async(dev, "/dashboard/links", form(amount="abc", title="x" * 101))
        assert too_big.status_code == 400
        assert errors_of(too_big.text) == {
            "title": "At most 100 characters.",
            "amount": "Enter a whole number of shillings.",
        }
        over = await post_form_async(dev, "/dashboard/links", form(amount=str(bridge.runtime.limits.max_amount + 1)))
        assert errors_of(over.text) == {
            "amount": f"Enter an amount from 1 to {bridge.runtime.limits.max_amount} shillings."
        }
        unstorable = await post_form_async(dev, "/dashboard/links", form(metadata='{"note": "a\\u0000b"}'))
        assert errors_of(unstorable.text) == {"metadata": "Enter a JSON object, or leave it empty."}  # no NUL in PG
        missing = await post_form_async(dev, "/dashboard/links", form(amount=""))
        assert errors_of(missing.text) == {"amount": "Enter the amount, or let the customer choose within a range."}

        dev.cookies.set("mb_lang", "sw", domain="bridge.test", path="/")
        swahili = await post_form_async(dev, "/dashboard/links", bad, token_from="/dashboard/links")
        assert swahili.status_code == 400
        assert errors_of(swahili.text) == {
            "title": "Kipe kiungo jina.",
            "amount_min": "Kiasi cha chini kisizidi kiasi cha juu.",
            "expires_at": "Chagua wakati kati ya dakika 1 na siku 366 kuanzia sasa.",
            "max_payments": "Weka nambari kamili kuanzia 1 hadi 1000000, au acha wazi kusiwe na kikomo.",
            "metadata": "Weka kitu cha JSON, au acha wazi.",
        }
        assert "Unda kiungo cha malipo" in swahili.text
    listed = await bridge.client.get("/v1/payment_links", headers=tenant.headers())
    assert listed.json()["data"] == []  # nothing was made


async def test_edit_deactivate_and_reactivate_a_link_with_its_audit(bridge: InProcessBridge) -> None:
    tenant, emails = await shop(bridge, "Alpha")
    async with person(bridge, emails["developer"]) as dev:
        link_id = await create(dev)
        before = await api_link(bridge, tenant, link_id)
        bridge.clock.advance(5)
        soon = (bridge.clock.now() + timedelta(days=2)).astimezone(NAIROBI).strftime("%Y-%m-%dT%H:%M")
        edit = {"title": "School fees", "description": "Term 1", "active": "on", "expires_at": soon}
        saved = await post_form_async(dev, f"/dashboard/links/{link_id}", {**edit, "max_payments": "3"})
        assert saved.status_code == 303 and saved.headers["location"].endswith("?done=saved")
        after = await api_link(bridge, tenant, link_id)
        assert after["title"] == "School fees" and after["description"] == "Term 1" and after["max_payments"] == 3
        assert after["expires_at"] and after["amount"] == before["amount"] and after["active"] is True

        refused = await post_form_async(dev, f"/dashboard/links/{link_id}", {**edit, "max_payments": "many"})
        assert refused.status_code == 400
        assert errors_of(refused.text) == {
            "max_payments": "Enter a whole number from 1 to 1000000, or leave it empty for no limit."
        }
        assert (await api_link(bridge, tenant, link_id))["max_payments"] == 3

        cleared = await post_form_async(
            dev, f"/dashboard/links/{link_id}", {**edit, "expires_at": "", "max_payments": ""}
        )
        assert cleared.status_code == 303
        now = await api_link(bridge, tenant, link_id)
        assert now["expires_at"] is None and now["max_payments"] is None

        off = await post_form_async(dev, f"/dashboard/links/{link_id}/deactivate", {})
        assert off.status_code == 303 and off.headers["location"].endswith("?done=deactivated")
        assert (await api_link(bridge, tenant, link_id))["active"] is False
        page = await dev.get(f"/dashboard/links/{link_id}")
        assert 'data-link-state="inactive"' in page.text and f"/dashboard/links/{link_id}/activate" in page.text
        gone = await bridge.client.get(f"/l/{after['slug']}", follow_redirects=False)
        assert gone.status_code == 410 and "no longer active" in gone.text

        on = await post_form_async(dev, f"/dashboard/links/{link_id}/activate", {})
        assert on.status_code == 303 and (await api_link(bridge, tenant, link_id))["active"] is True
        assert (await bridge.client.get(f"/l/{after['slug']}", follow_redirects=False)).status_code == 200

        unknown = await post_form_async(dev, f"/dashboard/links/{link_id}/delete", {})
        assert unknown.status_code == 404

        trail = [(action, target) for _, action, target in await audit(bridge, tenant)]
        assert trail == [
            ("payment_link.created", link_id),
            ("payment_link.updated", link_id),  # the refused edit changed nothing, and is not recorded
            ("payment_link.updated", link_id),
            ("payment_link.deactivated", link_id),
            ("payment_link.activated", link_id),
        ]


async def test_a_viewer_reads_the_links_but_the_server_refuses_their_changes(bridge: InProcessBridge) -> None:
    tenant, emails = await shop(bridge, "Alpha")
    async with person(bridge, emails["developer"]) as dev, person(bridge, emails["viewer"]) as viewer:
        link_id = await create(dev)
        listed = await viewer.get("/dashboard/links")
        assert listed.status_code == 200 and link_id in listed.text
        assert 'action="/dashboard/links#create-title"' not in listed.text  # no create form
        assert 'href="/dashboard/links"' in listed.text  # the navigation entry
        detail = await viewer.get(f"/dashboard/links/{link_id}")
        assert detail.status_code == 200 and f'action="/dashboard/links/{link_id}' not in detail.text
        assert f"/dashboard/links/{link_id}/qr.png" in detail.text  # downloads stay
        token = csrf_in(listed.text)
        for path, data in (
            ("/dashboard/links", form()),
            (f"/dashboard/links/{link_id}", {"title": "taken over", "active": "on"}),
            (f"/dashboard/links/{link_id}/deactivate", {}),
        ):
            refused = await viewer.post(path, data={"csrf_token": token, **data})
            assert refused.status_code == 403, path
        link = await api_link(bridge, tenant, link_id)
        assert link["title"] == "School fees, term 1" and link["active"] is True
        assert len((await bridge.client.get("/v1/payment_links", headers=tenant.headers())).json()["data"]) == 1


async def test_a_form_without_its_csrf_token_or_from_another_site_is_refused(bridge: InProcessBridge) -> None:
    tenant, emails = await shop(bridge, "Alpha")
    async with person(bridge, emails["developer"]) as dev:
        link_id = await create(dev)
        token = csrf_in((await dev.get("/dashboard/links")).text)
        for path, data in (
            ("/dashboard/links", form()),
            (f"/dashboard/links/{link_id}", {"title": "changed", "active": "on"}),
            (f"/dashboard/links/{link_id}/deactivate", {}),
        ):
            assert (await dev.post(path, data=data)).status_code == 403, path
            assert (await dev.post(path, data={**data, "csrf_token": "x" * 43})).status_code == 403, path
            other_site = await dev.post(
                path, data={**data, "csrf_token": token}, headers={"Origin": "https://evil.example"}
            )
            assert other_site.status_code == 403, path
        link = await api_link(bridge, tenant, link_id)
        assert link["title"] == "School fees, term 1" and link["active"] is True
        assert len((await bridge.client.get("/v1/payment_links", headers=tenant.headers())).json()["data"]) == 1


# Every dashboard route of this page, probed below with another project's and another mode's ids.
PROBED = {
    ("GET", "/links/{link_id}"),
    ("POST", "/links/{link_id}"),
    ("POST", "/links/{link_id}/{action}"),
    ("GET", "/links/{link_id}/{name}"),
    ("GET", "/checkout-sessions/{session_id}/{name}"),
}
OWN_PROJECT_ONLY = {("GET", "/links"), ("POST", "/links")}  # no id: the person's project and mode


def test_every_route_of_the_links_page_is_probed_for_isolation() -> None:
    from mpesa_bridge.dashboard.pages.links import router

    routes = {(m, r.path) for r in router.routes for m in getattr(r, "methods", set())}
    assert routes == PROBED | OWN_PROJECT_ONLY


async def test_a_person_of_another_project_or_mode_cannot_see_or_change_a_link(bridge: InProcessBridge) -> None:
    a, a_emails = await shop(bridge, "Alpha")
    _, b_emails = await shop(bridge, "Beta")
    async with person(bridge, a_emails["owner"]) as alice, person(bridge, b_emails["owner"]) as bob:
        link_id = await create(alice, title="Alpha's fees")
        link = await api_link(bridge, a, link_id)
        session_id = await open_session_of(bridge, link)
        own_session = await alice.get(f"/dashboard/checkout-sessions/{session_id}/qr.png")
        assert own_session.status_code == 200

        async def probe(client: httpx.AsyncClient) -> None:
            listed = await client.get("/dashboard/links")
            assert listed.status_code == 200 and link_id not in listed.text and "Alpha&#39;s fees" not in listed.text
            token = csrf_in(listed.text)
            for path in (
                f"/dashboard/links/{link_id}",
                f"/dashboard/links/{link_id}/qr.svg",
                f"/dashboard/links/{link_id}/qr.png",
                f"/dashboard/checkout-sessions/{session_id}/qr.svg",
                f"/dashboard/checkout-sessions/{session_id}/qr.png",
            ):
                answer = await client.get(path)
                assert answer.status_code == 404, path
                assert "Alpha&#39;s fees" not in answer.text and link["slug"] not in answer.text, path
            for path, data in (
                (f"/dashboard/links/{link_id}", {"title": "taken over", "active": ""}),
                (f"/dashboard/links/{link_id}/deactivate", {}),
                (f"/dashboard/links/{link_id}/activate", {}),
            ):
                answer = await client.post(path, data={"csrf_token": token, **data})
                assert answer.status_code == 404, path

        await probe(bob)  # another project
        switched = await post_form_async(
            alice, "/dashboard/projects/switch", {"project_id": a.project_id, "mode": "live"}
        )
        assert switched.status_code == 303
        await probe(alice)  # the same project's live mode
        after = await api_link(bridge, a, link_id)
        assert (
            after["title"] == "Alpha's fees" and after["active"] is True and after["updated_at"] == link["updated_at"]
        )


async def test_the_qr_downloads_decode_to_the_links_and_the_sessions_addresses(bridge: InProcessBridge) -> None:
    tenant, emails = await shop(bridge, "Alpha")
    async with person(bridge, emails["viewer"]) as viewer, person(bridge, emails["developer"]) as dev:
        link_id = await create(dev, amount="75")
        link = await api_link(bridge, tenant, link_id)

        png = await viewer.get(f"/dashboard/links/{link_id}/qr.png")
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        assert decode_png(png.content) == [link["url"]]
        assert f'filename="{link_id}-qr.png"' in png.headers["content-disposition"]
        svg = await viewer.get(f"/dashboard/links/{link_id}/qr.svg")
        assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
        assert ET.fromstring(svg.content).tag == "{http://www.w3.org/2000/svg}svg"
        assert svg.content == qr_svg(link["url"])  # the PNG's symbol, drawn as the API draws it
        assert (await viewer.get(f"/dashboard/links/{link_id}/qr.gif")).status_code == 400

        session_id = await open_session_of(bridge, link)
        core = CoreTenant(tenant.project_id, Mode.TEST)
        session = await bridge.runtime.checkout.get(core, session_id)
        payment = await bridge.runtime.checkout.pay(session, phone="0708374150", amount=None)
        await bridge.wait_status(tenant, payment.id, "succeeded")

        page = await viewer.get(f"/dashboard/payments/{payment.id}")
        assert page.status_code == 200 and f'data-checkout-session="{session_id}"' in page.text
        assert f'href="/dashboard/links/{link_id}"' in page.text  # the link that opened it
        session_png = await viewer.get(f"/dashboard/checkout-sessions/{session_id}/qr.png")
        assert session_png.status_code == 200 and decode_png(session_png.content) == [session.url]
        session_svg = await viewer.get(f"/dashboard/checkout-sessions/{session_id}/qr.svg")
        assert session_svg.status_code == 200 and session_svg.content == qr_svg(session.url)
        plain = await bridge.pay(tenant, phone="0708374151")
        assert "data-checkout-session" not in (await viewer.get(f"/dashboard/payments/{plain['id']}")).text
