"""Webhook errors. Each has a stable `code`; the API maps the parent classes to statuses.

    InvalidRequest (core.errors)
    ├── InvalidWebhookUrl     invalid_url         — not an absolute http(s) URL, or it carries credentials
    ├── DestinationRefused    url_not_allowed     — the host is, or resolves to, a non-public address
    ├── UrlUnresolvable       url_unresolvable    — the host name does not resolve
    └── InvalidEventType      invalid_event_type  — enabled_events names an unknown type
    Conflict (core.errors)
    ├── EndpointDisabled      endpoint_disabled   — redeliver to an endpoint that is switched off
    └── TooManyEndpoints      too_many_endpoints  — the per project-and-mode limit is reached

`DestinationRefused` is also what the delivery transport raises when a host resolves to a refused
address at send time; the attempt is then recorded as failed with that code.
"""

from __future__ import annotations

from mpesa_bridge.core.errors import Conflict, InvalidRequest


class InvalidWebhookUrl(InvalidRequest):
    code = "invalid_url"


class DestinationRefused(InvalidRequest):
    code = "url_not_allowed"


class UrlUnresolvable(InvalidRequest):
    code = "url_unresolvable"


class InvalidEventType(InvalidRequest):
    code = "invalid_event_type"


class EndpointDisabled(Conflict):
    code = "endpoint_disabled"


class TooManyEndpoints(Conflict):
    code = "too_many_endpoints"
