/**
 * The browser-safe subset (`mpesa-bridge/browser`): what a page or an app may do with a checkout
 * session's client secret (read it, pay it, watch it) or a payment's client secret (watch it), and
 * opening a session with a publishable key. No secret key ever goes here.
 */

import { Transport, sleep, type ClientOptions } from "./http.js";
import { readSse, nativeEventSource } from "./sse.js";
import { MpesaBridgeError, TimeoutError } from "./errors.js";
import { FINAL_PAYMENT_STATUSES, type CheckoutSession, type CheckoutSessionCreateParams, type CheckoutSessionPayParams, type Event, type Payment } from "./types.js";

/** The id a client secret belongs to (`cs_…_secret_…` → `cs_…`). */
export function idOfClientSecret(clientSecret: string): string {
  const at = clientSecret.indexOf("_secret_");
  if (at <= 0) throw new MpesaBridgeError("not a client secret (expected <id>_secret_<random>)");
  return clientSecret.slice(0, at);
}

export interface WatchOptions {
  /** Poll the session this often too (default 2 000 ms): a failed payment frees the session without a session event. */
  pollIntervalMs?: number;
  /** Use the session's event stream (default true): EventSource when present, otherwise a fetch reader. */
  stream?: boolean;
  signal?: AbortSignal;
}

export type CheckoutOutcome =
  | { status: "succeeded"; session: CheckoutSession; receipt: string | null }
  | { status: "failed"; session: CheckoutSession; code: string | null; message: string | null }
  | { status: "expired"; session: CheckoutSession };

/** What the session's state means for the customer now, or null while it is still in play. */
export function outcomeOf(session: CheckoutSession): CheckoutOutcome | null {
  if (session.status === "complete") return { status: "succeeded", session, receipt: session.payment?.mpesa_receipt_number ?? null };
  if (session.status === "expired") return { status: "expired", session };
  const p = session.payment;
  if (p && ["failed", "cancelled", "expired"].includes(p.status) && !session.payment_in_flight) {
    return { status: "failed", session, code: p.failure_code, message: p.failure_message };
  }
  return null;
}

/**
 * A checkout session seen from the browser.
 *
 * ```ts
 * const checkout = new CheckoutClient(clientSecret, { baseUrl: "https://bridge.example.com" });
 * await checkout.pay({ phone: "0712345678" });
 * const outcome = await checkout.waitForOutcome();
 * ```
 */
export class CheckoutClient {
  readonly sessionId: string;
  private readonly transport: Transport;
  constructor(readonly clientSecret: string, options: ClientOptions = {}) {
    this.sessionId = idOfClientSecret(clientSecret);
    this.transport = new Transport(clientSecret, options);
  }

  /**
   * Opens a session from the browser with a publishable key (`pk_test_…`/`pk_live_…`) and an
   * amount the browser chose. Works only for projects whose "client-side amounts" setting is on;
   * otherwise the bridge refuses it. Returns a client for the new session.
   */
  static async create(publishableKey: string, params: CheckoutSessionCreateParams, options: ClientOptions = {}): Promise<CheckoutClient> {
    const transport = new Transport(publishableKey, options);
    // No Idempotency-Key (the bridge refuses one from a browser: each try opens its own session), so
    // never re-sent once it may have arrived: a failure before sending is still retried.
    const { data } = await transport.request<CheckoutSession>({ method: "POST", path: "/v1/checkout_sessions", body: params, idempotent: false });
    if (!data.client_secret) throw new MpesaBridgeError("the bridge answered no client_secret");
    return new CheckoutClient(data.client_secret, options);
  }

  /** The session (no metadata), with its latest payment. */
  async retrieve(): Promise<CheckoutSession> {
    return (await this.transport.request<CheckoutSession>({ method: "GET", path: `/v1/checkout_sessions/${encodeURIComponent(this.sessionId)}`, idempotent: true })).data;
  }

  /** Starts the STK push (`amount` only when the customer chooses it). Never retried after sending. */
  async pay(params: CheckoutSessionPayParams): Promise<CheckoutSession> {
    return (await this.transport.request<CheckoutSession>({ method: "POST", path: `/v1/checkout_sessions/${encodeURIComponent(this.sessionId)}/pay`, body: params, idempotent: false })).data;
  }

