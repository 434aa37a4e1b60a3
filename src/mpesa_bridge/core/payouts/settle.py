"""Settling an unknown (or long-silent) payout with a Transaction Status Result about it.

    Result 0, TransactionStatus Completed, same amount  -> succeeded (with its receipt)
    Result 0, any other TransactionStatus (Declined…)   -> failed
    "no such transaction" (25)                          -> failed only after `not_found_limit`
                                                           such answers, spaced by the backoff
    anything else (2001, …)                             -> kept, flagged; asked again later
A Result about another transaction, or with another amount, changes nothing and is flagged.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from mpesa_bridge.core.payouts.entity import Payout
from mpesa_bridge.core.payouts.outcomes import flag, move
from mpesa_bridge.core.payouts.policy import PayoutPolicy
from mpesa_bridge.core.payouts.ports import StatusResult
from mpesa_bridge.core.payouts.result_codes import NOT_FOUND_CODES
from mpesa_bridge.core.payouts.status import PayoutStatus
from mpesa_bridge.core.ports import UnitOfWork


async def settle_by_status(
    uow: UnitOfWork, payout: Payout, result: StatusResult, at: datetime, policy: PayoutPolicy
) -> str:
    """Apply the Result to the locked payout; returns what was done (for logs and tests)."""
    if payout.status.is_final and payout.failure_code != "not_found_at_daraja":
        return "already_settled"
    looked_up = result.looked_up_originator_id
    if result.result_code == "0" and looked_up and looked_up != payout.originator_conversation_id:
        flag(payout, "status_result_mismatch", at)
        return "mismatch"
    if result.result_code == "0":
        if result.completed:
            if result.amount is not None and result.amount != payout.amount:
                flag(payout, "status_amount_mismatch", at)
                return "amount_mismatch"
            moved = await move(
                uow,
                payout,
                PayoutStatus.SUCCEEDED,
                at,
                result_code=result.result_code,
                result_desc=result.result_desc,
                receipt=result.receipt,
            )
            return "succeeded" if moved else "unchanged"
        moved = await move(
            uow,
            payout,
            PayoutStatus.FAILED,
            at,
            code="declined",
            message=f"Transaction Status: {result.transaction_status or 'not completed'}",
            result_code=result.result_code,
            result_desc=result.result_desc,
        )
        return "failed" if moved else "unchanged"
    if result.result_code in NOT_FOUND_CODES:
        payout.not_found_count += 1
        payout.updated_at = at
        if payout.not_found_count >= policy.not_found_limit and not payout.status.is_final:
            # Daraja has said, several times and over time, that it never received this request.
            await move(
                uow,
                payout,
                PayoutStatus.FAILED,
                at,
                code="not_found_at_daraja",
                message="Daraja has no transaction with this payout's OriginatorConversationID",
                result_code=result.result_code,
                result_desc=result.result_desc,
            )
            return "failed_not_found"
        return "not_found"
    flag(payout, f"status_query_{result.result_code}"[:64], at)
    return "flagged"


def next_query(payout: Payout, at: datetime, policy: PayoutPolicy) -> None:
    """Count a query sent about the payout and plan the next one (if the Result never comes)."""
    payout.query_attempts += 1
    payout.next_query_at = at + timedelta(seconds=policy.backoff(payout.query_attempts))
    payout.updated_at = at
