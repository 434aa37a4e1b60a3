"""Time-ordered ids (`core.ids`) and projects, modes, Daraja settings and secret keys (`core.projects`)."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpesa_bridge.api.schemas import DarajaSettings
from mpesa_bridge.core.crypto import MasterKeyError, SecretBox
from mpesa_bridge.core.errors import ConfigurationMissing, InvalidRequest
from mpesa_bridge.core.ids import id_ceiling, id_floor, new_id, new_token
from mpesa_bridge.core.projects import (
    ALLOWED_ENVIRONMENTS,
    DarajaAccount,
    DarajaConfig,
    DarajaEnvironment,
    DarajaSettingsInput,
    Mode,
    ShortcodeType,
    check_environment,
    display_key,
    generate_secret_key,
    hash_secret_key,
    key_mode,
    missing_config,
)
from tests.fixtures.shortcodes import SHORT_CODE_CASES

T0 = datetime(2026, 1, 31, 12, 0, 0, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ID_BODY = re.compile(r"[0-9a-hjkmnp-tv-z]{26}")  # Crockford base32, lower case: no i, l, o, u
SECRET_KEY = re.compile(r"sk_(test|live)_[A-Za-z0-9]{32}")

# ---------------------------------------------------------------------------------------------
# ids
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["pay", "evt", "evd", "cb", "prj", "key"])
def test_ids_have_the_prefix_and_26_crockford_characters(prefix: str) -> None:
    value = new_id(prefix, T0)
    head, _, body = value.partition("_")
    assert head == prefix
    assert ID_BODY.fullmatch(body)


def test_ids_made_at_the_same_moment_differ() -> None:
    ids = {new_id("pay", T0) for _ in range(200)}
    assert len(ids) == 200
    assert len({i[:14] for i in ids}) == 1  # same time part: "pay_" + 10 characters


def test_ids_sort_by_creation_time() -> None:
    moments = [T0 + timedelta(milliseconds=ms) for ms in (0, 1, 2, 10, 999, 1000, 60_000, 86_400_000)]
    moments += [T0 + timedelta(days=365 * years) for years in (1, 10, 50)]
    ids = [new_id("pay", at) for at in moments]
    assert sorted(ids) == ids


def test_ids_from_a_clock_ticking_in_milliseconds_are_sorted() -> None:
    ids = [new_id("evt", T0 + timedelta(milliseconds=ms)) for ms in range(0, 2000, 7)]
    assert sorted(ids) == ids
    assert len(set(ids)) == len(ids)


def _millis(at: datetime) -> int:
    return (at - EPOCH) // timedelta(milliseconds=1)


@settings(max_examples=200)
@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)),
    st.timedeltas(min_value=timedelta(milliseconds=1), max_value=timedelta(days=3650)),
)
def test_a_later_millisecond_always_sorts_later(at: datetime, gap: timedelta) -> None:
    later = at + gap
    if _millis(later) > _millis(at):
        assert new_id("pay", at) < new_id("pay", later)


def test_the_time_part_encodes_milliseconds_since_the_epoch() -> None:
    alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
    body = new_id("pay", T0).split("_", 1)[1]
    decoded = 0
    for char in body[:10]:
        decoded = decoded * 32 + alphabet.index(char)
    assert decoded == _millis(T0)


@settings(max_examples=300)
@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)),
    st.timedeltas(min_value=timedelta(days=-3), max_value=timedelta(days=3)),
)
def test_a_time_bound_is_an_id_bound(bound: datetime, offset: timedelta) -> None:
    """What the list's created_gte/created_lte become: never leaves out an id made inside the range."""
    made_at = bound + offset
    made = new_id("pay", made_at)
    if made_at >= bound:
        assert made >= id_floor("pay", bound)
    if made_at <= bound:
        assert made < id_ceiling("pay", bound)


def test_time_bounds_are_tight_to_two_milliseconds() -> None:
    assert new_id("pay", T0 - timedelta(milliseconds=2)) < id_floor("pay", T0)
    assert new_id("pay", T0 + timedelta(milliseconds=2)) > id_ceiling("pay", T0)
    assert id_floor("pay", datetime(1960, 1, 1, tzinfo=UTC)) == "pay_0000000000"  # before the epoch: no bound
    assert new_id("pay", datetime.max.replace(tzinfo=UTC)) < id_ceiling("pay", datetime.max.replace(tzinfo=UTC))


