"""The C2B use cases behind the API, the CLI and the dashboard: settings, URL registration, the
incoming payments and their review queue (match by hand, dismiss), and expected payments.

Services never commit: units of work do, one per step, never across a network call (the Daraja
registration is called first, then its result is saved).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mpesa_bridge.core.accounts import ProjectService
from mpesa_bridge.core.c2b.confirmation import apply_match, event, facts
from mpesa_bridge.core.c2b.entity import (
    EXPECTED_PREFIX,
    REGISTRATION_PREFIX,
    C2BEventType,
    C2BPayment,
    C2BRegistration,
    C2BSettings,
    C2BStatus,
    C2BValidation,
    Candidate,
    DefaultAction,
    ExpectedPayment,
    ExpectedStatus,
    MatchTarget,
    Suggestion,
    ValidationRule,
)
from mpesa_bridge.core.c2b.errors import C2BRegisterRefused, C2BStateConflict
from mpesa_bridge.core.c2b.matching import normalise_reference, phone_compatible, suggest
from mpesa_bridge.core.c2b.ports import C2BGateway, C2BRegisterCommand
from mpesa_bridge.core.clock import Clock
from mpesa_bridge.core.crypto import SecretBox
from mpesa_bridge.core.errors import InvalidRequest, NotFound
from mpesa_bridge.core.idempotency import bind_key
from mpesa_bridge.core.ids import new_id
from mpesa_bridge.core.payments.stk import token_hash
from mpesa_bridge.core.phone import normalise_phone
from mpesa_bridge.core.ports import IdempotencyBinding, UnitOfWorkFactory
from mpesa_bridge.core.projects import Tenant
from mpesa_bridge.core.sealing import c2b_context
from mpesa_bridge.core.shortcodes import is_short_code
from mpesa_bridge.core.webhooks.destinations import AddressRule, Resolver, check_destination
from mpesa_bridge.core.webhooks.signing import generate_secret

VALIDATION = "c2b_validation"
CONFIRMATION = "c2b_confirmation"
RESPONSE_TYPES = ("Completed", "Cancelled")
# Daraja refuses a C2B URL holding any of these, in any case (daraja.md §6.1).
FORBIDDEN_URL_WORDS = ("m-pesa", "mpesa", "safaricom", "exec", "exe", "cmd", "sql", "query")
REFERENCE_MAX = 20  # BillRefNumber: at most 20 characters
DESCRIPTION_MAX = 200
NOTE_MAX = 500
_PRINTABLE = re.compile(r"^[^\x00-\x1f\x7f]*$")


@dataclass(frozen=True)
class ExpectedCreate:
    reference: str
    amount: int
    phone: str | None = None
    description: str = ""
    metadata: dict[str, Any] | None = None


def forbidden_word(url: str) -> str | None:
    lowered = url.lower()
    return next((w for w in FORBIDDEN_URL_WORDS if w in lowered), None)


def new_url_token() -> str:
    """Hex only: a URL-safe base64 token could spell a word Daraja refuses ("exe", "cmd", "sql")."""
    return secrets.token_hex(20)


class C2BService:
    def __init__(
        self,
        db: UnitOfWorkFactory,
        gateway: C2BGateway,
        projects: ProjectService,
        box: SecretBox,
        clock: Clock,
        callback_url: Callable[[str, str], str],
        resolver: Resolver,
        *,
        allow_private_urls: bool = False,
        test_loopback: bool = False,
        register_version: int = 2,
        max_amount: int = 250_000,
    ) -> None:
        self._db = db
        self._gateway = gateway
        self._projects = projects
        self._box = box
        self._clock = clock
        self._callback_url = callback_url
        self._resolver = resolver
        self._allow_private = allow_private_urls
        self._test_loopback = test_loopback
        self.register_version = register_version
        self._max_amount = max_amount

    # Settings ---------------------------------------------------------------------------------

    async def settings(self, tenant: Tenant) -> tuple[C2BSettings, str | None]:
        """The project mode's rules and signing secret (defaults: accept all, default accept)."""
        async with self._db.read() as uow:
            found = await uow.c2b.settings(tenant)
        if found is None:
            return self._default_settings(tenant), None
        return found, self._open(found)

    def _default_settings(self, tenant: Tenant) -> C2BSettings:
        now = self._clock.now()
        return C2BSettings(
            tenant.project_id, tenant.mode.value, ValidationRule.ACCEPT_ALL, None, DefaultAction.ACCEPT, None, now, now
        )

    def _open(self, settings: C2BSettings) -> str | None:
        if settings.secret_sealed is None:
            return None
        return self._box.open(settings.secret_sealed, context=c2b_context(settings.project_id, settings.mode))

    async def update_settings(
        self,
        tenant: Tenant,
        *,
        validation_rule: str | None = None,
        merchant_url: str | None = None,
        clear_merchant_url: bool = False,
        default_action: str | None = None,
        rotate_secret: bool = False,
    ) -> tuple[C2BSettings, str | None]:
        rule = _enum(ValidationRule, validation_rule, "validation_rule")
        default = _enum(DefaultAction, default_action, "default_action")
        if merchant_url is not None:
            rule_for = AddressRule.for_mode(
                tenant.mode, allow_private=self._allow_private, test_loopback=self._test_loopback
            )
            await check_destination(merchant_url, rule_for, self._resolver)
        now = self._clock.now()
        async with self._db.write() as uow:
            current = await uow.c2b.settings(tenant) or self._default_settings(tenant)
            if rule is not None:
                current.validation_rule = rule
            if default is not None:
                current.default_action = default
            if merchant_url is not None:
                current.merchant_url = merchant_url
            elif clear_merchant_url:
                current.merchant_url = None
            if current.validation_rule is ValidationRule.MERCHANT and not current.merchant_url:
                raise InvalidRequest(
                    "The merchant rule needs a merchant_url to ask.", code="merchant_url_missing", param="merchant_url"
                )
            if current.secret_sealed is None or rotate_secret:
                current.secret_sealed = self._box.seal(
                    generate_secret(), context=c2b_context(tenant.project_id, tenant.mode.value)
                )
            current.updated_at = now
            await uow.c2b.save_settings(current)
        return current, self._open(current)

    # Registrations ----------------------------------------------------------------------------

    async def register(
        self,
        tenant: Tenant,
        *,
        short_code: str | None = None,
        response_type: str = "Completed",
        validation: bool = True,
        api_version: int | None = None,
        idempotency: IdempotencyBinding | None = None,
    ) -> C2BRegistration:
        """Register this bridge's validation and confirmation URLs for `short_code` with Daraja (the
        mode's own short code when None), replacing an earlier registration of it."""
        account = await self._projects.account(tenant)
        code = short_code or account.short_code
        if not is_short_code(code):
            raise InvalidRequest("short_code must be 5 to 7 digits, not starting with 0.", param="short_code")
        if response_type not in RESPONSE_TYPES:
            raise InvalidRequest("response_type must be Completed or Cancelled.", param="response_type")
        version = api_version or self.register_version
        if version not in (1, 2):
            raise InvalidRequest("api_version must be 1 or 2.", param="api_version")
        token = new_url_token()
        validation_url = self._callback_url(VALIDATION, token)
        confirmation_url = self._callback_url(CONFIRMATION, token)
        word = forbidden_word(validation_url)
        if word is not None:
            raise C2BRegisterRefused(
                f"Daraja refuses C2B URLs containing {word!r}; this bridge's public URL holds it "
                "(set MPESA_BRIDGE_PUBLIC_BASE_URL to a URL without it).",
                param="public_base_url",
            )
        command = C2BRegisterCommand(account, code, response_type, confirmation_url, validation_url, version)
        await self._gateway.c2b_register(command)
        now = self._clock.now()
        async with self._db.write() as uow:
            existing = await uow.c2b.registration(tenant, code)
            registration = C2BRegistration(
                id=existing.id if existing else new_id(REGISTRATION_PREFIX, now),
                project_id=tenant.project_id,
                mode=tenant.mode.value,
                short_code=code,
                response_type=response_type,
                validation=validation,
                api_version=version,
                token_hash=token_hash(token),
                validation_url=validation_url,
                confirmation_url=confirmation_url,
                status="registered",
                failure=None,
                created_at=existing.created_at if existing else now,
                updated_at=now,
            )
            await uow.c2b.save_registration(registration)
            if idempotency is not None:
                await bind_key(uow, idempotency, registration.id)
        return registration

    async def registrations(self, tenant: Tenant) -> Sequence[C2BRegistration]:
        async with self._db.read() as uow:
            return await uow.c2b.registrations(tenant)

    async def registration_by_id(self, tenant: Tenant, registration_id: str) -> C2BRegistration:
        for registration in await self.registrations(tenant):
            if registration.id == registration_id:
                return registration
        raise NotFound(f"No such C2B registration: '{registration_id}'", param="id")

    # Payments and the review queue ------------------------------------------------------------

    async def payments(
        self,
        tenant: Tenant,
        *,
        status: str | None = None,
        reference: str | None = None,
        starting_after: str | None = None,
        limit: int = 20,
    ) -> Sequence[C2BPayment]:
        wanted = _enum(C2BStatus, status, "status")
        key = normalise_reference(reference) if reference else None
        async with self._db.read() as uow:
            return await uow.c2b.payments(tenant, wanted, key, starting_after, limit)

    async def payment(self, tenant: Tenant, payment_id: str) -> C2BPayment:
        async with self._db.read() as uow:
            found = await uow.c2b.payment(tenant, payment_id)
        if found is None:
            raise _missing("C2B payment", payment_id)
        return found

    async def payment_details(
        self, tenant: Tenant, payment_id: str
    ) -> tuple[C2BPayment, list[Suggestion], Sequence[C2BValidation], Sequence[C2BPayment]]:
        """A payment, its suggestions (when unmatched), its validation answers, and every payment of
        the same reference (a customer who paid twice is shown, not hidden)."""
        async with self._db.read() as uow:
            payment = await uow.c2b.payment(tenant, payment_id)
            if payment is None:
                raise _missing("C2B payment", payment_id)
            suggestions: list[Suggestion] = []
            if payment.status is C2BStatus.UNMATCHED:
                suggestions = suggest(facts(payment), await uow.c2b.candidates(tenant, None, self._clock.now()))
            validations = await uow.c2b.validations(tenant, payment.trans_id)
            same = await uow.c2b.payments_for_reference(tenant, payment.reference_key) if payment.reference_key else []
        return payment, suggestions, validations, same

    async def match(self, tenant: Tenant, payment_id: str, target_type: str, target_id: str) -> C2BPayment:
        """Match an unmatched payment by hand to an open expected payment, checkout session or link:
        the session is completed and the link counts it, as an automatic match does
        (`apply_match`). A session or link must take the payment's amount."""
        kind = _enum(MatchTarget, target_type, "type")
        if kind is None:
            raise InvalidRequest("type is required.", param="type")
        at = self._clock.now()
        async with self._db.write() as uow:
            payment = await uow.c2b.lock_payment(tenant, payment_id)
            if payment is None:
                raise _missing("C2B payment", payment_id)
            if payment.status is not C2BStatus.UNMATCHED:
                raise C2BStateConflict(f"This C2B payment is already {payment.status.value}.")
            candidates = {(c.type, c.id): c for c in await uow.c2b.candidates(tenant, None, at)}
            candidate = candidates.get((kind, target_id))
            if candidate is None or candidate.paid_by is not None:
                raise InvalidRequest(
                    f"No open {kind.value} '{target_id}' to match.", code="match_target_missing", param="id"
                )
            if kind is not MatchTarget.EXPECTED_PAYMENT and not candidate.takes(payment.amount):
                # A person may settle an expected payment for another amount; a session or link
                # completed for an amount it does not take would show a sale that did not happen.
                raise InvalidRequest(
                    f"The {kind.value} '{target_id}' does not take {payment.amount} shillings.",
                    code="match_amount_mismatch",
                    param="id",
                )
            if not await apply_match(uow, payment, candidate, "manual", at):
                raise C2BStateConflict(f"The {kind.value} '{target_id}' is no longer open.")
        return payment

    async def dismiss(self, tenant: Tenant, payment_id: str, note: str | None = None) -> C2BPayment:
        text = _text(note or "", "note", NOTE_MAX)
        at = self._clock.now()
        async with self._db.write() as uow:
            payment = await uow.c2b.lock_payment(tenant, payment_id)
            if payment is None:
                raise _missing("C2B payment", payment_id)
            if payment.status is not C2BStatus.UNMATCHED:
                raise C2BStateConflict(f"This C2B payment is already {payment.status.value}.")
            payment.status, payment.note, payment.updated_at = C2BStatus.DISMISSED, text or None, at
            await uow.c2b.save_payment(payment)
            await uow.events.add(event(payment, C2BEventType.DISMISSED, at))
        return payment

    # Expected payments ------------------------------------------------------------------------

    async def expect(
        self, tenant: Tenant, request: ExpectedCreate, idempotency: IdempotencyBinding | None = None
    ) -> ExpectedPayment:
        """A payment to expect. An unmatched C2B payment that already paid it (the customer was
        quicker than the merchant) is matched at once."""
        reference = _text(request.reference, "reference", REFERENCE_MAX)
        if not normalise_reference(reference):
            raise InvalidRequest("reference is required.", param="reference")
        amount = request.amount
        if isinstance(amount, bool) or not isinstance(amount, int) or not 1 <= amount <= self._max_amount:
            raise InvalidRequest(f"amount must be a whole number from 1 to {self._max_amount}.", param="amount")
        phone = normalise_phone(request.phone) if request.phone else None
        now = self._clock.now()
        expected = ExpectedPayment(
            id=new_id(EXPECTED_PREFIX, now),
            project_id=tenant.project_id,
            mode=tenant.mode.value,
            reference=reference,
            reference_key=normalise_reference(reference),
            amount=amount,
            phone=phone,
            description=_text(request.description, "description", DESCRIPTION_MAX),
            metadata=dict(request.metadata or {}),
            status=ExpectedStatus.OPEN,
            c2b_payment_id=None,
            paid_at=None,
            cancelled_at=None,
            created_at=now,
            updated_at=now,
        )
        async with self._db.write() as uow:
            await uow.c2b.add_expected(expected)
            if idempotency is not None:
                await bind_key(uow, idempotency, expected.id)
            earlier = [
                p
                for p in await uow.c2b.payments_for_reference(tenant, expected.reference_key)
                if p.status is C2BStatus.UNMATCHED
                and p.amount == amount
                and phone_compatible(phone, p.msisdn, p.msisdn_kind)
            ]
            if earlier:
                payment = await uow.c2b.lock_payment(tenant, sorted(earlier, key=lambda p: p.id)[0].id)
                if payment is not None:
                    candidate = Candidate(MatchTarget.EXPECTED_PAYMENT, expected.id, reference, amount, phone=phone)
                    await apply_match(uow, payment, candidate, "auto", now)
                    found = await uow.c2b.expected(tenant, expected.id)
                    if found is not None:
                        expected = found
        return expected

    async def expected(self, tenant: Tenant, expected_id: str) -> ExpectedPayment:
        async with self._db.read() as uow:
            found = await uow.c2b.expected(tenant, expected_id)
        if found is None:
            raise _missing("expected payment", expected_id)
        return found

    async def expected_list(
        self, tenant: Tenant, *, status: str | None = None, starting_after: str | None = None, limit: int = 20
    ) -> Sequence[ExpectedPayment]:
        wanted = _enum(ExpectedStatus, status, "status")
        async with self._db.read() as uow:
            return await uow.c2b.expected_list(tenant, wanted, starting_after, limit)

    async def cancel_expected(self, tenant: Tenant, expected_id: str) -> ExpectedPayment:
        at: datetime = self._clock.now()
        async with self._db.write() as uow:
            expected = await uow.c2b.lock_expected(tenant, expected_id)
            if expected is None:
                raise _missing("expected payment", expected_id)
            if expected.status is not ExpectedStatus.OPEN:
                raise C2BStateConflict(f"This expected payment is already {expected.status.value}.")
            expected.status, expected.cancelled_at, expected.updated_at = ExpectedStatus.CANCELLED, at, at
            await uow.c2b.save_expected(expected)
        return expected


def _enum(kind: Any, value: str | None, param: str) -> Any:
    if value is None:
        return None
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise InvalidRequest(f"{param} must be one of: {allowed}.", param=param) from None


def _text(value: str, param: str, limit: int) -> str:
    text = value.strip()
    if len(text) > limit or not _PRINTABLE.match(text):
        raise InvalidRequest(f"{param} must be at most {limit} printable characters.", param=param)
    return text


def _missing(what: str, resource_id: str) -> NotFound:
    return NotFound(f"No such {what}: '{resource_id}'", param="id")
