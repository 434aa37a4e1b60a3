"""The hosted payment page over HTTP, as a browser without JavaScript uses it (in-process bridge,
simulator as Daraja) — on SQLite and PostgreSQL: the form, the self-refreshing status page, the
outcome in plain words, try again, the way back to the shop, and what it refuses."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.fixtures.bridge import InProcessBridge, Tenant, wait_until

STATE = re.compile(r'data-state="(\w+)"')


async def open_session(bridge: InProcessBridge, shop: Tenant, **body: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "amount": 1500,
        "reference": "ORDER42",
        "success_url": "https://shop.example/thanks",
        "cancel_url": "https://shop.example/cart",
        **body,
    }
    response = await bridge.client.post("/v1/checkout_sessions", json=payload, headers=shop.headers())
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def page(bridge: InProcessBridge, session: dict[str, Any], **params: str) -> httpx.Response:
    return await bridge.client.get(
        f"/pay/{session['id']}", params={"client_secret": session["client_secret"], **params}
    )


def state(response: httpx.Response) -> str:
    found = STATE.search(response.text)
    assert found is not None, response.text
    return found.group(1)


async def submit(bridge: InProcessBridge, session: dict[str, Any], **form: str) -> httpx.Response:
    body = {"client_secret": session["client_secret"], "lang": "en", **form}
    return await bridge.client.post(f"/pay/{session['id']}", data=body)


async def settled(bridge: InProcessBridge, session: dict[str, Any], **params: str) -> httpx.Response:
    async def done() -> httpx.Response | None:
        response = await page(bridge, session, **params)
        return response if state(response) != "waiting" else None

    result: httpx.Response = await wait_until(done)
    return result


async def test_the_page_pays_without_javascript_and_sends_the_customer_back(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    session = await open_session(bridge, shop)

    shown = await page(bridge, session)
    assert shown.status_code == 200 and state(shown) == "form"
    assert "KES 1,500" in shown.text and 'name="phone"' in shown.text
    csp = shown.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert shown.headers["referrer-policy"] == "no-referrer" and shown.headers["cache-control"] == "no-store"
    assert "http://" not in re.sub(r"https://shop\.example/\w+", "", shown.text.split("<body>")[0])

    started = await submit(bridge, session, phone="0708 374 149")
    assert started.status_code == 303
    assert started.headers["location"].startswith(f"/pay/{session['id']}?client_secret=")
    waiting = await page(bridge, session)
    if state(waiting) == "waiting":  # the simulator may already have answered
        assert '<meta http-equiv="refresh" content="2">' in waiting.text and "Check your phone" in waiting.text

    paid = await settled(bridge, session)
    assert state(paid) == "paid" and "Payment received" in paid.text
    assert re.search(r'id="receipt">[A-Z0-9]{10}<', paid.text), paid.text
    assert 'content="3;url=https://shop.example/thanks"' in paid.text

    again = await submit(bridge, session, phone="0708374149")  # a paid session takes no second payment
    assert again.status_code == 400 and state(again) == "paid"
    assert len(bridge.simulator.pushes()) == 1


async def test_a_cancelled_payment_is_said_plainly_and_can_be_tried_again(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    session = await open_session(bridge, shop)

    assert (await submit(bridge, session, phone="0700001032")).status_code == 303
    cancelled = await settled(bridge, session)
    assert state(cancelled) == "form"
    assert "You cancelled the payment on your phone." in cancelled.text and ">Try again<" in cancelled.text
    assert 'href="https://shop.example/cart"' in cancelled.text

    poor = await submit(bridge, session, phone="0700000001")
    assert poor.status_code == 303
    refused = await settled(bridge, session, lang="sw")
    assert "Hakuna pesa za kutosha kwenye akaunti yako ya M-Pesa." in refused.text and ">Jaribu tena<" in refused.text
    assert '<html lang="sw">' in refused.text

    assert (await submit(bridge, session, phone="254708374149")).status_code == 303
    assert state(await settled(bridge, session)) == "paid"


async def test_a_chosen_amount_is_checked_and_a_bad_phone_is_said(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    session = await open_session(bridge, shop, amount=None, amount_min=50, amount_max=500)

    shown = await page(bridge, session)
    assert 'name="amount"' in shown.text and "KES 50 to 500" in shown.text
    too_much = await submit(bridge, session, phone="0708374149", amount="900")
    assert too_much.status_code == 400 and "Enter an amount from KES 50 to 500." in too_much.text
    assert 'value="0708374149"' in too_much.text  # what was typed stays
    bad_phone = await submit(bridge, session, phone="12345", amount="100", lang="sw")
    assert bad_phone.status_code == 400 and "Weka nambari ya simu ya Kenya, kama 0712 345 678." in bad_phone.text
    assert bridge.simulator.pushes() == []

    assert (await submit(bridge, session, phone="0708374149", amount="120")).status_code == 303
    paid = await settled(bridge, session)
    assert state(paid) == "paid" and "KES 120" in paid.text


async def test_the_page_opens_only_with_its_own_client_secret(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    mine, other = await open_session(bridge, shop), await open_session(bridge, shop)

    assert (await bridge.client.get(f"/pay/{mine['id']}")).status_code == 404  # the bare url: no secret
    wrong = await bridge.client.get(f"/pay/{mine['id']}", params={"client_secret": other["client_secret"]})
    assert wrong.status_code == 404 and "data-state" not in wrong.text
    forged = await bridge.client.get(f"/pay/{mine['id']}", params={"client_secret": mine["id"] + "_secret_x"})
    assert forged.status_code == 404

    # A form posted from another site cannot know the client secret: it is the form's CSRF token.
    no_secret = await bridge.client.post(f"/pay/{mine['id']}", data={"phone": "0708374149"})
    other_secret = await bridge.client.post(
        f"/pay/{mine['id']}", data={"phone": "0708374149", "client_secret": other["client_secret"]}
    )
    assert no_secret.status_code == other_secret.status_code == 404
    assert bridge.simulator.pushes() == []

    css = await bridge.client.get("/pay/assets/pay.css")
    script = await bridge.client.get("/pay/assets/pay.js")
    assert css.status_code == script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert (await bridge.client.get("/pay/assets/secret.txt")).status_code == 404
