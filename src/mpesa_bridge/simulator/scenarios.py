"""Magic test phone numbers: the paying phone (PartyA) decides what the simulated customer does.

The table below is data so that the README and tests can render or iterate it:

| Phone          | Outcome                                                                  |
|----------------|--------------------------------------------------------------------------|
| 254708374149   | success (ResultCode 0); the sandbox test MSISDN. Any unlisted number too |
| 254700000001   | insufficient funds (1)                                                   |
| 254700001032   | cancelled by the user (1032)                                             |
| 254700001037   | timeout, user cannot be reached (1037)                                   |
| 254700002001   | wrong PIN (2001)                                                         |
| 254700001001   | subscriber locked (1001)                                                 |
| 254700009999   | system error (9999)                                                      |
| 254700000900   | the customer pays but no callback is ever sent; STK Query reports 0      |
| 254700000901   | success, the same callback is sent twice                                 |
| 254700000902   | success, the callback arrives late (`late_callback_delay`)               |
| 254700000903   | success, then a contradicting "cancelled" (1032) callback for the same id |
| 254700001019   | the prompt expires unanswered (1019)                                     |
| 254700000904   | pays, no callback; STK Query says "being processed" until `query_lag`    |
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType


class Delivery(StrEnum):
    """How the result reaches the merchant's CallBackURL."""

    ON_TIME = "on_time"  # one callback, `callback_delay` after the push
    NEVER = "never"  # outcome decided after `callback_delay`, callback never sent
    TWICE = "twice"  # two identical callbacks, `duplicate_callback_gap` apart
    LATE = "late"  # one callback after `late_callback_delay`; pending until then
    CONTRADICTING = "contradicting"  # the real callback, then one saying 1032 for the same ids


@dataclass(frozen=True)
class Scenario:
    """What the simulated customer does when a prompt reaches the phone."""

    name: str
    result_code: int
    result_desc: str
    description: str
    delivery: Delivery = Delivery.ON_TIME
    # STK Query keeps saying "being processed" until `query_lag` after the push, though the
    # customer has answered: the result has not reached the query side yet (daraja.md section 5).
    query_lags: bool = False

    @property
    def succeeded(self) -> bool:
        return self.result_code == 0


# ResultDesc texts as Safaricom sends them (daraja.md section 4.3).
SUCCESS_DESC = "The service request is processed successfully."
_INSUFFICIENT_DESC = "The balance is insufficient for the transaction."
_CANCELLED_DESC = "Request cancelled by user"
_TIMEOUT_DESC = "DS timeout user cannot be reached"
_WRONG_PIN_DESC = "The initiator information is invalid."
_LOCKED_DESC = "Unable to lock subscriber, a transaction is already in process for the current subscriber"
_SYSTEM_ERROR_DESC = "An error occurred while sending a push request"
_NOT_PERMITTED_DESC = "The request is not permitted according to product assignment."

SANDBOX_TEST_MSISDN = "254708374149"

DEFAULT_SCENARIO = Scenario("success", 0, SUCCESS_DESC, "Any other number: the customer enters the PIN and pays.")

# Not a magic number: what a push gets when PartyB does not belong to BusinessShortCode.
PRODUCT_NOT_PERMITTED = Scenario(
    "not_permitted",
    2028,
    _NOT_PERMITTED_DESC,
    "PartyB is not the paybill itself, or not a till of this store: the push is refused in the callback.",
)

MAGIC_NUMBERS: Mapping[str, Scenario] = MappingProxyType(
    {
        SANDBOX_TEST_MSISDN: Scenario("success", 0, SUCCESS_DESC, "The sandbox test MSISDN: the customer pays."),
        "254700000001": Scenario("insufficient_funds", 1, _INSUFFICIENT_DESC, "Insufficient funds."),
        "254700001032": Scenario("cancelled", 1032, _CANCELLED_DESC, "The customer cancels the prompt."),
        "254700001037": Scenario("unreachable", 1037, _TIMEOUT_DESC, "Timeout: the phone cannot be reached."),
        "254700002001": Scenario("wrong_pin", 2001, _WRONG_PIN_DESC, "The customer enters a wrong PIN."),
        "254700001001": Scenario("subscriber_locked", 1001, _LOCKED_DESC, "Another session holds the phone."),
        "254700009999": Scenario("system_error", 9999, _SYSTEM_ERROR_DESC, "The push could not be sent."),
        "254700001019": Scenario("expired", 1019, "Transaction has expired", "The prompt expires unanswered."),
        "254700000900": Scenario(
            "no_callback",
            0,
            SUCCESS_DESC,
            "The customer pays but the callback is never sent; STK Query reports ResultCode 0.",
            Delivery.NEVER,
        ),
        "254700000901": Scenario(
            "duplicate_callback",
            0,
            SUCCESS_DESC,
            "The customer pays and the same callback arrives twice.",
            Delivery.TWICE,
        ),
        "254700000902": Scenario(
            "late_callback",
            0,
            SUCCESS_DESC,
            "The customer pays; the callback (and the query's answer) only comes after late_callback_delay.",
            Delivery.LATE,
        ),
        "254700000903": Scenario(
            "contradicting_callback",
            0,
            SUCCESS_DESC,
            "The customer pays; a second callback for the same ids then claims 1032 (cancelled).",
            Delivery.CONTRADICTING,
        ),
        "254700000904": Scenario(
            "lagging_query",
            0,
            SUCCESS_DESC,
            "The customer pays; no callback is sent and STK Query says 'being processed' until query_lag.",
            Delivery.NEVER,
            query_lags=True,
        ),
    }
)

_LOCAL_FORMS = (
    (re.compile(r"^\+?254([17]\d{8})$"), "254"),
    (re.compile(r"^0([17]\d{8})$"), "254"),
    (re.compile(r"^([17]\d{8})$"), "254"),
)


def normalise_msisdn(phone: str | int) -> str:
    """`0708…`, `+254708…`, `708…` and `254708…` are the same phone; anything else is returned as-is."""
    text = re.sub(r"[\s-]", "", str(phone))
    for pattern, prefix in _LOCAL_FORMS:
        match = pattern.match(text)
        if match:
            return prefix + match.group(1)
    return text


def scenario_for(phone: str | int) -> Scenario:
    """The scenario for a paying phone, in any common spelling."""
    return MAGIC_NUMBERS.get(normalise_msisdn(phone), DEFAULT_SCENARIO)
