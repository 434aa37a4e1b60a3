/** The secret-key client: `new MpesaBridge(secretKey, options)`. Server-side only. */

import { Transport, sleep, type ApiResponse, type ClientOptions, type RequestOptions, type RequestSpec, type SigningOptions } from "./http.js";
import { readSse, type SseMessage } from "./sse.js";
import { ApiError, MpesaBridgeError, TimeoutError } from "./errors.js";
import {
  FINAL_PAYMENT_STATUSES,
  type ApiKey,
  type C2BPayment,
  type C2BPaymentListParams,
  type C2BRegistration,
  type C2BRegistrationCreateParams,
  type C2BSettings,
  type C2BSettingsUpdateParams,
  type BalanceQuery,
  type CheckoutSession,
  type CheckoutSessionCreateParams,
  type Event,
  type EventDetail,
  type EventListParams,
  type Evidence,
  type ExpectedPayment,
  type ExpectedPaymentCreateParams,
  type ExpectedPaymentListParams,
  type Health,
  type ListParams,
  type Page,
  type Payment,
  type PaymentCreateParams,
  type PaymentLink,
  type PaymentLinkCreateParams,
  type PaymentLinkUpdateParams,
  type PaymentListParams,
  type PaymentTotals,
  type Project,
  type QrCodeCreateParams,
  type Reversal,
  type ReversalListParams,
  type WebhookEndpoint,
  type WebhookEndpointCreateParams,
  type WebhookEndpointUpdateParams,
  type Payout,
  type PayoutCreateParams,
  type PayoutSettings,
  type TransactionStatusQuery,
} from "./types.js";

export type MpesaBridgeOptions = ClientOptions & SigningOptions;

/** Per-call options: an Idempotency-Key of your own (e.g. your order id), headers, a signal. */
export type CallOptions = Pick<RequestOptions, "idempotencyKey" | "headers" | "signal">;

/**
 * A page that is also every item: `await list()` gives one page; `for await (const x of list())`
 * walks every page, following `next_cursor`.
 */
export class PageRequest<T> implements PromiseLike<Page<T>>, AsyncIterable<T> {
  constructor(private readonly fetchPage: (cursor: string | undefined) => Promise<Page<T>>, private readonly first?: string) {}

