"""The core's `InitiatorGateway` (B2C, Transaction Status) and `InitiatorResultReader` over the
Daraja client, beside `gateway.py` whose clients, token cache and initiator credential it uses.

Client errors become the core's gateway errors at the adapter's one choke point for initiator
requests (`DarajaGatewayAdapter.send_initiator`):

    DarajaValidationError, DarajaRejected          -> PushRejected        (nothing happened)
    DarajaDuplicateRequest (500.002.1001)          -> PushOutcomeUnknown  (an earlier request with
                                                      this OriginatorConversationID reached Daraja)
    DarajaConnectError, Throttled, DarajaAuthError -> PushNotSent         (never processed)
    anything with outcome_unknown (read timeout,
    5xx after sending)                             -> PushOutcomeUnknown  (never sent again)
    InitiatorUnavailable (no initiator, no certificate) passes through: nothing was sent.
"""

from __future__ import annotations

import json
from typing import Any, cast

from mpesa_bridge.core.payouts.ports import (
    B2cCommand,
    B2cResult,
    InitiatorAck,
    MalformedResult,
    StatusQueryCommand,
    StatusResult,
)
from mpesa_bridge.core.phone import mask_phone
from mpesa_bridge.core.ports import PushNotSent, PushOutcomeUnknown, PushRejected
from mpesa_bridge.daraja import (
    B2cPaymentRequest,
    DarajaClient,
    DarajaMalformedResult,
    InitiatorResult,
    TransactionStatusRequest,
    b2c_details,
    parse_result,
    transaction_status_details,
)
from mpesa_bridge.daraja.gateway import DarajaGatewayAdapter
from mpesa_bridge.logging import get_logger

log = get_logger("mpesa_bridge.daraja")


class PayoutGateway:
    """Implements `core.payouts.ports.InitiatorGateway` with the adapter's clients and credentials."""

    def __init__(self, gateway: DarajaGatewayAdapter) -> None:
        self._gateway = gateway

    async def b2c_payment(self, command: B2cCommand) -> InitiatorAck:
        account = command.account
        fields = {
            "env": account.environment.value,
            "short_code": account.short_code,
            "phone": mask_phone(command.phone),
        }
        credential = await self._gateway.security_credential(account)
        request = B2cPaymentRequest(
            originator_conversation_id=command.originator_conversation_id,
            initiator_name=account.initiator_name,
            security_credential=credential,
            command_id=cast(Any, command.command_id),  # checked by validate_payout_create and validate()
            amount=command.amount,
            party_a=account.short_code,
            party_b=command.phone,
            remarks=command.remarks,
            queue_timeout_url=command.queue_timeout_url,
            result_url=command.result_url,
            occasion=command.occasion,
        )
        log.info("daraja.b2c.sending", amount=command.amount, version=command.version, **fields)
        version = cast(Any, command.version)
        try:
            accepted = await self._gateway.send_initiator(
                account, "b2c_payment", lambda client: client.b2c_payment(request, version=version)
            )
        except (PushRejected, PushNotSent, PushOutcomeUnknown) as exc:
            log.warning("daraja.b2c.failed", code=exc.code, **fields)
            raise
        log.info("daraja.b2c.accepted", conversation_id=accepted.conversation_id, **fields)
        return InitiatorAck(accepted.conversation_id, accepted.originator_conversation_id)

    async def transaction_status(self, command: StatusQueryCommand) -> InitiatorAck:
        account = command.account
        credential = await self._gateway.security_credential(account)
        request = TransactionStatusRequest(
            initiator=account.initiator_name,
            security_credential=credential,
            party_a=account.short_code,
            result_url=command.result_url,
            queue_timeout_url=command.queue_timeout_url,
            remarks=command.remarks,
            transaction_id=command.transaction_id,
            original_conversation_id=command.original_conversation_id,
        )
        accepted = await self._gateway.send_initiator(
            account, "transaction_status", lambda client: client.transaction_status(request)
        )
        log.info("daraja.transaction_status.accepted", conversation_id=accepted.conversation_id)
        return InitiatorAck(accepted.conversation_id, accepted.originator_conversation_id)


def _parse(body: bytes) -> InitiatorResult:
    """The Result envelope; `MalformedResult` for anything else, or for a control character in any
    string (Daraja sends none, and PostgreSQL refuses NUL in text: such a value could never be stored)."""
    try:
        doc = json.loads(body)
        result = parse_result(doc)
    except (ValueError, DarajaMalformedResult, RecursionError) as exc:
        raise MalformedResult(str(exc) or "not a Result") from exc
    stack: list[object] = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, str) and _has_control(node):
            raise MalformedResult("a field holds a control character")
        if isinstance(node, dict):
            stack.extend(node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return result


class ResultReader:
    """Implements `core.payouts.ports.InitiatorResultReader` with the client's tolerant parser."""

    def b2c(self, body: bytes) -> B2cResult:
        result = _parse(body)
        details = b2c_details(result) if result.succeeded else None
        return B2cResult(
            result_code=result.result_code,
            result_desc=result.result_desc[:500],
            originator_conversation_id=result.originator_conversation_id,
            conversation_id=result.conversation_id,
            receipt=details.receipt if details else None,
            amount=details.amount if details else None,
            recipient_name=details.receiver_party_public_name if details else None,
            completed_at=details.completed_at if details else None,
        )

    def transaction_status(self, body: bytes) -> StatusResult:
        result = _parse(body)
        if not result.succeeded:
            return StatusResult(
                result.result_code, result.result_desc[:500], result.originator_conversation_id, result.conversation_id
            )
        d = transaction_status_details(result)
        shown: dict[str, Any] = {
            "receipt": d.receipt,
            "transaction_status": d.status,
            "amount": d.amount,
            "debit_party_name": d.debit_party_name,
            "credit_party_name": d.credit_party_name,
            "originator_conversation_id": d.originator_conversation_id,
            "conversation_id": d.conversation_id,
            "initiated_at": _iso(d.initiated_at),
            "finalised_at": _iso(d.finalised_at),
            "debit_party_charges_cents": d.debit_party_charges_cents,
            "debit_account_type": d.debit_account_type,
            "reason_type": d.reason_type,
        }
        return StatusResult(
            result_code=result.result_code,
            result_desc=result.result_desc[:500],
            originator_conversation_id=result.originator_conversation_id,
            conversation_id=result.conversation_id,
            receipt=d.receipt,
            transaction_status=d.status,
            amount=d.amount,
            looked_up_originator_id=d.originator_conversation_id,
            details={k: v for k, v in shown.items() if v is not None},
        )


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _has_control(value: str) -> bool:
    return any(ord(ch) < 0x20 for ch in value)


__all__ = ["DarajaClient", "PayoutGateway", "ResultReader"]
