"""The asynchronous client: the same resources as `Client`, every call awaited."""

from __future__ import annotations

import asyncio
import builtins
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any, Generic, TypeVar

import httpx

from mpesa_bridge_sdk import _ops
from mpesa_bridge_sdk._core import (
    DEFAULT_BASE_URL,
    Call,
    Options,
    SseParser,
    SseUnavailable,
    connection_error,
    final_payment_of,
    json_of,
    raise_for,
    stream_usable,
)
from mpesa_bridge_sdk.errors import APIConnectionError, WaitTimeoutError
from mpesa_bridge_sdk.models import (
    ApiKey,
    BalanceQuery,
    C2BPayment,
    C2BRegistration,
    C2BSettings,
    CheckoutSession,
    DeletedWebhookEndpoint,
    Delivery,
    Event,
    Evidence,
    ExpectedPayment,
    Model,
    Payment,
    PaymentLink,
    PaymentTotals,
    Payout,
    PayoutSettings,
    ProjectSettings,
    PublishableKeyRotation,
    QrCode,
    Reversal,
    TransactionStatusQuery,
    WebhookEndpoint,
)
from mpesa_bridge_sdk.webhooks import Webhooks

T = TypeVar("T", bound=Model)
UNSET: Any = _ops.UNSET


class AsyncPage(Generic[T]):
    """One page of a list. `data` is this page; `async for` over the page walks every item of every
    following page too (auto-pagination), fetching the next page only when needed."""

    def __init__(
        self, data: list[T], has_more: bool, next_cursor: str | None, fetch: Callable[[str], Awaitable[AsyncPage[T]]]
    ) -> None:
        self.data = data
        self.has_more = has_more
        self.next_cursor = next_cursor
        self._fetch = fetch

    async def next_page(self) -> AsyncPage[T] | None:
        """The next page, or None on the last one."""
        if not self.has_more or self.next_cursor is None:
            return None
        return await self._fetch(self.next_cursor)

    async def auto_paging_iter(self) -> AsyncIterator[T]:
        """Every item from this page on, across pages."""
        page: AsyncPage[T] | None = self
        while page is not None:
            for item in page.data:
                yield item
            page = await page.next_page()

    def __aiter__(self) -> AsyncIterator[T]:
        return self.auto_paging_iter()


class _Resource:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def _page(
        self, model: type[T], call_for: Callable[[str | None], Call], cursor: str | None = None
    ) -> AsyncPage[T]:
        body = await self._client._request(call_for(cursor))
        return AsyncPage(
            [model.from_dict(item) for item in body["data"]],
            bool(body.get("has_more")),
            body.get("next_cursor"),
            lambda after: self._page(model, call_for, after),
        )