  then<A = Page<T>, B = never>(onFulfilled?: ((value: Page<T>) => A | PromiseLike<A>) | null, onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<A | B> {
    return this.fetchPage(this.first).then(onFulfilled, onRejected);
  }

  catch<B = never>(onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<Page<T> | B> {
    return this.fetchPage(this.first).catch(onRejected);
  }

  finally(onFinally?: (() => void) | null): Promise<Page<T>> {
    return this.fetchPage(this.first).finally(onFinally);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    let cursor = this.first;
    for (;;) {
      const page = await this.fetchPage(cursor);
      yield* page.data;
      if (!page.has_more || !page.next_cursor) return;
      cursor = page.next_cursor;
    }
  }

  /** Every item of every page (at most `max`). */
  async toArray(max = Infinity): Promise<T[]> {
    const out: T[] = [];
    for await (const item of this) {
      if (out.length >= max) break;
      out.push(item);
    }
    return out;
  }
}

abstract class Resource {
  constructor(protected readonly client: BaseClient) {}
  protected async call<T>(spec: RequestSpec): Promise<T> {
    return (await this.client.transport.request<T>(spec)).data;
  }
  protected page<T>(path: string, params: ListParams & Record<string, unknown> = {}, options: CallOptions = {}): PageRequest<T> {
    const { starting_after, ...rest } = params;
    return new PageRequest<T>(
      (cursor) => this.call<Page<T>>({ method: "GET", path, query: { ...(rest as RequestOptions["query"]), starting_after: cursor }, idempotent: true, ...options }),
      starting_after,
    );
  }
}

const enc = encodeURIComponent;

export interface StreamOptions {
  /** Resume after this event id or position (sent as `Last-Event-ID`). */
  lastEventId?: string;
  /** Stop the stream. */
  signal?: AbortSignal;
  /** Open the stream again when the server ends it (default true). */
  reconnect?: boolean;
}

export interface WaitOptions {
  /** Give up after this long (default 120 000 ms): a {@link TimeoutError}. */
  timeoutMs?: number;
  /** Follow the payment's event stream (default true); polling covers its failures. */
  stream?: boolean;
  /** How often to poll when the stream is off or failed (default 2 000 ms). */
  pollIntervalMs?: number;
  /** How often to poll while the stream is up, as a safety net (default 15 000 ms). */
  streamPollIntervalMs?: number;
  /** Called with every status seen, and how. */
  onUpdate?: (payment: Payment, via: "stream" | "poll") => void;
  signal?: AbortSignal;
}

class Payments extends Resource {
  /** `POST /v1/payments`: an Idempotency-Key is generated (or yours used) and reused on retries. */
  create(params: PaymentCreateParams, options: CallOptions = {}): Promise<Payment> {
    return this.call({ method: "POST", path: "/v1/payments", body: params, idempotent: true, createsSomething: true, ...options });
  }
  get(id: string, options: CallOptions = {}): Promise<Payment> {
    return this.call({ method: "GET", path: `/v1/payments/${enc(id)}`, idempotent: true, ...options });
  }
  /** One page (`await`), or every payment (`for await`). */
  list(params: PaymentListParams = {}, options: CallOptions = {}): PageRequest<Payment> {
    return this.page<Payment>("/v1/payments", params as Record<string, unknown>, options);
  }
  /** `POST /v1/payments/{id}/refresh`: an STK Query now. Not for polling loops (Daraja throttles it). */
  refresh(id: string, options: CallOptions = {}): Promise<Payment> {
    return this.call({ method: "POST", path: `/v1/payments/${enc(id)}/refresh`, idempotent: true, ...options });
  }
  evidence(id: string, options: CallOptions = {}): Promise<{ object: "list"; data: Evidence[] }> {
    return this.call({ method: "GET", path: `/v1/payments/${enc(id)}/evidence`, idempotent: true, ...options });
  }
  totals(params: { days?: number; created_gte?: string; created_lte?: string } = {}, options: CallOptions = {}): Promise<PaymentTotals> {
    return this.call({ method: "GET", path: "/v1/payments/totals", query: params, idempotent: true, ...options });
  }
  /** The payment's events as they happen (`GET /v1/payments/{id}/events`, Server-Sent Events). */
  stream(id: string, options: StreamOptions = {}): AsyncGenerator<Event<Payment>> {
    return this.client.streamEvents(`/v1/payments/${enc(id)}/events`, options) as AsyncGenerator<Event<Payment>>;
  }
  /**
   * Resolves with the payment once it is `succeeded`, `failed`, `cancelled` or `expired`: follows
   * its event stream, and polls (rarely while the stream is up, every `pollIntervalMs` without it).
   */
  async waitUntilFinal(id: string, options: WaitOptions = {}): Promise<Payment> {
    const timeoutMs = options.timeoutMs ?? 120_000;
    const pollMs = options.pollIntervalMs ?? 2_000;
    const streamPollMs = options.streamPollIntervalMs ?? 15_000;
    const controller = new AbortController();
    const onAbort = () => controller.abort(options.signal?.reason);
    options.signal?.addEventListener("abort", onAbort, { once: true });
    let streamUp = options.stream !== false;
    let wake: (() => void) | undefined;
    let result: { payment: Payment } | { error: unknown } | undefined;
    const finish = (value: { payment: Payment } | { error: unknown }) => {
      if (!result) {
        result = value;
        wake?.();
      }
    };
    const timer = setTimeout(() => finish({ error: new TimeoutError(`payment ${id} not final after ${timeoutMs} ms`) }), timeoutMs);
    if (streamUp) {
      void (async () => {
        try {
          for await (const event of this.stream(id, { signal: controller.signal })) {
            const payment = event.data.object;
            options.onUpdate?.(payment, "stream");
            if (FINAL_PAYMENT_STATUSES.includes(payment.status)) return finish({ payment });
          }
        } catch {
          /* the stream failed: polling takes over */
        }
        streamUp = false;
        wake?.();
      })();
    }
    try {
      while (!result) {
        if (controller.signal.aborted) throw controller.signal.reason ?? new MpesaBridgeError("aborted");
        try {
          const payment = await this.get(id, { signal: controller.signal });
          options.onUpdate?.(payment, "poll");
          if (FINAL_PAYMENT_STATUSES.includes(payment.status)) finish({ payment });
        } catch (error) {
          if (error instanceof ApiError && error.status < 500 && error.status !== 429) finish({ error });
          else if (controller.signal.aborted && !result) throw error;
        }
        if (result) break;
        let pause: ReturnType<typeof setTimeout> | undefined;
        await new Promise<void>((resolve) => {
          wake = resolve;
          pause = setTimeout(resolve, streamUp ? streamPollMs : pollMs);
        });
        clearTimeout(pause);
        wake = undefined;
      }
    } finally {
      clearTimeout(timer);
      controller.abort();
      options.signal?.removeEventListener("abort", onAbort);
    }
    if ("error" in result) throw result.error;
    return result.payment;
  }
}

class CheckoutSessions extends Resource {
  create(params: CheckoutSessionCreateParams, options: CallOptions = {}): Promise<CheckoutSession> {
    return this.call({ method: "POST", path: "/v1/checkout_sessions", body: params, idempotent: true, createsSomething: true, ...options });
  }
  get(id: string, options: CallOptions = {}): Promise<CheckoutSession> {
    return this.call({ method: "GET", path: `/v1/checkout_sessions/${enc(id)}`, idempotent: true, ...options });
  }
  list(params: ListParams = {}, options: CallOptions = {}): PageRequest<CheckoutSession> {
    return this.page<CheckoutSession>("/v1/checkout_sessions", params as Record<string, unknown>, options);
  }
  /** Refused (409) while a payment is in flight and once complete or expired. */
  expire(id: string, options: CallOptions = {}): Promise<CheckoutSession> {
    return this.call({ method: "POST", path: `/v1/checkout_sessions/${enc(id)}/expire`, idempotent: true, ...options });
  }
  /** The QR code of the hosted page: SVG text, or PNG bytes. */
  qr(id: string, format: "svg" | "png" = "svg", options: CallOptions = {}): Promise<Uint8Array> {
    return this.call({ method: "GET", path: `/v1/checkout_sessions/${enc(id)}/qr`, query: { format }, idempotent: true, binary: true, ...options });
  }
  /** The session's events (`checkout_session.completed`, `.expired`), with the secret key. */
  stream(id: string, options: StreamOptions = {}): AsyncGenerator<Event<CheckoutSession>> {
    return this.client.streamEvents(`/v1/checkout_sessions/${enc(id)}/events`, options) as AsyncGenerator<Event<CheckoutSession>>;
  }
}

class PaymentLinks extends Resource {
  /** Sent with an Idempotency-Key (yours or a new one), reused on every retry: never a second link. */
  create(params: PaymentLinkCreateParams, options: CallOptions = {}): Promise<PaymentLink> {
    return this.call({ method: "POST", path: "/v1/payment_links", body: params, idempotent: true, createsSomething: true, ...options });
  }
  get(id: string, options: CallOptions = {}): Promise<PaymentLink> {
    return this.call({ method: "GET", path: `/v1/payment_links/${enc(id)}`, idempotent: true, ...options });
  }
  list(params: ListParams = {}, options: CallOptions = {}): PageRequest<PaymentLink> {
    return this.page<PaymentLink>("/v1/payment_links", params as Record<string, unknown>, options);
  }
  update(id: string, params: PaymentLinkUpdateParams, options: CallOptions = {}): Promise<PaymentLink> {
    return this.call({ method: "PATCH", path: `/v1/payment_links/${enc(id)}`, body: params, idempotent: true, ...options });
  }
  qr(id: string, format: "svg" | "png" = "svg", options: CallOptions = {}): Promise<Uint8Array> {
    return this.call({ method: "GET", path: `/v1/payment_links/${enc(id)}/qr`, query: { format }, idempotent: true, binary: true, ...options });
  }
}

class C2B extends Resource {
  /** How Daraja's validation calls are answered, with the `signing_secret` of the requests to your server. */
  settings(options: CallOptions = {}): Promise<C2BSettings> {
    return this.call({ method: "GET", path: "/v1/c2b/settings", idempotent: true, ...options });
  }
  /** Change the fields given (rule, merchant URL, default answer; `rotate_secret: true` for a new secret). */
  updateSettings(params: C2BSettingsUpdateParams, options: CallOptions = {}): Promise<C2BSettings> {
    return this.call({ method: "POST", path: "/v1/c2b/settings", body: params, idempotent: false, ...options });
  }
  /** Register the bridge's validation and confirmation URLs for a short code with Daraja (Idempotency-Key). */
  register(params: C2BRegistrationCreateParams = {}, options: CallOptions = {}): Promise<C2BRegistration> {
    return this.call({ method: "POST", path: "/v1/c2b/registrations", body: params, idempotent: true, createsSomething: true, ...options });
  }
  registrations(options: CallOptions = {}): Promise<{ object: "list"; data: C2BRegistration[] }> {
    return this.call({ method: "GET", path: "/v1/c2b/registrations", idempotent: true, ...options });
  }
}

class C2BPayments extends Resource {
  /** Newest first; `status: "unmatched"` is the review queue. */
  list(params: C2BPaymentListParams = {}, options: CallOptions = {}): PageRequest<C2BPayment> {
    return this.page<C2BPayment>("/v1/c2b/payments", params as Record<string, unknown>, options);
  }
  /** With `suggestions`, `validations` and `same_reference`. */
  get(id: string, options: CallOptions = {}): Promise<C2BPayment> {
    return this.call({ method: "GET", path: `/v1/c2b/payments/${enc(id)}`, idempotent: true, ...options });
  }
  /** Match an unmatched payment by hand to an expected payment, checkout session or payment link. */
  match(id: string, params: { type: "expected_payment" | "checkout_session" | "payment_link"; id: string }, options: CallOptions = {}): Promise<C2BPayment> {
    return this.call({ method: "POST", path: `/v1/c2b/payments/${enc(id)}/match`, body: params, idempotent: false, ...options });
  }
  /** Take an unmatched payment out of the review queue, with a note. */
  dismiss(id: string, params: { note?: string } = {}, options: CallOptions = {}): Promise<C2BPayment> {
    return this.call({ method: "POST", path: `/v1/c2b/payments/${enc(id)}/dismiss`, body: params, idempotent: false, ...options });
  }
}

class ExpectedPayments extends Resource {
  /** Sent with an Idempotency-Key (yours or a new one), reused on every retry. */
  create(params: ExpectedPaymentCreateParams, options: CallOptions = {}): Promise<ExpectedPayment> {
    return this.call({ method: "POST", path: "/v1/expected_payments", body: params, idempotent: true, createsSomething: true, ...options });
  }
  get(id: string, options: CallOptions = {}): Promise<ExpectedPayment> {
    return this.call({ method: "GET", path: `/v1/expected_payments/${enc(id)}`, idempotent: true, ...options });
  }
  list(params: ExpectedPaymentListParams = {}, options: CallOptions = {}): PageRequest<ExpectedPayment> {
    return this.page<ExpectedPayment>("/v1/expected_payments", params as Record<string, unknown>, options);
  }
  /** Cancel an open expected payment. */
  cancel(id: string, options: CallOptions = {}): Promise<ExpectedPayment> {
    return this.call({ method: "POST", path: `/v1/expected_payments/${enc(id)}/cancel`, idempotent: false, ...options });
  }
}

class Reversals extends Resource {
  /** Reverse a succeeded payment's whole amount; sent with an Idempotency-Key (yours or a new one). */
  create(paymentId: string, params: { remarks?: string } = {}, options: CallOptions = {}): Promise<Reversal> {
    return this.call({ method: "POST", path: `/v1/payments/${enc(paymentId)}/reversals`, body: params, idempotent: true, createsSomething: true, ...options });
  }
  get(id: string, options: CallOptions = {}): Promise<Reversal> {
    return this.call({ method: "GET", path: `/v1/reversals/${enc(id)}`, idempotent: true, ...options });
  }
  list(params: ReversalListParams = {}, options: CallOptions = {}): PageRequest<Reversal> {
    return this.page<Reversal>("/v1/reversals", params as Record<string, unknown>, options);
  }
}

class BalanceQueries extends Resource {
  /** Ask Daraja for the balances; with `wait` (seconds, at most 30) the answer comes once the Result did. */
  create(params: { wait?: number } = {}, options: CallOptions = {}): Promise<BalanceQuery> {
    return this.call({ method: "POST", path: "/v1/balance_queries", body: params, idempotent: true, createsSomething: true, ...options });
  }
  get(id: string, options: CallOptions = {}): Promise<BalanceQuery> {
    return this.call({ method: "GET", path: `/v1/balance_queries/${enc(id)}`, idempotent: true, ...options });
  }
  list(params: ListParams = {}, options: CallOptions = {}): PageRequest<BalanceQuery> {
    return this.page<BalanceQuery>("/v1/balance_queries", params as Record<string, unknown>, options);
  }
}

class WebhookEndpoints extends Resource {
  /** The answer holds `secret` (`whsec_…`) this once. */
  create(params: WebhookEndpointCreateParams, options: CallOptions = {}): Promise<WebhookEndpoint> {
    return this.call({ method: "POST", path: "/v1/webhook_endpoints", body: params, idempotent: true, createsSomething: true, ...options });
  }
  get(id: string, options: CallOptions = {}): Promise<WebhookEndpoint> {
    return this.call({ method: "GET", path: `/v1/webhook_endpoints/${enc(id)}`, idempotent: true, ...options });
  }
  list(options: CallOptions = {}): Promise<{ object: "list"; data: WebhookEndpoint[] }> {
    return this.call({ method: "GET", path: "/v1/webhook_endpoints", idempotent: true, ...options });
  }
  update(id: string, params: WebhookEndpointUpdateParams, options: CallOptions = {}): Promise<WebhookEndpoint> {
    return this.call({ method: "PATCH", path: `/v1/webhook_endpoints/${enc(id)}`, body: params, idempotent: true, ...options });
  }
  del(id: string, options: CallOptions = {}): Promise<{ id: string; object: string; deleted: boolean }> {
    return this.call({ method: "DELETE", path: `/v1/webhook_endpoints/${enc(id)}`, idempotent: true, ...options });
  }
  /** A new secret; the old one keeps signing for `grace_period_seconds` (default 24 h). */
  rotateSecret(id: string, params: { grace_period_seconds?: number } = {}, options: CallOptions = {}): Promise<WebhookEndpoint> {
    return this.call({ method: "POST", path: `/v1/webhook_endpoints/${enc(id)}/rotate_secret`, body: params, idempotent: true, createsSomething: true, ...options });
  }
}

class Events extends Resource {
  list(params: EventListParams = {}, options: CallOptions = {}): PageRequest<Event> {
    return this.page<Event>("/v1/events", params as Record<string, unknown>, options);
  }
  get(id: string, options: CallOptions = {}): Promise<EventDetail> {
    return this.call({ method: "GET", path: `/v1/events/${enc(id)}`, idempotent: true, ...options });
  }
  /** Send it again to one endpoint, or (no `endpoint_id`) to every subscribed one. */
  redeliver(id: string, params: { endpoint_id?: string } = {}, options: CallOptions = {}): Promise<Record<string, unknown>> {
    return this.call({ method: "POST", path: `/v1/events/${enc(id)}/redeliver`, body: params, idempotent: true, createsSomething: true, ...options });
  }
  /** Every event of the key's project and mode as it happens (`GET /v1/events/stream`), resumable. */
  stream(options: StreamOptions = {}): AsyncGenerator<Event> {
    return this.client.streamEvents("/v1/events/stream", options);
  }
}

class Keys extends Resource {
  list(options: CallOptions = {}): Promise<{ object: "list"; data: ApiKey[] }> {
    return this.call({ method: "GET", path: "/v1/keys", idempotent: true, ...options });
  }
  rotate(params: { grace_period_seconds?: number } = {}, options: CallOptions = {}): Promise<ApiKey & { previous_key: ApiKey }> {
    return this.call({ method: "POST", path: "/v1/keys/rotate", body: params, idempotent: true, createsSomething: true, ...options });
  }
  revoke(id: string, options: CallOptions = {}): Promise<ApiKey> {
    return this.call({ method: "POST", path: `/v1/keys/${enc(id)}/revoke`, idempotent: true, ...options });
  }
}

/** The project as browsers meet it: this mode's publishable key, client-side amounts, allowed origins. */
export interface ProjectSettings {
  object: "project";
  id: string;
  name: string;
  mode: "test" | "live";
  publishable_key: string;
  client_side_amounts: boolean;
  client_side_amount_max: number | null;
  allowed_origins: string[];
}

export interface ProjectSettingsUpdateParams {
  /** Let the publishable key open a checkout session for an amount chosen in the browser. */
  client_side_amounts?: boolean;
  /** The highest amount a browser may choose (null: the bridge's own limit). */
  client_side_amount_max?: number | null;
  /** The sites (`https://shop.example`) whose pages may call the browser routes. */
  allowed_origins?: string[];
}

class ProjectResource extends Resource {
  /** `GET /v1/project`: the browser settings and this mode's publishable key. */
  get(options: CallOptions = {}): Promise<ProjectSettings> {
    return this.call({ method: "GET", path: "/v1/project", idempotent: true, ...options });
  }
  /** `PATCH /v1/project`: change the settings given. */
  update(params: ProjectSettingsUpdateParams, options: CallOptions = {}): Promise<ProjectSettings> {
    return this.call({ method: "PATCH", path: "/v1/project", body: params, idempotent: true, ...options });
  }
  /** `POST /v1/project/publishable_key/rotate`: a new publishable key; the old one stops at once. */
  rotatePublishableKey(options: CallOptions = {}): Promise<{ object: "publishable_key"; publishable_key: string; previous_publishable_key: string }> {
    return this.call({ method: "POST", path: "/v1/project/publishable_key/rotate", idempotent: false, ...options });
  }
}

class QrCodes extends Resource {
  /** `POST /v1/qr_codes` (Daraja's Dynamic QR). JSON by default; `format: "png"` gives the bytes. */
  create(params: QrCodeCreateParams, options: CallOptions & { format?: "json" | "png" } = {}): Promise<Record<string, unknown> | Uint8Array> {
    const { format, ...rest } = options;
    return this.call({ method: "POST", path: "/v1/qr_codes", query: format ? { format } : undefined, body: params, idempotent: true, binary: format === "png", ...rest });
  }
}

/** What both clients share: the transport, the health routes and the SSE reader. */
class Payouts extends Resource {
  /** Sent with an Idempotency-Key (yours or a new one; the bridge requires one), reused on every retry: never a second payout. */
  create(params: PayoutCreateParams, options: CallOptions = {}): Promise<Payout> {
    return this.call({ method: "POST", path: "/v1/payouts", body: params, idempotent: true, createsSomething: true, ...options });
  }
  get(id: string, options: CallOptions = {}): Promise<Payout> {
    return this.call({ method: "GET", path: `/v1/payouts/${enc(id)}`, idempotent: true, ...options });
  }
  list(params: ListParams & { status?: string } = {}, options: CallOptions = {}): PageRequest<Payout> {
    return this.page<Payout>("/v1/payouts", params as Record<string, unknown>, options);
  }
  /** Another key than the creator's must approve; the payout is then sent. */
  approve(id: string, options: CallOptions = {}): Promise<Payout> {
    return this.call({ method: "POST", path: `/v1/payouts/${enc(id)}/approve`, idempotent: false, ...options });
  }
  reject(id: string, params: { reason?: string } = {}, options: CallOptions = {}): Promise<Payout> {
    return this.call({ method: "POST", path: `/v1/payouts/${enc(id)}/reject`, body: params, idempotent: false, ...options });
  }
  settings(options: CallOptions = {}): Promise<PayoutSettings> {
    return this.call({ method: "GET", path: "/v1/payouts/settings", idempotent: true, ...options });
  }
}

class TransactionStatusQueries extends Resource {
  /** By receipt (`transaction_id`) or a payout's `originator_conversation_id`; `wait` (≤ 30 s) waits for the Result. */
  create(
    params: { transaction_id?: string; originator_conversation_id?: string; wait?: number },
    options: CallOptions = {},
  ): Promise<TransactionStatusQuery> {
    const { wait, ...body } = params;
    return this.call({
      method: "POST",
      path: "/v1/transaction_status_queries",
      body,
      query: { wait },
      idempotent: true,
      createsSomething: true,
      ...options,
    });
  }
  get(id: string, params: { wait?: number } = {}, options: CallOptions = {}): Promise<TransactionStatusQuery> {
    return this.call({ method: "GET", path: `/v1/transaction_status_queries/${enc(id)}`, query: { wait: params.wait }, idempotent: true, ...options });
  }
  list(params: ListParams = {}, options: CallOptions = {}): PageRequest<TransactionStatusQuery> {
    return this.page<TransactionStatusQuery>("/v1/transaction_status_queries", params as Record<string, unknown>, options);
  }
}

export class BaseClient {
  readonly transport: Transport;
  constructor(bearer: string | undefined, options: ClientOptions = {}, signing: SigningOptions = {}) {
    this.transport = new Transport(bearer, options, signing);
  }
  /** `GET /healthz`. */
  async health(): Promise<Health> {
    return (await this.transport.request<Health>({ method: "GET", path: "/healthz", idempotent: true })).data;
  }
  /** `GET /readyz` (a 503 is an {@link ApiError} whose `body` holds the checks). */
  async ready(): Promise<Health> {
    return (await this.transport.request<Health>({ method: "GET", path: "/readyz", idempotent: true })).data;
  }
  /** A raw request, for routes this SDK does not wrap yet. */
  request<T = unknown>(spec: RequestSpec): Promise<ApiResponse<T>> {
    return this.transport.request<T>(spec);
  }

  /** Reads an event stream, reconnecting with `Last-Event-ID` when the server ends it. */
  async *streamEvents(path: string, options: StreamOptions & { query?: RequestOptions["query"] } = {}): AsyncGenerator<Event> {
    let lastId = options.lastEventId;
    let retryMs = 2000;
    for (;;) {
      const headers: Record<string, string> = lastId ? { "Last-Event-ID": lastId } : {};
      const response = await this.transport.openStream(path, options.query, headers, options.signal);
      if (!response.body) throw new MpesaBridgeError("this fetch cannot stream response bodies");
      let message: SseMessage;
      for await (message of readSse(response.body, (ms) => (retryMs = ms))) {
        if (message.id) lastId = message.id;
        yield JSON.parse(message.data) as Event;
      }
      if (options.reconnect === false || options.signal?.aborted) return;
      await sleep(retryMs, options.signal);
    }
  }
}

/**
 * The server-side client, with a secret key (`sk_test_…` / `sk_live_…`).
 *
 * ```ts
 * const bridge = new MpesaBridge(process.env.MPESA_BRIDGE_KEY!, { baseUrl: "http://127.0.0.1:8000" });
 * const payment = await bridge.payments.create({ phone: "0708374149", amount: 10, account_reference: "INV001" });
 * ```
 */
export class MpesaBridge extends BaseClient {
  readonly payments: Payments;
  readonly checkoutSessions: CheckoutSessions;
  readonly paymentLinks: PaymentLinks;
  readonly reversals: Reversals;
  readonly balanceQueries: BalanceQueries;
  readonly webhookEndpoints: WebhookEndpoints;
  readonly events: Events;
  readonly keys: Keys;
  readonly project: ProjectResource;
  readonly qrCodes: QrCodes;
  readonly c2b: C2B;
  readonly c2bPayments: C2BPayments;
  readonly expectedPayments: ExpectedPayments;
  readonly payouts: Payouts;
  readonly transactionStatusQueries: TransactionStatusQueries;

  constructor(secretKey: string, options: MpesaBridgeOptions = {}) {
    if (!secretKey) throw new MpesaBridgeError("a secret key is required (sk_test_… or sk_live_…)");
    const { signRequests, signingSecret, ...rest } = options;
    super(secretKey, rest, { signRequests, signingSecret });
    this.payments = new Payments(this);
    this.checkoutSessions = new CheckoutSessions(this);
    this.paymentLinks = new PaymentLinks(this);
    this.reversals = new Reversals(this);
    this.balanceQueries = new BalanceQueries(this);
    this.webhookEndpoints = new WebhookEndpoints(this);
    this.events = new Events(this);
    this.keys = new Keys(this);
    this.project = new ProjectResource(this);
    this.qrCodes = new QrCodes(this);
    this.c2b = new C2B(this);
    this.c2bPayments = new C2BPayments(this);
    this.expectedPayments = new ExpectedPayments(this);
    this.payouts = new Payouts(this);
    this.transactionStatusQueries = new TransactionStatusQueries(this);
  }
}

class AdminProjects extends Resource {
  /** The answer holds both secret keys, once. */
  create(params: { name: string; test?: Record<string, unknown>; live?: Record<string, unknown> }, options: CallOptions = {}): Promise<Project> {
    return this.call({ method: "POST", path: "/v1/admin/projects", body: params, idempotent: true, createsSomething: true, ...options });
  }
  list(options: CallOptions = {}): Promise<{ object: "list"; data: Project[] }> {
    return this.call({ method: "GET", path: "/v1/admin/projects", idempotent: true, ...options });
  }
  /** `require_signed_requests`, `confirm_by_query`, `signing_secret: "generate" | "none"`. */
  update(id: string, params: { require_signed_requests?: boolean; confirm_by_query?: boolean; signing_secret?: "generate" | "none" }, options: CallOptions = {}): Promise<Project> {
    return this.call({ method: "PATCH", path: `/v1/admin/projects/${enc(id)}`, body: params, idempotent: true, ...options });
  }
  setDaraja(id: string, mode: "test" | "live", params: Record<string, unknown>, options: CallOptions = {}): Promise<Record<string, unknown>> {
    return this.call({ method: "PUT", path: `/v1/admin/projects/${enc(id)}/daraja/${mode}`, body: params, idempotent: true, ...options });
  }
  /** A project mode's payout approval and limits (`approval_required`, `max_amount`, `daily_limit`). */
  setPayoutSettings(id: string, mode: "test" | "live", params: { approval_required: boolean; max_amount?: number | null; daily_limit?: number | null }, options: CallOptions = {}): Promise<PayoutSettings> {
    return this.call({ method: "PUT", path: `/v1/admin/projects/${enc(id)}/payout_settings/${mode}`, body: params, idempotent: true, ...options });
  }
  createKey(id: string, mode: "test" | "live", options: CallOptions = {}): Promise<ApiKey> {
    return this.call({ method: "POST", path: `/v1/admin/projects/${enc(id)}/keys/${mode}`, idempotent: true, createsSomething: true, ...options });
  }
}

class AdminKeys extends Resource {
  revoke(id: string, options: CallOptions = {}): Promise<ApiKey> {
    return this.call({ method: "POST", path: `/v1/admin/keys/${enc(id)}/revoke`, idempotent: true, ...options });
  }
}

/** The operator's client, with `MPESA_BRIDGE_ADMIN_TOKEN`: projects and keys. Server-side only. */
export class MpesaBridgeAdmin extends BaseClient {
  readonly projects: AdminProjects;
  readonly keys: AdminKeys;
  constructor(adminToken: string, options: ClientOptions = {}) {
    super(adminToken, options);
    this.projects = new AdminProjects(this);
    this.keys = new AdminKeys(this);
  }
}
