"""Group commit for callbacks: many rows per transaction, each caller answered after its commit,
and one bad row failing only its own caller."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Self

import pytest

from mpesa_bridge.core.payments.entity import InboundCallback
from mpesa_bridge.workers.ingest import CallbackStore

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def callback(name: str) -> InboundCallback:
    return InboundCallback(id=name, kind="stk", received_at=T0, body=b"{}", token_hash="h", source_ip=None, headers={})


class Callbacks:
    def __init__(self, db: FakeDb) -> None:
        self.db = db

    async def add_many(self, callbacks: Sequence[InboundCallback]) -> None:
        await asyncio.sleep(0.01)  # the commit takes a while: callers arriving meanwhile queue up
        if any(c.id == "bad" for c in callbacks):
            raise ValueError("constraint")
        self.db.pending.extend(c.id for c in callbacks)


class Uow:
    def __init__(self, db: FakeDb) -> None:
        self.db = db
        self.callbacks = Callbacks(db)

    async def __aenter__(self) -> Self:
        self.db.pending = []
        return self

    async def __aexit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.db.transactions.append(list(self.db.pending))


class FakeDb:
    def __init__(self) -> None:
        self.transactions: list[list[str]] = []
        self.pending: list[str] = []

    def write(self) -> Uow:
        return Uow(self)

    @property
    def committed(self) -> list[str]:
        return [name for batch in self.transactions for name in batch]


async def test_concurrent_callbacks_share_transactions_and_return_only_once_committed() -> None:
    db = FakeDb()
    store = CallbackStore(db)  # type: ignore[arg-type]
    answered: list[str] = []

    async def post(name: str) -> None:
        await store.store(callback(name))
        assert name in db.committed  # never answered before its row is durable
        answered.append(name)

    await asyncio.gather(*(post(f"cb{i}") for i in range(50)))
    assert sorted(answered) == sorted(f"cb{i}" for i in range(50))
    assert sorted(db.committed) == sorted(answered)  # each exactly once
    assert len(db.transactions) <= 3  # the first alone, then the rest that queued behind it
    assert store.batches == len(db.transactions)


async def test_a_lone_callback_is_written_at_once_in_a_transaction_of_its_own() -> None:
    db = FakeDb()
    store = CallbackStore(db)  # type: ignore[arg-type]
    await store.store(callback("alone"))
    assert db.transactions == [["alone"]]


async def test_a_bad_row_fails_only_its_own_caller() -> None:
    db = FakeDb()
    store = CallbackStore(db)  # type: ignore[arg-type]
    first = asyncio.create_task(store.store(callback("first")))
    await asyncio.sleep(0)  # "first" is being written; the next three queue up as one batch
    results = await asyncio.gather(
        store.store(callback("good1")),
        store.store(callback("bad")),
        store.store(callback("good2")),
        return_exceptions=True,
    )
    await first
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], ValueError)
    assert sorted(db.committed) == ["first", "good1", "good2"]


async def test_batches_are_capped() -> None:
    db = FakeDb()
    store = CallbackStore(db, max_batch=10)  # type: ignore[arg-type]
    await asyncio.gather(*(store.store(callback(f"cb{i}")) for i in range(35)))
    assert max(len(batch) for batch in db.transactions) <= 10
    assert len(db.committed) == 35


@pytest.mark.parametrize("size", [1, 7])
async def test_every_caller_gets_an_answer_even_when_the_first_write_fails(size: int) -> None:
    db = FakeDb()
    store = CallbackStore(db)  # type: ignore[arg-type]
    names = ["bad"] + [f"ok{i}" for i in range(size - 1)]
    results = await asyncio.gather(*(store.store(callback(n)) for n in names), return_exceptions=True)
    assert isinstance(results[0], ValueError)
    assert all(r is None for r in results[1:])
