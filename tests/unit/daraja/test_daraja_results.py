"""The initiator APIs' Result envelope (daraja.md §8) and each API's ResultParameters, on the
reference's own samples and on the variants seen in the wild."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from mpesa_bridge.daraja import (
    Balance,
    DarajaMalformedResult,
    ResultParameter,
    account_balance_details,
    b2c_details,
    classify_initiator_result,
    parse_balances,
    parse_result,
    reversal_details,
    transaction_status_details,
)

B2C_SUCCESS: dict[str, Any] = {
    "Result": {
        "ResultType": 0,
        "ResultCode": 0,
        "ResultDesc": "The service request is processed successfully.",
        "OriginatorConversationID": "b2c-7f3c0e2a-5b1d-4c9e-9a77-1e2f3a4b5c6d",
        "ConversationID": "AG_20240706_2010364430d9bbdaf872",
        "TransactionID": "SG632NMUAB",
        "ResultParameters": {
            "ResultParameter": [
                {"Key": "TransactionAmount", "Value": 10},
                {"Key": "TransactionReceipt", "Value": "SG632NMUAB"},
                {"Key": "ReceiverPartyPublicName", "Value": "254708374149 - JOHN DOE"},
                {"Key": "TransactionCompletedDateTime", "Value": "06.07.2024 22:48:52"},
                {"Key": "B2CUtilityAccountAvailableFunds", "Value": 8959269.60},
                {"Key": "B2CWorkingAccountAvailableFunds", "Value": 1199371.00},
                {"Key": "B2CRecipientIsRegisteredCustomer", "Value": "Y"},
                {"Key": "B2CChargesPaidAccountAvailableFunds", "Value": -1980.00},
            ]
        },
        "ReferenceData": {
            "ReferenceItem": {
                "Key": "QueueTimeoutURL",
                "Value": "https://internalsandbox.safaricom.co.ke/mpesa/b2cresults/v1/submit",
            }
        },
    }
}

B2C_FAILURE = {
    "Result": {
        "ResultType": 0,
        "ResultCode": 2001,
        "ResultDesc": "The initiator information is invalid.",
        "OriginatorConversationID": "29112-34801843-1",
        "ConversationID": "AG_20191219_00006c6fddb15123addf",
        "TransactionID": "NLJ0000000",
        "ReferenceData": {"ReferenceItem": {"Key": "QueueTimeoutURL", "Value": "https://internalsandbox/x"}},
    }
}

STATUS_SUCCESS = {
    "Result": {
        "ResultType": 0,
        "ResultCode": 0,
        "ResultDesc": "The service request is processed successfully.",
        "OriginatorConversationID": "3213-416199-2",
        "ConversationID": "AG_20180223_0000493344ae97d86f75",
        "TransactionID": "MBN0000000",
        "ResultParameters": {
            "ResultParameter": [
                {"Key": "DebitPartyName", "Value": "600310 - Safaricom333"},
                {"Key": "CreditPartyName", "Value": "254708374149 - John Doe"},
                {"Key": "OriginatorConversationID", "Value": "3211-416020-3"},
                {"Key": "InitiatedTime", "Value": "20180223054112"},
                {"Key": "DebitAccountType", "Value": "Utility Account"},
                {"Key": "DebitPartyCharges", "Value": "Fee For B2C Payment|KES|22.40"},
                {"Key": "TransactionReason"},
                {"Key": "ReasonType", "Value": "Business Payment to Customer via API"},
                {"Key": "TransactionStatus", "Value": "Completed"},
                {"Key": "FinalisedTime", "Value": "20180223054112"},
                {"Key": "Amount", "Value": "300"},
                {"Key": "ConversationID", "Value": "AG_20180223_000041b09c22e613d6c9"},
                {"Key": "ReceiptNo", "Value": "MBN31H462N"},
            ]
        },
        "ReferenceData": {"ReferenceItem": {"Key": "Occasion"}},
    }
}

BALANCE_STRING = (
    "Working Account|KES|700000.00|700000.00|0.00|0.00&Float Account|KES|0.00|0.00|0.00|0.00"
    "&Utility Account|KES|228037.00|228037.00|0.00|0.00&Charges Paid Account|KES|-1540.00|-1540.00|0.00|0.00"
    "&Organization Settlement Account|KES|0.00|0.00|0.00|0.00"
)
BALANCE_SUCCESS = {
    "Result": {
        "ResultType": "0",
        "ResultCode": "0",
        "ResultDesc": "The service request is processed successfully",
        "OriginatorConversationID": "16917-22577599-3",
        "ConversationID": "AG_20200206_00005e091a8ec6b9eac5",
        "TransactionID": "OA90000000",
        "ResultParameters": {
            "ResultParameter": [
                {"Key": "AccountBalance", "Value": BALANCE_STRING},
                {"Key": "BOCompletedTime", "Value": "20200109125710"},
            ]
        },
        "ReferenceData": {"ReferenceItem": {"Key": "QueueTimeoutURL", "Value": "https://internalsandbox/ab"}},
    }
}

REVERSAL_SUCCESS = {
    "Result": {
        "ResultType": 0,
        "ResultCode": 0,
        "ResultDesc": "The service request is processed successfully.",
        "OriginatorConversationID": "dad6-4c34-8787-c8cb963a496d1268232",
        "ConversationID": "AG_20211114_201018edbbf9f1582eaa",
        "TransactionID": "SKE52PAWR9",
        "ResultParameters": {
            "ResultParameter": [
                {"Key": "DebitAccountBalance", "Value": "Utility Account|KES|7722179.62|7722179.62|0.00|0.00"},
                {"Key": "Amount", "Value": 1.00},
                {"Key": "TransCompletedTime", "Value": 20211114132711},
                {"Key": "OriginalTransactionID", "Value": "SKC82PACB8"},
                {"Key": "Charge", "Value": 0.00},
                {"Key": "CreditPartyPublicName", "Value": "254705912645 - NICHOLAS JOHN SONGOK"},
                {"Key": "DebitPartyPublicName", "Value": "600992 - Safaricom Daraja 992"},
            ]
        },
    }
}


def test_b2c_success_sample() -> None:
    result = parse_result(B2C_SUCCESS)

    assert result.succeeded
    assert (result.result_type, result.result_code) == ("0", "0")
    assert result.originator_conversation_id == "b2c-7f3c0e2a-5b1d-4c9e-9a77-1e2f3a4b5c6d"
    assert result.conversation_id == "AG_20240706_2010364430d9bbdaf872"
    assert result.transaction_id == "SG632NMUAB"
    assert len(result.parameters) == 8
    assert result.reference("QueueTimeoutURL") == "https://internalsandbox.safaricom.co.ke/mpesa/b2cresults/v1/submit"
    details = b2c_details(result)
    assert details.receipt == "SG632NMUAB"
    assert details.amount == 10
    assert details.receiver_party_public_name == "254708374149 - JOHN DOE"
    # 22:48:52 in Nairobi is 19:48:52 UTC.
    assert details.completed_at == datetime(2024, 7, 6, 19, 48, 52, tzinfo=UTC)
    assert details.utility_account_available_cents == 895926960
    assert details.working_account_available_cents == 119937100
    assert details.charges_paid_account_available_cents == -198000
    assert details.recipient_is_registered is True


def test_b2c_failure_sample_has_no_receipt() -> None:
    result = parse_result(json.dumps(B2C_FAILURE).encode())

    assert not result.succeeded
    assert result.result_code == "2001"
    assert result.result_desc == "The initiator information is invalid."
    assert result.parameters == ()
    details = b2c_details(result)
    assert details.receipt is None  # NLJ0000000 is a placeholder
    assert details.amount is None
    assert details.recipient_is_registered is None


def test_transaction_status_sample() -> None:
    result = parse_result(STATUS_SUCCESS)
    details = transaction_status_details(result)

    assert details.receipt == "MBN31H462N"
    assert details.status == "Completed"
    assert details.completed
    assert details.amount == 300
    assert details.debit_party_name == "600310 - Safaricom333"
    assert details.credit_party_name == "254708374149 - John Doe"
    assert details.originator_conversation_id == "3211-416020-3"
    assert details.conversation_id == "AG_20180223_000041b09c22e613d6c9"
    assert details.initiated_at == datetime(2018, 2, 23, 2, 41, 12, tzinfo=UTC)
    assert details.finalised_at == details.initiated_at
    assert details.debit_party_charges_cents == 2240
    assert details.debit_account_type == "Utility Account"
    assert details.reason_type == "Business Payment to Customer via API"
    assert result.get("TransactionReason") is None
    assert ResultParameter("TransactionReason") in result.parameters
    assert result.reference_data == (ResultParameter("Occasion"),)


def test_a_declined_status_is_not_completed() -> None:
    body = json.loads(json.dumps(STATUS_SUCCESS))
    body["Result"]["ResultParameters"]["ResultParameter"][8]["Value"] = "Declined"
    assert not transaction_status_details(parse_result(body)).completed


def test_account_balance_sample() -> None:
    details = account_balance_details(parse_result(BALANCE_SUCCESS))

    assert [a.name for a in details.accounts] == [
        "Working Account",
        "Float Account",
        "Utility Account",
        "Charges Paid Account",
        "Organization Settlement Account",
    ]
    utility = details.account("utility account")
    assert utility == Balance("Utility Account", "KES", (22803700, 22803700, 0, 0))
    assert utility.available_cents == 22803700
    charges = details.account("Charges Paid Account")
    assert charges is not None
    assert charges.available_cents == -154000
    assert details.completed_at == datetime(2020, 1, 9, 9, 57, 10, tzinfo=UTC)


def test_reversal_sample() -> None:
    result = parse_result(REVERSAL_SUCCESS)
    details = reversal_details(result)

    assert result.transaction_id == "SKE52PAWR9"
    assert details.amount == 1
    assert details.original_transaction_id == "SKC82PACB8"
    assert details.charge_cents == 0
    assert details.debit_account_balance == (Balance("Utility Account", "KES", (772217962, 772217962, 0, 0)),)
    assert details.completed_at == datetime(2021, 11, 14, 10, 27, 11, tzinfo=UTC)
    assert details.credit_party_public_name == "254705912645 - NICHOLAS JOHN SONGOK"
    assert details.debit_party_public_name == "600992 - Safaricom Daraja 992"


def test_reversal_failure_keeps_the_alphanumeric_code() -> None:
    body = {
        "Result": {
            "ResultType": 0,
            "ResultCode": "R000002",
            "ResultDesc": "The OriginalTransactionID is invalid.",
            "OriginatorConversationID": "a",
            "ConversationID": "b",
            "TransactionID": "SKE0000000",
        }
    }
    result = parse_result(body)
    assert result.result_code == "R000002"
    assert not result.succeeded
    assert reversal_details(result).amount is None


# --- tolerance ------------------------------------------------------------------------------------


def test_a_single_parameter_object_instead_of_a_list() -> None:
    body = {"Result": {"ResultCode": "0", "ResultParameters": {"ResultParameter": {"Key": "Amount", "Value": 5}}}}
    assert parse_result(body).parameters == (ResultParameter("Amount", 5),)


def test_the_inverse_nesting_and_a_bare_list() -> None:
    inverse = {"Result": {"ResultCode": 0, "ResultParameter": {"ResultParameters": [{"Key": "Amount", "Value": 5}]}}}
    bare = {"Result": {"ResultCode": 0, "ResultParameters": [{"Key": "Amount", "Value": 5}]}}
    assert parse_result(inverse).get("Amount") == 5
    assert parse_result(bare).get("Amount") == 5


def test_keys_with_spaces_and_other_cases() -> None:
    body = {
        "result": {
            "resultCode": "00000000",
            "Originator Conversation ID": "3213-416199-2",
            "Conversation ID": "AG_1",
            "ResultParameters": {"ResultParameter": [{"key": "Originator Conversation ID", "value": "3211-416020-3"}]},
        }
    }
    result = parse_result(body)
    assert result.succeeded
    assert result.originator_conversation_id == "3213-416199-2"
    assert result.conversation_id == "AG_1"
    assert result.get("OriginatorConversationID") == "3211-416020-3"


def test_a_repeated_key_is_kept() -> None:
    body = {
        "Result": {
            "ResultCode": 0,
            "ResultParameters": {
                "ResultParameter": [{"Key": "DebitPartyName", "Value": "a"}, {"Key": "DebitPartyName", "Value": "b"}]
            },
        }
    }
    result = parse_result(body)
    assert result.get("DebitPartyName") == "a"
    assert result.get_all("DebitPartyName") == ["a", "b"]


def test_reference_data_as_a_list() -> None:
    body = {"Result": {"ResultCode": 0, "ReferenceData": {"ReferenceItem": [{"Key": "Occasion", "Value": "x"}]}}}
    assert parse_result(body).reference("Occasion") == "x"


def test_a_fractional_amount_is_not_whole_shillings() -> None:
    body = {"Result": {"ResultCode": 0, "ResultParameters": [{"Key": "TransactionAmount", "Value": 10.5}]}}
    result = parse_result(body)
    assert b2c_details(result).amount is None
    assert result.get("TransactionAmount") == 10.5  # kept as it came


def test_balances_skip_malformed_accounts() -> None:
    text = "Working Account|KES|1.00|1.00|0.00|0.00&Broken|KES|abc&&Short|KES&Merchant Account|KES|12.5|12.5|0|0"
    assert parse_balances(text) == (
        Balance("Working Account", "KES", (100, 100, 0, 0)),
        Balance("Merchant Account", "KES", (1250, 1250, 0, 0)),
    )
    assert parse_balances("") == ()


def test_unparseable_times_are_none() -> None:
    body = {"Result": {"ResultCode": 0, "ResultParameters": [{"Key": "TransactionCompletedDateTime", "Value": "x"}]}}
    assert b2c_details(parse_result(body)).completed_at is None


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        {"Body": {}},
        {"Result": "x"},
        {"Result": {"ResultDesc": "no code"}},
        {"Result": {"ResultCode": ""}},
    ],
)
def test_what_is_not_a_result_envelope(body: Any) -> None:
    with pytest.raises(DarajaMalformedResult):
        parse_result(body)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (0, ("succeeded", "completed")),
        ("00000000", ("succeeded", "completed")),
        (1, ("failed", "insufficient_balance")),
        ("2001", ("failed", "initiator_invalid")),
        (2001.0, ("failed", "initiator_invalid")),
        ("R000001", ("failed", "already_reversed")),
        ("R000002", ("failed", "original_transaction_invalid")),
        ("SFC_IC0003", ("failed", "receiver_not_found")),
        ("999", ("failed", "unknown_result_code")),
    ],
)
def test_initiator_result_codes(code: object, expected: tuple[str, str]) -> None:
    assert classify_initiator_result(code) == expected
