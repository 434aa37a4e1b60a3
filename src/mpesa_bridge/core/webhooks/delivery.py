"""Sending deliveries: claim, sign, POST, record — and decide what happens after a failure.

One round (`deliver_due`) claims up to `batch` due deliveries under a lease, sends them at the
same time with no transaction open, and records the attempts as they end — those that end while
a record is being written share the next transaction (`core.group_commit`). The
record only moves the delivery on if this worker still holds it; the attempt itself is always kept
(it happened). A 2xx ends the delivery; anything else schedules the next try along the
`RetryPolicy`, or gives up at the end of its window — and if the endpoint has not had one success
for the whole window, disables it and writes an `endpoint.disabled` event.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from mpesa_bridge.core.clock import Clock
from mpesa_bridge.core.crypto import MasterKeyError, SecretBox
from mpesa_bridge.core.group_commit import GroupCommit
from mpesa_bridge.core.ids import new_id
from mpesa_bridge.core.payments.entity import OutboxEvent
from mpesa_bridge.core.payments.public import event_public
from mpesa_bridge.core.webhooks.dispatch import dispatch_events
from mpesa_bridge.core.webhooks.endpoints import signing_secrets
from mpesa_bridge.core.webhooks.entity import (
    ENDPOINT_DISABLED,
    ClaimedDelivery,
    DeliveryStatus,
    WebhookAttempt,
    WebhookEndpoint,
)
from mpesa_bridge.core.webhooks.ports import Sender, SendResult, WebhookUnitOfWork, WebhookUnitOfWorkFactory
from mpesa_bridge.core.webhooks.public import endpoint_public
from mpesa_bridge.core.webhooks.retry import RetryPolicy
from mpesa_bridge.core.webhooks.signing import encode_payload, sign_event

DISPATCH_BATCH = 500
PRUNE_BATCH = 500
RECORD_BATCH = 100  # attempts recorded per transaction, at most


@dataclass(frozen=True)
class _Record:
    """One attempt to record, with the delivery as it is to be left (status, next attempt)."""

    claimed: ClaimedDelivery
    at: datetime
    attempt: WebhookAttempt
    report: DeliveryReport


@dataclass
class DeliveryReport:
    dispatched: int = 0
    created: int = 0
    attempted: int = 0
    succeeded: int = 0
    failed: int = 0  # attempts that failed (the delivery may still be retried)
    gave_up: int = 0
    disabled: int = 0

    def __bool__(self) -> bool:
        return any(vars(self).values())


class DeliveryService:
    """Dispatches outbox events and sends due deliveries, as worker `worker_id`.

    `lease` must outlast a send (the HTTP timeout) plus recording it: while it runs no other
    worker takes the delivery; after it, one does (the holder is presumed dead)."""

    def __init__(
        self,
        db: WebhookUnitOfWorkFactory,
        sender: Sender,
        box: SecretBox,
        clock: Clock,
        policy: RetryPolicy,
        *,
        worker_id: str,
        lease: float,
        batch: int = 10,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._db = db
        self._sender = sender
        self._box = box
        self._clock = clock
        self._policy = policy
        self.worker_id = worker_id
        self._lease = timedelta(seconds=lease)
        self._batch = batch
        self._rand = rand
        self._last_full = False  # the last claim took a whole batch
        # The attempts of a round end at about the same time: their records share transactions.
        self._records = GroupCommit(self._write_records, max_batch=RECORD_BATCH)

    async def dispatch(self, report: DeliveryReport | None = None) -> DeliveryReport:
        """Turn every undispatched outbox event into deliveries, a batch per transaction."""
        report = DeliveryReport() if report is None else report
        while True:
            async with self._db.read() as uow:
                pending = await uow.webhooks.undispatched(1)
            if not pending:  # the common case costs a read, not a write transaction
                return report
            async with self._db.write() as uow:
                events, created = await dispatch_events(uow, self._clock.now(), DISPATCH_BATCH)
            report.dispatched += events
            report.created += created
            if events < DISPATCH_BATCH:  # done, or another dispatcher holds the lock: it will finish
                return report

    async def claim(self, limit: int | None = None) -> list[ClaimedDelivery]:
        """Take up to `limit` due deliveries under this worker's lease."""
        now = self._clock.now()
        limit = limit or self._batch
        if not self._last_full:  # after a full claim more is likely due: straight to the write
            async with self._db.read() as uow:
                if not await uow.webhooks.any_due(now):
                    return []
        async with self._db.write() as uow:
            claimed = await uow.webhooks.claim_due(now, self.worker_id, now + self._lease, limit)
        self._last_full = len(claimed) >= limit
        return list(claimed)

    async def deliver_due(self, report: DeliveryReport | None = None) -> DeliveryReport:
        """One round: claim a batch, send it concurrently, record every attempt."""
        report = DeliveryReport() if report is None else report
        claimed = await self.claim()
        results = await asyncio.gather(*(self.attempt(c, report) for c in claimed), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:  # the others are recorded; these deliveries are taken again when their lease ends
            raise errors[0]
        return report

    async def attempt(self, claimed: ClaimedDelivery, report: DeliveryReport | None = None) -> WebhookAttempt:
        """Sign and send one claimed delivery, then record what happened."""
        report = DeliveryReport() if report is None else report
        at = self._clock.now()
        endpoint = claimed.endpoint
        body = encode_payload(event_public(claimed.event))
        try:
            secrets = signing_secrets(endpoint, self._box, at)
        except MasterKeyError as exc:  # nothing is sent unsigned: a failed attempt, retried as any other
            result = SendResult(latency_ms=0, error=f"{exc.code}: {exc.message}")
        else:
            headers = sign_event(secrets, claimed.delivery.event_id, at, body)
            result = await self._sender.post(endpoint.url, endpoint.mode, headers, body)
        return await self._record(claimed, at, result, report)

    async def prune(self, before: datetime) -> int:
        """Delete events created before `before` with their deliveries and attempts — never one that
        is not dispatched yet or still has a pending delivery."""
        total = 0
        while True:
            async with self._db.write() as uow:
                removed = await uow.webhooks.prune_events(before, PRUNE_BATCH)
            total += removed
            if removed < PRUNE_BATCH:
                return total

    async def _record(
        self, claimed: ClaimedDelivery, at: datetime, result: SendResult, report: DeliveryReport
    ) -> WebhookAttempt:
        delivery = claimed.delivery
        attempt = WebhookAttempt(
            id=new_id("wha", at),
            delivery_id=delivery.id,
            attempted_at=at,
            succeeded=result.succeeded,
            latency_ms=result.latency_ms,
            status_code=result.status_code,
            response_body=result.body,
            error=result.error,
        )
        delivery.attempts += 1
        delivery.first_attempt_at = delivery.first_attempt_at or at
        delivery.last_attempt_at = at
        report.attempted += 1
        if result.succeeded:
            delivery.status, delivery.completed_at, delivery.next_attempt_at = DeliveryStatus.SUCCEEDED, at, None
            report.succeeded += 1
        else:
            report.failed += 1
            delivery.next_attempt_at = self._policy.next_attempt(
                delivery.attempts, delivery.first_attempt_at, at, self._rand
            )
            if delivery.next_attempt_at is None:
                delivery.status, delivery.completed_at = DeliveryStatus.FAILED, at
                report.gave_up += 1
        # Returns once the transaction holding this record committed (with the round's others).
        await self._records.submit(_Record(claimed, at, attempt, report))
        return attempt

    async def _write_records(self, records: Sequence[_Record]) -> None:
        """Record attempts in one transaction: the endpoints' rows first (in id order), then the
        deliveries' (in id order), in every writer of both — no deadlock on PostgreSQL."""
        async with self._db.write() as uow:
            # A stable sort: per endpoint, in the order the attempts ended.
            for record in sorted(records, key=lambda r: r.claimed.endpoint.id):
                if record.attempt.succeeded:
                    await uow.webhooks.endpoint_succeeded(record.claimed.endpoint.id)
                else:
                    await uow.webhooks.endpoint_failed(record.claimed.endpoint.id, record.at)
            await uow.webhooks.add_attempts([record.attempt for record in records])
            gave_up: dict[str, _Record] = {}
            for record in sorted(records, key=lambda r: r.claimed.delivery.id):
                still_mine = await uow.webhooks.release(record.claimed.delivery, self.worker_id)
                if still_mine and record.claimed.delivery.status is DeliveryStatus.FAILED:
                    gave_up.setdefault(record.claimed.endpoint.id, record)
            # Once every delivery of the batch is settled: an endpoint is disabled once at most, and
            # cancelling its pending deliveries leaves the ones that just gave up `failed`. Its row is
            # this transaction's already (endpoint_failed above): read afresh, it shows that failure.
            for endpoint_id, record in gave_up.items():
                endpoint = await uow.webhooks.lock_endpoint(endpoint_id)
                if endpoint is not None:
                    record.report.disabled += await self._disable_if_exhausted(uow, endpoint, record.at)

    async def _disable_if_exhausted(self, uow: WebhookUnitOfWork, endpoint: WebhookEndpoint, at: datetime) -> int:
        if not endpoint.enabled or endpoint.deleted_at is not None:
            return 0
        if not self._policy.endpoint_exhausted(endpoint.failing_since, at):
            return 0
        endpoint.enabled, endpoint.disabled_reason, endpoint.disabled_at, endpoint.updated_at = False, "failing", at, at
        await uow.webhooks.save_endpoint(endpoint)
        await uow.webhooks.cancel_pending(endpoint.id, at)
        await uow.webhooks.add_event(
            OutboxEvent(
                id=new_id("evt", at),
                project_id=endpoint.project_id,
                mode=endpoint.mode,
                type=ENDPOINT_DISABLED,
                subject_type=None,  # about no subject: never waits for other deliveries
                subject_id=None,
                data={"object": endpoint_public(endpoint)},
                created_at=at,
            )
        )
        return 1