class Payments(_Resource):
    """`client.payments`: STK push payments."""

    async def create(
        self,
        *,
        phone: str,
        amount: int,
        account_reference: str,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Payment:
        """Send an STK push; returns the payment (`pending`, or `failed` if Daraja refused the push)
        with its `client_secret`. An Idempotency-Key is generated unless given, and reused by every
        retry, so a retry never prompts the customer twice."""
        return Payment.from_dict(
            await self._client._request(
                _ops.create_payment(phone, amount, account_reference, description, metadata, idempotency_key)
            )
        )

    async def retrieve(self, payment_id: str) -> Payment:
        """Read one payment (`NotFoundError` if it is not this key's)."""
        return Payment.from_dict(await self._client._request(_ops.get_payment(payment_id)))

    get = retrieve

    async def list(
        self,
        *,
        status: str | None = None,
        phone: str | None = None,
        reference: str | None = None,
        created_gte: datetime | None = None,
        created_lte: datetime | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
    ) -> AsyncPage[Payment]:
        """Payments newest first, filtered; iterate the page to walk every matching payment."""
        return await self._page(
            Payment,
            lambda after: _ops.list_payments(status, phone, reference, created_gte, created_lte, limit, after),
            starting_after,
        )

    async def totals(
        self, *, days: int | None = None, created_gte: datetime | None = None, created_lte: datetime | None = None
    ) -> PaymentTotals:
        """Counts and sums per Nairobi day."""
        return PaymentTotals.from_dict(await self._client._request(_ops.payment_totals(days, created_gte, created_lte)))

    async def refresh(self, payment_id: str) -> Payment:
        """Ask Daraja now (STK Query) and return the payment as it then is. For a "check again"
        button, not for polling: use `wait`."""
        return Payment.from_dict(await self._client._request(_ops.refresh_payment(payment_id)))

    async def evidence(self, payment_id: str) -> builtins.list[Evidence]:
        """Every outcome report received for the payment, oldest first."""
        body = await self._client._request(_ops.payment_evidence(payment_id))
        return [Evidence.from_dict(item) for item in body["data"]]

    async def wait(
        self,
        payment_id: str,
        *,
        timeout: float = 120.0,  # noqa: ASYNC109 - the same signature as Client's
        poll_interval: float = 2.0,
        use_sse: bool = True,
    ) -> Payment:
        """Return the payment once it is final (succeeded, failed, cancelled or expired).

        Follows the payment's Server-Sent Events stream (resuming with `Last-Event-ID` when it
        ends); if the stream cannot be opened or breaks, reads the payment every `poll_interval`
        seconds instead. Raises `WaitTimeoutError` (its `last` is the payment as last read) after
        `timeout` seconds."""
        deadline = time.monotonic() + timeout
        payment = await self.retrieve(payment_id)
        if payment.is_final:
            return payment
        if use_sse:
            try:
                found = await self._wait_by_stream(payment_id, deadline)
            except SseUnavailable:
                found = None
            if found is not None:
                return found
        return await self._wait_by_polling(payment_id, deadline, poll_interval)

    async def _wait_by_stream(self, payment_id: str, deadline: float) -> Payment | None:
        parser = SseParser()
        client = self._client
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            call = _ops.payment_stream(payment_id, parser.last_id)
            try:
                request = client._options.build(client._http, call, read_timeout=remaining)
                response = await client._http.send(request, stream=True)
                try:
                    if not stream_usable(response):
                        raise SseUnavailable
                    async for line in response.aiter_lines():
                        for message in parser.feed(line):
                            subject = final_payment_of(message)
                            if subject is not None:
                                return Payment.from_dict(subject)
                        if time.monotonic() >= deadline:
                            return None
                finally:
                    await response.aclose()
            except httpx.TimeoutException:
                return None
            except httpx.TransportError as exc:
                raise SseUnavailable from exc
            # the stream ended (its maximum age): reconnect after the server's retry hint
            await asyncio.sleep(max(0.0, min(parser.retry, deadline - time.monotonic())))

    async def _wait_by_polling(self, payment_id: str, deadline: float, poll_interval: float) -> Payment:
        last: Payment | None = None
        while True:
            try:
                last = await self.retrieve(payment_id)
            except APIConnectionError:
                if time.monotonic() >= deadline:
                    raise
            if last is not None and last.is_final:
                return last
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeoutError(f"payment {payment_id} was not final within the timeout", last)
            await asyncio.sleep(min(poll_interval, remaining))


class CheckoutSessions(_Resource):
    """`client.checkout_sessions`: the server side (secret key) and the customer side (client secret)."""

    async def create(
        self,
        *,
        amount: int | None = None,
        amount_min: int | None = None,
        amount_max: int | None = None,
        reference: str | None = None,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        expires_at: datetime | None = None,
        success_url: str | None = None,
        cancel_url: str | None = None,
        idempotency_key: str | None = None,
    ) -> CheckoutSession:
        """Open a session for one payment: a fixed `amount`, or `amount_min`..`amount_max` for the
        customer to choose. The answer holds the `client_secret` (once) and the hosted page `url`."""
        fields = {
            "amount": amount,
            "amount_min": amount_min,
            "amount_max": amount_max,
            "reference": reference,
            "description": description,
            "metadata": metadata,
            "expires_at": expires_at,
            "success_url": success_url,
            "cancel_url": cancel_url,
        }
        return CheckoutSession.from_dict(
            await self._client._request(_ops.create_checkout_session(fields, idempotency_key))
        )

    async def retrieve(self, session_id: str, *, client_secret: str | None = None) -> CheckoutSession:
        """Read a session with the secret key, or with its `client_secret` (then with its latest
        `payment`, without `metadata`)."""
        return CheckoutSession.from_dict(
            await self._client._request(_ops.get_checkout_session(session_id, client_secret))
        )

    get = retrieve

    async def list(self, *, limit: int | None = None, starting_after: str | None = None) -> AsyncPage[CheckoutSession]:
        """Sessions newest first; iterate the page to walk them all."""
        return await self._page(
            CheckoutSession, lambda after: _ops.list_checkout_sessions(limit, after), starting_after
        )

    async def expire(self, session_id: str) -> CheckoutSession:
        """Close an open session now (`ConflictError` while a payment is in flight or once closed)."""
        return CheckoutSession.from_dict(await self._client._request(_ops.expire_checkout_session(session_id)))

    async def pay(
        self, session_id: str, *, client_secret: str, phone: str, amount: int | None = None
    ) -> CheckoutSession:
        """The customer's side: start the STK push to `phone` (`amount` only when the customer
        chooses it). Returns the session with the new `payment`."""
        return CheckoutSession.from_dict(
            await self._client._request(_ops.pay_checkout_session(session_id, phone, amount, client_secret))
        )

    async def wait(
        self,
        session_id: str,
        *,
        client_secret: str,
        timeout: float = 120.0,  # noqa: ASYNC109 - the same signature as Client's
        poll_interval: float = 1.5,
    ) -> CheckoutSession:
        """Watch a session with its client secret until its latest payment is final or the session
        is complete or expired; returns the session then. Reads the session every `poll_interval`
        seconds (a failed payment frees the session without a session event, so polling is how it
        is seen). Raises `WaitTimeoutError` after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            session = await self.retrieve(session_id, client_secret=client_secret)
            if session.status != "open" or (session.payment is not None and session.payment.is_final):
                return session
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeoutError(f"checkout session {session_id} did not settle within the timeout", session)
            await asyncio.sleep(min(poll_interval, remaining))

    async def qr(self, session_id: str, *, format: str = "svg") -> bytes:
        """The QR code of the session's hosted page, as SVG (default) or PNG bytes."""
        return await self._client._request_bytes(_ops.checkout_session_qr(session_id, format))


class PaymentLinks(_Resource):
    """`client.payment_links`: reusable links; each visit opens a checkout session."""

    async def create(
        self,
        *,
        title: str,
        amount: int | None = None,
        amount_min: int | None = None,
        amount_max: int | None = None,
        description: str | None = None,
        active: bool | None = None,
        expires_at: datetime | None = None,
        max_payments: int | None = None,
        collect: builtins.list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> PaymentLink:
        """Create a link with a fixed `amount` or a range. Sent with an `Idempotency-Key` (yours or
        a new one), reused on every retry: a retry never makes a second link."""
        fields = {
            "title": title,
            "amount": amount,
            "amount_min": amount_min,
            "amount_max": amount_max,
            "description": description,
            "active": active,
            "expires_at": expires_at,
            "max_payments": max_payments,
            "collect": collect,
            "metadata": metadata,
        }
        return PaymentLink.from_dict(await self._client._request(_ops.create_payment_link(fields, idempotency_key)))

    async def retrieve(self, link_id: str) -> PaymentLink:
        """Read a link with its `payments_succeeded` and `amount_collected`."""
        return PaymentLink.from_dict(await self._client._request(_ops.get_payment_link(link_id)))

    get = retrieve

    async def list(self, *, limit: int | None = None, starting_after: str | None = None) -> AsyncPage[PaymentLink]:
        """Links newest first; iterate the page to walk them all."""
        return await self._page(PaymentLink, lambda after: _ops.list_payment_links(limit, after), starting_after)

    async def update(
        self,
        link_id: str,
        *,
        title: str = UNSET,
        description: str | None = UNSET,
        active: bool = UNSET,
        expires_at: datetime | None = UNSET,
        max_payments: int | None = UNSET,
    ) -> PaymentLink:
        """Change the fields given (None clears `expires_at`, `max_payments` or `description`)."""
        fields = {
            "title": title,
            "description": description,
            "active": active,
            "expires_at": expires_at,
            "max_payments": max_payments,
        }
        return PaymentLink.from_dict(await self._client._request(_ops.update_payment_link(link_id, fields)))

    async def qr(self, link_id: str, *, format: str = "svg") -> bytes:
        """The QR code of the link's URL, as SVG (default) or PNG bytes."""
        return await self._client._request_bytes(_ops.payment_link_qr(link_id, format))


class Reversals(_Resource):
    """`client.reversals`: reversals of succeeded payments (the whole amount)."""

    async def create(
        self, payment_id: str, *, remarks: str | None = None, idempotency_key: str | None = None
    ) -> Reversal:
        """Reverse a succeeded payment. Sent with an `Idempotency-Key` (yours or a new one), reused on
        every retry; a second reversal of the same payment is refused (`ConflictError`)."""
        return Reversal.from_dict(
            await self._client._request(_ops.create_reversal(payment_id, remarks, idempotency_key))
        )

    async def retrieve(self, reversal_id: str) -> Reversal:
        """Read one reversal (`NotFoundError` if it is not this key's)."""
        return Reversal.from_dict(await self._client._request(_ops.get_reversal(reversal_id)))

    get = retrieve

    async def list(
        self, *, payment_id: str | None = None, limit: int | None = None, starting_after: str | None = None
    ) -> AsyncPage[Reversal]:
        """Reversals newest first (one payment's with `payment_id`)."""
        return await self._page(Reversal, lambda after: _ops.list_reversals(payment_id, limit, after), starting_after)


class BalanceQueries(_Resource):
    """`client.balance_queries`: Account Balance queries of the project's short code."""

    async def create(self, *, wait: float | None = None, idempotency_key: str | None = None) -> BalanceQuery:
        """Ask Daraja for the balances; with `wait` (seconds, at most 30) the answer comes once the
        Result did (`completed`), or `pending` when it is late."""
        return BalanceQuery.from_dict(await self._client._request(_ops.create_balance_query(wait, idempotency_key)))

    async def retrieve(self, query_id: str) -> BalanceQuery:
        """Read one balance query: `pending` until its Result came."""
        return BalanceQuery.from_dict(await self._client._request(_ops.get_balance_query(query_id)))

    get = retrieve

    async def list(self, *, limit: int | None = None, starting_after: str | None = None) -> AsyncPage[BalanceQuery]:
        """Balance queries newest first."""
        return await self._page(BalanceQuery, lambda after: _ops.list_balance_queries(limit, after), starting_after)


class WebhookEndpoints(_Resource):
    """`client.webhook_endpoints`: where the bridge sends signed events."""

    async def create(
        self,
        *,
        url: str,
        enabled_events: builtins.list[str],
        description: str | None = None,
        enabled: bool | None = None,
        idempotency_key: str | None = None,
    ) -> WebhookEndpoint:
        """Register a URL for `enabled_events` (`["*"]`: all). The answer's `secret` (`whsec_…`) is
        shown this once: keep it for `webhooks.verify`."""
        fields = {"url": url, "enabled_events": enabled_events, "description": description, "enabled": enabled}
        return WebhookEndpoint.from_dict(
            await self._client._request(_ops.create_webhook_endpoint(fields, idempotency_key))
        )

    async def list(self) -> builtins.list[WebhookEndpoint]:
        """Every endpoint of this key's project and mode (at most 16)."""
        body = await self._client._request(_ops.list_webhook_endpoints())
        return [WebhookEndpoint.from_dict(item) for item in body["data"]]

    async def retrieve(self, endpoint_id: str) -> WebhookEndpoint:
        """Read one endpoint (never its secret)."""
        return WebhookEndpoint.from_dict(await self._client._request(_ops.get_webhook_endpoint(endpoint_id)))

    get = retrieve

    async def update(
        self,
        endpoint_id: str,
        *,
        url: str = UNSET,
        enabled_events: builtins.list[str] = UNSET,
        description: str | None = UNSET,
        enabled: bool = UNSET,
    ) -> WebhookEndpoint:
        """Change the fields given; `enabled=False` cancels pending deliveries."""
        fields = {"url": url, "enabled_events": enabled_events, "description": description, "enabled": enabled}
        return WebhookEndpoint.from_dict(await self._client._request(_ops.update_webhook_endpoint(endpoint_id, fields)))

    async def delete(self, endpoint_id: str) -> DeletedWebhookEndpoint:
        """Stop sending to the endpoint; its pending deliveries are cancelled."""
        return DeletedWebhookEndpoint.from_dict(await self._client._request(_ops.delete_webhook_endpoint(endpoint_id)))

    async def rotate_secret(
        self, endpoint_id: str, *, grace_period_seconds: int | None = None, idempotency_key: str | None = None
    ) -> WebhookEndpoint:
        """A new secret (in the answer's `secret`); the old one keeps signing for the grace period."""
        call = _ops.rotate_webhook_secret(endpoint_id, grace_period_seconds, idempotency_key)
        return WebhookEndpoint.from_dict(await self._client._request(call))


class Events(_Resource):
    """`client.events`: what happened, newest first, kept 30 days."""

    async def list(
        self,
        *,
        type: str | None = None,
        subject: str | None = None,
        created_gte: datetime | None = None,
        created_lte: datetime | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
    ) -> AsyncPage[Event]:
        """Events newest first; `subject` is the id they are about (`pay_…`, `cs_…`)."""
        return await self._page(
            Event,
            lambda after: _ops.list_events(type, subject, created_gte, created_lte, limit, after),
            starting_after,
        )

    async def retrieve(self, event_id: str) -> Event:
        """One event with its `deliveries` and their attempts."""
        return Event.from_dict(await self._client._request(_ops.get_event(event_id)))

    get = retrieve

    async def redeliver(
        self, event_id: str, *, endpoint_id: str | None = None, idempotency_key: str | None = None
    ) -> builtins.list[Delivery]:
        """Send the event again to `endpoint_id`, or to every enabled endpoint subscribed to it.
        Returns the deliveries queued (or already pending)."""
        body = await self._client._request(_ops.redeliver_event(event_id, endpoint_id, idempotency_key))
        return [Delivery.from_dict(item) for item in body["data"]]


class Keys(_Resource):
    """`client.keys`: the secret keys of this key's project and mode."""

    async def list(self) -> builtins.list[ApiKey]:
        """Every key, revoked and expired ones included (`display` form only)."""
        body = await self._client._request(_ops.list_keys())
        return [ApiKey.from_dict(item) for item in body["data"]]

    async def rotate(self, *, grace_period_seconds: int | None = None, idempotency_key: str | None = None) -> ApiKey:
        """Issue a new key (`secret_key`, shown once); the calling key stops after the grace period."""
        return ApiKey.from_dict(await self._client._request(_ops.rotate_key(grace_period_seconds, idempotency_key)))

    async def revoke(self, key_id: str) -> ApiKey:
        """Stop a key at once."""
        return ApiKey.from_dict(await self._client._request(_ops.revoke_key(key_id)))


class Project(_Resource):
    """`client.project`: this project's browser settings and this mode's publishable key."""

    async def retrieve(self) -> ProjectSettings:
        """The settings and this mode's publishable key (`pk_test_…` / `pk_live_…`)."""
        return ProjectSettings.from_dict(await self._client._request(_ops.get_project()))

    async def update(
        self,
        *,
        client_side_amounts: bool = UNSET,
        client_side_amount_max: int | None = UNSET,
        allowed_origins: builtins.list[str] = UNSET,
    ) -> ProjectSettings:
        """Change the settings given. Client-side amounts let the publishable key open a checkout
        session for an amount chosen in the browser (anyone with the page can then start a payment
        within the limits); allowed origins are the sites whose pages may call the browser routes."""
        fields = {
            "client_side_amounts": client_side_amounts,
            "client_side_amount_max": client_side_amount_max,
            "allowed_origins": allowed_origins,
        }
        return ProjectSettings.from_dict(await self._client._request(_ops.update_project(fields)))

    async def rotate_publishable_key(self) -> PublishableKeyRotation:
        """A new publishable key for this mode; the old one stops at once (update your pages)."""
        return PublishableKeyRotation.from_dict(await self._client._request(_ops.rotate_publishable_key()))


class QrCodes(_Resource):
    """`client.qr_codes`: M-Pesa Dynamic QR codes drawn by Daraja."""

    async def create(
        self, *, merchant_name: str, reference: str, amount: int, trx_code: str, cpi: str, size: int | None = None
    ) -> QrCode:
        """A QR code a customer scans in the M-Pesa app to pay `cpi` the `amount`."""
        fields = {
            "merchant_name": merchant_name,
            "reference": reference,
            "amount": amount,
            "trx_code": trx_code,
            "cpi": cpi,
            "size": size,
        }
        return QrCode.from_dict(await self._client._request(_ops.create_qr_code(fields)))


class C2B(_Resource):
    """`client.c2b`: customers paying your till or paybill — validation settings and URL registration."""

    async def settings(self) -> C2BSettings:
        """How Daraja's validation calls are answered, with the `signing_secret` of the requests to your server."""
        return C2BSettings.from_dict(await self._client._request(_ops.get_c2b_settings()))

    async def update_settings(
        self,
        *,
        validation_rule: str = UNSET,
        merchant_url: str | None = UNSET,
        default_action: str = UNSET,
        rotate_secret: bool = UNSET,
    ) -> C2BSettings:
        """Change the fields given: `validation_rule` (accept_all, known_references, merchant), the
        `merchant_url` asked under rule merchant (None clears it), `default_action` (accept or reject)."""
        fields = {
            "validation_rule": validation_rule,
            "merchant_url": merchant_url,
            "default_action": default_action,
            "rotate_secret": rotate_secret,
        }
        return C2BSettings.from_dict(await self._client._request(_ops.update_c2b_settings(fields)))

    async def register(
        self,
        *,
        short_code: str | None = None,
        response_type: str | None = None,
        validation: bool | None = None,
        api_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> C2BRegistration:
        """Register the bridge's validation and confirmation URLs for a short code with Daraja."""
        fields = {
            "short_code": short_code,
            "response_type": response_type,
            "validation": validation,
            "api_version": api_version,
        }
        return C2BRegistration.from_dict(
            await self._client._request(_ops.create_c2b_registration(fields, idempotency_key))
        )

    async def registrations(self) -> builtins.list[C2BRegistration]:
        """The short codes registered for this key's project and mode."""
        body = await self._client._request(_ops.list_c2b_registrations())
        return [C2BRegistration.from_dict(item) for item in body["data"]]


class C2BPayments(_Resource):
    """`client.c2b_payments`: customers' till and paybill payments, and the review queue."""

    async def list(
        self,
        *,
        status: str | None = None,
        reference: str | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
    ) -> AsyncPage[C2BPayment]:
        """Newest first; `status="unmatched"` is the review queue, `reference` an account number."""
        return await self._page(
            C2BPayment, lambda after: _ops.list_c2b_payments(status, reference, limit, after), starting_after
        )

    async def retrieve(self, payment_id: str) -> C2BPayment:
        """One payment; its `raw` also holds `suggestions`, `validations` and `same_reference`."""
        return C2BPayment.from_dict(await self._client._request(_ops.get_c2b_payment(payment_id)))

    get = retrieve

    async def match(self, payment_id: str, *, type: str, id: str) -> C2BPayment:
        """Match an unmatched payment by hand to an expected payment, checkout session or payment link."""
        return C2BPayment.from_dict(await self._client._request(_ops.match_c2b_payment(payment_id, type, id)))

    async def dismiss(self, payment_id: str, *, note: str | None = None) -> C2BPayment:
        """Take an unmatched payment out of the review queue for good, with a note."""
        return C2BPayment.from_dict(await self._client._request(_ops.dismiss_c2b_payment(payment_id, note)))


class ExpectedPayments(_Resource):
    """`client.expected_payments`: payments you expect to your paybill; C2B payments are matched to them."""

    async def create(
        self,
        *,
        reference: str,
        amount: int,
        phone: str | None = None,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> ExpectedPayment:
        """Expect a payment of `amount` with `reference` as the account number (and `phone`, if known)."""
        fields = {
            "reference": reference,
            "amount": amount,
            "phone": phone,
            "description": description,
            "metadata": metadata,
        }
        return ExpectedPayment.from_dict(
            await self._client._request(_ops.create_expected_payment(fields, idempotency_key))
        )

    async def retrieve(self, expected_id: str) -> ExpectedPayment:
        """One expected payment: `open`, `paid` (with `c2b_payment_id`) or `cancelled`."""
        return ExpectedPayment.from_dict(await self._client._request(_ops.get_expected_payment(expected_id)))

    get = retrieve

    async def list(
        self, *, status: str | None = None, limit: int | None = None, starting_after: str | None = None
    ) -> AsyncPage[ExpectedPayment]:
        """Newest first; `status` open, paid or cancelled."""
        return await self._page(
            ExpectedPayment, lambda after: _ops.list_expected_payments(status, limit, after), starting_after
        )

    async def cancel(self, expected_id: str) -> ExpectedPayment:
        """Cancel an open expected payment."""
        return ExpectedPayment.from_dict(await self._client._request(_ops.cancel_expected_payment(expected_id)))


class AsyncClient:
    """An asyncio client of one bridge, for one secret key: the same resources and options as `Client`.

    ```python
    from mpesa_bridge_sdk import AsyncClient

    async with AsyncClient("sk_test_…", base_url="http://127.0.0.1:8000") as bridge:
        payment = await bridge.payments.create(phone="0708374149", amount=10, account_reference="INV001")
        payment = await bridge.payments.wait(payment.id, timeout=60)
    ```

    - `api_key`: a secret key (`sk_test_…`/`sk_live_…`); may be None for client-secret calls only.
    - `timeout`: seconds for each connect, read and write.
    - Retries (at most `max_retries`, with exponential backoff from `backoff_base` capped at
      `backoff_max` seconds, with jitter): a connection that failed before the request was sent;
      a `429` after its `Retry-After` (given up at once when it asks for more than
      `max_retry_after` seconds); a `5xx` or a broken connection only for requests that are safe to
      repeat (reads, deletes, and creates, which carry an Idempotency-Key reused by each retry).
    - Signed requests: with `signing_secret` (`mbsig_…`) or `sign_requests=True` every request is
      signed (with the signing secret, else the key). By default (`sign_requests=None`) the client
      also starts signing, with its key, when the bridge answers `signature_missing`.
    - `http_client`: your own `httpx.AsyncClient` (its transport, proxies); it is not closed by `close()`.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 30.0,
        max_retries: int = 2,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
        max_retry_after: float = 60.0,
        signing_secret: str | None = None,
        sign_requests: bool | None = None,
        http_client: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        jitter: Callable[[], float] | None = None,
    ) -> None:
        self._options = Options(
            api_key,
            base_url,
            timeout,
            max_retries,
            backoff_base,
            backoff_max,
            max_retry_after,
            signing_secret,
            sign_requests,
        )
        if jitter is not None:
            self._options.jitter = jitter
        self._sleep = sleep or asyncio.sleep
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient()
        self.payments = Payments(self)
        self.checkout_sessions = CheckoutSessions(self)
        self.payment_links = PaymentLinks(self)
        self.reversals = Reversals(self)
        self.balance_queries = BalanceQueries(self)
        self.webhook_endpoints = WebhookEndpoints(self)
        self.events = Events(self)
        self.keys = Keys(self)
        self.project = Project(self)
        self.qr_codes = QrCodes(self)
        self.c2b = C2B(self)
        self.c2b_payments = C2BPayments(self)
        self.expected_payments = ExpectedPayments(self)
        self.payouts = Payouts(self)
        self.transaction_status_queries = TransactionStatusQueries(self)
        self.webhooks = Webhooks()

    async def _send(self, call: Call) -> httpx.Response:
        attempt = 0
        while True:
            request = self._options.build(self._http, call)
            try:
                response = await self._http.send(request)
            except httpx.TransportError as exc:
                delay = self._options.retry_after_exception(exc, call, attempt)
                if delay is None:
                    raise connection_error(exc) from exc
            else:
                if self._options.should_start_signing(response, call):
                    await response.aclose()
                    continue
                if self._options.should_sign_again(response, call, attempt):
                    await response.aclose()
                    attempt += 1
                    continue
                delay = self._options.retry_after_response(response, call, attempt)
                if delay is None:
                    return response
                await response.aclose()
            await self._sleep(delay)
            attempt += 1

    async def _request(self, call: Call) -> Any:
        """Send one operation (with its retries) and return its JSON answer; raises `APIError`."""
        response = await self._send(call)
        try:
            return json_of(response)
        finally:
            await response.aclose()

    async def _request_bytes(self, call: Call) -> bytes:
        """Send one operation and return its body as bytes (QR images)."""
        response = await self._send(call)
        try:
            raise_for(response)
            return response.content
        finally:
            await response.aclose()

    async def close(self) -> None:
        """Close the connections (unless the `http_client` was yours)."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class Payouts(_Resource):
    """`client.payouts`: B2C payouts to phones, with the project's approval and limits."""

    async def create(
        self,
        *,
        phone: str,
        amount: int,
        command_id: str | None = None,
        remarks: str | None = None,
        occasion: str | None = None,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Payout:
        """Send a payout (or hold it for approval). Always sent with an `Idempotency-Key` (yours or a
        new one), reused by every retry: a retry never pays twice."""
        fields = {
            "phone": phone,
            "amount": amount,
            "command_id": command_id,
            "remarks": remarks,
            "occasion": occasion,
            "metadata": metadata,
        }
        return Payout.from_dict(await self._client._request(_ops.create_payout(fields, idempotency_key)))

    async def retrieve(self, payout_id: str) -> Payout:
        """Read one payout (`NotFoundError` if it is not this key's)."""
        return Payout.from_dict(await self._client._request(_ops.get_payout(payout_id)))

    get = retrieve

    async def list(
        self, *, status: str | None = None, limit: int | None = None, starting_after: str | None = None
    ) -> AsyncPage[Payout]:
        """Payouts newest first; iterate the page to walk them all."""
        return await self._page(Payout, lambda after: _ops.list_payouts(status, limit, after), starting_after)

    async def approve(self, payout_id: str) -> Payout:
        """Approve (and send) a payout `pending_approval`: another key than the creator's must."""
        return Payout.from_dict(await self._client._request(_ops.approve_payout(payout_id)))

    async def reject(self, payout_id: str, *, reason: str | None = None) -> Payout:
        """Reject a payout `pending_approval`: it is never sent."""
        return Payout.from_dict(await self._client._request(_ops.reject_payout(payout_id, reason)))

    async def settings(self) -> PayoutSettings:
        """The approval and limits that apply to this key's project mode."""
        return PayoutSettings.from_dict(await self._client._request(_ops.payout_settings()))


class TransactionStatusQueries(_Resource):
    """`client.transaction_status_queries`: ask Daraja about a transaction; the Result comes later."""

    async def create(
        self,
        *,
        transaction_id: str | None = None,
        originator_conversation_id: str | None = None,
        wait: float | None = None,
        idempotency_key: str | None = None,
    ) -> TransactionStatusQuery:
        """By M-Pesa receipt or a payout's originator_conversation_id; `wait` (≤ 30 s) waits for the Result."""
        fields = {"transaction_id": transaction_id, "originator_conversation_id": originator_conversation_id}
        call = _ops.create_transaction_status_query(fields, wait, idempotency_key)
        return TransactionStatusQuery.from_dict(await self._client._request(call))

    async def retrieve(self, query_id: str, *, wait: float | None = None) -> TransactionStatusQuery:
        """Read one query; `wait` (≤ 30 s) waits for its Result."""
        call = _ops.get_transaction_status_query(query_id, wait)
        return TransactionStatusQuery.from_dict(await self._client._request(call))

    get = retrieve

    async def list(
        self, *, limit: int | None = None, starting_after: str | None = None
    ) -> AsyncPage[TransactionStatusQuery]:
        """Queries newest first."""
        call_for = lambda after: _ops.list_transaction_status_queries(limit, after)  # noqa: E731
        return await self._page(TransactionStatusQuery, call_for, starting_after)
