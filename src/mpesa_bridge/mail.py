"""Outgoing email (`core.people.ports.Mailer`): SMTP when `MPESA_BRIDGE_SMTP_URL` is set, else the log.

The log mailer is for development: it writes each email, link included, as `dashboard.email`, so
that an invitation or a password reset can be followed without a mail server. In production it
writes only who would have been sent what (a link is a credential and never goes to a log).
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

from mpesa_bridge.logging import get_logger

log = get_logger("mpesa_bridge.mail")


class LogMailer:
    def __init__(self, *, show_body: bool) -> None:
        self._show_body = show_body
        self.sent: list[tuple[str, str, str]] = []  # development and tests: what was "sent"

    async def send(self, to: str, subject: str, body: str) -> None:
        self.sent.append((to, subject, body))
        if self._show_body:
            log.warning("dashboard.email", to=to, subject=subject, text=body)
        else:
            log.warning("dashboard.email_not_sent", to=to, subject=subject, reason="MPESA_BRIDGE_SMTP_URL is not set")


class SmtpMailer:
    """smtp://user:password@host:port (STARTTLS when the server offers it; required unless the host
    is loopback) or smtps://… (TLS from the first byte). Each email is one connection, in a thread."""

    def __init__(self, url: str, sender: str, *, timeout: float = 20.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("MPESA_BRIDGE_SMTP_URL must look like smtp://user:password@host:587")
        self._tls = parts.scheme == "smtps"
        self._host = parts.hostname
        self._port = parts.port or (465 if self._tls else 587)
        self._user = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        self._sender = sender
        self._timeout = timeout

    async def send(self, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        try:
            await asyncio.to_thread(self._send, message)
        except (OSError, smtplib.SMTPException) as exc:
            log.error("dashboard.email_failed", to=to, subject=subject, error=type(exc).__name__)
            raise
        log.info("dashboard.email_sent", to=to, subject=subject)

    def _send(self, message: EmailMessage) -> None:
        context = ssl.create_default_context()
        if self._tls:
            server: smtplib.SMTP = smtplib.SMTP_SSL(self._host, self._port, timeout=self._timeout, context=context)
        else:
            server = smtplib.SMTP(self._host, self._port, timeout=self._timeout)
        with server:
            if not self._tls:
                server.ehlo()
                if server.has_extn("starttls"):
                    server.starttls(context=context)
                    server.ehlo()
                elif self._host not in ("127.0.0.1", "localhost", "::1"):
                    raise smtplib.SMTPNotSupportedError("the SMTP server offers no STARTTLS")
            if self._user is not None:
                server.login(self._user, self._password or "")
            server.send_message(message)


def mailer_for(smtp_url: str | None, sender: str, *, production: bool) -> LogMailer | SmtpMailer:
    if smtp_url:
        return SmtpMailer(smtp_url, sender)
    return LogMailer(show_body=not production)
