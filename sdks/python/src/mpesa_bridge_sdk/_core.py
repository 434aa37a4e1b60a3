"""What the sync and async clients share: building (and signing) requests, deciding retries,
turning answers into objects or exceptions, reading Server-Sent Events."""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import json
import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx

from mpesa_bridge_sdk.errors import APIConnectionError, APIError, APITimeoutError, error_for

VERSION = "0.1.0"
DEFAULT_BASE_URL = "http://127.0.0.1:8000"
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUSES = frozenset({500, 502, 503, 504})
# Failures that happen before a byte of the request left: always safe to retry.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def new_idempotency_key() -> str:
    """A fresh Idempotency-Key (a random UUID4 with a prefix saying who made it)."""
    return f"sdk-py-{uuid.uuid4()}"


def sign(secret: str, timestamp: str, method: str, path_with_query: str, body: bytes) -> str:
    """`v1=<hex HMAC-SHA256(secret, "<timestamp>\\n<METHOD>\\n<path?query>\\n" + body)>`: the
    `MB-Signature` of a signed request (docs/api.md, "Signed requests")."""
    message = f"{timestamp}\n{method.upper()}\n{path_with_query}\n".encode() + body
    return "v1=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def path_segment(value: str) -> str:
    """An id as one URL path segment (nothing in it can change the path)."""
    return quote(value, safe="")


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("datetimes sent to the bridge must be timezone-aware")
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return str(value)


def drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    """The mapping without its None values (fields left out of a body or query)."""
    return {key: value for key, value in values.items() if value is not None}


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return _query_value(value)
    raise TypeError(f"cannot send {type(value).__name__} as JSON")


@dataclass(frozen=True)
class Call:
    """One API operation as the client will send it (every attempt of it)."""

    method: str
    path: str
    params: Mapping[str, Any] | None = None
    body: Any = None
    idempotency_key: str | None = None
    bearer: str | None = None  # instead of the client's key: a client secret
    stream: bool = False

    @property
    def idempotent(self) -> bool:
        """Safe to send twice: a read, a PUT/DELETE, or a request carrying an Idempotency-Key."""
        return self.method in IDEMPOTENT_METHODS or self.idempotency_key is not None

    def path_with_query(self) -> str:
        query = urlencode([(k, _query_value(v)) for k, v in drop_none(self.params or {}).items()])
        return self.path + ("?" + query if query else "")

    def content(self) -> bytes:
        if self.body is None:
            return b""
        return json.dumps(self.body, separators=(",", ":"), default=_json_default).encode()


