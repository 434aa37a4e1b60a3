"""The inbox: every callback Daraja sends is stored raw, then applied by the handler for its kind.

`Inbox.receive` is the callback's way in (the HTTP route only reads the request and answers): it
stores the row durably (`workers.ingest`, group commit) and hands it to the applying side. That
side looks up the handler for each row's kind (`core.callbacks.handlers`) — STK today; B2C results,
reversals, C2B and the rest plug in by registering a handler, not by changing anything here. If the
process dies between storing and applying, the sweep finds the row still `received` and applies it
after a restart. In a burst, the callbacks that queued up while a transaction ran are applied
together in the next one (`core.group_commit`: one commit for many); if that transaction fails,
each is retried in one of its own.

A callback that fails on its own is recorded as failed in a transaction of its own (the failed one
is rolled back, its count with it): attempts, the error's class and when it is due again, on the
schedule of `core.callbacks.retry`, whatever its kind. The sweep reads only rows that are due,
oldest first, so rows waiting for a retry, or left `failed` after the last one, never stand in front
of newer callbacks. A stored row whose kind has no handler (stored by another version) fails the
same way, as `UnknownCallbackKind`.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from datetime import datetime

from mpesa_bridge.core.callbacks.handlers import CallbackHandlers, standard_handlers
from mpesa_bridge.core.callbacks.retry import InboxRetryPolicy, record_failure
from mpesa_bridge.core.clock import Clock
from mpesa_bridge.core.group_commit import GroupCommit, Write
from mpesa_bridge.core.payments.entity import InboundCallback
from mpesa_bridge.core.payments.policy import ReconcilePolicy
from mpesa_bridge.core.ports import UnitOfWork, UnitOfWorkFactory
from mpesa_bridge.logging import get_logger
from mpesa_bridge.observability.instruments import CALLBACKS_APPLIED, CALLBACKS_RECEIVED
from mpesa_bridge.workers.ingest import CallbackStore
from mpesa_bridge.workers.loop import WorkerLoop

log = get_logger("mpesa_bridge.inbox")

MAX_BATCH = 64  # per transaction: bigger batches save little and hold the single SQLite writer longer


class Inbox(WorkerLoop):
    """Stores callbacks (`receive`), applies them by kind at once, and sweeps every `sweep_interval`."""

    name = "inbox-sweep"
    failure_event = "inbox.sweep_failed"
    log = log

    def __init__(
        self,
        db: UnitOfWorkFactory,
        clock: Clock,
        policy: ReconcilePolicy,
        sweep_interval: float = 2.0,
        *,
        retry: InboxRetryPolicy | None = None,
        sweep_batch: int = 500,
        handlers: CallbackHandlers | None = None,
        store: CallbackStore | None = None,
        crash_after_store: bool = False,
    ) -> None:
        super().__init__(sweep_interval)
        self._db = db
        self._clock = clock
        self._retry = retry or InboxRetryPolicy()
        self.sweep_batch = sweep_batch
        self.handlers = handlers or standard_handlers(policy)
        self.store = store or CallbackStore(db)
        self._crash_after_store = crash_after_store
        self._applying = self._group_commit()

    def handles(self, kind: str) -> bool:
        """Whether callbacks of `kind` are taken at all: the route refuses the others before storing."""
        return self.handlers.handles(kind)

    async def receive(self, callback: InboundCallback) -> None:
        """Store `callback` durably (returns once committed), then have it applied unless it was
        stored already settled (a refused source is kept `flagged`, never applied)."""
        await self.store.store(callback)
        CALLBACKS_RECEIVED.labels(callback.kind, "stored" if callback.state == "received" else callback.state).inc()
        if callback.state != "received":
            return
        if self._crash_after_store:
            # Test hook (refused in production): die between storing and applying, like a power cut.
            log.warning("fault_injection.crash", callback_id=callback.id)
            os._exit(70)
        self.submit(callback.id)
        log.info("callback.received", callback_id=callback.id, kind=callback.kind, bytes=len(callback.body))

    def submit(self, callback_id: str) -> None:
        """Apply soon. Without running workers the row simply waits for a worker's sweep."""
        if self.running:
            self._applying.put(callback_id)

    async def process(self, callback_id: str) -> bool:
        """Apply one stored callback; False if it was already processed (or is being)."""
        return await self.process_many([callback_id]) == 1

    async def process_many(self, callback_ids: Sequence[str]) -> int:
        """Apply stored callbacks in one transaction, each by its kind's handler; how many were applied."""
        async with self._db.write() as uow:
            locked = await uow.callbacks.lock_many(callback_ids)
            # Due only: an id read by a sweep may have failed meanwhile and now waits for its retry.
            callbacks = [c for c in locked if _due(c, self._clock.now())]
            await self._dispatch(uow, callbacks)
            await uow.callbacks.save_many(callbacks)
        for callback in callbacks:
            CALLBACKS_APPLIED.labels(callback.kind, callback.state).inc()
            log.info(
                "callback.processed",
                callback_id=callback.id,
                kind=callback.kind,
                state=callback.state,
                reason=callback.flag_reason,
                payment_id=callback.payment_id,
            )
        return len(callbacks)

    async def _dispatch(self, uow: UnitOfWork, callbacks: Sequence[InboundCallback]) -> None:
        at = self._clock.now()
        by_kind = sorted(callbacks, key=lambda c: c.kind)  # stable: each kind keeps id order
        for kind, group in itertools.groupby(by_kind, key=lambda c: c.kind):
            await self.handlers.handler(kind).apply(uow, list(group), at)

    async def sweep(self) -> int:
        async with self.busy, self._db.read() as uow:
            ids = list(await uow.callbacks.unprocessed(self._clock.now(), self.sweep_batch))
        done = 0

        async def apply(batch: Sequence[str]) -> None:
            nonlocal done
            done += await self._process_locked(batch)

        await self._group_commit(apply).write_now(ids)
        return done

    async def pass_once(self) -> bool:
        await self.sweep()
        return False

    def _group_commit(self, write: Write[str] | None = None) -> GroupCommit[str]:
        return GroupCommit(
            write or self._process_locked, max_batch=MAX_BATCH, on_batch_failure=_batch_failed, start=self.spawn
        )

    async def _process_locked(self, callback_ids: Sequence[str]) -> int:
        # The lock is held while a callback is applied, so that stopping never cancels a transaction —
        # and from a lone callback's failure to its record, so that no sweep tries it in between.
        async with self.busy:
            try:
                return await self.process_many(callback_ids)
            except Exception as exc:
                if len(callback_ids) > 1:
                    raise  # the group commit tries each alone
                log.error("callback.process_failed", callback_id=callback_ids[0], exc_info=exc)
                await self._record_failure(callback_ids[0], type(exc).__name__)
                return 0

    async def _record_failure(self, callback_id: str, error: str) -> None:
        now = self._clock.now()
        try:
            async with self._db.write() as uow:
                # Locked afresh: skipped if another worker is trying it right now (its try counts).
                callbacks = [c for c in await uow.callbacks.lock_many([callback_id]) if c.state == "received"]
                given_up = [record_failure(c, error, now, self._retry) for c in callbacks]
                await uow.callbacks.save_many(callbacks)
        except Exception:
            log.exception("callback.failure_not_recorded", callback_id=callback_id)
            return
        for callback, failed in zip(callbacks, given_up, strict=True):
            CALLBACKS_APPLIED.labels(callback.kind, "failed" if failed else "retry_scheduled").inc()
            if failed:  # needs a person: see docs/payments.md, "Callbacks that keep failing"
                log.error("callback.failed", callback_id=callback.id, attempts=callback.attempts, error=error)
            else:
                log.warning(
                    "callback.retry_scheduled",
                    callback_id=callback.id,
                    attempts=callback.attempts,
                    error=error,
                    next_attempt_at=callback.next_attempt_at.isoformat() if callback.next_attempt_at else None,
                )


def _batch_failed(batch: Sequence[str], error: Exception) -> None:
    log.warning("callback.batch_failed", size=len(batch), exc_info=error)


def _due(callback: InboundCallback, now: datetime) -> bool:
    return callback.state == "received" and (callback.next_attempt_at is None or callback.next_attempt_at <= now)
