"""C2B's rules over the in-memory ports: how a validation call is answered (and which path decided),
and what a confirmation becomes (a payment once per TransID, matched or left for review, events)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from standardwebhooks import Webhook

from mpesa_bridge.core.c2b.confirmation import C2BConfirmationHandler
from mpesa_bridge.core.c2b.entity import (
    C2BRegistration,
    C2BSettings,
    C2BStatus,
    DefaultAction,
    ExpectedPayment,
    ExpectedStatus,
    ValidationRule,
)
from mpesa_bridge.core.c2b.matching import normalise_reference
from mpesa_bridge.core.c2b.ports import IncomingC2B, MalformedC2B, MerchantAnswer
from mpesa_bridge.core.c2b.validation import C2BValidator
from mpesa_bridge.core.clock import ManualClock
from mpesa_bridge.core.crypto import SecretBox
from mpesa_bridge.core.payments.entity import InboundCallback
from mpesa_bridge.core.payments.stk import token_hash
from mpesa_bridge.core.sealing import c2b_context
from tests.fixtures.memory import MemoryDatabase

T0 = datetime(2026, 12, 5, 9, tzinfo=UTC)
PROJECT, MODE, TOKEN = "proj_1", "test", "a" * 40
SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def read_body(body: bytes) -> IncomingC2B:
    """The Daraja adapter's reader, reduced to the fields these rules read."""
    try:
        doc = orjson.loads(body)
        return IncomingC2B(
            transaction_type="Pay Bill",
            trans_id=doc["TransID"],
            trans_time=T0,
            amount=int(float(doc["TransAmount"])),
            short_code=doc["BusinessShortCode"],
            bill_ref_number=doc.get("BillRefNumber", ""),
            invoice_number="",
            org_account_balance=None,
            third_party_trans_id="",
            msisdn="2547 ***** 678",
            msisdn_kind="masked",
            customer_name="JOHN",
        )
    except (orjson.JSONDecodeError, KeyError, ValueError, TypeError) as exc:
        raise MalformedC2B(str(exc)) from exc


class ScriptedMerchant:
    """The merchant's server as the validator sees it through its port: answers given in order."""

    def __init__(self, *answers: MerchantAnswer) -> None:
        self.answers = list(answers)
        self.asked: list[tuple[str, dict[str, str], bytes, float]] = []

    async def ask(self, url: str, mode: str, headers: dict[str, str], body: bytes, deadline: float) -> MerchantAnswer:
        self.asked.append((url, headers, body, deadline))
        return self.answers.pop(0)


def setup(*, validation: bool = True, settings: dict[str, Any] | None = None) -> tuple[MemoryDatabase, SecretBox]:
    db = MemoryDatabase()
    box = SecretBox([b"k" * 32])
    db.committed.c2b_registrations["c2breg_1"] = C2BRegistration(
        "c2breg_1", PROJECT, MODE, "600984", "Completed", validation, 2, token_hash(TOKEN), "v", "c", "registered",
        None, T0, T0,
    )  # fmt: skip
    if settings is not None:
        db.committed.c2b_settings[(PROJECT, MODE)] = C2BSettings(
            PROJECT,
            MODE,
            settings.get("rule", ValidationRule.ACCEPT_ALL),
            settings.get("url"),
            settings.get("default", DefaultAction.ACCEPT),
            box.seal(SECRET, context=c2b_context(PROJECT, MODE)),
            T0,
            T0,
        )
    return db, box


def expect(db: MemoryDatabase, eid: str, reference: str, amount: int) -> None:
    db.committed.expected_payments[eid] = ExpectedPayment(
        eid, PROJECT, MODE, reference, normalise_reference(reference), amount, None, "", {}, ExpectedStatus.OPEN,
        None, None, None, T0, T0,
    )  # fmt: skip


def callback(body: dict[str, Any] | bytes, kind: str = "c2b_validation", token: str = TOKEN) -> InboundCallback:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return InboundCallback(id=f"cb_{id(raw)}", kind=kind, received_at=T0, body=raw, token_hash=token_hash(token))


def body(amount: int = 100, reference: str = "INV1", trans_id: str = "TX00000001", short_code: str = "600984") -> Any:
    return {
        "TransID": trans_id,
        "TransAmount": f"{amount}.00",
        "BusinessShortCode": short_code,
        "BillRefNumber": reference,
    }


async def answer(db: MemoryDatabase, box: SecretBox, merchant: ScriptedMerchant, cb: InboundCallback, **kw: Any) -> Any:
    validator = C2BValidator(db, read_body, merchant, box, ManualClock(), timeout=0.5)  # signed now
    result = await validator.answer(cb, source_allowed=kw.get("source_allowed", True))
    decided = [v.decided_by.value for v in db.committed.c2b_validations.values()]
    return result, decided[-1] if decided else None


async def test_accept_all_by_default_and_validation_off() -> None:
    db, box = setup()
    result, path = await answer(db, box, ScriptedMerchant(), callback(body()))
    assert result["ResultCode"] == "0" and result["ThirdPartyTransID"].startswith("c2bv_") and path == "accept_all"
    db, box = setup(validation=False, settings={"rule": ValidationRule.KNOWN_REFERENCES})
    result, path = await answer(db, box, ScriptedMerchant(), callback(body()))
    assert result["ResultCode"] == "0" and path == "validation_off"


