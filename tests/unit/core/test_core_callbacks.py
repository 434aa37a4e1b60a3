"""STK callbacks (`core.callbacks.stk`): tolerant parsing, matching, and applying through a fake UoW.

Callback bodies follow reference §4.1 (success) and §4.2 (failure).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from mpesa_bridge.core.callbacks.stk import (
    MalformedCallback,
    StkCallback,
    StkHandler,
    apply_stk_callback,
    is_placeholder_receipt,
    parse_stk_callback,
)
from mpesa_bridge.core.payments.entity import InboundCallback, OutboxEvent, Payment, PaymentEvidence
from mpesa_bridge.core.payments.policy import ReconcilePolicy
from mpesa_bridge.core.payments.status import Evidence, PaymentStatus
from tests.fixtures.memory import MemoryDatabase

# ---------------------------------------------------------------------------------------------
# Reference bodies
# ---------------------------------------------------------------------------------------------

SUCCESS_BODY = b"""{
  "Body": {
    "stkCallback": {
      "MerchantRequestID": "29115-34620561-1",
      "CheckoutRequestID": "ws_CO_191220191020363925",
      "ResultCode": 0,
      "ResultDesc": "The service request is processed successfully.",
      "CallbackMetadata": {
        "Item": [
          { "Name": "Amount", "Value": 1.00 },
          { "Name": "MpesaReceiptNumber", "Value": "NLJ7RT61SV" },
          { "Name": "Balance" },
          { "Name": "TransactionDate", "Value": 20191219102115 },
          { "Name": "PhoneNumber", "Value": 254708374149 }
        ]
      }
    }
  }
}"""

CANCELLED_BODY = b"""{
  "Body": {
    "stkCallback": {
      "MerchantRequestID": "f1e2-4b95-a71d-b30d3cdbb7a7942864",
      "CheckoutRequestID": "ws_CO_21072024125243250722943992",
      "ResultCode": 1032,
      "ResultDesc": "Request cancelled by user"
    }
  }
}"""

TIMEOUT_BODY = b"""{
  "Body": {
    "stkCallback": {
      "MerchantRequestID": "53785-65856915-1",
      "CheckoutRequestID": "ws_CO_23052022122137653708374149",
      "ResultCode": 1037,
      "ResultDesc": "DS timeout user cannot be reached"
    }
  }
}"""

CHECKOUT = "ws_CO_191220191020363925"
MERCHANT = "29115-34620561-1"
PHONE = "254708374149"
RECEIPT = "NLJ7RT61SV"
PAID_AT_UTC = datetime(2019, 12, 19, 7, 21, 15, tzinfo=UTC)  # 10:21:15 in Nairobi (UTC+3)


def _doc(body: bytes) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(body)
    return doc


def _stk(doc: dict[str, Any]) -> dict[str, Any]:
    stk: dict[str, Any] = doc["Body"]["stkCallback"]
    return stk


def _success_body(
    *,
    checkout: str = CHECKOUT,
    amount: object = 1.00,
    receipt: object = RECEIPT,
    phone: object = 254708374149,
    code: object = 0,
    merchant: str | None = MERCHANT,
) -> bytes:
    doc = _doc(SUCCESS_BODY)
    stk = _stk(doc)
    stk["CheckoutRequestID"] = checkout
    stk["ResultCode"] = code
    if merchant is None:
        del stk["MerchantRequestID"]
    else:
        stk["MerchantRequestID"] = merchant
    values = {"Amount": amount, "MpesaReceiptNumber": receipt, "PhoneNumber": phone}
    items = []
    for item in stk["CallbackMetadata"]["Item"]:
        if item["Name"] in values:
            if values[item["Name"]] is None:
                continue
            item = {"Name": item["Name"], "Value": values[item["Name"]]}
        items.append(item)
    stk["CallbackMetadata"]["Item"] = items
    return orjson.dumps(doc)


def _failure_body(code: object = 1032, *, checkout: str = CHECKOUT, desc: str = "Request cancelled by user") -> bytes:
    return orjson.dumps(
        {
            "Body": {
                "stkCallback": {
                    "MerchantRequestID": MERCHANT,
                    "CheckoutRequestID": checkout,
                    "ResultCode": code,
                    "ResultDesc": desc,
                }
            }
        }
    )


# ---------------------------------------------------------------------------------------------
# parse_stk_callback
# ---------------------------------------------------------------------------------------------


def test_parse_the_reference_success_sample() -> None:
    parsed = parse_stk_callback(SUCCESS_BODY)
    assert parsed == StkCallback(
        merchant_request_id=MERCHANT,
        checkout_request_id=CHECKOUT,
        result_code="0",
        result_desc="The service request is processed successfully.",
        amount=1,
        receipt=RECEIPT,
        transaction_date=PAID_AT_UTC,
        phone=PHONE,
    )
    assert isinstance(parsed.amount, int)
    assert parsed.transaction_date is not None
    assert parsed.transaction_date.utcoffset() == timedelta(0)
    assert parsed.transaction_date == datetime(2019, 12, 19, 10, 21, 15, tzinfo=UTC) - timedelta(hours=3)


@pytest.mark.parametrize(
    ("body", "checkout", "merchant", "code", "desc"),
    [
        (
            CANCELLED_BODY,
            "ws_CO_21072024125243250722943992",
            "f1e2-4b95-a71d-b30d3cdbb7a7942864",
            "1032",
            "Request cancelled by user",
        ),
        (
            TIMEOUT_BODY,
            "ws_CO_23052022122137653708374149",
            "53785-65856915-1",
            "1037",
            "DS timeout user cannot be reached",
        ),
    ],
)
def test_parse_the_reference_failure_samples(body: bytes, checkout: str, merchant: str, code: str, desc: str) -> None:
    assert parse_stk_callback(body) == StkCallback(
        merchant_request_id=merchant,
        checkout_request_id=checkout,
        result_code=code,
        result_desc=desc,
    )


@pytest.mark.parametrize("seed", range(6))
def test_item_order_does_not_matter(seed: int) -> None:
    doc = _doc(SUCCESS_BODY)
    items = _stk(doc)["CallbackMetadata"]["Item"]
    random.Random(seed).shuffle(items)
    assert parse_stk_callback(orjson.dumps(doc)) == parse_stk_callback(SUCCESS_BODY)


def test_a_name_without_value_is_tolerated() -> None:
    doc = _doc(SUCCESS_BODY)
    for item in _stk(doc)["CallbackMetadata"]["Item"]:
        if item["Name"] == "PhoneNumber":
            del item["Value"]
    parsed = parse_stk_callback(orjson.dumps(doc))
    assert parsed.phone is None
    assert parsed.amount == 1
    assert parsed.receipt == RECEIPT


def test_items_without_a_name_and_non_objects_are_skipped() -> None:
    doc = _doc(SUCCESS_BODY)
    _stk(doc)["CallbackMetadata"]["Item"] += [{"Value": 99}, "junk", 7, None, ["Amount", 5]]
    assert parse_stk_callback(orjson.dumps(doc)) == parse_stk_callback(SUCCESS_BODY)


def test_item_as_a_single_object() -> None:
    doc = _doc(CANCELLED_BODY)
    _stk(doc)["ResultCode"] = 0
    _stk(doc)["CallbackMetadata"] = {"Item": {"Name": "MpesaReceiptNumber", "Value": "QKA1B2C3D4"}}
    parsed = parse_stk_callback(orjson.dumps(doc))
    assert parsed.receipt == "QKA1B2C3D4"
    assert parsed.amount is None


@pytest.mark.parametrize("meta", [None, "x", [], {"Item": "x"}, {"Item": None}, {}])
def test_odd_callback_metadata_gives_no_details(meta: object) -> None:
    doc = _doc(SUCCESS_BODY)
    _stk(doc)["CallbackMetadata"] = meta
    parsed = parse_stk_callback(orjson.dumps(doc))
    assert (parsed.amount, parsed.receipt, parsed.transaction_date, parsed.phone) == (None, None, None, None)
    assert parsed.result_code == "0"


@pytest.mark.parametrize(
    ("code", "normalised"), [("0", "0"), ("00", "0"), (0.0, "0"), ("1032", "1032"), (" 1032 ", "1032")]
)
def test_result_code_as_string_or_float(code: object, normalised: str) -> None:
    doc = _doc(SUCCESS_BODY)
    _stk(doc)["ResultCode"] = code
    assert parse_stk_callback(orjson.dumps(doc)).result_code == normalised


@pytest.mark.parametrize(
    ("value", "amount"),
    [
        (1.00, 1),
        (1, 1),
        ("1", 1),
        ("1.00", 1),
        (250000.0, 250000),
        (1.5, None),
        ("abc", None),
        (True, None),
        ([1], None),
    ],
)
def test_amount_values(value: object, amount: int | None) -> None:
    assert parse_stk_callback(_success_body(amount=value)).amount == amount


@pytest.mark.parametrize(
    ("value", "phone"),
    [(254708374149, PHONE), ("254708374149", PHONE), (254708374149.0, PHONE), (" 254708374149 ", PHONE), ("", None)],
)
def test_phone_values(value: object, phone: str | None) -> None:
    assert parse_stk_callback(_success_body(phone=value)).phone == phone


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (20191219102115, PAID_AT_UTC),
        ("20191219102115", PAID_AT_UTC),
        (20240101010000, datetime(2023, 12, 31, 22, 0, 0, tzinfo=UTC)),  # crosses midnight and the year
        (20191319102115, None),  # month 13
        (2019121910211, None),  # 13 digits
        ("2019-12-19 10:21:15", None),
        (None, None),
    ],
)
def test_transaction_date_is_nairobi_time_turned_into_utc(value: object, expected: datetime | None) -> None:
    doc = _doc(SUCCESS_BODY)
    for item in _stk(doc)["CallbackMetadata"]["Item"]:
        if item["Name"] == "TransactionDate":
            item["Value"] = value
    assert parse_stk_callback(orjson.dumps(doc)).transaction_date == expected


def test_merchant_request_id_is_optional_and_result_desc_is_bounded() -> None:
    doc = _doc(CANCELLED_BODY)
    del _stk(doc)["MerchantRequestID"]
    _stk(doc)["ResultDesc"] = "x" * 2000
    parsed = parse_stk_callback(orjson.dumps(doc))
    assert parsed.merchant_request_id is None
    assert parsed.result_desc == "x" * 500


def _without(path: str) -> bytes:
    doc = _doc(SUCCESS_BODY)
    if path == "Body":
        del doc["Body"]
    elif path == "stkCallback":
        del doc["Body"]["stkCallback"]
    else:
        del _stk(doc)[path]
    return orjson.dumps(doc)


def _with_checkout(value: object) -> bytes:
    doc = _doc(SUCCESS_BODY)
    _stk(doc)["CheckoutRequestID"] = value
    return orjson.dumps(doc)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"{",
        b"\xff\xfe",
        b"null",
        b"42",
        b'"Body"',
        b"[]",
        b'[{"Body": {}}]',
        b"{}",
        b'{"Body": null}',
        b'{"Body": []}',
        b'{"Body": {"stkCallback": null}}',
        b'{"Body": {"stkCallback": "x"}}',
        _without("Body"),
        _without("stkCallback"),
        _without("CheckoutRequestID"),
        _without("ResultCode"),
        _with_checkout(""),
        _with_checkout(None),
        _with_checkout(12345),
        _with_checkout("x" * 65),
    ],
    ids=[
        "empty",
        "not-json",
        "truncated",
        "not-utf8",
        "null",
        "number",
        "string",
        "empty-list",
        "list-at-root",
        "empty-object",
        "body-null",
        "body-list",
        "stk-null",
        "stk-string",
        "missing-body",
        "missing-stkcallback",
        "missing-checkout",
        "missing-result-code",
        "empty-checkout",
        "null-checkout",
        "numeric-checkout",
        "overlong-checkout",
    ],
)
def test_malformed_bodies(body: bytes) -> None:
    with pytest.raises(MalformedCallback):
        parse_stk_callback(body)


def test_malformed_callback_is_a_value_error() -> None:
    assert issubclass(MalformedCallback, ValueError)


def _with_text(where: str, text: str) -> bytes:
    """The success sample with `text` put into one of its strings (or keys)."""
    doc = _doc(SUCCESS_BODY)
    stk, items = _stk(doc), _stk(doc)["CallbackMetadata"]["Item"]
    if where in ("CheckoutRequestID", "MerchantRequestID", "ResultDesc"):
        stk[where] = stk[where][:4] + text + stk[where][4:]
    elif where == "receipt":
        items[1]["Value"] = "NLJ7" + text + "RT61SV"
    elif where == "item-name":
        items[2]["Name"] = "Bal" + text + "ance"
    elif where == "key":
        stk["Extra" + text] = "x"
    else:  # a field we do not read at all
        doc["Unread"] = {"deep": ["x" + text]}
    return orjson.dumps(doc)


_FIELDS = ["CheckoutRequestID", "MerchantRequestID", "ResultDesc", "receipt", "item-name", "key", "unread"]


@pytest.mark.parametrize("char", ["\x00", "\x01", "\x08", "\t", "\n", "\r", "\x1b", "\x1f"])
@pytest.mark.parametrize("where", _FIELDS)
def test_a_control_character_anywhere_makes_the_callback_malformed(where: str, char: str) -> None:
    # PostgreSQL text refuses NUL; Daraja sends no C0 character in any field (reference §4), so
    # none is let through to be stored, compared or shown.
    with pytest.raises(MalformedCallback, match="control character"):
        parse_stk_callback(_with_text(where, char))  # JSON-escaped, as `\u0000`


@pytest.mark.parametrize("where", _FIELDS)
def test_printable_unicode_and_delete_are_not_control_characters(where: str) -> None:
    parse_stk_callback(_with_text(where, "é \x7f ✓"))


@pytest.mark.parametrize(
    ("receipt", "placeholder"),
    [
        ("NLJ0000000", True),
        ("QKA0000000", True),
        ("0000000000", True),
        (None, True),
        ("", True),
        ("NLJ7RT6", True),
        ("NLJ7RT61SV", False),
        ("QKA1B2C3D4", False),
        ("NLJ7000001", False),
    ],
)
def test_is_placeholder_receipt(receipt: str | None, placeholder: bool) -> None:
    assert is_placeholder_receipt(receipt) is placeholder


# ---------------------------------------------------------------------------------------------
# An in-memory unit of work
# ---------------------------------------------------------------------------------------------


class World:
    """The payments of a test in the shared in-memory ports (`tests/fixtures/memory.py`). Callbacks
    go through them as through the inbox: stored, then locked, applied and saved in one unit of
    work. After each, the test's own objects are refreshed from what was committed — so a change
    the handler made but did not save is not seen here (and the unit of work refuses it)."""

    def __init__(self, *payments: Payment) -> None:
        self.db = MemoryDatabase(payments)
        self._mine = list(payments)

    async def process(self, callbacks: Sequence[InboundCallback], at: datetime) -> None:
        new = [c for c in callbacks if c.id not in self.db.committed.callbacks]
        if new:
            async with self.db.write() as uow:
                await uow.callbacks.add_many(new)
        async with self.db.write() as uow:
            locked = await uow.callbacks.lock_many([c.id for c in callbacks])
            await StkHandler(POLICY).apply(uow, locked, at)  # type: ignore[arg-type]
            await uow.callbacks.save_many(locked)
        for payment in self._mine:
            vars(payment).update(vars(self.db.payment(payment.id)))
        for callback in callbacks:
            vars(callback).update(vars(self.db.callback(callback.id)))

    @property
    def events(self) -> list[OutboxEvent]:
        return self.db.events

    @property
    def evidence(self) -> list[PaymentEvidence]:
        return self.db.evidence

    @property
    def locked_tokens(self) -> list[str]:
        return [token for (tokens,) in self.db.called("payments.lock_by_callback_tokens") for token in tokens]

    @property
    def project_reads(self) -> list[str]:
        return [project_id for (project_id,) in self.db.called("projects.get")]


TOKEN = "tok_reference_token"
TOKEN_HASH = hashlib.sha256(TOKEN.encode()).hexdigest()
CREATED = datetime(2019, 12, 19, 7, 20, 36, tzinfo=UTC)
RECEIVED = CREATED + timedelta(seconds=40)
AT = RECEIVED + timedelta(seconds=1)
POLICY = ReconcilePolicy()


def make_payment(**overrides: Any) -> Payment:
    fields: dict[str, Any] = {
        "id": "pay_01test",
        "project_id": "prj_01test",
        "mode": "test",
        "status": PaymentStatus.PENDING,
        "amount": 1,
        "phone": PHONE,
        "account_reference": "INV00042",
        "description": "Payment",
        "metadata": {"order": 42},
        "business_short_code": "174379",
        "party_b": "174379",
        "transaction_type": "CustomerPayBillOnline",
        "daraja_environment": "sandbox",
        "callback_token_hash": TOKEN_HASH,
        "created_at": CREATED,
        "updated_at": CREATED,
        "merchant_request_id": MERCHANT,
        "checkout_request_id": CHECKOUT,
    }
    fields.update(overrides)
    return Payment(**fields)


_callback_seq = iter(range(1, 10**6))


def make_callback(body: bytes, *, token_hash: str = TOKEN_HASH, received_at: datetime = RECEIVED) -> InboundCallback:
    return InboundCallback(
        id=f"cb_{next(_callback_seq):04d}",
        kind="stk",
        received_at=received_at,
        body=body,
        token_hash=token_hash,
    )


async def _apply(world: World, callback: InboundCallback, at: datetime = AT) -> None:
    await world.process([callback], at)


# ---------------------------------------------------------------------------------------------
# apply_stk_callback
# ---------------------------------------------------------------------------------------------


async def test_success_callback_settles_a_pending_payment() -> None:
    payment = make_payment()
    uow = World(payment)
    callback = make_callback(SUCCESS_BODY)

    await _apply(uow, callback)

    assert (callback.state, callback.flag_reason) == ("applied", None)
    assert callback.attempts == 1
    assert callback.processed_at == AT
    assert callback.payment_id == payment.id
    assert callback.checkout_request_id == CHECKOUT
    assert uow.locked_tokens == [TOKEN_HASH]

    assert payment.status is PaymentStatus.SUCCEEDED
    assert payment.evidence is Evidence.CALLBACK
    assert payment.mpesa_receipt_number == RECEIPT
    assert payment.transaction_date == PAID_AT_UTC
    assert payment.result_code == "0"
    assert payment.result_desc == "The service request is processed successfully."
    assert payment.failure_code is None
    assert payment.failure_message is None
    assert payment.completed_at == AT
    assert payment.updated_at == AT
    assert payment.needs_attention is False

    [event] = uow.events
    assert event.type == "payment.succeeded"
    assert (event.subject_type, event.subject_id) == ("payment", payment.id)
    assert event.project_id == payment.project_id
    assert event.mode == "test"
    assert event.late_correction is False
    assert event.created_at == AT
    assert event.id.startswith("evt_")
    assert event.data["object"]["status"] == "succeeded"
    assert event.data["object"]["mpesa_receipt_number"] == RECEIPT

    [row] = uow.evidence
    assert row.payment_id == payment.id
    assert row.source == "callback"
    assert row.verdict == "apply"
    assert row.result_code == "0"
    assert row.callback_id == callback.id
    assert row.note is None
    assert row.id.startswith("evd_")


async def test_the_same_callback_again_is_a_duplicate() -> None:
    payment = make_payment()
    uow = World(payment)
    await _apply(uow, make_callback(SUCCESS_BODY))

    again = make_callback(SUCCESS_BODY)
    later = AT + timedelta(minutes=5)
    await _apply(uow, again, later)

    assert (again.state, again.flag_reason) == ("duplicate", None)
    assert payment.status is PaymentStatus.SUCCEEDED
    assert payment.completed_at == AT
    assert payment.needs_attention is False
    assert [e.type for e in uow.events] == ["payment.succeeded"]
    assert [r.verdict for r in uow.evidence] == ["apply", "duplicate"]


async def test_reprocessing_the_same_stored_callback_counts_attempts() -> None:
    payment = make_payment()
    uow = World(payment)
    callback = make_callback(SUCCESS_BODY)
    await _apply(uow, callback)
    await _apply(uow, callback, AT + timedelta(seconds=30))
    assert callback.attempts == 2
    assert callback.state == "duplicate"
    assert callback.processed_at == AT + timedelta(seconds=30)
    assert len(uow.events) == 1


@pytest.mark.parametrize(
    ("body", "status", "failure_code", "event"),
    [
        (CANCELLED_BODY, PaymentStatus.CANCELLED, "user_cancelled", "payment.cancelled"),
        (
            _failure_body(1037, desc="DS timeout user cannot be reached"),
            PaymentStatus.FAILED,
            "timeout",
            "payment.failed",
        ),
        (
            _failure_body(1019, desc="Transaction has expired"),
            PaymentStatus.EXPIRED,
            "transaction_expired",
            "payment.expired",
        ),
        (_failure_body(4242, desc="Something new"), PaymentStatus.FAILED, "unknown_result_code", "payment.failed"),
    ],
    ids=["1032", "1037", "1019", "unknown-code"],
)
async def test_failure_callbacks_settle_with_their_reason(
    body: bytes, status: PaymentStatus, failure_code: str, event: str
) -> None:
    doc = _doc(body)
    _stk(doc)["CheckoutRequestID"] = CHECKOUT
    payment = make_payment()
    uow = World(payment)
    callback = make_callback(orjson.dumps(doc))

    await _apply(uow, callback)

    assert callback.state == "applied"
    assert payment.status is status
    assert payment.evidence is Evidence.CALLBACK
    assert payment.failure_code == failure_code
    assert payment.failure_message == _stk(doc)["ResultDesc"]
    assert payment.mpesa_receipt_number is None
    assert [e.type for e in uow.events] == [event]


async def test_unknown_token_is_flagged_and_touches_nothing() -> None:
    payment = make_payment()
    uow = World(payment)
    callback = make_callback(SUCCESS_BODY, token_hash=hashlib.sha256(b"someone else").hexdigest())

    await _apply(uow, callback)

    assert (callback.state, callback.flag_reason) == ("flagged", "unknown_token")
    assert callback.payment_id is None
    assert callback.checkout_request_id == CHECKOUT
    assert payment.status is PaymentStatus.PENDING
    assert payment.needs_attention is False
    assert uow.events == []
    assert uow.evidence == []


async def test_malformed_body_is_flagged_before_any_lookup() -> None:
    payment = make_payment()
    uow = World(payment)
    callback = make_callback(b"<html>not json</html>")

    async with uow.db.write() as tx:
        await apply_stk_callback(tx, callback, payment, AT, POLICY)  # type: ignore[arg-type]

    assert (callback.state, callback.flag_reason) == ("flagged", "malformed")
    assert callback.attempts == 1
    assert callback.processed_at == AT
    assert callback.payment_id is None
    assert uow.locked_tokens == []
    assert payment.status is PaymentStatus.PENDING
    assert uow.events == []
    assert uow.evidence == []


def _assert_flagged_on_payment(uow: World, payment: Payment, callback: InboundCallback, problem: str) -> None:
    assert (callback.state, callback.flag_reason) == ("flagged", problem)
    assert callback.payment_id == payment.id
    assert payment.status is PaymentStatus.PENDING
    assert payment.evidence is None
    assert payment.mpesa_receipt_number is None
    assert payment.needs_attention is True
    assert payment.attention_reason == f"callback_{problem}"
    assert payment.updated_at == AT
    assert uow.events == []
    [row] = uow.evidence
    assert (row.source, row.verdict, row.note, row.callback_id) == ("callback", "flagged", problem, callback.id)
    assert row.result_code == "0"


@pytest.mark.parametrize("amount", [2, 100, 0.5, None], ids=["2", "100", "fraction", "missing"])
async def test_success_with_another_amount_is_flagged(amount: object) -> None:
    payment = make_payment()
    uow = World(payment)
    callback = make_callback(_success_body(amount=amount))
    await _apply(uow, callback)
    _assert_flagged_on_payment(uow, payment, callback, "amount_mismatch")


async def test_success_from_another_phone_is_flagged() -> None:
    payment = make_payment()
    uow = World(payment)
    callback = make_callback(_success_body(phone=254711111111))
    await _apply(uow, callback)
    _assert_flagged_on_payment(uow, payment, callback, "phone_mismatch")


async def test_success_without_a_phone_is_accepted() -> None:
    payment = make_payment()
    uow = World(payment)
    callback = make_callback(_success_body(phone=None))
    await _apply(uow, callback)
    assert callback.state == "applied"
    assert payment.status is PaymentStatus.SUCCEEDED


@pytest.mark.parametrize("receipt", ["NLJ0000000", None, "ABC"], ids=["placeholder", "missing", "short"])
async def test_success_without_a_real_receipt_is_flagged(receipt: object) -> None:
    payment = make_payment()
    uow = World(payment)
    callback = make_callback(_success_body(receipt=receipt))
    await _apply(uow, callback)
    _assert_flagged_on_payment(uow, payment, callback, "receipt_missing")


async def test_another_checkout_request_id_is_flagged_without_touching_the_payment() -> None:
    payment = make_payment()
    uow = World(payment)
    callback = make_callback(_success_body(checkout="ws_CO_000000000000000000000000"))

    await _apply(uow, callback)

    assert (callback.state, callback.flag_reason) == ("flagged", "checkout_request_id_mismatch")
    assert callback.payment_id == payment.id
    assert payment.status is PaymentStatus.PENDING
    assert payment.needs_attention is False
    assert payment.attention_reason is None
    assert payment.updated_at == CREATED
    assert payment.checkout_request_id == CHECKOUT
    assert uow.events == []
    [row] = uow.evidence
    assert (row.verdict, row.note) == ("flagged", "checkout_request_id_mismatch")


@pytest.mark.parametrize("status", [PaymentStatus.PENDING, PaymentStatus.UNKNOWN])
async def test_a_payment_without_checkout_id_adopts_the_callbacks(status: PaymentStatus) -> None:
    payment = make_payment(status=status, checkout_request_id=None, merchant_request_id=None)
    uow = World(payment)
    callback = make_callback(SUCCESS_BODY)

    await _apply(uow, callback)

    assert callback.state == "applied"
    assert payment.checkout_request_id == CHECKOUT
    assert payment.merchant_request_id == MERCHANT
    assert payment.status is PaymentStatus.SUCCEEDED
    assert payment.needs_attention is False
    assert [e.type for e in uow.events] == ["payment.succeeded"]


async def test_adoption_keeps_a_known_merchant_request_id() -> None:
    payment = make_payment(status=PaymentStatus.UNKNOWN, checkout_request_id=None, merchant_request_id="ours-1")
    uow = World(payment)
    await _apply(uow, make_callback(SUCCESS_BODY))
    assert payment.checkout_request_id == CHECKOUT
    assert payment.merchant_request_id == "ours-1"


async def test_a_failure_callback_is_adopted_too() -> None:
    payment = make_payment(status=PaymentStatus.UNKNOWN, checkout_request_id=None)
    uow = World(payment)
    doc = _doc(CANCELLED_BODY)
    await _apply(uow, make_callback(CANCELLED_BODY))
    assert payment.checkout_request_id == _stk(doc)["CheckoutRequestID"]
    assert payment.status is PaymentStatus.CANCELLED


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (_success_body(amount=5), "amount_mismatch"),
        (_success_body(phone=254711111111), "phone_mismatch"),
    ],
    ids=["amount", "phone"],
)
async def test_adoption_refused_when_amount_or_phone_disagree(body: bytes, problem: str) -> None:
    payment = make_payment(status=PaymentStatus.UNKNOWN, checkout_request_id=None)
    uow = World(payment)
    callback = make_callback(body)

    await _apply(uow, callback)

    assert (callback.state, callback.flag_reason) == ("flagged", problem)
    assert payment.checkout_request_id is None
    assert payment.status is PaymentStatus.UNKNOWN
    assert payment.needs_attention is True
    assert uow.events == []


async def test_adoption_refused_outside_the_match_window() -> None:
    payment = make_payment(status=PaymentStatus.UNKNOWN, checkout_request_id=None)
    uow = World(payment)
    late = CREATED + timedelta(seconds=POLICY.match_window + 1)
    callback = make_callback(SUCCESS_BODY, received_at=late)

    await _apply(uow, callback, late)

    assert (callback.state, callback.flag_reason) == ("flagged", "outside_match_window")
    assert payment.checkout_request_id is None
    assert payment.status is PaymentStatus.UNKNOWN
    assert payment.needs_attention is False
    assert uow.events == []


async def test_adoption_at_the_edge_of_the_match_window() -> None:
    payment = make_payment(status=PaymentStatus.UNKNOWN, checkout_request_id=None)
    uow = World(payment)
    edge = CREATED + timedelta(seconds=POLICY.match_window)
    callback = make_callback(SUCCESS_BODY, received_at=edge)
    await _apply(uow, callback, edge)
    assert callback.state == "applied"


async def test_a_final_payment_without_checkout_id_does_not_adopt() -> None:
    payment = make_payment(status=PaymentStatus.FAILED, evidence=Evidence.DARAJA_ANSWER, checkout_request_id=None)
    uow = World(payment)
    callback = make_callback(SUCCESS_BODY)
    await _apply(uow, callback)
    assert (callback.state, callback.flag_reason) == ("flagged", "checkout_request_id_mismatch")
    assert payment.status is PaymentStatus.FAILED
    assert payment.checkout_request_id is None


async def test_late_success_corrects_our_own_timeout() -> None:
    payment = make_payment(
        status=PaymentStatus.EXPIRED,
        evidence=Evidence.OWN_TIMEOUT,
        failure_code="no_response",
        failure_message="no_response",
        completed_at=CREATED + timedelta(minutes=10),
    )
    uow = World(payment)
    callback = make_callback(SUCCESS_BODY)

    await _apply(uow, callback)

    assert (callback.state, callback.flag_reason) == ("applied", None)
    assert payment.status is PaymentStatus.SUCCEEDED
    assert payment.evidence is Evidence.CALLBACK
    assert payment.mpesa_receipt_number == RECEIPT
    assert payment.failure_code is None
    assert payment.failure_message is None
    assert payment.needs_attention is True
    assert payment.attention_reason == "late_success"
    [event] = uow.events
    assert event.type == "payment.succeeded"
    assert event.late_correction is True
    assert event.data["object"]["needs_attention"] is True
    [row] = uow.evidence
    assert row.verdict == "correct"
    assert row.note is not None
    assert "late correction" in row.note


async def test_late_success_corrects_a_query_answer() -> None:
    payment = make_payment(status=PaymentStatus.FAILED, evidence=Evidence.DARAJA_ANSWER, failure_code="timeout")
    uow = World(payment)
    await _apply(uow, make_callback(SUCCESS_BODY))
    assert payment.status is PaymentStatus.SUCCEEDED
    assert [e.late_correction for e in uow.events] == [True]


async def test_a_cancel_after_a_callback_set_success_changes_nothing() -> None:
    payment = make_payment()
    uow = World(payment)
    await _apply(uow, make_callback(SUCCESS_BODY))
    assert payment.status is PaymentStatus.SUCCEEDED

    cancel = make_callback(_failure_body(1032))
    later = AT + timedelta(minutes=1)
    await _apply(uow, cancel, later)

    assert (cancel.state, cancel.flag_reason) == ("flagged", "contradicts_settled_state")
    assert payment.status is PaymentStatus.SUCCEEDED
    assert payment.evidence is Evidence.CALLBACK
    assert payment.mpesa_receipt_number == RECEIPT
    assert payment.failure_code is None
    assert payment.needs_attention is True
    assert payment.attention_reason == "contradicting_callback"
    assert [e.type for e in uow.events] == ["payment.succeeded"]
    assert [r.verdict for r in uow.evidence] == ["apply", "conflict"]
    assert uow.evidence[-1].note == "contradicts succeeded set by callback"


async def test_a_success_after_a_callback_set_cancel_is_a_conflict() -> None:
    payment = make_payment()
    uow = World(payment)
    await _apply(uow, make_callback(_failure_body(1032)))
    assert payment.status is PaymentStatus.CANCELLED

    success = make_callback(SUCCESS_BODY)
    await _apply(uow, success)

    assert (success.state, success.flag_reason) == ("flagged", "contradicts_settled_state")
    assert payment.status is PaymentStatus.CANCELLED
    assert payment.mpesa_receipt_number is None
    assert payment.needs_attention is True
    assert [e.type for e in uow.events] == ["payment.cancelled"]


async def test_a_callback_confirms_a_query_set_success() -> None:
    payment = make_payment(status=PaymentStatus.SUCCEEDED, evidence=Evidence.DARAJA_ANSWER, completed_at=AT)
    uow = World(payment)
    callback = make_callback(SUCCESS_BODY)
    await _apply(uow, callback, AT + timedelta(seconds=5))
    assert callback.state == "applied"
    assert payment.evidence is Evidence.CALLBACK
    assert payment.mpesa_receipt_number == RECEIPT
    assert payment.transaction_date == PAID_AT_UTC
    assert payment.needs_attention is False
    assert uow.events == []
    assert [r.verdict for r in uow.evidence] == ["confirm"]


async def test_a_different_failure_over_a_query_answer_is_recorded_only() -> None:
    payment = make_payment(status=PaymentStatus.FAILED, evidence=Evidence.DARAJA_ANSWER, failure_code="timeout")
    uow = World(payment)
    callback = make_callback(_failure_body(1032))
    await _apply(uow, callback)
    assert (callback.state, callback.flag_reason) == ("recorded", None)
    assert payment.status is PaymentStatus.FAILED
    assert payment.failure_code == "timeout"
    assert payment.needs_attention is False
    assert uow.events == []
    assert [r.verdict for r in uow.evidence] == ["record"]


async def test_adoption_refused_when_another_payment_holds_the_checkout_id() -> None:
    holder = make_payment(id="pay_01holder", callback_token_hash="other-token-hash")
    orphan = make_payment(id="pay_01orphan", status=PaymentStatus.UNKNOWN, checkout_request_id=None)
    uow = World(holder, orphan)
    callback = make_callback(SUCCESS_BODY)

    await _apply(uow, callback)

    assert (callback.state, callback.flag_reason) == ("flagged", "checkout_request_id_taken")
    assert orphan.checkout_request_id is None and orphan.status is PaymentStatus.UNKNOWN
    assert holder.status is PaymentStatus.PENDING
    assert uow.events == []


async def test_the_handler_applies_the_payments_the_lookup_returns_and_reads_a_project_once() -> None:
    """Two successes of one shop in a batch: each payment comes back from the batch lookup as a
    value, and the shop is read once for the batch."""
    first = make_payment()
    second = make_payment(
        id="pay_01second", callback_token_hash="b" * 64, checkout_request_id="ws_CO_second", merchant_request_id="m2"
    )
    uow = World(first, second)
    callbacks = [
        make_callback(SUCCESS_BODY),
        make_callback(
            SUCCESS_BODY.replace(CHECKOUT.encode(), b"ws_CO_second").replace(RECEIPT.encode(), b"NLJ7RT62SX"),
            token_hash="b" * 64,
        ),
    ]

    await uow.process(callbacks, AT)

    assert [c.state for c in callbacks] == ["applied", "applied"]
    assert (first.status, second.status) == (PaymentStatus.SUCCEEDED, PaymentStatus.SUCCEEDED)
    assert sorted(uow.locked_tokens) == sorted([TOKEN_HASH, "b" * 64])
    assert uow.project_reads == ["prj_01test"]
