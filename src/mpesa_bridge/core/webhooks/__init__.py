"""Signed webhooks: outbox events delivered to the merchant's endpoints, at least once, in order.

Where things happen:

    endpoints.py     — webhook endpoints per project and mode; their `whsec_…` secrets (rotation)
    destinations.py  — which URLs may be called (http(s), public addresses; test-mode loopback outside
                       production) and whose answers may be kept (public addresses only)
    dispatch.py      — outbox event -> one delivery per matching enabled endpoint
    delivery.py      — claim due deliveries, sign, send, record the attempt, retry or give up
    retry.py         — `RetryPolicy`: the backoff schedule, as data
    signing.py       — Standard Webhooks signatures (`webhook-id`, `-timestamp`, `-signature`)
    events.py        — the events API: list, read with deliveries and attempts, redeliver (at most
                       one pending redelivery per event and endpoint)
    public.py        — the shapes the API returns

The flow, and why nothing is lost if the process dies at any line:

1. A state change writes its `OutboxEvent` in the same transaction (`payments.outcomes`).
2. The dispatcher takes undispatched events oldest first, creates their deliveries and sets
   `dispatched_at`, all in one transaction: a crash before the commit leaves the event
   undispatched and it is taken again. Only one dispatcher runs at a time (PostgreSQL: a
   transaction-scoped advisory lock; SQLite: the single writer), so the deliveries of one payment
   are created in the order of its events.
3. A worker claims due deliveries in a short transaction (`FOR UPDATE SKIP LOCKED` on
   PostgreSQL), stamping `claimed_by` and `lease_until`, sends them with no transaction open, and
   records each attempt in another. A worker that dies mid-delivery leaves a lease that runs out;
   another worker then takes the delivery. The lease is longer than the send can last, so no two
   workers send one delivery at the same time. A crash after the receiver answered but before the
   attempt was recorded means the event is sent again: delivery is at least once, and receivers
   de-duplicate on `webhook-id` (the event id, stable across retries and redeliveries).
4. A delivery is not attempted while an earlier delivery for the same (endpoint, payment) is
   still pending: events of one payment reach one endpoint in order.
5. Failures are retried along `RetryPolicy` for up to three days after the first attempt; an
   endpoint that has failed without a single success for that long is disabled and an
   `endpoint.disabled` event is written.

Errors (`errors.py`) carry stable codes; the API maps them to statuses.
"""