async def test_known_references() -> None:
    db, box = setup(settings={"rule": ValidationRule.KNOWN_REFERENCES})
    expect(db, "exp_1", "INV-1", 100)
    assert (await answer(db, box, ScriptedMerchant(), callback(body(reference="inv 1"))))[1] == "known_account"
    result, path = await answer(db, box, ScriptedMerchant(), callback(body(reference="INV-2")))
    assert result == {"ResultCode": "C2B00012", "ResultDesc": "Rejected"} and path == "unknown_account"


@pytest.mark.parametrize(
    ("said", "default", "code", "path"),
    [
        (MerchantAnswer(True), DefaultAction.REJECT, "0", "merchant"),
        (MerchantAnswer(False, "C2B00013"), DefaultAction.ACCEPT, "C2B00013", "merchant"),
        (MerchantAnswer(False, "nonsense"), DefaultAction.ACCEPT, "C2B00016", "merchant"),
        (MerchantAnswer(None, late=True), DefaultAction.ACCEPT, "0", "merchant_late"),
        (MerchantAnswer(None, late=True), DefaultAction.REJECT, "C2B00016", "merchant_late"),
        (MerchantAnswer(None, error="http_500"), DefaultAction.REJECT, "C2B00016", "merchant_error"),
    ],
)
async def test_the_merchant_decides_or_the_default_does(
    said: MerchantAnswer, default: DefaultAction, code: str, path: str
) -> None:
    db, box = setup(settings={"rule": ValidationRule.MERCHANT, "url": "https://shop.test/v", "default": default})
    merchant = ScriptedMerchant(said)
    result, decided = await answer(db, box, merchant, callback(body(amount=250)))
    assert result["ResultCode"] == code and decided == path
    url, headers, sent, deadline = merchant.asked[0]
    assert url == "https://shop.test/v" and deadline == 0.5
    signed = Webhook(SECRET).verify(sent, headers)
    assert signed["type"] == "c2b_payment.validation" and signed["data"]["amount"] == 250


async def test_refused_without_asking_anyone() -> None:
    db, box = setup(settings={"rule": ValidationRule.MERCHANT, "url": "https://shop.test/v"})
    merchant = ScriptedMerchant()
    assert (await answer(db, box, merchant, callback(body(), token="b" * 40)))[1] == "unknown_token"
    assert (await answer(db, box, merchant, callback(b"{not json")))[1] == "malformed"
    assert (await answer(db, box, merchant, callback(body(short_code="600111"))))[1] == "unknown_token"
    result, path = await answer(db, box, merchant, callback(body()), source_allowed=False)
    assert result["ResultCode"] == "C2B00016" and path == "source_refused"
    assert merchant.asked == []


async def apply(db: MemoryDatabase, *callbacks: InboundCallback, at: datetime = T0) -> None:
    async with db.write() as uow:
        await C2BConfirmationHandler(read_body).apply(uow, list(callbacks), at)


async def test_a_confirmation_becomes_one_payment_matched_with_its_events() -> None:
    db, _ = setup()
    expect(db, "exp_1", "INV-1", 100)
    first = callback(body(reference="inv1"), kind="c2b_confirmation")
    again = callback(body(reference="inv1"), kind="c2b_confirmation")
    again.id = "cb_again"
    await apply(db, first, again)
    [payment] = db.committed.c2b_payments.values()
    assert payment.status is C2BStatus.MATCHED and payment.matched_id == "exp_1" and payment.matched_by == "auto"
    assert db.committed.expected_payments["exp_1"].status is ExpectedStatus.PAID
    assert [e.type for e in db.events] == ["c2b_payment.received", "c2b_payment.matched"]
    assert (first.state, again.state) == ("applied", "duplicate")


async def test_flagged_confirmations_change_nothing() -> None:
    db, _ = setup()
    spoofed = callback(body(), kind="c2b_confirmation", token="c" * 40)
    wrong_code = callback(body(short_code="600111"), kind="c2b_confirmation")
    garbage = callback(b"[]", kind="c2b_confirmation")
    await apply(db, spoofed, wrong_code, garbage)
    assert [(c.state, c.flag_reason) for c in (spoofed, wrong_code, garbage)] == [
        ("flagged", "unknown_token"),
        ("flagged", "shortcode_mismatch"),
        ("flagged", "malformed"),
    ]
    assert db.committed.c2b_payments == {} and db.events == []


async def test_paying_one_reference_twice_leaves_the_second_for_review() -> None:
    db, _ = setup()
    expect(db, "exp_1", "FEES", 1500)
    await apply(db, callback(body(1500, "FEES", "TX00000001"), kind="c2b_confirmation"))
    await apply(db, callback(body(1500, "fees", "TX00000002"), kind="c2b_confirmation"), at=T0 + timedelta(1))
    first, second = sorted(db.committed.c2b_payments.values(), key=lambda p: p.trans_id)
    assert first.status is C2BStatus.MATCHED
    assert second.status is C2BStatus.UNMATCHED and second.duplicate_of == first.id
    assert [e.type for e in db.events].count("c2b_payment.received") == 2
