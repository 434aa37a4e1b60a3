"""Webhook endpoints: create, change, delete, and rotate their signing secrets.

Every endpoint has its own `whsec_…` secret, shown once (at creation or rotation) and sealed at
rest under the master key, bound to the endpoint's id. A rotation keeps the previous secret
signing beside the new one for a grace period; a second rotation within it drops the oldest.
Turning an endpoint off (or deleting it) cancels its pending deliveries: they can be sent again
with `POST /v1/events/{id}/redeliver`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from mpesa_bridge.core.clock import Clock
from mpesa_bridge.core.crypto import SecretBox
from mpesa_bridge.core.errors import InvalidRequest, NotFound
from mpesa_bridge.core.ids import new_id
from mpesa_bridge.core.projects import Tenant
from mpesa_bridge.core.webhooks.destinations import AddressRule, Resolver, check_destination
from mpesa_bridge.core.webhooks.entity import ALL_EVENTS, EVENT_TYPES, WebhookEndpoint
from mpesa_bridge.core.webhooks.errors import InvalidEventType, TooManyEndpoints
from mpesa_bridge.core.webhooks.ports import WebhookUnitOfWorkFactory
from mpesa_bridge.core.webhooks.signing import generate_secret

MAX_ENDPOINTS = 16  # per project and mode
MAX_DESCRIPTION = 500


@dataclass(frozen=True)
class EndpointChanges:
    """A PATCH: None leaves a field as it is."""

    url: str | None = None
    enabled_events: list[str] | None = None
    description: str | None = None
    enabled: bool | None = None


@dataclass(frozen=True)
class IssuedSecret:
    """An endpoint with its signing secret, at the only moment the secret exists in clear."""

    endpoint: WebhookEndpoint
    secret: str


def secret_context(endpoint_id: str) -> str:
    # Binds the sealed secret to its endpoint: copied onto another row it does not open.
    return f"webhook:{endpoint_id}"


def validate_event_types(given: Sequence[str]) -> list[str]:
    """A non-empty list of known types without repeats, or ["*"] alone."""
    types = list(dict.fromkeys(given))
    if not types:
        raise InvalidEventType('enabled_events must name at least one event type, or be ["*"]', param="enabled_events")
    if ALL_EVENTS in types:
        if len(types) > 1:
            raise InvalidEventType('"*" stands alone in enabled_events', param="enabled_events")
        return types
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown:
        raise InvalidEventType(
            f'unknown event type {unknown[0]!r}; known: {", ".join(EVENT_TYPES)} (or "*")', param="enabled_events"
        )
    return types


def _description(text: str | None) -> str | None:
    if text is not None and len(text) > MAX_DESCRIPTION:
        raise InvalidRequest(f"description is at most {MAX_DESCRIPTION} characters", param="description")
    return text


class EndpointService:
    """Webhook endpoints of a tenant. Another project's or mode's endpoint ids are simply not found."""

    def __init__(
        self,
        db: WebhookUnitOfWorkFactory,
        box: SecretBox,
        clock: Clock,
        resolver: Resolver,
        *,
        allow_private_urls: bool = False,
        test_loopback: bool = False,
    ) -> None:
        self._db = db
        self._box = box
        self._clock = clock
        self._resolver = resolver
        self._allow_private = allow_private_urls
        self._test_loopback = test_loopback

    async def create(
        self,
        tenant: Tenant,
        url: str,
        enabled_events: Sequence[str],
        *,
        description: str | None = None,
        enabled: bool = True,
    ) -> IssuedSecret:
        events = validate_event_types(enabled_events)
        checked = await check_destination(url, self._rule(tenant), self._resolver)
        now = self._clock.now()
        endpoint_id = new_id("we", now)
        secret = generate_secret()
        endpoint = WebhookEndpoint(
            id=endpoint_id,
            project_id=tenant.project_id,
            mode=tenant.mode.value,
            url=checked.url,
            enabled_events=events,
            description=_description(description),
            enabled=enabled,
            secret_sealed=self._box.seal(secret, context=secret_context(endpoint_id)),
            created_at=now,
            updated_at=now,
        )
        async with self._db.write() as uow:
            if len(await uow.webhooks.endpoints(tenant)) >= MAX_ENDPOINTS:
                raise TooManyEndpoints(f"a project has at most {MAX_ENDPOINTS} webhook endpoints per mode")
            await uow.webhooks.add_endpoint(endpoint)
        return IssuedSecret(endpoint, secret)

    async def list(self, tenant: Tenant) -> Sequence[WebhookEndpoint]:
        async with self._db.read() as uow:
            return await uow.webhooks.endpoints(tenant)

    async def get(self, tenant: Tenant, endpoint_id: str) -> WebhookEndpoint:
        async with self._db.read() as uow:
            endpoint = await uow.webhooks.endpoint(tenant, endpoint_id)
        if endpoint is None:
            raise _not_found(endpoint_id)
        return endpoint

    async def update(self, tenant: Tenant, endpoint_id: str, changes: EndpointChanges) -> WebhookEndpoint:
        events = validate_event_types(changes.enabled_events) if changes.enabled_events is not None else None
        url = None
        if changes.url is not None:
            url = (await check_destination(changes.url, self._rule(tenant), self._resolver)).url
        now = self._clock.now()
        async with self._db.write() as uow:
            endpoint = await uow.webhooks.endpoint(tenant, endpoint_id, lock=True)
            if endpoint is None:
                raise _not_found(endpoint_id)
            endpoint.url = url or endpoint.url
            endpoint.enabled_events = events or endpoint.enabled_events
            if changes.description is not None:
                endpoint.description = _description(changes.description)
            if changes.enabled is True and not endpoint.enabled:
                endpoint.enabled = True  # a fresh start: the failure streak that disabled it is forgotten
                endpoint.failing_since = endpoint.disabled_reason = endpoint.disabled_at = None
            elif changes.enabled is False and endpoint.enabled:
                endpoint.enabled, endpoint.disabled_at, endpoint.disabled_reason = False, now, None
                await uow.webhooks.cancel_pending(endpoint.id, now)
            endpoint.updated_at = now
            await uow.webhooks.save_endpoint(endpoint)
        return endpoint

    async def delete(self, tenant: Tenant, endpoint_id: str) -> WebhookEndpoint:
        now = self._clock.now()
        async with self._db.write() as uow:
            endpoint = await uow.webhooks.endpoint(tenant, endpoint_id, lock=True)
            if endpoint is None:
                raise _not_found(endpoint_id)
            endpoint.deleted_at = endpoint.updated_at = now
            endpoint.enabled = False
            await uow.webhooks.cancel_pending(endpoint.id, now)
            await uow.webhooks.save_endpoint(endpoint)
        return endpoint

    async def rotate_secret(self, tenant: Tenant, endpoint_id: str, grace_seconds: float) -> IssuedSecret:
        """A new secret signs from now on; the current one keeps signing beside it for `grace_seconds`."""
        now = self._clock.now()
        secret = generate_secret()
        async with self._db.write() as uow:
            endpoint = await uow.webhooks.endpoint(tenant, endpoint_id, lock=True)
            if endpoint is None:
                raise _not_found(endpoint_id)
            context = secret_context(endpoint.id)
            if grace_seconds > 0:
                endpoint.previous_secret_sealed = endpoint.secret_sealed
                endpoint.previous_secret_expires_at = now + timedelta(seconds=grace_seconds)
            else:
                endpoint.previous_secret_sealed = endpoint.previous_secret_expires_at = None
            endpoint.secret_sealed = self._box.seal(secret, context=context)
            endpoint.updated_at = now
            await uow.webhooks.save_endpoint(endpoint)
        return IssuedSecret(endpoint, secret)

    def _rule(self, tenant: Tenant) -> AddressRule:
        return AddressRule.for_mode(tenant.mode, allow_private=self._allow_private, test_loopback=self._test_loopback)


def signing_secrets(endpoint: WebhookEndpoint, box: SecretBox, at: datetime) -> list[str]:
    """The secrets that sign a request to `endpoint` at `at`: the current one, and the previous
    one while its grace period lasts."""
    context = secret_context(endpoint.id)
    found = [box.open(endpoint.secret_sealed, context=context)]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret_sealed and expires is not None and at < expires:
        found.append(box.open(endpoint.previous_secret_sealed, context=context))
    return found


def _not_found(endpoint_id: str) -> NotFound:
    return NotFound(f"No such webhook endpoint: '{endpoint_id}'", param="id")
