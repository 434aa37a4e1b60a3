"""The database decides a checkout session's claim: two transactions racing, one wins — on SQLite
and PostgreSQL (where the loser waits for the winner's row lock, then re-checks the WHERE clause)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from mpesa_bridge.core.checkout.entity import CheckoutSession, CheckoutStatus
from mpesa_bridge.core.projects import Project
from mpesa_bridge.storage.db import Database
from tests.fixtures.bridge import wait_until

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
_WAITING = sa.text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


async def _lock_waits(database: Database) -> bool:
    async with database.read() as uow:
        return bool((await uow.connection.execute(_WAITING)).scalar_one())


async def _seed(db: Database) -> None:
    async with db.write() as uow:
        await uow.projects.add(Project(id="prj_01claims", name="Shop", created_at=T0))
        await uow.checkout_sessions.add(
            CheckoutSession(
                id="cs_01claims",
                project_id="prj_01claims",
                mode="test",
                status=CheckoutStatus.OPEN,
                amount=100,
                amount_min=None,
                amount_max=None,
                reference="R1",
                description="Payment",
                metadata={},
                success_url=None,
                cancel_url=None,
                url="http://bridge.test/pay/cs_01claims",
                expires_at=T0 + timedelta(hours=1),
                client_secret_hash="0" * 64,
                created_at=T0,
                updated_at=T0,
            )
        )


async def test_two_racing_claims_one_wins(database: Database) -> None:
    await _seed(database)
    first_claimed = asyncio.Event()
    let_go = asyncio.Event()

    async def first() -> bool:
        async with database.write() as uow:
            won = await uow.checkout_sessions.claim("cs_01claims", "pay_A", T0)
            first_claimed.set()
            await let_go.wait()  # holds its transaction open while the second one tries
            return won

    async def second() -> bool:
        await first_claimed.wait()
        async with database.write() as uow:
            return await uow.checkout_sessions.claim("cs_01claims", "pay_B", T0)

    one = asyncio.create_task(first())
    two = asyncio.create_task(second())
    await first_claimed.wait()
    if not database.sqlite:  # PostgreSQL: the second UPDATE is waiting for the first one's row lock
        await wait_until(lambda: _lock_waits(database))
    # (SQLite: the second transaction waits for the one writer connection, which the first holds.)
    let_go.set()
    assert await asyncio.wait_for(asyncio.gather(one, two), timeout=20) == [True, False]
    async with database.read() as uow:
        session = await uow.checkout_sessions.find("cs_01claims")
    assert session is not None and session.active_payment_id == "pay_A"


async def test_release_frees_only_the_claiming_payment_and_completion_happens_once(database: Database) -> None:
    await _seed(database)
    async with database.write() as uow:
        assert await uow.checkout_sessions.claim("cs_01claims", "pay_A", T0)
        await uow.checkout_sessions.release("cs_01claims", "pay_other", T0)  # not its claim: nothing
        assert not await uow.checkout_sessions.claim("cs_01claims", "pay_B", T0)
        await uow.checkout_sessions.release("cs_01claims", "pay_A", T0)
        assert await uow.checkout_sessions.claim("cs_01claims", "pay_B", T0)
        assert await uow.checkout_sessions.expire("cs_01claims", T0, due_only=False) is None  # in flight
        done = await uow.checkout_sessions.complete("cs_01claims", "pay_B", T0)
        assert done is not None and done.status is CheckoutStatus.COMPLETE and done.paid_payment_id == "pay_B"
        assert await uow.checkout_sessions.complete("cs_01claims", "pay_A", T0) is None  # paid once
        assert not await uow.checkout_sessions.claim("cs_01claims", "pay_C", T0)
        # Past its expiry, an open session takes no claim either.
    async with database.write() as uow:
        assert not await uow.checkout_sessions.claim("cs_01claims", "pay_D", T0 + timedelta(hours=2))
