"""A project mode's initiator: entered with the Daraja settings, sealed with them, opened with them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from mpesa_bridge.core.crypto import MasterKeyError, SecretBox, generate_master_key, parse_master_key
from mpesa_bridge.core.errors import InvalidRequest
from mpesa_bridge.core.projects import DarajaAccount, DarajaConfig, DarajaEnvironment, DarajaSettingsInput, Mode

AT = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
PASSWORD = "Safaricom999!*!"


def settings(**initiator: Any) -> DarajaSettingsInput:
    return DarajaSettingsInput(
        environment=DarajaEnvironment.SANDBOX,
        consumer_key="ck",
        consumer_secret="cs",
        short_code="600000",
        passkey="pk",
        **initiator,
    )


@pytest.fixture
def box() -> SecretBox:
    return SecretBox([parse_master_key(generate_master_key())])


def test_the_password_is_sealed_and_opens_only_for_its_project_mode(box: SecretBox) -> None:
    config = DarajaConfig.seal(
        "proj_a", Mode.TEST, settings(initiator_name="testapi", initiator_password=PASSWORD), box, AT
    )
    assert config.initiator_name == "testapi"
    assert config.initiator_password_sealed and PASSWORD not in config.initiator_password_sealed
    account = config.open(box)
    assert (account.initiator_name, account.initiator_password, account.has_initiator) == ("testapi", PASSWORD, True)
    assert PASSWORD not in repr(account)
    copied = DarajaConfig.seal("proj_b", Mode.TEST, settings(), box, AT)
    copied.initiator_name, copied.initiator_password_sealed = config.initiator_name, config.initiator_password_sealed
    with pytest.raises(MasterKeyError):  # sealed for proj_a: it does not open as proj_b's
        copied.open(box)


def test_no_initiator_opens_as_an_account_without_one(box: SecretBox) -> None:
    account = DarajaConfig.seal("proj_a", Mode.TEST, settings(), box, AT).open(box)
    assert (account.initiator_name, account.initiator_password, account.has_initiator) == ("", "", False)
    assert not DarajaAccount(DarajaEnvironment.SANDBOX, "ck", "cs", initiator_name="testapi").has_initiator


@pytest.mark.parametrize(
    ("initiator", "param", "code"),
    [
        ({"initiator_name": "testapi"}, "initiator_password", "parameter_missing"),
        ({"initiator_password": PASSWORD}, "initiator_name", "parameter_missing"),
        ({"initiator_name": "  ", "initiator_password": PASSWORD}, "initiator_name", "parameter_missing"),
        ({"initiator_name": "test api", "initiator_password": PASSWORD}, "initiator_name", "invalid_initiator_name"),
        ({"initiator_name": "x" * 65, "initiator_password": PASSWORD}, "initiator_name", "invalid_initiator_name"),
        (
            {"initiator_name": "testapi", "initiator_password": "p" * 257},
            "initiator_password",
            "invalid_initiator_password",
        ),
    ],
)
def test_a_name_and_its_password_come_together(initiator: dict[str, str], param: str, code: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        settings(**initiator).validate(Mode.TEST)
    assert (caught.value.param, caught.value.code) == (param, code)


def test_left_out_keeps_the_stored_initiator_and_an_empty_name_removes_it(box: SecretBox) -> None:
    stored = DarajaConfig.seal("proj_a", Mode.TEST, settings(initiator_name="ops", initiator_password="pw-1"), box, AT)
    kept = DarajaConfig.seal("proj_a", Mode.TEST, settings(), box, AT)
    kept.keep_initiator_of(stored)
    assert kept.open(box).initiator_password == "pw-1"
    removed = DarajaConfig.seal("proj_a", Mode.TEST, settings(initiator_name=""), box, AT)
    assert (removed.initiator_name, removed.initiator_password_sealed) == (None, None)
    fresh = DarajaConfig.seal("proj_a", Mode.TEST, settings(), box, AT)
    fresh.keep_initiator_of(None)  # nothing stored: nothing to keep
    assert not fresh.open(box).has_initiator
