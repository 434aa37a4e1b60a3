"""Asking Daraja for a short code's balances: record the query, send it, answer (or wait for the Result).

The request goes out after the query's row is committed and outside any transaction; the Result
comes through the inbox (`core.balances.results`). With `wait`, `create` re-reads the query until it
is final or the wait is over, and answers with what it then is (`pending` when the Result is late).
A query whose Result has not come within the deadline is given up (`give_up_unanswered`: `failed`,
`no_result`, `core.result_deadline`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from mpesa_bridge.core.accounts import ProjectService
from mpesa_bridge.core.balances.entity import BALANCE_QUERY, BalanceQuery, BalanceQueryEventType, BalanceQueryStatus
from mpesa_bridge.core.balances.ports import BalanceCommand, BalanceGateway
from mpesa_bridge.core.balances.public import balance_query_public
from mpesa_bridge.core.clock import Clock
from mpesa_bridge.core.errors import InvalidRequest, NotFound
from mpesa_bridge.core.idempotency import bind_key
from mpesa_bridge.core.ids import new_id, new_token
from mpesa_bridge.core.payments.entity import OutboxEvent
from mpesa_bridge.core.payments.stk import token_hash
from mpesa_bridge.core.ports import GatewayError, IdempotencyBinding, PushOutcomeUnknown, UnitOfWork, UnitOfWorkFactory
from mpesa_bridge.core.projects import Tenant
from mpesa_bridge.core.result_deadline import NO_RESULT, PendingQueries, give_up_unanswered, no_result_message
from mpesa_bridge.core.reversals.ports import InitiatorQueued
from mpesa_bridge.core.reversals.service import require_initiator

MAX_WAIT = 30.0
WAIT_POLL = 0.1  # seconds between re-reads while waiting for the Result
REMARKS = "Balance query"
RESULT_KIND = "balance_result"
TIMEOUT_KIND = "balance_timeout"


@dataclass(frozen=True)
class BalanceOutcome:
    completed: bool
    result_code: str | None
    result_desc: str | None
    failure_code: str | None = None
    accounts: list[dict[str, object]] | None = None
    balances_at: datetime | None = None
    message: str | None = None  # the failure message when it is not Daraja's ResultDesc


async def settle_balance_query(uow: UnitOfWork, query: BalanceQuery, outcome: BalanceOutcome, at: datetime) -> bool:
    """pending -> completed | failed, with its event; False when it was final already."""
    if query.status.is_final:
        return False
    query.result_code, query.result_desc = outcome.result_code, outcome.result_desc
    query.completed_at = query.updated_at = at
    if outcome.completed:
        query.status = BalanceQueryStatus.COMPLETED
        query.accounts = list(outcome.accounts or [])
        query.balances_at = outcome.balances_at
        event_type = BalanceQueryEventType.COMPLETED
    else:
        query.status = BalanceQueryStatus.FAILED
        query.failure_code = outcome.failure_code or "balance_query_failed"
        query.failure_message = outcome.message or outcome.result_desc or query.failure_code
        event_type = BalanceQueryEventType.FAILED
    await uow.events.add(
        OutboxEvent(
            id=new_id("evt", at),
            project_id=query.project_id,
            mode=query.mode,
            type=event_type,
            subject_type=BALANCE_QUERY,
            subject_id=query.id,
            data={"object": balance_query_public(query)},
            created_at=at,
        )
    )
    return True


def _repository(uow: UnitOfWork) -> PendingQueries[BalanceQuery]:
    return uow.balance_queries


def check_wait(wait: float | None) -> float:
    if wait is None:
        return 0.0
    if not 0 <= wait <= MAX_WAIT:
        raise InvalidRequest(f"wait is 0 to {MAX_WAIT:g} seconds", param="wait")
    return float(wait)


class BalanceQueryService:
    def __init__(
        self,
        db: UnitOfWorkFactory,
        gateway: BalanceGateway,
        projects: ProjectService,
        clock: Clock,
        callback_url: Callable[[str, str], str],
    ) -> None:
        self._db = db
        self._gateway = gateway
        self._projects = projects
        self._clock = clock
        self._callback_url = callback_url

    async def create(
        self, tenant: Tenant, wait: float | None = None, idempotency: IdempotencyBinding | None = None
    ) -> BalanceQuery:
        seconds = check_wait(wait)
        account = await self._projects.account(tenant)
        require_initiator(account)
        token = new_token()
        now = self._clock.now()
        query = BalanceQuery(
            id=new_id("bq", now),
            project_id=tenant.project_id,
            mode=tenant.mode.value,
            status=BalanceQueryStatus.PENDING,
            short_code=account.short_code,
            daraja_environment=account.environment.value,
            callback_token_hash=token_hash(token),
            created_at=now,
            updated_at=now,
        )
        async with self._db.write() as uow:
            await uow.balance_queries.add(query)
            if idempotency is not None:
                await bind_key(uow, idempotency, query.id)
        command = BalanceCommand(
            account=account,
            short_code=account.short_code,
            result_url=self._callback_url(RESULT_KIND, token),
            queue_timeout_url=self._callback_url(TIMEOUT_KIND, token),
            remarks=REMARKS,
        )
        queued: InitiatorQueued | None = None
        refused: tuple[str, str] | None = None
        try:
            queued = await self._gateway.account_balance(command)
        except PushOutcomeUnknown:
            pass  # it may have been queued: the query stays pending, and its Result may still come
        except GatewayError as exc:  # refused, or never sent
            refused = (exc.code, exc.message)
        await self._after_send(query.id, queued, refused)
        if seconds > 0:
            return await self._wait(tenant, query.id, seconds)
        return await self.get(tenant, query.id)

    async def _after_send(self, query_id: str, queued: InitiatorQueued | None, refused: tuple[str, str] | None) -> None:
        now = self._clock.now()
        async with self._db.write() as uow:
            query = await uow.balance_queries.lock(query_id)
            if query is None:  # pragma: no cover - we just wrote it
                raise NotFound(f"No such balance query: '{query_id}'")
            if queued is not None:
                query.conversation_id = query.conversation_id or queued.conversation_id
                query.originator_conversation_id = query.originator_conversation_id or queued.originator_conversation_id
                query.updated_at = now
            elif refused is not None:
                code, message = refused
                await settle_balance_query(uow, query, BalanceOutcome(False, None, message, failure_code=code), now)
            await uow.balance_queries.save(query)

    async def give_up_unanswered(self, deadline: float) -> int:
        """The maintenance pass: the queries still pending `deadline` seconds after they were asked
        become `failed` (`no_result`), each with its `balance_query.failed` event; how many."""
        now = self._clock.now()
        outcome = BalanceOutcome(False, None, None, failure_code=NO_RESULT, message=no_result_message(deadline))

        async def fail(uow: UnitOfWork, query: BalanceQuery) -> bool:
            return await settle_balance_query(uow, query, outcome, now)

        return await give_up_unanswered(self._db, _repository, fail, now - timedelta(seconds=deadline))

    async def _wait(self, tenant: Tenant, query_id: str, seconds: float) -> BalanceQuery:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            query = await self.get(tenant, query_id)
            if query.status.is_final or loop.time() >= deadline:
                return query
            await asyncio.sleep(min(WAIT_POLL, max(deadline - loop.time(), 0)))

    async def get(self, tenant: Tenant, query_id: str) -> BalanceQuery:
        async with self._db.read() as uow:
            query = await uow.balance_queries.get(tenant, query_id)
        if query is None:
            raise NotFound(f"No such balance query: '{query_id}'", param="id")
        return query

    async def list(self, tenant: Tenant, starting_after: str | None, limit: int) -> Sequence[BalanceQuery]:
        async with self._db.read() as uow:
            return await uow.balance_queries.list(tenant, starting_after, limit)
