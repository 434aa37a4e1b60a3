"""C2B validation: Daraja waits (~8 s, daraja.md §6.4) for the bridge to accept or refuse a payment.

The route stores the callback raw first (settled, so the inbox does not apply it), then asks
`C2BValidator.answer`, which decides by the project mode's rule and records which path decided:

    validation off for the short code  -> accept                         (validation_off)
    accept_all                         -> accept                         (accept_all)
    known_references                   -> accept when the reference is open (known_account),
                                          else C2B00012                   (unknown_account)
    merchant                           -> the merchant's signed answer    (merchant); late: the
                                          project's default               (merchant_late); an error,
                                          a refused URL or a garbled answer: the default (merchant_error)

An unknown URL token, a body that is no C2B payload, or a source off the allow-list is refused
(C2B00015 / C2B00016) without asking anyone. The merchant's deadline (`c2b_validation_timeout`)
is kept below Safaricom's, so the bridge's own answer always arrives in time.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from datetime import datetime

from mpesa_bridge.core.c2b.entity import (
    VALIDATION_PREFIX,
    C2BRegistration,
    C2BSettings,
    C2BValidation,
    DecidedBy,
    DefaultAction,
    ValidationRule,
)
from mpesa_bridge.core.c2b.matching import normalise_reference
from mpesa_bridge.core.c2b.ports import C2BBodyReader, IncomingC2B, MalformedC2B, MerchantAsker
from mpesa_bridge.core.clock import Clock
from mpesa_bridge.core.crypto import SecretBox
from mpesa_bridge.core.ids import new_id
from mpesa_bridge.core.payments.entity import InboundCallback
from mpesa_bridge.core.ports import UnitOfWorkFactory
from mpesa_bridge.core.projects import Mode, Tenant
from mpesa_bridge.core.sealing import c2b_context
from mpesa_bridge.core.webhooks.signing import encode_payload, sign_event

ACCEPTED = "0"
INVALID_ACCOUNT = "C2B00012"
INVALID_SHORTCODE = "C2B00015"
OTHER_ERROR = "C2B00016"
REJECT_CODES = ("C2B00011", "C2B00012", "C2B00013", "C2B00014", "C2B00015", "C2B00016")
VALIDATION_REQUEST = "c2b_payment.validation"


@dataclass(frozen=True)
class Decision:
    accepted: bool
    result_code: str
    decided_by: DecidedBy


def answer_body(decision: Decision, validation_id: str) -> dict[str, str]:
    """Daraja's answer: accept (our validation id comes back as ThirdPartyTransID) or refuse."""
    if decision.accepted:
        return {"ResultCode": ACCEPTED, "ResultDesc": "Accepted", "ThirdPartyTransID": validation_id}
    return {"ResultCode": decision.result_code, "ResultDesc": "Rejected"}


def by_default(settings: C2BSettings, decided_by: DecidedBy) -> Decision:
    if settings.default_action is DefaultAction.ACCEPT:
        return Decision(True, ACCEPTED, decided_by)
    return Decision(False, OTHER_ERROR, decided_by)


