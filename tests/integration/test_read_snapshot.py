"""A read unit of work sees one snapshot of the database, on SQLite and PostgreSQL: what another
connection commits while it is open is not seen by its later statements. (On PostgreSQL a read is
REPEATABLE READ, READ ONLY; SQLite's deferred BEGIN in WAL mode holds the first read's snapshot.)
Without it, a checkout session read before a payment's commit and that payment read after it
disagreed: an "open" session beside its succeeded payment."""

from __future__ import annotations

from tests.fixtures.bridge import InProcessBridge


async def test_a_read_sees_nothing_committed_after_its_first_statement(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    created = await bridge.pay(shop)
    async with bridge.db.read() as reading:
        before = await reading.payments.find(created["id"])
        assert before is not None
        async with bridge.db.write() as writing:  # another connection commits meanwhile
            payment = await writing.payments.lock(created["id"])
            assert payment is not None
            payment.description = "changed"
            await writing.payments.save(payment)
        again = await reading.payments.find(created["id"])
        assert again is not None and again.description == before.description != "changed"
    async with bridge.db.read() as later:
        now = await later.payments.find(created["id"])
        assert now is not None and now.description == "changed"  # a new read sees the commit
