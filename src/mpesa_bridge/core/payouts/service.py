"""The payout use cases: create (within limits, bound to its Idempotency-Key), approve or reject
(two people), send (once), read, and a project's payout settings.

Sending is the one dangerous step. The payout is marked `sending` — and that is committed —
before its one B2C request leaves; the request is made outside any transaction; Daraja's answer
is recorded in a new one. A crash in between leaves `sending`, which `core.payouts.reconcile`
turns `unknown` and settles by Transaction Status: never a second B2C request for one payout.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from mpesa_bridge.core.accounts import ProjectService
from mpesa_bridge.core.clock import NAIROBI, Clock
from mpesa_bridge.core.errors import BridgeError, Conflict, NotFound, PermissionDenied
from mpesa_bridge.core.idempotency import bind_key
from mpesa_bridge.core.ids import new_id, new_token
from mpesa_bridge.core.payments.stk import token_hash
from mpesa_bridge.core.payouts.entity import PAYOUT_ID_PREFIX, Payout, PayoutEvent, PayoutSettings
from mpesa_bridge.core.payouts.outcomes import move, write_event
from mpesa_bridge.core.payouts.policy import PayoutPolicy
from mpesa_bridge.core.payouts.ports import B2cCommand, InitiatorAck, InitiatorGateway, PayoutFilter
from mpesa_bridge.core.payouts.status import READY, PayoutStatus, can_transition
from mpesa_bridge.core.payouts.validation import PayoutCreate, PayoutRules, check_limits
from mpesa_bridge.core.ports import (
    IdempotencyBinding,
    PushNotSent,
    PushOutcomeUnknown,
    PushRejected,
    UnitOfWork,
    UnitOfWorkFactory,
)
from mpesa_bridge.core.projects import Mode, Tenant

B2C_RESULT = "b2c_result"  # the callback kinds of core.callbacks.handlers
B2C_TIMEOUT = "b2c_timeout"

# kind, token -> the full callback URL Daraja is given
CallbackUrl = Callable[[str, str], str]


def nairobi_day(at: datetime) -> tuple[datetime, datetime]:
    """The Africa/Nairobi calendar day holding `at`, as [start, end) in aware UTC."""
    local = at.astimezone(NAIROBI)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + timedelta(days=1)


def new_originator_conversation_id() -> str:
    """Ours, unique per payout (daraja.md 7.1: a reuse is refused, so it guards against a repeat)."""
    return f"mb-{uuid.uuid4()}"


class PayoutService:
    """Services commit through units of work, one per step, never across a network call."""

    def __init__(
        self,
        db: UnitOfWorkFactory,
        gateway: InitiatorGateway,
        projects: ProjectService,
        clock: Clock,
        callback_url: CallbackUrl,
        policy: PayoutPolicy | None = None,
    ) -> None:
        self._db = db
        self._gateway = gateway
        self._projects = projects
        self._clock = clock
        self._callback_url = callback_url
        self.policy = policy or PayoutPolicy()

    # creating -----------------------------------------------------------------------------------

    async def create(
        self, tenant: Tenant, actor: str, request: PayoutCreate, idempotency: IdempotencyBinding | None = None
    ) -> Payout:
        """Record the payout within the project's limits, then send it — or hold it for approval."""
        account = await self._projects.account(tenant)  # refused (400) before anything is written
        now = self._clock.now()
        async with self._db.write() as uow:
            await uow.payouts.lock_tenant(tenant)
            rules = PayoutRules.of(await uow.payouts.settings(tenant), self.policy)
            since, before = nairobi_day(now)
            check_limits(request.amount, rules, await uow.payouts.committed_amount(tenant, since, before))
            payout = Payout(
                id=new_id(PAYOUT_ID_PREFIX, now),
                project_id=tenant.project_id,
                mode=tenant.mode.value,
                status=PayoutStatus.PENDING_APPROVAL if rules.approval_required else PayoutStatus.QUEUED,
                amount=request.amount,
                phone=request.phone,
                command_id=request.command_id,
                remarks=request.remarks,
                occasion=request.occasion,
                metadata=request.metadata,
                short_code=account.short_code,
                daraja_environment=account.environment.value,
                api_version=self.policy.version,
                originator_conversation_id=new_originator_conversation_id() if self.policy.version == "v3" else "",
                callback_token_hash=None,  # made when it is sent (`send`)
                created_by=actor,
                created_at=now,
                updated_at=now,
            )
            await uow.payouts.add(payout)
            await write_event(uow, payout, PayoutEvent.CREATED, now)
            if idempotency is not None:
                await bind_key(uow, idempotency, payout.id)
        if payout.status is PayoutStatus.QUEUED:
            return await self.send(payout.id)
        return payout

    async def approve(self, tenant: Tenant, payout_id: str, actor: str) -> Payout:
        """pending_approval -> approved by someone other than its creator, then sent."""
        now = self._clock.now()
        async with self._db.write() as uow:
            payout = await self._lock(uow, tenant, payout_id)
            if payout.status is not PayoutStatus.PENDING_APPROVAL:
                raise Conflict(f"This payout is {payout.status}, not pending approval.", code="payout_not_pending")
            if payout.created_by == actor:
                raise PermissionDenied(
                    "The person (or key) who created a payout cannot approve it: another must.",
                    code="approver_is_creator",
                )
            payout.approved_by, payout.approved_at = actor, now
            await move(uow, payout, PayoutStatus.APPROVED, now)
            await uow.payouts.save(payout)
        return await self.send(payout.id)

    async def reject(self, tenant: Tenant, payout_id: str, actor: str, reason: str | None = None) -> Payout:
        """pending_approval -> rejected (its creator may withdraw it too); never sent."""
        now = self._clock.now()
        async with self._db.write() as uow:
            payout = await self._lock(uow, tenant, payout_id)
            if payout.status is not PayoutStatus.PENDING_APPROVAL:
                raise Conflict(f"This payout is {payout.status}, not pending approval.", code="payout_not_pending")
            payout.rejected_by = actor
            payout.rejection_reason = (reason or "").strip()[:200] or None
            await move(uow, payout, PayoutStatus.REJECTED, now, code="rejected", message=payout.rejection_reason)
            await uow.payouts.save(payout)
            return payout

    # sending ------------------------------------------------------------------------------------

    async def send(self, payout_id: str) -> Payout:
        """Send a ready payout's one B2C request. A payout that is not ready is returned as it is:
        whoever moved it to `sending` first is the only sender."""
        now = self._clock.now()
        token = new_token()
        async with self._db.write() as uow:
            payout = await uow.payouts.lock(payout_id)
            if payout is None:
                raise NotFound(f"No such payout: '{payout_id}'", param="id")
            if payout.status not in READY:
                return payout
            payout.callback_token_hash = token_hash(token)
            payout.sending_at = now
            move_ok = await _to_sending(payout, now)
            await uow.payouts.save(payout)
        if not move_ok:  # pragma: no cover - READY always may move to sending
            return payout
        tenant = Tenant(payout.project_id, Mode(payout.mode))
        try:
            account = await self._projects.account(tenant)
            command = B2cCommand(
                account=account,
                originator_conversation_id=payout.originator_conversation_id,
                command_id=payout.command_id,
                amount=payout.amount,
                phone=payout.phone,
                remarks=payout.remarks,
                occasion=payout.occasion,
                result_url=self._callback_url(B2C_RESULT, token),
                queue_timeout_url=self._callback_url(B2C_TIMEOUT, token),
                version=payout.api_version,
            )
            ack = await self._gateway.b2c_payment(command)
        except PushOutcomeUnknown as exc:
            return await self._after_send(payout.id, unknown=(exc.code, exc.message))
        except (PushRejected, PushNotSent) as exc:
            return await self._after_send(payout.id, failed=(exc.code, exc.message))
        except BridgeError as exc:  # e.g. the mode lost its Daraja settings: nothing was sent
            return await self._after_send(payout.id, failed=(exc.code, exc.message))
        return await self._after_send(payout.id, ack=ack)

    async def _after_send(
        self,
        payout_id: str,
        *,
        ack: InitiatorAck | None = None,
        failed: tuple[str, str] | None = None,
        unknown: tuple[str, str] | None = None,
    ) -> Payout:
        now = self._clock.now()
        async with self._db.write() as uow:
            payout = await uow.payouts.lock(payout_id)
            if payout is None:  # pragma: no cover - we just wrote it
                raise NotFound(f"No such payout: '{payout_id}'")
            if ack is not None:
                # A Result that landed first may have settled it already: keep what it said.
                payout.conversation_id = payout.conversation_id or ack.conversation_id or None
                if not payout.originator_conversation_id:  # v1: Safaricom made it up
                    payout.originator_conversation_id = ack.originator_conversation_id
                if await move(uow, payout, PayoutStatus.SENT, now):
                    payout.next_query_at = now + timedelta(seconds=self.policy.result_wait)
                    payout.updated_at = now
            elif failed is not None:
                code, message = failed
                await move(uow, payout, PayoutStatus.FAILED, now, code=code, message=message)
            elif unknown is not None:
                code, message = unknown
                await mark_unknown(uow, payout, code, now, self.policy, message=message)
            await uow.payouts.save(payout)
            return payout

    # reading and settings -----------------------------------------------------------------------

    async def get(self, tenant: Tenant, payout_id: str) -> Payout:
        async with self._db.read() as uow:
            payout = await uow.payouts.get(tenant, payout_id)
        if payout is None:
            raise NotFound(f"No such payout: '{payout_id}'", param="id")
        return payout

    async def list(self, tenant: Tenant, query: PayoutFilter) -> Sequence[Payout]:
        async with self._db.read() as uow:
            return await uow.payouts.list(tenant, query)

    async def rules(self, tenant: Tenant) -> tuple[PayoutRules, PayoutSettings | None]:
        async with self._db.read() as uow:
            settings = await uow.payouts.settings(tenant)
        return PayoutRules.of(settings, self.policy), settings

    async def put_settings(
        self, tenant: Tenant, *, approval_required: bool, max_amount: int | None, daily_limit: int | None
    ) -> tuple[PayoutRules, PayoutSettings]:
        settings = PayoutSettings(
            project_id=tenant.project_id,
            mode=tenant.mode.value,
            approval_required=approval_required,
            max_amount=max_amount,
            daily_limit=daily_limit,
            updated_at=self._clock.now(),
        )
        async with self._db.write() as uow:
            if await uow.projects.get(tenant.project_id) is None:
                raise NotFound(f"No such project: '{tenant.project_id}'", param="project_id")
            await uow.payouts.put_settings(settings)
        return PayoutRules.of(settings, self.policy), settings

    async def _lock(self, uow: UnitOfWork, tenant: Tenant, payout_id: str) -> Payout:
        payout = await uow.payouts.lock(payout_id)
        if payout is None or (payout.project_id, payout.mode) != (tenant.project_id, tenant.mode.value):
            raise NotFound(f"No such payout: '{payout_id}'", param="id")
        return payout


async def _to_sending(payout: Payout, now: datetime) -> bool:
    # No event: `sending` lasts one network call; `payout.sent` (or the outcome) follows at once.
    if not can_transition(payout.status, PayoutStatus.SENDING):
        return False
    payout.status = PayoutStatus.SENDING
    payout.updated_at = now
    return True


async def mark_unknown(
    uow: UnitOfWork, payout: Payout, code: str, at: datetime, policy: PayoutPolicy, *, message: str | None = None
) -> bool:
    """sending/sent -> unknown: we cannot tell whether the money moved. Settled by Transaction Status
    (by our OriginatorConversationID); a v1 payout whose id we never learned waits for a person."""
    if not await move(uow, payout, PayoutStatus.UNKNOWN, at, code=code, message=message):
        return False
    payout.query_attempts = 0
    if payout.originator_conversation_id:
        payout.next_query_at = at + timedelta(seconds=policy.backoff(0))
    else:
        payout.next_query_at = None
        payout.needs_attention, payout.attention_reason = True, "outcome_unknown"
    return True
