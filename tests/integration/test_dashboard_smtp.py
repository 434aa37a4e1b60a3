"""The dashboard's emails through a real SMTP server on loopback (aiosmtpd): the mailer logs in,
sends one message per email, and a password reset asked for in the dashboard arrives with its link."""

from __future__ import annotations

import re
import smtplib
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from mpesa_bridge.config import Settings
from mpesa_bridge.mail import LogMailer, SmtpMailer, mailer_for
from tests.fixtures.bridge import InProcessBridge, make_settings
from tests.fixtures.dashboard import add_account, browser_client, post_form_async
from tests.fixtures.servers import free_port


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.logins: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        if isinstance(data, LoginPassword) and data.password == b"s3cret pass":
            self.logins.append(data.login.decode())
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, authenticator=inbox.authenticate, auth_require_tls=False
    )
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


async def test_the_mailer_logs_in_and_sends(smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    mailer = SmtpMailer(f"smtp://bridge%40example.com:s3cret%20pass@127.0.0.1:{port}", "Bridge <no-reply@example.com>")
    await mailer.send("wanjiku@example.com", "Hello", "A line.\nAnother line.")
    [message] = inbox.messages
    assert inbox.logins == ["bridge@example.com"]
    assert message["To"] == "wanjiku@example.com" and message["Subject"] == "Hello"
    assert message["From"] == "Bridge <no-reply@example.com>"
    assert "Another line." in message.get_payload()


async def test_a_refused_login_is_an_error_not_a_silent_loss(smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    mailer = SmtpMailer(f"smtp://bridge:wrong@127.0.0.1:{port}", "no-reply@example.com")
    with pytest.raises(smtplib.SMTPAuthenticationError):
        await mailer.send("wanjiku@example.com", "Hello", "body")
    assert inbox.messages == []


def test_without_smtp_the_log_mailer_keeps_links_out_of_production_logs() -> None:
    assert isinstance(mailer_for("smtp://h:25", "x@example.com", production=False), SmtpMailer)
    assert isinstance(mailer_for(None, "x@example.com", production=True), LogMailer)
    with pytest.raises(ValueError, match="smtp://"):
        SmtpMailer("http://example.com", "x@example.com")


@pytest.fixture
def bridge_settings(db_url: str, tmp_path: Path, smtp: tuple[Inbox, int]) -> Settings:
    return make_settings(db_url, tmp_path, smtp_url=f"smtp://bridge:s3cret%20pass@127.0.0.1:{smtp[1]}")


async def test_a_reset_asked_for_in_the_dashboard_arrives_by_email(
    bridge: InProcessBridge, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    await add_account(bridge.runtime, "wanjiku@example.com")
    async with browser_client(bridge.app) as client:
        answer = await post_form_async(
            client, "/dashboard/forgot", {"email": "wanjiku@example.com"}, token_from="/dashboard/forgot"
        )
        assert answer.status_code == 200
        [message] = inbox.messages
        link = re.search(r"http://bridge\.test(/dashboard/reset/[A-Za-z0-9_\-]+)", message.get_payload())
        assert message["To"] == "wanjiku@example.com" and link is not None
        assert (await client.get(link.group(1))).status_code == 200