class C2BValidator:
    def __init__(
        self,
        db: UnitOfWorkFactory,
        read_body: C2BBodyReader,
        asker: MerchantAsker,
        box: SecretBox,
        clock: Clock,
        *,
        timeout: float,
    ) -> None:
        self._db = db
        self._read = read_body
        self._asker = asker
        self._box = box
        self._clock = clock
        self.timeout = timeout

    async def answer(self, callback: InboundCallback, *, source_allowed: bool) -> dict[str, str]:
        """Decide, record the decision, and return the body to answer Daraja with."""
        started = time.monotonic()
        validation_id = new_id(VALIDATION_PREFIX, self._clock.now())
        body: IncomingC2B | None = None
        with contextlib.suppress(MalformedC2B):
            body = self._read(callback.body)
        async with self._db.read() as uow:
            registration = await uow.c2b.registration_by_token(callback.token_hash)
            settings = None
            if registration is not None:
                settings = await uow.c2b.settings(Tenant(registration.project_id, Mode(registration.mode)))
        decision = await self._decide(callback, body, registration, settings, source_allowed, validation_id)
        await self._record(callback, body, registration, decision, validation_id, started)
        return answer_body(decision, validation_id)

    async def _decide(
        self,
        callback: InboundCallback,
        body: IncomingC2B | None,
        registration: C2BRegistration | None,
        settings: C2BSettings | None,
        source_allowed: bool,
        validation_id: str,
    ) -> Decision:
        if not source_allowed:
            return Decision(False, OTHER_ERROR, DecidedBy.SOURCE_REFUSED)
        if registration is None:
            return Decision(False, INVALID_SHORTCODE, DecidedBy.UNKNOWN_TOKEN)
        if body is None:
            return Decision(False, OTHER_ERROR, DecidedBy.MALFORMED)
        if body.short_code != registration.short_code:
            return Decision(False, INVALID_SHORTCODE, DecidedBy.UNKNOWN_TOKEN)
        if not registration.validation:
            return Decision(True, ACCEPTED, DecidedBy.VALIDATION_OFF)
        rule = settings.validation_rule if settings is not None else ValidationRule.ACCEPT_ALL
        if rule is ValidationRule.ACCEPT_ALL or settings is None:
            return Decision(True, ACCEPTED, DecidedBy.ACCEPT_ALL)
        if rule is ValidationRule.KNOWN_REFERENCES:
            return await self._known(registration, body)
        return await self._ask_merchant(settings, body, validation_id)

    async def _known(self, registration: C2BRegistration, body: IncomingC2B) -> Decision:
        key = normalise_reference(body.bill_ref_number)
        tenant = Tenant(registration.project_id, Mode(registration.mode))
        async with self._db.read() as uow:
            candidates = await uow.c2b.candidates(tenant, key, self._clock.now()) if key else []
        if any(c.paid_by is None for c in candidates):
            return Decision(True, ACCEPTED, DecidedBy.KNOWN_ACCOUNT)
        return Decision(False, INVALID_ACCOUNT, DecidedBy.UNKNOWN_ACCOUNT)

    async def _ask_merchant(self, settings: C2BSettings, body: IncomingC2B, validation_id: str) -> Decision:
        if not settings.merchant_url or not settings.secret_sealed:
            return by_default(settings, DecidedBy.MERCHANT_ERROR)
        secret = self._box.open(settings.secret_sealed, context=c2b_context(settings.project_id, settings.mode))
        now = self._clock.now()
        payload = encode_payload(
            {
                "id": validation_id,
                "type": VALIDATION_REQUEST,
                "created": int(now.timestamp()),
                "data": validation_request(body),
            }
        )
        headers = sign_event([secret], validation_id, now, payload)
        answer = await self._asker.ask(settings.merchant_url, settings.mode, headers, payload, self.timeout)
        if answer.accepted is None:
            return by_default(settings, DecidedBy.MERCHANT_LATE if answer.late else DecidedBy.MERCHANT_ERROR)
        if answer.accepted:
            return Decision(True, ACCEPTED, DecidedBy.MERCHANT)
        code = answer.result_code if answer.result_code in REJECT_CODES else OTHER_ERROR
        return Decision(False, code or OTHER_ERROR, DecidedBy.MERCHANT)

    async def _record(
        self,
        callback: InboundCallback,
        body: IncomingC2B | None,
        registration: C2BRegistration | None,
        decision: Decision,
        validation_id: str,
        started: float,
    ) -> None:
        at: datetime = self._clock.now()
        record = C2BValidation(
            id=validation_id,
            project_id=registration.project_id if registration else None,
            mode=registration.mode if registration else None,
            registration_id=registration.id if registration else None,
            callback_id=callback.id,
            trans_id=body.trans_id if body else None,
            short_code=body.short_code if body else None,
            amount=body.amount if body else None,
            bill_ref_number=body.bill_ref_number if body else None,
            accepted=decision.accepted,
            result_code=decision.result_code,
            decided_by=decision.decided_by,
            latency_ms=int((time.monotonic() - started) * 1000),
            created_at=at,
        )
        async with self._db.write() as uow:
            await uow.c2b.add_validation(record)


def validation_request(body: IncomingC2B) -> dict[str, object]:
    """What the merchant's server is asked about (docs/c2b.md, "Asking your server")."""
    return {
        "trans_id": body.trans_id,
        "transaction_type": body.transaction_type,
        "trans_time": body.trans_time.isoformat(),
        "amount": body.amount,
        "short_code": body.short_code,
        "bill_ref_number": body.bill_ref_number,
        "msisdn": body.msisdn,
        "customer_name": body.customer_name,
    }
