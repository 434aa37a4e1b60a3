"""A payment's page in-process on SQLite and PostgreSQL: the whole timeline, raw callbacks and full
phone numbers for developers only, "ask Daraja now", and another project's payment not found."""

from __future__ import annotations

from tests.fixtures.bridge import InProcessBridge
from tests.fixtures.dashboard import add_account, browser_client, csrf_in, sign_in_async


async def test_the_timeline_shows_everything_that_happened(bridge: InProcessBridge) -> None:
    tenant = await bridge.create_project("Shop")
    await add_account(bridge.runtime, "dev@example.com", project_id=tenant.project_id, role="developer")
    await add_account(bridge.runtime, "view@example.com", project_id=tenant.project_id, role="viewer")
    made = await bridge.pay(tenant, amount=321)
    done = await bridge.wait_status(tenant, made["id"], "succeeded")
    async with browser_client(bridge.app) as dev, browser_client(bridge.app) as view:
        await sign_in_async(dev, "dev@example.com")
        await sign_in_async(view, "view@example.com")
        full = await dev.get(f"/dashboard/payments/{made['id']}")
        masked = await view.get(f"/dashboard/payments/{made['id']}")
    assert full.status_code == masked.status_code == 200
    html = full.text
    for step in (
        "Created",
        "Sent to Daraja",
        "callback.stk",
        "evidence.callback",
        "payment.created",
        "payment.succeeded",
        "Final",
    ):
        assert step in html, step
    assert html.index("Created") < html.index("callback.stk") < html.index("payment.succeeded")
    assert done["mpesa_receipt_number"] in html and "Raw callback" in html and "ResultCode" in html
    assert "254708374149" in html  # developers see the whole number
    assert "254708374149" not in masked.text and "2547****4149" in masked.text and "Raw callback" not in masked.text
    assert "Ask Daraja now" in html and "Ask Daraja now" not in masked.text


async def test_asking_daraja_now_is_for_developers_and_recorded(bridge: InProcessBridge) -> None:
    tenant = await bridge.create_project("Shop")
    await add_account(bridge.runtime, "dev@example.com", project_id=tenant.project_id, role="developer")
    await add_account(bridge.runtime, "view@example.com", project_id=tenant.project_id, role="viewer")
    made = await bridge.pay(tenant, amount=321)
    await bridge.wait_status(tenant, made["id"], "succeeded")
    path = f"/dashboard/payments/{made['id']}"
    async with browser_client(bridge.app) as dev, browser_client(bridge.app) as view:
        await sign_in_async(dev, "dev@example.com")
        await sign_in_async(view, "view@example.com")
        token = csrf_in((await view.get(path)).text)
        refused = await view.post(f"{path}/refresh", data={"csrf_token": token})
        asked = await dev.post(f"{path}/refresh", data={"csrf_token": csrf_in((await dev.get(path)).text)})
        after = await dev.get(asked.headers["location"])
    assert refused.status_code == 403
    assert asked.status_code == 303 and "Daraja was asked" in after.text and "evidence.query" in after.text
    from mpesa_bridge.storage.people import PeopleStorage

    async with PeopleStorage(bridge.db).read() as uow:
        [entry] = [a for a in await uow.people.audit(tenant.project_id, 10) if a.action == "payment.queried"]
    assert entry.target == made["id"] and entry.detail == "succeeded"


async def test_another_projects_payment_is_not_found(bridge: InProcessBridge) -> None:
    mine = await bridge.create_project("Shop")
    theirs = await bridge.create_project("Other")
    await add_account(bridge.runtime, "owner@example.com", project_id=mine.project_id)
    made = await bridge.pay(theirs, amount=55)
    async with browser_client(bridge.app) as client:
        await sign_in_async(client, "owner@example.com")
        answer = await client.get(f"/dashboard/payments/{made['id']}")
        refresh = await client.post(
            f"/dashboard/payments/{made['id']}/refresh",
            data={"csrf_token": csrf_in((await client.get("/dashboard/")).text)},
        )
    assert answer.status_code == refresh.status_code == 404
    assert "KES 55" not in answer.text
