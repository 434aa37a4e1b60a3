"""What a Transaction Status query may ask: a receipt, or the OriginatorConversationID of a B2C request."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mpesa_bridge.core.errors import InvalidRequest

_RECEIPT = re.compile(r"^[A-Za-z0-9]{6,20}$")
ORIGINATOR_MAX = 64


@dataclass(frozen=True)
class StatusQueryCreate:
    transaction_id: str
    originator_conversation_id: str


def validate_status_query_create(*, transaction_id: object, originator_conversation_id: object) -> StatusQueryCreate:
    receipt = "" if transaction_id is None else transaction_id
    originator = "" if originator_conversation_id is None else originator_conversation_id
    if not isinstance(receipt, str) or not isinstance(originator, str):
        raise InvalidRequest("transaction_id and originator_conversation_id are strings", code="invalid_text")
    receipt, originator = receipt.strip().upper(), originator.strip()
    if not receipt and not originator:
        raise InvalidRequest(
            "give transaction_id (an M-Pesa receipt) or originator_conversation_id",
            code="parameter_missing",
            param="transaction_id",
        )
    if receipt and not _RECEIPT.fullmatch(receipt):
        raise InvalidRequest(
            "transaction_id must be an M-Pesa receipt: 6 to 20 letters and digits",
            code="invalid_transaction_id",
            param="transaction_id",
        )
    if originator and (len(originator) > ORIGINATOR_MAX or not originator.isprintable() or not originator.isascii()):
        raise InvalidRequest(
            f"originator_conversation_id must be at most {ORIGINATOR_MAX} printable ASCII characters",
            code="invalid_originator_conversation_id",
            param="originator_conversation_id",
        )
    return StatusQueryCreate(receipt, originator)
