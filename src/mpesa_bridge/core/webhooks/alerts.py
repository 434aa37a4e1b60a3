"""Telling a project's owners that one of its webhook endpoints has been failing for a day.

An endpoint that fails without one success for the retry window (three days) is disabled
(`delivery.py`). A day into such a streak the dashboard shows a warning on the endpoint, and this
step — run by the maintenance loop — emails the project's owners, once per streak: the claim is a
conditional UPDATE (`mark_alerted`) that succeeds for one caller only, and the streak counts as
told while `failing_notified_at` is not earlier than `failing_since` (a success ends the streak; a
new one starts later, and is told again). The email is sent after the claim has committed — never
inside a transaction — so a mail server that fails loses that email (logged by the mailer's caller),
and never sends two.

Without SMTP (`mailer` None) the streak is still claimed, so that configuring SMTP later does
not send stale warnings; the dashboard's warning does not depend on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from mpesa_bridge.core.clock import Clock
from mpesa_bridge.core.people.entity import Role
from mpesa_bridge.core.people.ports import Mailer, PeopleStore
from mpesa_bridge.core.webhooks.entity import WebhookEndpoint
from mpesa_bridge.core.webhooks.ports import WebhookUnitOfWorkFactory
from mpesa_bridge.core.webhooks.retry import RetryPolicy

WARN_AFTER = timedelta(days=1)
ALERT_BATCH = 100


def failing_for_long(endpoint: WebhookEndpoint, now: datetime, after: timedelta = WARN_AFTER) -> bool:
    """Whether the dashboard warns about `endpoint`: enabled and failing for `after` or more."""
    return endpoint.enabled and endpoint.failing_since is not None and now - endpoint.failing_since >= after


def disabled_around(endpoint: WebhookEndpoint, policy: RetryPolicy | None = None) -> datetime | None:
    """When the bridge will disable a failing endpoint, if nothing succeeds before."""
    if endpoint.failing_since is None:
        return None
    return endpoint.failing_since + timedelta(seconds=(policy or RetryPolicy()).window)


class FailingEndpointAlerts:
    """Claims each newly day-old failure streak once and emails the project's owners about it."""

    def __init__(
        self,
        db: WebhookUnitOfWorkFactory,
        people: PeopleStore,
        mailer: Mailer | None,
        clock: Clock,
        *,
        after: timedelta = WARN_AFTER,
        link_base: str = "",
        policy: RetryPolicy | None = None,
    ) -> None:
        self._db = db
        self._people = people
        self._mailer = mailer
        self._clock = clock
        self._after = after
        self._link_base = link_base.rstrip("/")
        self._policy = policy or RetryPolicy()

    async def run(self) -> int:
        """One pass: every streak that became `after` old since the last pass; how many were told."""
        now = self._clock.now()
        cutoff = now - self._after
        async with self._db.read() as uow:
            candidates = await uow.webhooks.endpoints_to_alert(cutoff, ALERT_BATCH)
        told = 0
        for endpoint in candidates:
            async with self._db.write() as uow:
                claimed = await uow.webhooks.mark_alerted(endpoint.id, cutoff, now)
            if claimed:
                told += 1
                await self._tell(endpoint)
        return told

    async def _tell(self, endpoint: WebhookEndpoint) -> None:
        if self._mailer is None:
            return
        recipients = await self._owners(endpoint.project_id)
        subject, body = self._message(endpoint)
        for email in recipients:
            await self._mailer.send(email, subject, body)

    async def _owners(self, project_id: str) -> Sequence[str]:
        async with self._people.read() as uow:
            members = await uow.people.members_of(project_id)
        return [user.email for membership, user in members if membership.role == Role.OWNER and not user.disabled]

    def _message(self, endpoint: WebhookEndpoint) -> tuple[str, str]:
        since = endpoint.failing_since
        until = disabled_around(endpoint, self._policy)
        subject = "Webhook endpoint failing for a day"
        lines = [
            f"The webhook endpoint {endpoint.url} ({endpoint.id}, {endpoint.mode} mode) has not had one",
            f"successful delivery since {since.isoformat() if since else '?'}.",
            f"Unless a delivery succeeds, the bridge disables it around {until.isoformat() if until else '?'}.",
            "",
            f"See its deliveries: {self._link_base}/dashboard/webhooks/{endpoint.id}",
        ]
        return subject, "\n".join(lines)
