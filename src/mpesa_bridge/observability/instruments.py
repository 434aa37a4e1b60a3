"""The bridge's Prometheus instruments, defined once; each adapter counts at its own choke point.

Every instrument has labels, so no value exists before its first `.labels(…)`: that is what lets
`multiprocess.use_directory` switch the process to file-backed values (prometheus-client's
multiprocess mode) after this module was imported. Label values come from small fixed sets (route
templates, kinds, error codes), never from a path, a phone number or an id.

What the database knows (payments by status, backlogs, oldest ages) is not counted here but read
at scrape time (`storage/metrics.py`), once per scrape, whichever process answers it.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PREFIX = "mpesa_bridge"

HTTP_REQUEST_SECONDS = Histogram(
    f"{PREFIX}_http_request_duration_seconds",
    "HTTP requests by route template (not the raw path), method and status class, in seconds",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
HTTP_REQUESTS_IN_PROGRESS = Gauge(
    f"{PREFIX}_http_requests_in_progress",
    "HTTP requests being answered (open SSE streams included), by method, summed over the live server processes",
    ["method"],  # a label, like every instrument: multiprocess mode makes its values when labelled
    multiprocess_mode="livesum",
)
CALLBACKS_RECEIVED = Counter(
    f"{PREFIX}_callbacks_received_total",
    "Daraja callbacks stored by the inbox, by kind and outcome (stored: to be applied; flagged: kept, never applied)",
    ["kind", "outcome"],
)
CALLBACKS_APPLIED = Counter(
    f"{PREFIX}_callbacks_applied_total",
    "Stored callbacks handled by the inbox, by kind and outcome (the row's state after it, "
    "retry_scheduled or failed when its handler raised)",
    ["kind", "outcome"],
)
DARAJA_CALLS = Counter(
    f"{PREFIX}_daraja_calls_total",
    "Calls to Daraja by API (stk_push, stk_query, dynamic_qr, oauth, b2c_payment, transaction_status, reversal, "
    "account_balance, c2b_register)",
    ["api"],
)
DARAJA_ERRORS = Counter(
    f"{PREFIX}_daraja_errors_total",
    "Daraja calls that did not succeed, by API and the bridge's error code (daraja_unreachable, …)",
    ["api", "code"],
)
WEBHOOK_DELIVERIES = Counter(
    f"{PREFIX}_webhook_deliveries_total",
    "Webhook delivery attempts by result (succeeded, failed: retried later, gave_up: the last try failed)",
    ["result"],
)
WEBHOOK_DELIVERY_LAG = Histogram(
    f"{PREFIX}_webhook_delivery_lag_seconds",
    "From an event's commit to its webhook's successful delivery, in seconds",
    ["mode"],
    buckets=(0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 21_600.0, 86_400.0, 259_200.0),
)
REALTIME_CONNECTIONS = Gauge(
    f"{PREFIX}_realtime_connections",
    "Open live connections by transport (sse, socketio), summed over the live server processes",
    ["transport"],
    multiprocess_mode="livesum",
)

#: Every metric name the bridge exports (the alert rules and the dashboard are checked against it).
#: The database gauges are listed in `storage/metrics.py` (GAUGES) and added by the scrape.
COUNTED = (
    HTTP_REQUEST_SECONDS,
    HTTP_REQUESTS_IN_PROGRESS,
    CALLBACKS_RECEIVED,
    CALLBACKS_APPLIED,
    DARAJA_CALLS,
    DARAJA_ERRORS,
    WEBHOOK_DELIVERIES,
    WEBHOOK_DELIVERY_LAG,
    REALTIME_CONNECTIONS,
)


def status_class(status: int) -> str:
    """200 -> "2xx": five label values, not one per status."""
    return f"{status // 100}xx"
