"""Structured logs (`mpesa_bridge.logging`): JSON lines with a request id, phones masked, secrets redacted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from mpesa_bridge.logging import configure_logging, get_logger

PHONE = "254712345678"
MASKED = "2547****5678"


@pytest.fixture(autouse=True)
def _restore_structlog() -> Iterator[None]:
    saved = structlog.get_config()
    structlog.contextvars.clear_contextvars()
    yield
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()
    structlog.configure(**saved)


def json_lines(text: str) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert records, "nothing was logged"
    assert all(isinstance(r, dict) for r in records)
    return records


def test_json_lines_mask_phones_redact_secrets_and_carry_the_request_id(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(json=True)
    structlog.contextvars.bind_contextvars(request_id="req_0123abcd")
    get_logger("mpesa_bridge.test").info(
        "payment.created",
        phone=PHONE,
        note=f"STK push sent to {PHONE} for INV001",
        consumer_secret="cs-very-secret",
        password="hunter2-password",
        token="bearer-token-value",
        authorization="Bearer sk_test_AbCdEf0123456789AbCdEf0123456789",
        nested={"passkey": "daraja-passkey", "msisdn": PHONE, "items": [PHONE, 3]},
        amount=10,
    )
    err = capsys.readouterr().err
    (record,) = json_lines(err)
    assert record["event"] == "payment.created"
    assert record["level"] == "info"
    assert record["request_id"] == "req_0123abcd"
    assert record["timestamp"].endswith("Z")
    assert record["phone"] == MASKED
    assert record["note"] == f"STK push sent to {MASKED} for INV001"
    for key in ("consumer_secret", "password", "token", "authorization"):
        assert record[key] == "[redacted]", key
    assert record["nested"] == {"passkey": "[redacted]", "msisdn": MASKED, "items": [MASKED, 3]}
    assert record["amount"] == 10
    for leaked in (PHONE, "cs-very-secret", "hunter2-password", "bearer-token-value", "sk_test_", "daraja-passkey"):
        assert leaked not in err


def test_every_line_has_the_bound_request_id_until_it_is_cleared(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(json=True)
    log = get_logger()
    structlog.contextvars.bind_contextvars(request_id="req_1")
    log.info("one")
    log.warning("two", extra="x")
    structlog.contextvars.clear_contextvars()
    log.info("three")
    records = json_lines(capsys.readouterr().err)
    assert [(r["event"], r.get("request_id")) for r in records] == [("one", "req_1"), ("two", "req_1"), ("three", None)]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("+254712345678", "+2547****5678"),
        ("00254712345678", "2547****5678"),
        ("0712345678", "2547****5678"),  # the local spelling is masked too, in its 254 form
        ("0112345678", "2541****5678"),
        (254712345678, "2547****5678"),  # a phone logged as a number
        ("call 254108374149 or 254712345678", "call 2541****4149 or 2547****5678"),
        ("key sk_live_ZZZ999aaa in text", "key [redacted] in text"),
        ("ws_CO_191220191020363925", "ws_CO_191220191*****3925"),  # ids end with the payer's digits: masked
        ("2547123456789", "2547123456789"),
        (12345, 12345),
        (True, True),
    ],
)
def test_values_are_scrubbed(capsys: pytest.CaptureFixture[str], value: object, expected: object) -> None:
    configure_logging(json=True)
    get_logger().info("x", value=value)
    (record,) = json_lines(capsys.readouterr().err)
    assert record["value"] == expected


def test_a_traceback_is_scrubbed_too(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(json=True)
    try:
        raise RuntimeError(f"Daraja refused {PHONE}")
    except RuntimeError:
        get_logger().exception("push.failed")
    err = capsys.readouterr().err
    (record,) = json_lines(err)
    assert "RuntimeError: Daraja refused 2547****5678" in record["exception"]
    assert PHONE not in err


def test_consumer_key_and_other_credentials_are_redacted_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(json=True)
    get_logger().info("x", consumer_key="ck", master_key="mk", api_key="ak", admin_token="at", Credentials="c")
    (record,) = json_lines(capsys.readouterr().err)
    assert {
        k: record[k] for k in ("consumer_key", "master_key", "api_key", "admin_token", "Credentials")
    } == dict.fromkeys(("consumer_key", "master_key", "api_key", "admin_token", "Credentials"), "[redacted]")


def test_the_console_renderer_is_scrubbed_as_well(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(json=False)
    structlog.contextvars.bind_contextvars(request_id="req_console")
    get_logger().info("payment.created", phone=PHONE, password="hunter2-password")
    err = capsys.readouterr().err
    assert "payment.created" in err and "req_console" in err
    assert MASKED in err and "[redacted]" in err
    assert PHONE not in err and "hunter2-password" not in err
    with pytest.raises(json.JSONDecodeError):
        json.loads(err.splitlines()[0])


def test_the_level_filters(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("warning", json=True)
    log = get_logger()
    log.info("hidden")
    log.warning("shown")
    assert [r["event"] for r in json_lines(capsys.readouterr().err)] == ["shown"]
    configure_logging("nonsense", json=True)  # an unknown level falls back to INFO
    log.debug("hidden")
    log.info("shown")
    assert [r["event"] for r in json_lines(capsys.readouterr().err)] == ["shown"]
