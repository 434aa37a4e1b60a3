"""Settings of the offline Daraja: who may log in, which merchants exist, how fast customers answer."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType

# Public sandbox values (daraja.md section 16): the simulator accepts them out of the box so that a
# client configured for the sandbox works against it unchanged.
SANDBOX_SHORTCODE = "174379"
SANDBOX_PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
SANDBOX_CONSUMER_KEY = "sim_consumer_key"
SANDBOX_CONSUMER_SECRET = "sim_consumer_secret"
# Initiator APIs (daraja.md section 16): the sandbox's initiator and its current test password, and
# the B2C test short code; the STK paybill is an organisation too (reversals of STK payments).
SANDBOX_INITIATOR = "testapi"
SANDBOX_INITIATOR_PASSWORD = "Safaricom999!*!"
SANDBOX_B2C_SHORTCODE = "600000"
DEFAULT_UTILITY_BALANCE = 1_000_000


def utc_now() -> datetime:
    """The default clock: timezone-aware UTC."""
    return datetime.now(UTC)


def _default_credentials() -> Mapping[str, str]:
    return MappingProxyType({SANDBOX_CONSUMER_KEY: SANDBOX_CONSUMER_SECRET})


def _default_shortcodes() -> Mapping[str, str]:
    return MappingProxyType({SANDBOX_SHORTCODE: SANDBOX_PASSKEY})


def _no_tills() -> Mapping[str, str]:
    return MappingProxyType({})


# C2B: Safaricom's "Shortcode 2" test number stands for a short code without external validation
# (Safaricom's default); every other short code has it switched on (docs/simulator.md, C2B).
C2B_NO_VALIDATION_SHORTCODE = "600000"
# Daraja waits about 8 s for a validation answer, then applies the ResponseType (daraja.md §6.4).
C2B_VALIDATION_TIMEOUT = 8.0


def _c2b_validation_off() -> frozenset[str]:
    return frozenset({C2B_NO_VALIDATION_SHORTCODE})


def _default_initiators() -> Mapping[str, str]:
    return MappingProxyType({SANDBOX_INITIATOR: SANDBOX_INITIATOR_PASSWORD})


def _default_organisations() -> Mapping[str, int]:
    return MappingProxyType(
        {SANDBOX_B2C_SHORTCODE: DEFAULT_UTILITY_BALANCE, SANDBOX_SHORTCODE: DEFAULT_UTILITY_BALANCE}
    )


@dataclass(frozen=True)
class SimulatorConfig:
    """How the simulated Daraja behaves.

    - `credentials`: consumer key -> consumer secret accepted by OAuth.
    - `shortcodes`: BusinessShortCode (paybill or store number) -> its STK passkey.
    - `tills`: till number -> the store number (a BusinessShortCode) allowed to push to it.
    - `callback_delay`: seconds between the push and the customer's answer (the callback).
    - `late_callback_delay`: the same for the "late callback" magic number.
    - `duplicate_callback_gap`: seconds between the two copies of a duplicated callback.
    - `token_ttl`: access-token lifetime in seconds, measured with `now`.
    - `callback_timeout`: timeout of each callback POST.
    - `push_answer_delay`: seconds the HTTP answer to an accepted STK push is held back. The push is
      recorded (the prompt "shown") at once; only the answer waits — so a test can stop the caller
      while its push is in flight, the way a crash or a cut connection loses Daraja's answer.
    - `query_lag`: for the lagging-query number, seconds after the push (by `now`) during which
      STK Query still says "being processed", although the customer has paid.
    - `lose_callbacks`: every push is decided after its delay but no callback is ever sent, as for
      the no-callback number: the merchant learns the outcome only by STK Query (load tests of
      reconciliation: one phone per push, every callback lost).
    - `c2b_validation_timeout`: seconds a customer payment waits for the ValidationURL's answer
      before the registered ResponseType decides (Daraja: about 8).
    - `c2b_validation_off`: short codes without external validation (their payments go straight
      to the ConfirmationURL); every other short code has it on.
    - `c2b_register_once`: production's rule: a second C2B registration for a short code is
      refused with `500.003.1001 Urls are already registered.` (the sandbox's rule, re-register at
      will, when False).
    - `now`: clock (aware datetimes) for ids, TransactionDate and token expiry.

    Initiator APIs (B2C, Transaction Status, Account Balance, Reversal):

    - `initiators`: initiator name -> password; every SecurityCredential is decrypted and checked.
    - `organisations`: short code -> opening Utility Account balance in whole shillings; payouts
      and reversals reduce it. Another PartyA / ReceiverParty gets ResultCode 21.
    - `result_delay`: seconds between the synchronous ack and the Result POSTed to ResultURL (or
      the timeout notice to QueueTimeOutURL).
    - `initiator_answer_delay`: seconds the HTTP answer to a B2C (v1 or v3) or Reversal request is
      held back. The money moves and the Result is scheduled at once; only the answer waits (the
      twin of `push_answer_delay`). Transaction Status and Account Balance move nothing and are
      answered at once.
    - `initiator_key_pem`: the RSA private key (PEM, unencrypted) whose certificate the simulator
      publishes; None (the default) makes a new key pair on first use.
    """

    credentials: Mapping[str, str] = field(default_factory=_default_credentials)
    shortcodes: Mapping[str, str] = field(default_factory=_default_shortcodes)
    tills: Mapping[str, str] = field(default_factory=_no_tills)
    callback_delay: float = 2.0
    late_callback_delay: float = 120.0
    duplicate_callback_gap: float = 0.2
    token_ttl: int = 3599
    callback_timeout: float = 10.0
    query_lag: float = 900.0
    lose_callbacks: bool = False
    push_answer_delay: float = 0.0
    c2b_validation_timeout: float = C2B_VALIDATION_TIMEOUT
    c2b_validation_off: frozenset[str] = field(default_factory=_c2b_validation_off)
    c2b_register_once: bool = False
    now: Callable[[], datetime] = utc_now
    initiators: Mapping[str, str] = field(default_factory=_default_initiators)
    organisations: Mapping[str, int] = field(default_factory=_default_organisations)
    result_delay: float = 2.0
    initiator_answer_delay: float = 0.0
    initiator_key_pem: bytes | None = field(default=None, repr=False)
