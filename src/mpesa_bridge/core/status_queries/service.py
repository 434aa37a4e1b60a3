"""Asking Daraja for a transaction's status: for the API (`POST /v1/transaction_status_queries`)
and for the payout reconciler (`ask_for_payout`). The Result arrives later at the `status_result`
callback (`core.status_queries.callbacks`); `wait` lets a caller wait for it a little.

A query moves no money: a lost answer is harmless (the Result may still come, or ask again). A
query whose Result has not come within the deadline is given up (`give_up_unanswered`: `failed`,
`no_result`, `core.result_deadline`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

from mpesa_bridge.core.accounts import ProjectService
from mpesa_bridge.core.clock import Clock
from mpesa_bridge.core.errors import BridgeError, NotFound
from mpesa_bridge.core.idempotency import bind_key
from mpesa_bridge.core.ids import new_id, new_token
from mpesa_bridge.core.payments.entity import OutboxEvent
from mpesa_bridge.core.payments.stk import token_hash
from mpesa_bridge.core.payouts.entity import Payout
from mpesa_bridge.core.payouts.ports import InitiatorAck, InitiatorGateway, StatusQueryCommand
from mpesa_bridge.core.ports import IdempotencyBinding, PushOutcomeUnknown, UnitOfWork, UnitOfWorkFactory
from mpesa_bridge.core.projects import DarajaAccount, Mode, Tenant
from mpesa_bridge.core.result_deadline import NO_RESULT, PendingQueries, give_up_unanswered, no_result_message
from mpesa_bridge.core.reversals.entity import Reversal
from mpesa_bridge.core.status_queries.entity import (
    STATUS_QUERY,
    STATUS_QUERY_ID_PREFIX,
    StatusQuery,
    StatusQueryEvent,
    StatusQueryStatus,
)
from mpesa_bridge.core.status_queries.public import status_query_public
from mpesa_bridge.core.status_queries.validation import StatusQueryCreate

STATUS_RESULT = "status_result"  # the callback kinds of core.callbacks.handlers
STATUS_TIMEOUT = "status_timeout"
MAX_WAIT = 30.0
_POLL = 0.1

Sleep = Callable[[float], Awaitable[None]]


async def write_query_event(uow: UnitOfWork, query: StatusQuery, event_type: str) -> None:
    await uow.events.add(
        OutboxEvent(
            id=new_id("evt", query.updated_at),
            project_id=query.project_id,
            mode=query.mode,
            type=event_type,
            subject_type=STATUS_QUERY,
            subject_id=query.id,
            data={"object": status_query_public(query)},
            created_at=query.updated_at,
        )
    )


async def fail_query(uow: UnitOfWork, query: StatusQuery, code: str, message: str, at: datetime) -> bool:
    """pending -> failed, with its event; False when it was final already."""
    if query.status is not StatusQueryStatus.PENDING:
        return False
    query.status = StatusQueryStatus.FAILED
    query.failure_code, query.failure_message = code, message
    query.updated_at = query.completed_at = at
    await write_query_event(uow, query, StatusQueryEvent.FAILED)
    return True


def _repository(uow: UnitOfWork) -> PendingQueries[StatusQuery]:
    return uow.status_queries


class StatusQueryService:
    def __init__(
        self,
        db: UnitOfWorkFactory,
        gateway: InitiatorGateway,
        projects: ProjectService,
        clock: Clock,
        callback_url: Callable[[str, str], str],
        *,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._db = db
        self._gateway = gateway
        self._projects = projects
        self._clock = clock
        self._callback_url = callback_url
        self._sleep = sleep

    async def create(
        self, tenant: Tenant, request: StatusQueryCreate, idempotency: IdempotencyBinding | None = None
    ) -> StatusQuery:
        account = await self._projects.account(tenant)
        return await self._ask(
            tenant, account, request.transaction_id, request.originator_conversation_id, idempotency=idempotency
        )

    async def ask_for_payout(self, payout: Payout) -> StatusQuery:
        """Ask about a payout by its OriginatorConversationID (the reconciler settles it with the Result)."""
        tenant = Tenant(payout.project_id, Mode(payout.mode))
        account = await self._projects.account(tenant)
        return await self._ask(tenant, account, "", payout.originator_conversation_id, payout_id=payout.id)

    async def ask_for_reversal(self, reversal: Reversal) -> StatusQuery:
        """Ask about a reversal by the OriginatorConversationID Daraja gave it (`core.reversals.reconcile`)."""
        tenant = Tenant(reversal.project_id, Mode(reversal.mode))
        account = await self._projects.account(tenant)
        originator = reversal.originator_conversation_id or ""
        return await self._ask(tenant, account, "", originator, reversal_id=reversal.id)

    async def _ask(
        self,
        tenant: Tenant,
        account: DarajaAccount,
        transaction_id: str,
        originator: str,
        *,
        payout_id: str | None = None,
        reversal_id: str | None = None,
        idempotency: IdempotencyBinding | None = None,
    ) -> StatusQuery:
        now = self._clock.now()
        token = new_token()
        query = StatusQuery(
            id=new_id(STATUS_QUERY_ID_PREFIX, now),
            project_id=tenant.project_id,
            mode=tenant.mode.value,
            status=StatusQueryStatus.PENDING,
            transaction_id=transaction_id,
            originator_conversation_id=originator,
            short_code=account.short_code,
            callback_token_hash=token_hash(token),
            created_at=now,
            updated_at=now,
            payout_id=payout_id,
            reversal_id=reversal_id,
        )
        async with self._db.write() as uow:
            await uow.status_queries.add(query)
            if idempotency is not None:
                await bind_key(uow, idempotency, query.id)
        command = StatusQueryCommand(
            account=account,
            result_url=self._callback_url(STATUS_RESULT, token),
            queue_timeout_url=self._callback_url(STATUS_TIMEOUT, token),
            transaction_id=transaction_id,
            original_conversation_id=originator if not transaction_id else "",
        )
        try:
            ack = await self._gateway.transaction_status(command)
        except PushOutcomeUnknown:
            return query  # the Result may still come; nothing is lost by asking again later
        except BridgeError as exc:
            return await self._record(query.id, failed=(exc.code, exc.message))
        return await self._record(query.id, ack=ack)

    async def _record(
        self, query_id: str, *, ack: InitiatorAck | None = None, failed: tuple[str, str] | None = None
    ) -> StatusQuery:
        now = self._clock.now()
        async with self._db.write() as uow:
            query = await uow.status_queries.lock(query_id)
            if query is None:  # pragma: no cover - we just wrote it
                raise NotFound(f"No such transaction status query: '{query_id}'")
            if ack is not None:
                query.conversation_id = query.conversation_id or ack.conversation_id or None
                query.updated_at = now
            elif failed is not None:
                await fail_query(uow, query, *failed, now)
            await uow.status_queries.save(query)
            return query

    async def give_up_unanswered(self, deadline: float) -> int:
        """The maintenance pass: the queries still pending `deadline` seconds after they were asked
        become `failed` (`no_result`), each with its `transaction_status_query.failed` event; how many.

        Safe for the payout reconciler: it never reads a query's status. A payout it asked about
        keeps its own `next_query_at` (set when the query was sent, `core.payouts.reconcile`), so it
        is asked again on its backoff whatever became of this query; a Result that comes after the
        give-up is kept but settles nothing (`core.status_queries.callbacks`), and the next query's
        Result settles the payout."""
        now = self._clock.now()
        message = no_result_message(deadline)

        async def fail(uow: UnitOfWork, query: StatusQuery) -> bool:
            return await fail_query(uow, query, NO_RESULT, message, now)

        return await give_up_unanswered(self._db, _repository, fail, now - timedelta(seconds=deadline))

    async def get(self, tenant: Tenant, query_id: str) -> StatusQuery:
        async with self._db.read() as uow:
            query = await uow.status_queries.get(tenant, query_id)
        if query is None:
            raise NotFound(f"No such transaction status query: '{query_id}'", param="id")
        return query

    async def list(self, tenant: Tenant, starting_after: str | None, limit: int) -> Sequence[StatusQuery]:
        async with self._db.read() as uow:
            return await uow.status_queries.list(tenant, starting_after, limit)

    async def wait(self, tenant: Tenant, query_id: str, seconds: float) -> StatusQuery:
        """The query once it is final, or as it stands after `seconds` (at most `MAX_WAIT`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(max(seconds, 0.0), MAX_WAIT)
        while True:
            query = await self.get(tenant, query_id)
            if query.status.is_final or loop.time() >= deadline:
                return query
            await self._sleep(min(_POLL, max(deadline - loop.time(), 0.0)))
