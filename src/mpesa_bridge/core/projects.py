"""Projects, their two modes, Daraja settings per mode, and secret API keys.

A project has a `test` and a `live` mode. Each mode has its own Daraja settings and its own
secret key (`sk_test_…`, `sk_live_…`); the key's mode decides where a request goes. A test-mode
key may only reach the simulator or Daraja's sandbox; a live key only Daraja's production.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from mpesa_bridge.core.crypto import SecretBox
from mpesa_bridge.core.errors import ConfigurationMissing, InvalidRequest
from mpesa_bridge.core.sealing import daraja_context
from mpesa_bridge.core.shortcodes import SHORT_CODE_RULE, is_short_code


class Mode(StrEnum):
    TEST = "test"
    LIVE = "live"


class DarajaEnvironment(StrEnum):
    SIMULATOR = "simulator"
    SANDBOX = "sandbox"
    PRODUCTION = "production"


class ShortcodeType(StrEnum):
    PAYBILL = "paybill"
    TILL = "till"


ALLOWED_ENVIRONMENTS: dict[Mode, frozenset[DarajaEnvironment]] = {
    Mode.TEST: frozenset({DarajaEnvironment.SIMULATOR, DarajaEnvironment.SANDBOX}),
    Mode.LIVE: frozenset({DarajaEnvironment.PRODUCTION}),
}

_KEY = re.compile(r"^sk_(test|live)_[A-Za-z0-9]{32}$")
INITIATOR_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


def check_environment(mode: Mode, environment: DarajaEnvironment) -> None:
    """A test key never reaches production Daraja; a live key never reaches the simulator."""
    if environment not in ALLOWED_ENVIRONMENTS[mode]:
        allowed = ", ".join(sorted(e.value for e in ALLOWED_ENVIRONMENTS[mode]))
        raise InvalidRequest(
            f"{mode.value} mode can only use the Daraja environments: {allowed}",
            code="environment_not_allowed",
            param="environment",
        )


@dataclass(frozen=True)
class DarajaAccount:
    """Decrypted Daraja settings of one project mode, ready for the gateway."""

    environment: DarajaEnvironment
    consumer_key: str
    consumer_secret: str = field(repr=False)
    short_code: str = ""
    passkey: str = field(default="", repr=False)
    shortcode_type: ShortcodeType = ShortcodeType.PAYBILL
    till_number: str | None = None
    # The initiator of the APIs that move money out or ask about it (B2C, reversal, transaction
    # status, account balance): its name and password (the gateway turns the password into a
    # SecurityCredential with the environment's certificate). Empty: those APIs are not set up.
    initiator_name: str = ""
    initiator_password: str = field(default="", repr=False)

    @property
    def has_initiator(self) -> bool:
        return bool(self.initiator_name and self.initiator_password)

    @property
    def transaction_type(self) -> str:
        if self.shortcode_type is ShortcodeType.TILL:
            return "CustomerBuyGoodsOnline"
        return "CustomerPayBillOnline"

    @property
    def party_b(self) -> str:
        """Paybill: the shortcode itself; till: the till number (BusinessShortCode is the store)."""
        if self.shortcode_type is ShortcodeType.TILL and self.till_number:
            return self.till_number
        return self.short_code


@dataclass(frozen=True)
class DarajaSettingsInput:
    """Daraja settings as an operator enters them (validated, still in clear)."""

    environment: DarajaEnvironment
    consumer_key: str
    consumer_secret: str = field(repr=False)
    short_code: str
    passkey: str = field(repr=False)
    shortcode_type: ShortcodeType = ShortcodeType.PAYBILL
    till_number: str | None = None
    initiator_name: str | None = None
    initiator_password: str | None = field(default=None, repr=False)

    def validate(self, mode: Mode) -> None:
        check_environment(mode, self.environment)
        for name in ("consumer_key", "consumer_secret", "passkey"):
            if not getattr(self, name).strip():
                raise InvalidRequest(f"{name} is required", code="parameter_missing", param=name)
        self._validate_initiator()
        if not is_short_code(self.short_code):
            raise InvalidRequest(f"short_code must be {SHORT_CODE_RULE}", code="invalid_short_code", param="short_code")
        if self.shortcode_type is ShortcodeType.TILL:
            if not self.till_number or not is_short_code(self.till_number):
                raise InvalidRequest(
                    f"a till needs till_number ({SHORT_CODE_RULE}); short_code is its store number",
                    code="invalid_till_number",
                    param="till_number",
                )
        elif self.till_number:
            raise InvalidRequest("till_number is only for tills", code="invalid_till_number", param="till_number")

    def _validate_initiator(self) -> None:
        """Both or neither: a name without its password (or the reverse) cannot make a credential.
        Neither given (None): the stored initiator is kept; an empty name alone removes it."""
        name, password = self.initiator_name, self.initiator_password
        if not password and (name is None or name == ""):
            return
        if not name or not name.strip():
            raise InvalidRequest(
                "initiator_name is required with initiator_password", code="parameter_missing", param="initiator_name"
            )
        if not password:
            raise InvalidRequest(
                "initiator_password is required with initiator_name",
                code="parameter_missing",
                param="initiator_password",
            )
        if not INITIATOR_NAME.fullmatch(name):
            raise InvalidRequest(
                "initiator_name must be 1-64 letters, digits, '.', '_' or '-'",
                code="invalid_initiator_name",
                param="initiator_name",
            )
        if len(password) > 256:
            raise InvalidRequest(
                "initiator_password is at most 256 characters",
                code="invalid_initiator_password",
                param="initiator_password",
            )


@dataclass(eq=False)
class Project:
    id: str
    name: str
    created_at: datetime
    require_signed_requests: bool = False
    signing_secret_sealed: str | None = None
    confirm_by_query: bool = False
    time_zone: str = "Africa/Nairobi"  # the dashboard's days and hours (zoneinfo name)
    # Browser settings (migration 0016, core/browser.py): may a publishable key open a checkout
    # session for an amount the browser chose, up to what most; which sites may call the bridge.
    client_side_amounts: bool = False
    client_side_amount_max: int | None = None
    allowed_origins: list[str] = field(default_factory=list)


@dataclass(eq=False)
class DarajaConfig:
    """Stored Daraja settings of one project mode; credentials sealed under the master key."""

    project_id: str
    mode: Mode
    environment: DarajaEnvironment
    short_code: str
    shortcode_type: ShortcodeType
    till_number: str | None
    consumer_key_sealed: str
    consumer_secret_sealed: str
    passkey_sealed: str
    updated_at: datetime
    initiator_name: str | None = None
    initiator_password_sealed: str | None = None

    @classmethod
    def seal(
        cls, project_id: str, mode: Mode, given: DarajaSettingsInput, box: SecretBox, at: datetime
    ) -> DarajaConfig:
        given.validate(mode)
        ctx = _context(project_id, mode)
        return cls(
            project_id=project_id,
            mode=mode,
            environment=given.environment,
            short_code=given.short_code,
            shortcode_type=given.shortcode_type,
            till_number=given.till_number,
            consumer_key_sealed=box.seal(given.consumer_key, context=ctx),
            consumer_secret_sealed=box.seal(given.consumer_secret, context=ctx),
            passkey_sealed=box.seal(given.passkey, context=ctx),
            updated_at=at,
            initiator_name=given.initiator_name or None,
            initiator_password_sealed=(
                box.seal(given.initiator_password, context=ctx) if given.initiator_password else None
            ),
        )

    def keep_initiator_of(self, previous: DarajaConfig | None) -> None:
        """Settings saved without an initiator keep the one already stored (a form that leaves the
        password blank means "unchanged", as the other secrets' forms do)."""
        if self.initiator_name is None and previous is not None:
            self.initiator_name = previous.initiator_name
            self.initiator_password_sealed = previous.initiator_password_sealed

    def without_initiator(self) -> None:
        self.initiator_name = None
        self.initiator_password_sealed = None

    def open(self, box: SecretBox) -> DarajaAccount:
        check_environment(Mode(self.mode), DarajaEnvironment(self.environment))
        ctx = _context(self.project_id, Mode(self.mode))
        return DarajaAccount(
            environment=DarajaEnvironment(self.environment),
            consumer_key=box.open(self.consumer_key_sealed, context=ctx),
            consumer_secret=box.open(self.consumer_secret_sealed, context=ctx),
            short_code=self.short_code,
            passkey=box.open(self.passkey_sealed, context=ctx),
            shortcode_type=ShortcodeType(self.shortcode_type),
            till_number=self.till_number,
            initiator_name=self.initiator_name or "",
            initiator_password=(
                box.open(self.initiator_password_sealed, context=ctx) if self.initiator_password_sealed else ""
            ),
        )


def _context(project_id: str, mode: Mode) -> str:
    # Binding the ciphertext to its row stops a sealed value being copied onto another project.
    return daraja_context(project_id, mode.value)


def missing_config(mode: Mode) -> ConfigurationMissing:
    return ConfigurationMissing(
        f"{mode.value} mode of this project has no Daraja settings yet",
        code="mode_not_configured",
    )


@dataclass(eq=False)
class ApiKey:
    """A secret key as stored: only its SHA-256 (what verifies it) and a display prefix."""

    id: str
    project_id: str
    mode: Mode
    key_hash: str
    display: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    expires_at: datetime | None = None

    def usable_at(self, at: datetime) -> bool:
        """Not revoked, and not past the end of a rotation's grace period."""
        return self.revoked_at is None and (self.expires_at is None or at < self.expires_at)


def generate_secret_key(mode: Mode) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    body = "".join(secrets.choice(alphabet) for _ in range(32))
    return f"sk_{mode.value}_{body}"


def hash_secret_key(key: str) -> str:
    # Keys are 190 bits of randomness, so a plain SHA-256 cannot be brute-forced back.
    return hashlib.sha256(key.encode()).hexdigest()


def key_mode(key: str) -> Mode | None:
    match = _KEY.fullmatch(key)
    return Mode(match.group(1)) if match else None


def display_key(key: str) -> str:
    return f"{key[:12]}…{key[-4:]}"


@dataclass(eq=False)
class PublishableKey:
    """A project mode's publishable key (`pk_test_…`, `pk_live_…`): it names the project in a
    browser and is no secret, so it is stored as it is. One per mode; rotating replaces it."""

    project_id: str
    mode: Mode
    key: str
    created_at: datetime


_PUBLISHABLE = re.compile(r"^pk_(test|live)_[A-Za-z0-9]{24}$")


def generate_publishable_key(mode: Mode) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return f"pk_{mode.value}_" + "".join(secrets.choice(alphabet) for _ in range(24))


def publishable_key_mode(key: str) -> Mode | None:
    match = _PUBLISHABLE.fullmatch(key)
    return Mode(match.group(1)) if match else None


@dataclass(frozen=True)
class Tenant:
    """Who is asking: every query is scoped by project and mode."""

    project_id: str
    mode: Mode