def test_tokens_are_url_safe_and_unique() -> None:
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100
    for token in tokens:
        assert re.fullmatch(r"[A-Za-z0-9_-]{32}", token)  # 24 bytes → 32 characters
    assert len(new_token(48)) == 64


# ---------------------------------------------------------------------------------------------
# secret keys
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", list(Mode))
def test_generated_secret_keys_have_the_mode_prefix_and_32_alphanumerics(mode: Mode) -> None:
    keys = {generate_secret_key(mode) for _ in range(50)}
    assert len(keys) == 50
    for key in keys:
        assert key.startswith(f"sk_{mode.value}_")
        assert SECRET_KEY.fullmatch(key)
        assert len(key) == len(f"sk_{mode.value}_") + 32
        assert key_mode(key) is mode


@pytest.mark.parametrize(
    ("key", "mode"),
    [
        ("sk_test_" + "a" * 32, Mode.TEST),
        ("sk_live_" + "Z9" * 16, Mode.LIVE),
        ("sk_test_" + "0123456789abcdefghijABCDEFGHIJkl", Mode.TEST),
    ],
)
def test_key_mode_parses_valid_keys(key: str, mode: Mode) -> None:
    assert key_mode(key) is mode


@pytest.mark.parametrize(
    "key",
    [
        "",
        "sk_test_",
        "sk_test_" + "a" * 31,
        "sk_test_" + "a" * 33,
        "sk_prod_" + "a" * 32,
        "sk_TEST_" + "a" * 32,
        "pk_test_" + "a" * 32,
        "sk-test-" + "a" * 32,
        "sk_test_" + "a" * 31 + "-",
        "sk_test_" + "a" * 31 + "_",
        "sk_test_" + "a" * 31 + "é",
        " sk_test_" + "a" * 32,
        "sk_test_" + "a" * 32 + "\n",
        "Bearer sk_test_" + "a" * 32,
        "sk_live_sk_test_" + "a" * 24,
    ],
)
def test_key_mode_rejects_anything_else(key: str) -> None:
    assert key_mode(key) is None


