"""The group-commit primitive (`core.group_commit.GroupCommit`): items that arrive while a write runs
share the next one; a failed shared write is retried item by item, so one bad item loses no other."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from mpesa_bridge.core.group_commit import GroupCommit


class Store:
    """A fake transaction: `gate` holds a write open, so that callers can queue behind it."""

    def __init__(self) -> None:
        self.transactions: list[list[str]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.writing = asyncio.Event()

    async def write(self, batch: Sequence[str]) -> None:
        self.writing.set()
        await self.gate.wait()
        if "bad" in batch:
            raise ValueError("constraint")
        self.transactions.append(list(batch))

    @property
    def committed(self) -> list[str]:
        return [item for batch in self.transactions for item in batch]


async def test_items_arriving_during_a_write_share_the_next_one() -> None:
    store = Store()
    store.gate.clear()
    commit = GroupCommit(store.write, max_batch=100)
    first = asyncio.create_task(commit.submit("first"))
    await store.writing.wait()  # "first" is in its own transaction, held open
    rest = [asyncio.create_task(commit.submit(f"item{i}")) for i in range(5)]
    await asyncio.sleep(0)
    store.gate.set()
    await asyncio.gather(first, *rest)

    assert store.transactions == [["first"], [f"item{i}" for i in range(5)]]
    assert commit.batches == 2


async def test_submit_returns_only_once_its_item_is_committed() -> None:
    store = Store()
    commit = GroupCommit(store.write, max_batch=100)

    async def submit(item: str) -> None:
        await commit.submit(item)
        assert item in store.committed

    await asyncio.gather(*(submit(f"item{i}") for i in range(20)))
    assert sorted(store.committed) == sorted(f"item{i}" for i in range(20))


async def test_batches_are_capped_at_max_batch() -> None:
    store = Store()
    commit = GroupCommit(store.write, max_batch=3)
    await asyncio.gather(*(commit.submit(f"item{i}") for i in range(10)))
    assert max(len(batch) for batch in store.transactions) == 3
    assert len(store.committed) == 10


async def test_a_failed_batch_is_retried_one_by_one_and_only_the_bad_item_fails() -> None:
    store = Store()
    store.gate.clear()
    failed: list[tuple[str, str]] = []
    batches_failed: list[list[str]] = []

    async def on_failure(item: str, error: Exception) -> None:
        failed.append((item, type(error).__name__))

    commit = GroupCommit(
        store.write,
        max_batch=100,
        on_failure=on_failure,
        on_batch_failure=lambda batch, _: batches_failed.append(list(batch)),
    )
    first = asyncio.create_task(commit.submit("first"))
    await store.writing.wait()
    results = asyncio.gather(*(commit.submit(item) for item in ("good1", "bad", "good2")), return_exceptions=True)
    await asyncio.sleep(0)
    store.gate.set()
    answers = await results
    await first

    assert answers[0] is None and answers[2] is None and isinstance(answers[1], ValueError)
    assert batches_failed == [["good1", "bad", "good2"]]
    assert store.transactions == [["first"], ["good1"], ["good2"]]  # nothing lost, each in its own
    assert failed == [("bad", "ValueError")]


async def test_put_does_not_wait_and_flush_waits_for_everything_put() -> None:
    store = Store()
    commit = GroupCommit(store.write, max_batch=2)
    for i in range(5):
        commit.put(f"item{i}")
    assert store.committed == []  # nothing written before the writer gets its turn
    await commit.flush()
    assert store.committed == [f"item{i}" for i in range(5)]
    assert [len(batch) for batch in store.transactions] == [2, 2, 1]


async def test_a_bad_put_item_is_reported_and_the_rest_are_written() -> None:
    store = Store()
    failed: list[str] = []

    async def on_failure(item: str, _: Exception) -> None:
        failed.append(item)

    commit = GroupCommit(store.write, max_batch=10, on_failure=on_failure)
    for item in ("a", "bad", "b"):
        commit.put(item)
    await commit.flush()
    assert failed == ["bad"]
    assert store.committed == ["a", "b"]


async def test_write_now_writes_in_the_callers_task_batch_by_batch_with_the_same_fallback() -> None:
    store = Store()
    failed: list[str] = []

    async def on_failure(item: str, _: Exception) -> None:
        failed.append(item)

    commit = GroupCommit(store.write, max_batch=2, on_failure=on_failure)
    await commit.write_now(["a", "b", "c", "bad", "d"])
    assert store.transactions == [["a", "b"], ["c"], ["d"]]
    assert failed == ["bad"]


async def test_a_caller_that_goes_away_does_not_cancel_its_write() -> None:
    store = Store()
    store.gate.clear()
    commit = GroupCommit(store.write, max_batch=10)
    caller = asyncio.create_task(commit.submit("item"))
    await store.writing.wait()
    caller.cancel()
    store.gate.set()
    await commit.flush()
    assert store.committed == ["item"]


def test_a_batch_holds_at_least_one_item() -> None:
    with pytest.raises(ValueError):
        GroupCommit(Store().write, max_batch=0)