  /**
   * Calls `listener` with the session whenever it may have changed (a stream event or a poll);
   * returns a function that stops watching.
   */
  watch(listener: (session: CheckoutSession) => void, options: WatchOptions = {}): () => void {
    const controller = new AbortController();
    options.signal?.addEventListener("abort", () => controller.abort(), { once: true });
    const signal = controller.signal;
    let last = "";
    const check = async () => {
      try {
        const session = await this.retrieve();
        const key = JSON.stringify([session.status, session.payment?.id, session.payment?.status, session.payment_in_flight]);
        if (key !== last && !signal.aborted) {
          last = key;
          listener(session);
        }
      } catch {
        /* a failed poll: the next one tries again */
      }
    };
    if (options.stream !== false) {
      const path = `/v1/checkout_sessions/${encodeURIComponent(this.sessionId)}/events`;
      const ES = nativeEventSource();
      if (ES) {
        const source = new ES(`${this.transport.baseUrl}${path}?client_secret=${encodeURIComponent(this.clientSecret)}`);
        for (const type of ["checkout_session.completed", "checkout_session.expired"]) source.addEventListener(type, () => void check());
        signal.addEventListener("abort", () => source.close(), { once: true });
      } else {
        void (async () => {
          while (!signal.aborted) {
            try {
              const response = await this.transport.openStream(path, undefined, {}, signal);
              if (!response.body) return;
              for await (const _message of readSse(response.body)) void check();
              await sleep(2000, signal);
            } catch {
              return; // no stream: polling alone
            }
          }
        })();
      }
    }
    void (async () => {
      while (!signal.aborted) {
        await check();
        try {
          await sleep(options.pollIntervalMs ?? 2000, signal);
        } catch {
          return;
        }
      }
    })();
    return () => controller.abort();
  }

  /** Resolves with the outcome of the payment in flight: succeeded, failed (pay again) or expired. */
  waitForOutcome(options: WatchOptions & { timeoutMs?: number } = {}): Promise<CheckoutOutcome> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        stop();
        reject(new TimeoutError(`no outcome for ${this.sessionId} within ${options.timeoutMs ?? 120_000} ms`));
      }, options.timeoutMs ?? 120_000);
      const stop = this.watch((session) => {
        const outcome = outcomeOf(session);
        if (outcome) {
          clearTimeout(timer);
          stop();
          resolve(outcome);
        }
      }, options);
    });
  }
}

/**
 * Watches one payment with its `client_secret` (from `POST /v1/payments`, handed to the page):
 * resolves once it is final. EventSource when present, otherwise a fetch reader; `pollIntervalMs`
 * polling of the stream's absence is not possible (a client secret opens no REST route), so the
 * stream reconnects until the deadline.
 */
export async function watchPayment(
  clientSecret: string,
  options: ClientOptions & { timeoutMs?: number; onEvent?: (event: Event<Payment>) => void; signal?: AbortSignal } = {},
): Promise<Payment> {
  const id = idOfClientSecret(clientSecret);
  const transport = new Transport(undefined, options);
  const path = `/v1/payments/${encodeURIComponent(id)}/events`;
  const controller = new AbortController();
  options.signal?.addEventListener("abort", () => controller.abort(), { once: true });
  const timeoutMs = options.timeoutMs ?? 120_000;
  return new Promise<Payment>((resolve, reject) => {
    const timer = setTimeout(() => done(new TimeoutError(`payment ${id} not final within ${timeoutMs} ms`)), timeoutMs);
    const done = (value: Payment | Error) => {
      clearTimeout(timer);
      controller.abort();
      if (value instanceof Error) reject(value);
      else resolve(value);
    };
    const onEvent = (event: Event<Payment>) => {
      options.onEvent?.(event);
      if (FINAL_PAYMENT_STATUSES.includes(event.data.object.status)) done(event.data.object);
    };
    const ES = nativeEventSource();
    if (ES) {
      const source = new ES(`${transport.baseUrl}${path}?client_secret=${encodeURIComponent(clientSecret)}`);
      for (const type of ["payment.created", "payment.succeeded", "payment.failed", "payment.cancelled", "payment.expired", "payment.unknown"]) {
        source.addEventListener(type, (e) => onEvent(JSON.parse(e.data)));
      }
      controller.signal.addEventListener("abort", () => source.close(), { once: true });
      return;
    }
    void (async () => {
      let lastId: string | null = null;
      while (!controller.signal.aborted) {
        try {
          const headers: Record<string, string> = lastId ? { "Last-Event-ID": lastId } : {};
          const response = await transport.openStream(path, { client_secret: clientSecret }, headers, controller.signal);
          if (!response.body) return done(new MpesaBridgeError("this fetch cannot stream response bodies"));
          for await (const message of readSse(response.body)) {
            if (message.id) lastId = message.id;
            onEvent(JSON.parse(message.data));
          }
          await sleep(2000, controller.signal);
        } catch (error) {
          if (controller.signal.aborted) return;
          if ((error as { status?: number }).status && (error as { status: number }).status < 500) return done(error as Error);
          try {
            await sleep(2000, controller.signal);
          } catch {
            return;
          }
        }
      }
    })();
  });
}

export { FINAL_PAYMENT_STATUSES };
export type { CheckoutSession, CheckoutSessionCreateParams, CheckoutSessionPayParams, Event, Payment };
export * from "./errors.js";