@dataclass
class Options:
    """The client's settings (see `Client` for what each means)."""

    api_key: str | None
    base_url: str
    timeout: float
    max_retries: int
    backoff_base: float
    backoff_max: float
    max_retry_after: float
    signing_secret: str | None
    sign_requests: bool | None
    sleep: Callable[[float], Any] | None = None
    jitter: Callable[[], float] = random.random
    clock: Callable[[], float] = time.time
    signing: bool = field(init=False, default=False)
    # The bridge accepts each signature once, and timestamps are whole seconds: the same request
    # twice within a second would carry the same signature. Each request's last timestamp is kept so
    # the next identical one is stamped a second later (still well within the tolerance).
    _stamps: dict[bytes, int] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        if self.max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        self.signing = bool(self.sign_requests) or (self.sign_requests is None and self.signing_secret is not None)

    def headers(self, call: Call, content: bytes, path_with_query: str) -> dict[str, str]:
        """The headers of one attempt; a signed request gets a fresh timestamp each attempt."""
        headers = {"Accept": "text/event-stream" if call.stream else "application/json"}
        headers["User-Agent"] = f"mpesa-bridge-sdk-python/{VERSION}"
        token = call.bearer or self.api_key
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if call.body is not None:
            headers["Content-Type"] = "application/json"
        if call.idempotency_key is not None:
            headers["Idempotency-Key"] = call.idempotency_key
        if self.signing and call.bearer is None:
            secret = self.signing_secret or self.api_key
            if secret:
                full_path = urlsplit(self.base_url).path + path_with_query
                timestamp = str(self._stamp(call.method, full_path, content))
                headers["MB-Timestamp"] = timestamp
                headers["MB-Signature"] = sign(secret, timestamp, call.method, full_path, content)
        return headers

    def _stamp(self, method: str, full_path: str, content: bytes) -> int:
        request = hashlib.sha256(f"{method}\n{full_path}\n".encode() + content).digest()
        stamp = max(int(self.clock()), self._stamps.get(request, 0) + 1)
        if len(self._stamps) > 4096:
            self._stamps.clear()
        self._stamps[request] = stamp
        return stamp

    def build(
        self, http: httpx.Client | httpx.AsyncClient, call: Call, read_timeout: float | None = None
    ) -> httpx.Request:
        """The httpx request of one attempt."""
        path_with_query = call.path_with_query()
        content = call.content()
        timeout = httpx.Timeout(self.timeout, read=read_timeout if read_timeout is not None else self.timeout)
        return http.build_request(
            call.method,
            self.base_url + path_with_query,
            content=content or None,
            headers=self.headers(call, content, path_with_query),
            timeout=timeout,
        )

    # --- retries --------------------------------------------------------------------------------

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: base * 2^attempt, capped at backoff_max, then 50-100 % of it."""
        capped = min(self.backoff_max, self.backoff_base * (2**attempt))
        return float(capped * (0.5 + self.jitter() / 2))

    def retry_after_exception(self, exc: Exception, call: Call, attempt: int) -> float | None:
        """Seconds to wait before retrying after a transport error, or None to give up."""
        if attempt >= self.max_retries or not isinstance(exc, httpx.TransportError):
            return None
        if isinstance(exc, NOT_SENT) or call.idempotent:
            return self.backoff(attempt)
        return None

    def retry_after_response(self, response: httpx.Response, call: Call, attempt: int) -> float | None:
        """Seconds to wait before retrying after this answer, or None to give up (or to succeed)."""
        if attempt >= self.max_retries:
            return None
        status = response.status_code
        if status == 429:
            after = retry_after_seconds(response.headers)
            if after is None:
                return self.backoff(attempt)
            return after if after <= self.max_retry_after else None
        if status in RETRY_STATUSES and call.idempotent:
            after = retry_after_seconds(response.headers)
            if after is not None and after <= self.max_retry_after:
                return max(after, self.backoff(attempt))
            return self.backoff(attempt)
        return None

    def should_start_signing(self, response: httpx.Response, call: Call) -> bool:
        """Automatic signing: the project requires signed requests and this client did not sign yet."""
        if self.signing or self.sign_requests is False or call.bearer is not None or response.status_code != 401:
            return False
        if error_code(response) == "signature_missing":
            self.signing = True
            return True
        return False

    def should_sign_again(self, response: httpx.Response, call: Call, attempt: int) -> bool:
        """`signature_replayed`: another client with the same secret sent this very request in the same
        second. Nothing ran, so sending it again with a new timestamp is safe."""
        return (
            self.signing
            and call.bearer is None
            and attempt < self.max_retries
            and response.status_code == 401
            and error_code(response) == "signature_replayed"
        )


def retry_after_seconds(headers: httpx.Headers) -> float | None:
    """`Retry-After` as seconds: a number, or an HTTP date."""
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def error_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None


def connection_error(exc: Exception) -> APIConnectionError:
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"timed out talking to the bridge: {type(exc).__name__}")
    return APIConnectionError(f"could not talk to the bridge: {type(exc).__name__}: {exc}")


def raise_for(response: httpx.Response) -> None:
    """Raise the APIError of an error answer (its body must have been read)."""
    if response.status_code < 400:
        return
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    raise error_for(
        response.status_code,
        body,
        {k.lower(): v for k, v in response.headers.items()},
        retry_after=retry_after_seconds(response.headers),
    )


def json_of(response: httpx.Response) -> Any:
    raise_for(response)
    try:
        return response.json()
    except ValueError as exc:
        raise APIError(
            "the bridge answered something that is not JSON",
            status=response.status_code,
            request_id=response.headers.get("x-request-id"),
        ) from exc


# --- Server-Sent Events -------------------------------------------------------------------------


@dataclass
class SseEvent:
    id: str | None
    event: str
    data: str


class SseParser:
    """Feeds lines of a text/event-stream; yields each dispatched message (`last_id` follows `id:`)."""

    def __init__(self, last_id: str | None = None) -> None:
        self.last_id = last_id
        self.retry = 2.0  # seconds to wait before reconnecting: the server's last `retry:` hint
        self._event = ""
        self._data: list[str] = []

    def feed(self, line: str) -> Iterator[SseEvent]:
        if line == "":
            if self._data:
                yield SseEvent(self.last_id, self._event or "message", "\n".join(self._data))
            self._event, self._data = "", []
            return
        if line.startswith(":"):
            return
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            self.last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value) / 1000
        elif name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)


class SseUnavailable(Exception):
    """The stream could not be opened or broke: fall back to polling."""


def stream_usable(response: httpx.Response) -> bool:
    return response.status_code == 200 and response.headers.get("content-type", "").startswith("text/event-stream")


def final_payment_of(message: SseEvent) -> dict[str, Any] | None:
    """The payment in a stream message if its status is final."""
    try:
        event = json.loads(message.data)
    except ValueError:
        return None
    subject = event.get("data", {}).get("object") if isinstance(event, dict) else None
    if isinstance(subject, dict) and subject.get("status") in {"succeeded", "failed", "cancelled", "expired"}:
        return subject
    return None
