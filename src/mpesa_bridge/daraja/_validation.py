"""Field rules Daraja enforces (or silently trips over), checked before anything is sent.

Messages never include the offending value: it may be a phone number or a secret.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from mpesa_bridge.core.shortcodes import SHORT_CODE_RULE, is_short_code

from ._exceptions import DarajaValidationError

__all__ = [
    "MAX_AMOUNT",
    "check_amount",
    "check_b2c_amount",
    "check_c2b_response_type",
    "check_c2b_url",
    "check_callback_url",
    "check_command_id",
    "check_cpi",
    "check_free_text",
    "check_identifier_type",
    "check_initiator",
    "check_merchant_name",
    "check_msisdn",
    "check_non_empty",
    "check_optional_text",
    "check_party_for_identifier",
    "check_qr_size",
    "check_remarks",
    "check_result_url",
    "check_security_credential",
    "check_short_code",
    "check_transaction_id",
    "check_transaction_type",
    "check_trx_code",
]

MIN_AMOUNT = 1
MAX_AMOUNT = 250_000  # per-transaction ceiling (portal FAQ)

TRANSACTION_TYPES = frozenset({"CustomerPayBillOnline", "CustomerBuyGoodsOnline"})
TRX_CODES = ("BG", "WA", "PB", "SM", "SB")
MERCHANT_NAME_MAX = 64
# Daraja documents no bounds; below ~100 px a phone camera struggles, above 1000 px is only bytes.
QR_SIZE_MIN = 100
QR_SIZE_MAX = 1000

# [0-9], not \d: \d also matches non-ASCII digits that int() would happily accept.
_MSISDN = re.compile(r"254[71][0-9]{8}")
# '@', '#', '&', emoji and other symbols make Daraja reject the push or drop the prompt.
_FREE_TEXT = re.compile(r"[A-Za-z0-9 ._/-]+")


def _require_str(field: str, value: object) -> str:
    if not isinstance(value, str):
        raise DarajaValidationError(field, "must be a string")
    return value


def check_amount(field: str, value: object) -> None:
    """Whole shillings, 1..250000; bool is an int subclass but never an amount."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise DarajaValidationError(field, "must be a whole number of shillings")
    if not MIN_AMOUNT <= value <= MAX_AMOUNT:
        raise DarajaValidationError(field, f"must be between {MIN_AMOUNT} and {MAX_AMOUNT}")


def check_msisdn(field: str, value: object) -> None:
    """`254` + 7xx/1xx subscriber number: 12 digits, no '+', no leading 0."""
    if not _MSISDN.fullmatch(_require_str(field, value)):
        raise DarajaValidationError(field, "must be 254 followed by 7 or 1 and 8 more digits")


def check_short_code(field: str, value: object) -> None:
    """Paybill, till or store number: the rule of `core.shortcodes`, shared with the bridge's core."""
    if not is_short_code(_require_str(field, value)):
        raise DarajaValidationError(field, f"must be {SHORT_CODE_RULE}")


def check_free_text(field: str, value: object, *, max_length: int) -> None:
    """AccountReference / TransactionDesc: short, plain ASCII, never blank."""
    text = _require_str(field, value)
    if not text.strip():
        raise DarajaValidationError(field, "must not be empty")
    if len(text) > max_length:
        raise DarajaValidationError(field, f"must be at most {max_length} characters")
    if not _FREE_TEXT.fullmatch(text):
        raise DarajaValidationError(field, "may contain only letters, digits, spaces and - . _ /")


def check_callback_url(field: str, value: object) -> None:
    """An absolute http(s) URL; stray whitespace makes Daraja reject it or lose the callback."""
    url = _require_str(field, value)
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        raise DarajaValidationError(field, "must not contain whitespace or control characters")
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:  # e.g. an unbalanced "[" in the host
        raise DarajaValidationError(field, "must be an absolute http(s) URL") from None
    if parts.scheme not in ("http", "https") or not hostname:
        raise DarajaValidationError(field, "must be an absolute http(s) URL")


def check_transaction_type(field: str, value: object) -> None:
    if _require_str(field, value) not in TRANSACTION_TYPES:
        raise DarajaValidationError(field, "must be CustomerPayBillOnline or CustomerBuyGoodsOnline")


def check_non_empty(field: str, value: object, *, max_length: int | None = None) -> None:
    text = _require_str(field, value)
    if not text.strip():
        raise DarajaValidationError(field, "must not be empty")
    if max_length is not None and len(text) > max_length:
        raise DarajaValidationError(field, f"must be at most {max_length} characters")


def check_merchant_name(field: str, value: object) -> None:
    """The name the payer sees: printable, at most 64 characters, none of the symbols Daraja trips on."""
    text = _require_str(field, value)
    if not text.strip():
        raise DarajaValidationError(field, "must not be empty")
    if len(text) > MERCHANT_NAME_MAX:
        raise DarajaValidationError(field, f"must be at most {MERCHANT_NAME_MAX} characters")
    if not text.isascii() or not text.isprintable() or any(ch in "@#&<>" for ch in text):
        raise DarajaValidationError(field, "may contain only printable ASCII, without @ # & < >")


def check_trx_code(field: str, value: object) -> None:
    if _require_str(field, value) not in TRX_CODES:
        raise DarajaValidationError(field, f"must be one of {', '.join(TRX_CODES)}")


def check_cpi(field: str, value: object, trx_code: object) -> None:
    """A phone number for SM; a till, paybill or business number otherwise (SB: either form,
    the portal says the business number is given "in MSISDN format")."""
    text = _require_str(field, value)
    if trx_code == "SM":
        check_msisdn(field, text)
    elif trx_code == "SB":
        if not (is_short_code(text) or _MSISDN.fullmatch(text)):
            raise DarajaValidationError(field, f"must be {SHORT_CODE_RULE}, or a phone number 254…")
    else:
        check_short_code(field, text)


