"""Giving up the queries whose Result never came: Transaction Status (`core.status_queries`) and
Account Balance (`core.balances`) queries still `pending` `MPESA_BRIDGE_QUERY_RESULT_DEADLINE`
seconds after they were asked.

Daraja POSTs one Result per query, or a notice to the QueueTimeOutURL, and never sends either
again (daraja.md §8); when that one POST is lost (Daraja dropped it, or our callback route could
not take it), nothing else would ever end the query. So the maintenance loop moves it to `failed`
with failure code `no_result`, writing the event its module writes for a failed query in the same
transaction — a client polling it, waiting on it or listening for webhooks learns it is over.

A Result that comes after all is stored like every callback and marked `recorded` with flag reason
`late_result`; the query does not change (a query says what happened to it, and its event is out).
Nothing is lost by giving up: a query moves no money, and asking again is a new query.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Protocol, TypeVar

from mpesa_bridge.core.ports import UnitOfWork, UnitOfWorkFactory

NO_RESULT = "no_result"  # the failure code of a query given up
LATE_RESULT = "late_result"  # the flag reason of a callback that came for a query given up
BATCH = 100  # queries given up per transaction
MAX_BATCHES = 10  # transactions per pass; the rest wait for the next pass

Q = TypeVar("Q")


class PendingQueries(Protocol[Q]):
    """The part of a query repository the sweep uses."""

    async def stale_pending(self, before: datetime, limit: int) -> Sequence[str]:
        """Ids of `pending` queries created before `before`, oldest first, `limit` at most."""
        ...

    async def lock(self, query_id: str) -> Q | None: ...

    async def save(self, query: Q) -> None: ...


def no_result_message(deadline: float) -> str:
    return f"No Result came from Daraja within {deadline:g} seconds; the query was given up (ask again)."


async def give_up_unanswered(
    db: UnitOfWorkFactory,
    repository: Callable[[UnitOfWork], PendingQueries[Q]],
    fail: Callable[[UnitOfWork, Q], Awaitable[bool]],
    before: datetime,
) -> int:
    """Fail the pending queries created before `before`, a batch per write unit of work; how many.

    `fail` makes one locked query `failed` (`NO_RESULT`) with its event, and answers False when it
    is final already (its Result came between the read and the lock): that one is left as it is."""
    given_up = 0
    for _ in range(MAX_BATCHES):
        async with db.write() as uow:
            queries = repository(uow)
            ids = await queries.stale_pending(before, BATCH)
            for query_id in ids:
                query = await queries.lock(query_id)
                if query is not None and await fail(uow, query):
                    await queries.save(query)
                    given_up += 1
        if len(ids) < BATCH:
            break
    return given_up