def test_hash_secret_key_is_deterministic_sha256_hex() -> None:
    key = "sk_test_" + "a" * 32
    assert hash_secret_key(key) == hash_secret_key(key) == hashlib.sha256(key.encode()).hexdigest()
    assert hash_secret_key("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert hash_secret_key(key) != hash_secret_key("sk_test_" + "a" * 31 + "b")
    assert key not in hash_secret_key(key)


def test_display_key_shows_the_prefix_and_last_four_only() -> None:
    key = "sk_live_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6"
    shown = display_key(key)
    assert shown == "sk_live_A1b2…O5p6"
    assert key not in shown


# ---------------------------------------------------------------------------------------------
# modes and environments
# ---------------------------------------------------------------------------------------------

ENVIRONMENT_TABLE = [
    (Mode.TEST, DarajaEnvironment.SIMULATOR, True),
    (Mode.TEST, DarajaEnvironment.SANDBOX, True),
    (Mode.TEST, DarajaEnvironment.PRODUCTION, False),
    (Mode.LIVE, DarajaEnvironment.SIMULATOR, False),
    (Mode.LIVE, DarajaEnvironment.SANDBOX, False),
    (Mode.LIVE, DarajaEnvironment.PRODUCTION, True),
]


def test_the_environment_table_is_complete() -> None:
    assert {(m, e) for m, e, _ in ENVIRONMENT_TABLE} == {(m, e) for m in Mode for e in DarajaEnvironment}
    assert {m: {e for mm, e, ok in ENVIRONMENT_TABLE if mm is m and ok} for m in Mode} == ALLOWED_ENVIRONMENTS


@pytest.mark.parametrize(("mode", "environment", "allowed"), ENVIRONMENT_TABLE)
def test_check_environment(mode: Mode, environment: DarajaEnvironment, allowed: bool) -> None:
    if allowed:
        check_environment(mode, environment)
    else:
        with pytest.raises(InvalidRequest) as info:
            check_environment(mode, environment)
        assert (info.value.code, info.value.param) == ("environment_not_allowed", "environment")


def test_missing_config_is_a_configuration_error() -> None:
    error = missing_config(Mode.LIVE)
    assert isinstance(error, ConfigurationMissing)
    assert isinstance(error, InvalidRequest)
    assert error.code == "mode_not_configured"
    assert "live" in error.message


# ---------------------------------------------------------------------------------------------
# Daraja settings as entered
# ---------------------------------------------------------------------------------------------


def _settings(**overrides: Any) -> DarajaSettingsInput:
    fields: dict[str, Any] = {
        "environment": DarajaEnvironment.SANDBOX,
        "consumer_key": "ck-123",
        "consumer_secret": "cs-456",
        "short_code": "174379",
        "passkey": "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919",
        "shortcode_type": ShortcodeType.PAYBILL,
        "till_number": None,
    }
    fields.update(overrides)
    return DarajaSettingsInput(**fields)


@pytest.mark.parametrize(
    ("mode", "overrides"),
    [
        (Mode.TEST, {}),
        (Mode.TEST, {"environment": DarajaEnvironment.SIMULATOR}),
        (Mode.LIVE, {"environment": DarajaEnvironment.PRODUCTION}),
        (Mode.TEST, {"short_code": "12345"}),
        (Mode.TEST, {"shortcode_type": ShortcodeType.TILL, "till_number": "5432101"}),
        (Mode.TEST, {"shortcode_type": ShortcodeType.TILL, "short_code": "12345", "till_number": "1234567"}),
        (Mode.TEST, {"till_number": ""}),  # an empty till number on a paybill is "no till number"
    ],
)
def test_valid_settings(mode: Mode, overrides: dict[str, Any]) -> None:
    _settings(**overrides).validate(mode)


@pytest.mark.parametrize(
    ("mode", "overrides", "code", "param"),
    [
        (Mode.TEST, {"environment": DarajaEnvironment.PRODUCTION}, "environment_not_allowed", "environment"),
        (Mode.LIVE, {"environment": DarajaEnvironment.SANDBOX}, "environment_not_allowed", "environment"),
        (Mode.LIVE, {"environment": DarajaEnvironment.SIMULATOR}, "environment_not_allowed", "environment"),
        (Mode.TEST, {"consumer_key": ""}, "parameter_missing", "consumer_key"),
        (Mode.TEST, {"consumer_secret": ""}, "parameter_missing", "consumer_secret"),
        (Mode.TEST, {"consumer_secret": "   "}, "parameter_missing", "consumer_secret"),
        (Mode.TEST, {"passkey": ""}, "parameter_missing", "passkey"),
        (Mode.TEST, {"short_code": ""}, "invalid_short_code", "short_code"),
        (Mode.TEST, {"short_code": "1234"}, "invalid_short_code", "short_code"),
        (Mode.TEST, {"short_code": "123456789"}, "invalid_short_code", "short_code"),
        (Mode.TEST, {"short_code": "17437a"}, "invalid_short_code", "short_code"),
        (Mode.TEST, {"short_code": " 174379"}, "invalid_short_code", "short_code"),
        (Mode.TEST, {"short_code": "174379\n"}, "invalid_short_code", "short_code"),
        (Mode.TEST, {"shortcode_type": ShortcodeType.TILL}, "invalid_till_number", "till_number"),
        (Mode.TEST, {"shortcode_type": ShortcodeType.TILL, "till_number": ""}, "invalid_till_number", "till_number"),
        (Mode.TEST, {"shortcode_type": ShortcodeType.TILL, "till_number": "12"}, "invalid_till_number", "till_number"),
        (
            Mode.TEST,
            {"shortcode_type": ShortcodeType.TILL, "till_number": "till-1"},
            "invalid_till_number",
            "till_number",
        ),
        (Mode.TEST, {"till_number": "5432101"}, "invalid_till_number", "till_number"),
    ],
)
def test_invalid_settings(mode: Mode, overrides: dict[str, Any], code: str, param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        _settings(**overrides).validate(mode)
    assert (info.value.code, info.value.param) == (code, param)


@pytest.mark.parametrize(
    "overrides",
    [
        {"short_code": "\u0661\u0667\u0664\u0663\u0667\u0669"},
        {"shortcode_type": ShortcodeType.TILL, "till_number": "\uff15\uff14\uff13\uff12\uff11"},
    ],
    ids=["arabic-indic-short-code", "full-width-till-number"],
)
def test_non_ascii_digits_in_short_codes_are_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest):
        _settings(**overrides).validate(Mode.TEST)


def test_settings_repr_hides_the_secrets() -> None:
    given = _settings(consumer_secret="TOP-SECRET-CS", passkey="TOP-SECRET-PK")
    text = repr(given)
    assert "TOP-SECRET-CS" not in text
    assert "TOP-SECRET-PK" not in text
    assert "ck-123" in text


# ---------------------------------------------------------------------------------------------
# DarajaAccount: paybill vs till
# ---------------------------------------------------------------------------------------------


def test_paybill_account() -> None:
    account = DarajaAccount(
        environment=DarajaEnvironment.SANDBOX,
        consumer_key="ck",
        consumer_secret="cs",
        short_code="174379",
        passkey="pk",
        shortcode_type=ShortcodeType.PAYBILL,
    )
    assert account.party_b == "174379"
    assert account.transaction_type == "CustomerPayBillOnline"


def test_till_account_pays_the_till_number() -> None:
    account = DarajaAccount(
        environment=DarajaEnvironment.PRODUCTION,
        consumer_key="ck",
        consumer_secret="cs",
        short_code="7654321",
        passkey="pk",
        shortcode_type=ShortcodeType.TILL,
        till_number="5432101",
    )
    assert account.party_b == "5432101"
    assert account.transaction_type == "CustomerBuyGoodsOnline"


def test_a_till_without_a_till_number_falls_back_to_the_short_code() -> None:
    account = DarajaAccount(
        environment=DarajaEnvironment.SANDBOX,
        consumer_key="ck",
        consumer_secret="cs",
        short_code="7654321",
        passkey="pk",
        shortcode_type=ShortcodeType.TILL,
    )
    assert account.party_b == "7654321"
    assert account.transaction_type == "CustomerBuyGoodsOnline"


def test_a_paybill_ignores_a_stray_till_number() -> None:
    account = DarajaAccount(
        environment=DarajaEnvironment.SANDBOX,
        consumer_key="ck",
        consumer_secret="cs",
        short_code="174379",
        passkey="pk",
        till_number="5432101",
    )
    assert account.party_b == "174379"
    assert account.transaction_type == "CustomerPayBillOnline"


def test_account_repr_hides_consumer_secret_and_passkey() -> None:
    account = DarajaAccount(
        environment=DarajaEnvironment.SANDBOX,
        consumer_key="visible-consumer-key",
        consumer_secret="TOP-SECRET-CS",
        short_code="174379",
        passkey="TOP-SECRET-PK",
    )
    for text in (repr(account), str(account)):
        assert "TOP-SECRET-CS" not in text
        assert "TOP-SECRET-PK" not in text
        assert "visible-consumer-key" in text
        assert "174379" in text


# ---------------------------------------------------------------------------------------------
# DarajaConfig: sealed at rest, opened for the gateway
# ---------------------------------------------------------------------------------------------

BOX = SecretBox([bytes(range(32))])


@pytest.mark.parametrize(
    ("mode", "overrides"),
    [
        (Mode.TEST, {}),
        (Mode.TEST, {"environment": DarajaEnvironment.SIMULATOR}),
        (Mode.LIVE, {"environment": DarajaEnvironment.PRODUCTION}),
        (
            Mode.LIVE,
            {
                "environment": DarajaEnvironment.PRODUCTION,
                "shortcode_type": ShortcodeType.TILL,
                "till_number": "5432101",
            },
        ),
    ],
)
def test_config_seal_then_open_round_trips(mode: Mode, overrides: dict[str, Any]) -> None:
    given = _settings(**overrides)
    config = DarajaConfig.seal("prj_1", mode, given, BOX, T0)
    assert config.project_id == "prj_1"
    assert config.mode is mode
    assert config.updated_at == T0
    assert config.short_code == given.short_code
    assert config.shortcode_type == given.shortcode_type
    assert config.till_number == given.till_number
    # nothing in clear
    for sealed, clear in (
        (config.consumer_key_sealed, given.consumer_key),
        (config.consumer_secret_sealed, given.consumer_secret),
        (config.passkey_sealed, given.passkey),
    ):
        assert sealed.startswith("v1.")
        assert clear not in sealed
    assert given.passkey not in repr(config)

    account = config.open(BOX)
    assert account == DarajaAccount(
        environment=given.environment,
        consumer_key=given.consumer_key,
        consumer_secret=given.consumer_secret,
        short_code=given.short_code,
        passkey=given.passkey,
        shortcode_type=given.shortcode_type,
        till_number=given.till_number,
    )


def test_config_opens_from_plain_strings_as_read_from_storage() -> None:
    config = DarajaConfig.seal("prj_1", Mode.TEST, _settings(), BOX, T0)
    stored = dataclasses.replace(config, mode="test", environment="sandbox", shortcode_type="paybill")  # type: ignore[arg-type]
    account = stored.open(BOX)
    assert account.environment is DarajaEnvironment.SANDBOX
    assert account.shortcode_type is ShortcodeType.PAYBILL
    assert account.passkey == _settings().passkey


def test_config_seal_validates_first() -> None:
    with pytest.raises(InvalidRequest) as info:
        DarajaConfig.seal("prj_1", Mode.LIVE, _settings(), BOX, T0)  # sandbox settings for live mode
    assert info.value.code == "environment_not_allowed"
    with pytest.raises(InvalidRequest) as info:
        DarajaConfig.seal("prj_1", Mode.TEST, _settings(short_code="1"), BOX, T0)
    assert info.value.code == "invalid_short_code"


def test_sealed_credentials_copied_to_another_project_or_mode_do_not_open() -> None:
    config = DarajaConfig.seal("prj_1", Mode.TEST, _settings(), BOX, T0)
    with pytest.raises(MasterKeyError):
        dataclasses.replace(config, project_id="prj_2").open(BOX)
    with pytest.raises(MasterKeyError):
        dataclasses.replace(config, mode=Mode.LIVE, environment=DarajaEnvironment.PRODUCTION).open(BOX)


def test_a_stored_config_pointing_at_a_forbidden_environment_does_not_open() -> None:
    config = DarajaConfig.seal("prj_1", Mode.TEST, _settings(), BOX, T0)
    tampered = dataclasses.replace(config, environment=DarajaEnvironment.PRODUCTION)
    with pytest.raises(InvalidRequest) as info:
        tampered.open(BOX)
    assert info.value.code == "environment_not_allowed"


def test_config_opens_after_key_rotation() -> None:
    old_key, new_key = bytes(range(32)), bytes(range(50, 82))
    config = DarajaConfig.seal("prj_1", Mode.TEST, _settings(), SecretBox([old_key]), T0)
    account = config.open(SecretBox([new_key, old_key]))
    assert account.consumer_secret == "cs-456"
    with pytest.raises(MasterKeyError):
        config.open(SecretBox([new_key]))


@pytest.mark.parametrize(("text", "valid", "why"), SHORT_CODE_CASES, ids=[c[2] for c in SHORT_CODE_CASES])
def test_saved_short_codes_follow_the_one_rule(text: str, valid: bool, why: str) -> None:
    """What the core saves, every push can use: the Daraja client applies the same rule (issue 9 #16)."""
    for overrides, code in (
        ({"short_code": text}, "invalid_short_code"),
        ({"shortcode_type": ShortcodeType.TILL, "till_number": text}, "invalid_till_number"),
    ):
        if valid:
            _settings(**overrides).validate(Mode.TEST)
        else:
            with pytest.raises(InvalidRequest) as info:
                _settings(**overrides).validate(Mode.TEST)
            assert info.value.code == code, why


@pytest.mark.parametrize(("text", "valid", "why"), SHORT_CODE_CASES, ids=[c[2] for c in SHORT_CODE_CASES])
def test_the_admin_schema_documents_the_one_rule(text: str, valid: bool, why: str) -> None:
    schema = DarajaSettings.model_json_schema()["properties"]
    for name in ("short_code", "till_number"):
        pattern = schema[name]["pattern"]
        assert (re.fullmatch(pattern, text) is not None) is valid, (name, why)