def check_qr_size(field: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DarajaValidationError(field, "must be a whole number of pixels")
    if not QR_SIZE_MIN <= value <= QR_SIZE_MAX:
        raise DarajaValidationError(field, f"must be between {QR_SIZE_MIN} and {QR_SIZE_MAX}")


# --- C2B (daraja.md §6.1, §19.12) -----------------------------------------------------------------

C2B_RESPONSE_TYPES = ("Completed", "Cancelled")
# Daraja refuses a C2B URL holding any of these, in any letter case ("URL has the word MPESA").
C2B_URL_FORBIDDEN_WORDS = ("m-pesa", "mpesa", "safaricom", "exe", "exec", "cmd", "sql", "query")


def check_c2b_response_type(field: str, value: object) -> None:
    """Exactly `Completed` or `Cancelled`: sentence case, Safaricom's spelling (not "Canceled")."""
    if _require_str(field, value) not in C2B_RESPONSE_TYPES:
        raise DarajaValidationError(field, "must be Completed or Cancelled (exactly, sentence case)")


def check_c2b_url(field: str, value: object, *, require_https: bool) -> None:
    """A C2B ConfirmationURL / ValidationURL: an absolute URL without the words Daraja refuses,
    https in production (http is allowed by the sandbox only)."""
    check_callback_url(field, value)
    url = str(value)
    lowered = url.lower()
    word = next((w for w in C2B_URL_FORBIDDEN_WORDS if w in lowered), None)
    if word is not None:
        raise DarajaValidationError(field, f"must not contain the word {word.upper()!r} (Daraja refuses it)")
    if require_https and urlsplit(url).scheme != "https":
        raise DarajaValidationError(field, "must be an https URL in production")


# Initiator APIs (daraja.md §7 to §11) ------------------------------------------------------------

B2C_MIN_AMOUNT = 10  # portal FAQ: below it the Result says ResultCode 2
B2C_COMMAND_IDS = ("SalaryPayment", "BusinessPayment", "PromotionPayment")
IDENTIFIER_TYPES = ("1", "2", "4")  # MSISDN, till, organisation short code
RECEIVER_IDENTIFIER_TYPES = ("11", "4")  # "11" today; older samples used "4"
REMARKS_MAX = 100
INITIATOR_MAX = 64
_TRANSACTION_ID = re.compile(r"[A-Z0-9]{10}")
_BASE64_TEXT = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_INITIATOR = re.compile(r"[A-Za-z0-9._-]+")


def check_b2c_amount(field: str, value: object) -> None:
    """B2C: whole shillings, 10..250000 (daraja.md §7.1)."""
    check_amount(field, value)
    assert isinstance(value, int)
    if value < B2C_MIN_AMOUNT:
        raise DarajaValidationError(field, f"must be between {B2C_MIN_AMOUNT} and {MAX_AMOUNT}")


def check_command_id(field: str, value: object, allowed: tuple[str, ...]) -> None:
    if _require_str(field, value) not in allowed:
        raise DarajaValidationError(field, f"must be one of {', '.join(allowed)}")


def check_initiator(field: str, value: object) -> None:
    """The API operator's user name: case-sensitive, no spaces."""
    text = _require_str(field, value)
    if not text or len(text) > INITIATOR_MAX or not _INITIATOR.fullmatch(text):
        raise DarajaValidationError(field, f"must be 1 to {INITIATOR_MAX} letters, digits, dots, dashes or underscores")


def check_security_credential(field: str, value: object) -> None:
    """Base64 of an RSA ciphertext (`security_credential`), never the plain password."""
    text = _require_str(field, value)
    if len(text) < 16 or not _BASE64_TEXT.fullmatch(text):
        raise DarajaValidationError(field, "must be the base64 SecurityCredential (see security_credential)")


def check_remarks(field: str, value: object, *, min_length: int = 1) -> None:
    """Remarks: plain text, `min_length`..100 characters (B2C and Reversal need at least 2)."""
    check_free_text(field, value, max_length=REMARKS_MAX)
    assert isinstance(value, str)
    if len(value) < min_length:
        raise DarajaValidationError(field, f"must be {min_length} to {REMARKS_MAX} characters")


def check_optional_text(field: str, value: object) -> None:
    """Occasion: optional (empty means not sent), else plain text of at most 100 characters."""
    if _require_str(field, value):
        check_free_text(field, value, max_length=REMARKS_MAX)


def check_result_url(field: str, value: object, *, require_https: bool) -> None:
    """ResultURL / QueueTimeOutURL: an absolute URL, https when talking to production."""
    check_callback_url(field, value)
    assert isinstance(value, str)
    if require_https and not value.startswith("https://"):
        raise DarajaValidationError(field, "must be an https URL in production")


def check_identifier_type(field: str, value: object, allowed: tuple[str, ...] = IDENTIFIER_TYPES) -> None:
    if _require_str(field, value) not in allowed:
        raise DarajaValidationError(field, f"must be one of {', '.join(allowed)}")


def check_party_for_identifier(field: str, value: object, identifier_type: str) -> None:
    """A phone number for IdentifierType 1, a till or short code for 2 and 4."""
    if identifier_type == "1":
        check_msisdn(field, value)
    else:
        check_short_code(field, value)


def check_transaction_id(field: str, value: object) -> None:
    """An M-Pesa receipt: 10 upper-case letters and digits (`SG722NMVXQ`)."""
    if not _TRANSACTION_ID.fullmatch(_require_str(field, value)):
        raise DarajaValidationError(field, "must be an M-Pesa receipt: 10 upper-case letters and digits")
