"""Reversing a succeeded payment: record (`sending`, committed), send, record Daraja's answer.

Sending happens outside any transaction. A crash after the first commit leaves the reversal
`sending`; `sweep_stranded` makes it `unknown` once it is older than the grace period. A read
timeout makes it `unknown` at once. An unknown reversal is never sent again: its Result, a
Transaction Status settlement (`core.reversals.reconcile`, when Daraja's answer gave us its
OriginatorConversationID) or a person settles it; so is a `sent` one whose Result is late.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from mpesa_bridge.core.accounts import ProjectService
from mpesa_bridge.core.clock import Clock
from mpesa_bridge.core.errors import Conflict, InvalidRequest, NotFound
from mpesa_bridge.core.idempotency import bind_key
from mpesa_bridge.core.ids import new_id, new_token
from mpesa_bridge.core.payments.entity import Payment
from mpesa_bridge.core.payments.status import PaymentStatus
from mpesa_bridge.core.payments.stk import token_hash
from mpesa_bridge.core.ports import (
    GatewayError,
    IdempotencyBinding,
    InitiatorUnavailable,
    PushOutcomeUnknown,
    UnitOfWork,
    UnitOfWorkFactory,
)
from mpesa_bridge.core.projects import DarajaAccount, Tenant
from mpesa_bridge.core.reversals.entity import BLOCKING_STATUSES, Reversal, ReversalStatus
from mpesa_bridge.core.reversals.ports import InitiatorQueued, ReversalCommand, ReversalFilter, ReversalGateway
from mpesa_bridge.core.reversals.settle import ReversalOutcome, mark_reversal_unknown, settle_reversal

DEFAULT_REMARKS = "Payment reversal"
MAX_REMARKS = 100
STRANDED_AFTER = 300.0  # seconds a reversal may stay `sending` before it is declared unknown

# (kind, token) -> the URL Daraja POSTs to: ResultURL for *_result, QueueTimeOutURL for *_timeout.
CallbackUrl = Callable[[str, str], str]
RESULT_KIND = "reversal_result"
TIMEOUT_KIND = "reversal_timeout"


def require_initiator(account: DarajaAccount) -> None:
    """Refuse before recording anything when the mode has no initiator to send with (400)."""
    if not account.has_initiator:
        raise InitiatorUnavailable(
            "This mode has no Daraja initiator: set initiator_name and initiator_password (set-daraja).",
            code="initiator_not_configured",
        )


def check_remarks(remarks: str | None) -> str:
    text = (remarks or DEFAULT_REMARKS).strip()
    if not 2 <= len(text) <= MAX_REMARKS or not text.isprintable():
        raise InvalidRequest("remarks must be 2 to 100 printable characters", param="remarks")
    return text


class ReversalService:
    """The reversal use cases the API and the dashboard call; one unit of work per step."""

    def __init__(
        self,
        db: UnitOfWorkFactory,
        gateway: ReversalGateway,
        projects: ProjectService,
        clock: Clock,
        callback_url: CallbackUrl,
        *,
        result_wait: float = 300.0,
    ) -> None:
        self._db = db
        self._gateway = gateway
        self._projects = projects
        self._clock = clock
        self._callback_url = callback_url
        self._result_wait = result_wait  # seconds a `sent` reversal waits for its Result before Transaction Status

    async def create(
        self,
        tenant: Tenant,
        payment_id: str,
        remarks: str | None = None,
        idempotency: IdempotencyBinding | None = None,
    ) -> Reversal:
        """Reverse the whole amount of a succeeded payment. 409 while another reversal of it is in
        flight or succeeded; 404 for a payment of another tenant."""
        text = check_remarks(remarks)
        async with self._db.read() as read:  # another tenant's payment is 404 before anything else
            if await read.payments.get(tenant, payment_id) is None:
                raise NotFound(f"No such payment: '{payment_id}'", param="payment_id")
        account = await self._projects.account(tenant)
        require_initiator(account)
        token = new_token()
        now = self._clock.now()
        async with self._db.write() as uow:
            payment = await uow.payments.lock(payment_id)
            if payment is None or (payment.project_id, payment.mode) != (tenant.project_id, tenant.mode.value):
                raise NotFound(f"No such payment: '{payment_id}'", param="payment_id")
            receipt = await _refuse_if_not_reversible(uow, payment)
            reversal = _new_reversal(payment, receipt, token_hash(token), text, now)
            await uow.reversals.add(reversal)
            payment.reversal_id = reversal.id
            payment.updated_at = now
            await uow.payments.save(payment)
            if idempotency is not None:
                await bind_key(uow, idempotency, reversal.id)
        command = ReversalCommand(
            account=account,
            original_receipt=reversal.original_receipt,
            amount=reversal.amount,
            short_code=reversal.short_code,
            result_url=self._callback_url(RESULT_KIND, token),
            queue_timeout_url=self._callback_url(TIMEOUT_KIND, token),
            remarks=text,
        )
        try:
            queued = await self._gateway.reverse(command)
        except PushOutcomeUnknown as exc:
            return await self._after_send(reversal.id, unknown=exc.code)
        except GatewayError as exc:  # refused, or never sent (no initiator, no certificate, unreachable)
            return await self._after_send(reversal.id, refused=(exc.code, exc.message))
        return await self._after_send(reversal.id, queued=queued)

    async def _after_send(
        self,
        reversal_id: str,
        *,
        queued: InitiatorQueued | None = None,
        refused: tuple[str, str] | None = None,
        unknown: str | None = None,
    ) -> Reversal:
        now = self._clock.now()
        async with self._db.write() as uow:
            reversal = await uow.reversals.lock(reversal_id)
            if reversal is None:  # pragma: no cover - we just wrote it
                raise NotFound(f"No such reversal: '{reversal_id}'")
            if queued is not None:
                reversal.conversation_id = reversal.conversation_id or queued.conversation_id
                reversal.originator_conversation_id = (
                    reversal.originator_conversation_id or queued.originator_conversation_id
                )
                reversal.sent_at = reversal.sent_at or now
                if reversal.status is ReversalStatus.SENDING:  # a fast Result may have settled it already
                    reversal.status = ReversalStatus.SENT
                    reversal.next_query_at = now + timedelta(seconds=self._result_wait)
                reversal.updated_at = now
            elif refused is not None:
                code, message = refused
                outcome = ReversalOutcome(False, None, message, failure_code=code, source="push")
                await settle_reversal(uow, reversal, outcome, now)
            elif unknown is not None:
                reversal.sent_at = reversal.sent_at or now
                mark_reversal_unknown(reversal, unknown, now)
            await uow.reversals.save(reversal)
        return reversal

    async def get(self, tenant: Tenant, reversal_id: str) -> Reversal:
        async with self._db.read() as uow:
            reversal = await uow.reversals.get(tenant, reversal_id)
        if reversal is None:
            raise NotFound(f"No such reversal: '{reversal_id}'", param="id")
        return reversal

    async def list(self, tenant: Tenant, query: ReversalFilter) -> Sequence[Reversal]:
        async with self._db.read() as uow:
            return await uow.reversals.list(tenant, query)

    async def for_payment(self, payment_id: str) -> Sequence[Reversal]:
        async with self._db.read() as uow:
            return await uow.reversals.for_payment(payment_id)

    async def sweep_stranded(self, grace: float = STRANDED_AFTER) -> int:
        """Reversals left `sending` by a crash become `unknown` (never re-sent); how many."""
        now = self._clock.now()
        async with self._db.write() as uow:
            ids = await uow.reversals.stranded(now - timedelta(seconds=grace), 100)
            changed = 0
            for reversal_id in ids:
                reversal = await uow.reversals.lock(reversal_id)
                if reversal is not None and mark_reversal_unknown(reversal, "stranded_while_sending", now):
                    await uow.reversals.save(reversal)
                    changed += 1
        return changed


async def _refuse_if_not_reversible(uow: UnitOfWork, payment: Payment) -> str:
    """The receipt to reverse, or `Conflict`: the payment did not succeed, or has a reversal that
    is in flight or succeeded (checked under the payment's lock: two requests cannot both pass)."""
    receipt = payment.mpesa_receipt_number
    if payment.status is not PaymentStatus.SUCCEEDED or not receipt:
        raise Conflict(
            f"Only a succeeded payment can be reversed; this one is {payment.status}.", code="payment_not_succeeded"
        )
    for other in await uow.reversals.for_payment(payment.id):
        if other.status is ReversalStatus.SUCCEEDED:
            raise Conflict(f"This payment was already reversed ({other.id}).", code="payment_already_reversed")
        if other.status in BLOCKING_STATUSES:
            raise Conflict(
                f"A reversal of this payment is in flight ({other.id}, {other.status}).", code="reversal_in_flight"
            )
    return receipt


def _new_reversal(payment: Payment, receipt: str, cb_hash: str, remarks: str, now: datetime) -> Reversal:
    return Reversal(
        id=new_id("rev", now),
        project_id=payment.project_id,
        mode=payment.mode,
        payment_id=payment.id,
        status=ReversalStatus.SENDING,
        amount=payment.amount,
        original_receipt=receipt,
        short_code=payment.business_short_code,
        daraja_environment=payment.daraja_environment,
        callback_token_hash=cb_hash,
        remarks=remarks,
        created_at=now,
        updated_at=now,
    )
