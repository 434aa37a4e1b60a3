/**
 * The transport: one `fetch` call per attempt, JSON in and out, signing, retries and their backoff.
 *
 * Retries only where they are safe:
 * - a connection that failed before anything was sent (DNS, refused, reset while connecting) — any
 *   request, since the bridge never saw it;
 * - `429`, after its `Retry-After` (capped by `maxRetryDelayMs`);
 * - `5xx` and timeouts, only for idempotent requests: GET/DELETE, and POSTs carrying an
 *   `Idempotency-Key` on a route that honours it (the same key is sent on every retry).
 * A `409 idempotency_key_in_use` is also retried with the same key (the first try is still running).
 */

import { ConnectionError, TimeoutError, errorFromResponse, parseRetryAfter, ApiError } from "./errors.js";
import { hmacSha256, loadNodeCrypto, randomKey, toBytes, toHex } from "./crypto.js";

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export interface ClientOptions {
  /** The bridge's address, e.g. `http://127.0.0.1:8000` (default `MPESA_BRIDGE_URL` or that). */
  baseUrl?: string;
  /** Retries after the first try (default 2). */
  maxRetries?: number;
  /** Per-attempt timeout (default 30 000 ms). */
  timeoutMs?: number;
  /** First backoff delay (default 500 ms), doubled each retry with jitter. */
  retryDelayMs?: number;
  /** Cap of one backoff or `Retry-After` wait (default 20 000 ms). */
  maxRetryDelayMs?: number;
  /** A `fetch` of your own (default the global one). */
  fetch?: FetchLike;
  /** Extra headers on every request. */
  headers?: Record<string, string>;
}

export interface SigningOptions {
  /** Sign every request (`MB-Timestamp`, `MB-Signature`), for projects with `require_signed_requests`. */
  signRequests?: boolean;
  /** The project's `mbsig_…` signing secret; implies `signRequests`. Without it the key signs. */
  signingSecret?: string;
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | null | undefined>;
  body?: unknown;
  /** Send this Idempotency-Key (one is generated for creates when not given). */
  idempotencyKey?: string;
  /** Extra headers for this request. */
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

export interface RequestSpec extends RequestOptions {
  method: string;
  path: string;
  /** True when repeating the request cannot do anything twice. */
  idempotent: boolean;
  /** Generate an Idempotency-Key unless one is given. */
  createsSomething?: boolean;
  /** Read the body as bytes instead of JSON. */
  binary?: boolean;
}

export interface ApiResponse<T> {
  data: T;
  status: number;
  headers: Headers;
  requestId: string | null;
}

const DEFAULT_URL = "http://127.0.0.1:8000";

function envUrl(): string | undefined {
  const p = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  return p?.env?.MPESA_BRIDGE_URL;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

export { sleep };

/** True when a fetch error means nothing reached the server (so any request may be sent again). */
function failedBeforeSending(error: unknown): boolean {
  const codes = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "ECONNRESET_BEFORE_SEND", "UND_ERR_CONNECT_TIMEOUT", "EHOSTUNREACH", "ENETUNREACH", "EADDRNOTAVAIL"]);
  let e: unknown = error;
  for (let depth = 0; e && depth < 5; depth++) {
    const code = (e as { code?: string }).code;
    if (code && codes.has(code)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/** Serialises, signs and sends requests; shared by the secret-key and browser clients. */
export class Transport {
  readonly baseUrl: string;
  private readonly bearer: string | undefined;
  private readonly options: Required<Omit<ClientOptions, "baseUrl" | "fetch" | "headers">>;
  private readonly fetchImpl: FetchLike;
  private readonly extraHeaders: Record<string, string>;
  private readonly signing: SigningOptions;

  constructor(bearer: string | undefined, options: ClientOptions = {}, signing: SigningOptions = {}) {
    this.bearer = bearer;
    this.baseUrl = (options.baseUrl ?? envUrl() ?? DEFAULT_URL).replace(/\/+$/, "");
    this.options = {
      maxRetries: options.maxRetries ?? 2,
      timeoutMs: options.timeoutMs ?? 30_000,
      retryDelayMs: options.retryDelayMs ?? 500,
      maxRetryDelayMs: options.maxRetryDelayMs ?? 20_000,
    };
    const f = options.fetch ?? (globalThis as { fetch?: FetchLike }).fetch;
    if (!f) throw new Error("mpesa-bridge: no global fetch; pass options.fetch");
    this.fetchImpl = f;
    this.extraHeaders = options.headers ?? {};
    this.signing = signing;
  }

  /** `path?query` exactly as it will be sent (what a signature covers). */
  pathWithQuery(path: string, query?: RequestOptions["query"]): string {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query ?? {})) {
      if (v !== undefined && v !== null) params.append(k, String(v));
    }
    const qs = params.toString();
    return qs ? `${path}?${qs}` : path;
  }

  /** The headers of one attempt: auth, JSON, the signature (new timestamp each attempt). */
  async headersFor(method: string, target: string, body: Uint8Array | undefined, extra?: Record<string, string>): Promise<Record<string, string>> {
    const headers: Record<string, string> = { Accept: "application/json", ...this.extraHeaders, ...(extra ?? {}) };
    if (this.bearer) headers.Authorization = `Bearer ${this.bearer}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if ((this.signing.signRequests || this.signing.signingSecret) && this.bearer) {
      const secret = this.signing.signingSecret ?? this.bearer;
      Object.assign(headers, await signRequest(secret, method, target, body ?? new Uint8Array(), this.timestampFor(method, target, body)));
    }
    return headers;
  }

  /**
   * The bridge accepts each signature once, and a timestamp has a resolution of one second: the
   * same request twice within a second would sign the same. Such a repeat gets the next second
   * (the bridge accepts timestamps up to its tolerance ahead); `signature_replayed` is retried too.
   */
  private readonly lastTimestamps = new Map<string, number>();
  private timestampFor(method: string, target: string, body: Uint8Array | undefined): number {
    const now = Math.floor(Date.now() / 1000);
    const key = `${method}\n${target}\n${body ? new TextDecoder().decode(body) : ""}`;
    const last = this.lastTimestamps.get(key);
    const ts = last !== undefined && last >= now ? last + 1 : now;
    if (this.lastTimestamps.size > 1000) {
      for (const [k, v] of this.lastTimestamps) if (v < now - 1) this.lastTimestamps.delete(k);
    }
    this.lastTimestamps.set(key, ts);
    return ts;
  }

  async request<T>(spec: RequestSpec): Promise<ApiResponse<T>> {
    const target = this.pathWithQuery(spec.path, spec.query);
    const body = spec.body === undefined ? undefined : toBytes(JSON.stringify(spec.body));
    let idempotencyKey = spec.idempotencyKey;
    if (!idempotencyKey && spec.createsSomething) idempotencyKey = await newIdempotencyKey();
    const extra: Record<string, string> = { ...(spec.headers ?? {}) };
    if (idempotencyKey) extra["Idempotency-Key"] = idempotencyKey;
    // A POST is safe to repeat only when the route honours the key it carries.
    const repeatable = spec.idempotent;
    for (let attempt = 0; ; attempt++) {
      const last = attempt >= this.options.maxRetries;
      const headers = await this.headersFor(spec.method, target, body, extra);
      let response: Response;
      const controller = new AbortController();
      const onAbort = () => controller.abort(spec.signal?.reason);
      spec.signal?.addEventListener("abort", onAbort, { once: true });
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        controller.abort();
      }, this.options.timeoutMs);
      try {
        response = await this.fetchImpl(this.baseUrl + target, {
          method: spec.method,
          headers,
          body: body as BodyInit | undefined,
          signal: controller.signal,
        });
      } catch (error) {
        clearTimeout(timer);
        spec.signal?.removeEventListener("abort", onAbort);
        if (spec.signal?.aborted) throw spec.signal.reason ?? error;
        const wrapped = timedOut
          ? new TimeoutError(`${spec.method} ${spec.path} timed out after ${this.options.timeoutMs} ms`, error)
          : new ConnectionError(`${spec.method} ${spec.path} failed: ${(error as Error)?.message ?? error}`, error);
        const safe = failedBeforeSending(error) || repeatable;
        if (last || !safe) throw wrapped;
        await sleep(this.backoff(attempt), spec.signal);
        continue;
      }
      let parsed: unknown;
      try {
        if (spec.binary && response.ok) {
          parsed = new Uint8Array(await response.arrayBuffer());
        } else {
          const text = await response.text();
          try {
            parsed = text ? JSON.parse(text) : null;
          } catch {
            parsed = text;
          }
        }
      } finally {
        clearTimeout(timer);
        spec.signal?.removeEventListener("abort", onAbort);
      }
      if (response.ok) {
        return { data: parsed as T, status: response.status, headers: response.headers, requestId: response.headers.get("x-request-id") };
      }
      const error = errorFromResponse(response.status, parsed, response.headers);
      if (last || !this.shouldRetry(error, repeatable)) throw error;
      await sleep(this.delayFor(error, attempt), spec.signal);
    }
  }

  private shouldRetry(error: ApiError, repeatable: boolean): boolean {
    if (error.status === 429) return true;
    if (error.status === 409 && error.code === "idempotency_key_in_use") return true;
    // Refused before running: signed again with a new timestamp, the retry is a new request.
    if (error.status === 401 && error.code === "signature_replayed") return true;
    return error.status >= 500 && repeatable;
  }

  private delayFor(error: ApiError, attempt: number): number {
    const retryAfter = parseRetryAfter(error.headers.get("retry-after"));
    if (retryAfter !== null) return Math.min(retryAfter * 1000, this.options.maxRetryDelayMs);
    return this.backoff(attempt);
  }

  private backoff(attempt: number): number {
    const base = this.options.retryDelayMs * 2 ** attempt;
    const jittered = base * (0.75 + Math.random() * 0.5);
    return Math.min(jittered, this.options.maxRetryDelayMs);
  }

  /** A raw streaming GET (for Server-Sent Events), signed like any request; no retries here. */
  async openStream(path: string, query: RequestOptions["query"], extra: Record<string, string>, signal?: AbortSignal): Promise<Response> {
    const target = this.pathWithQuery(path, query);
    const headers = await this.headersFor("GET", target, undefined, { Accept: "text/event-stream", ...extra });
    let response: Response;
    try {
      response = await this.fetchImpl(this.baseUrl + target, { method: "GET", headers, signal });
    } catch (error) {
      if (signal?.aborted) throw signal.reason ?? error;
      throw new ConnectionError(`GET ${path} failed: ${(error as Error)?.message ?? error}`, error);
    }
    if (!response.ok) {
      const text = await response.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        /* not JSON */
      }
      throw errorFromResponse(response.status, parsed, response.headers);
    }
    return response;
  }

  get fetch(): FetchLike {
    return this.fetchImpl;
  }
}

/** The `MB-Timestamp` and `MB-Signature` headers the bridge checks (docs/api.md, "Signed requests"). */
export async function signRequest(
  secret: string,
  method: string,
  pathWithQuery: string,
  body: Uint8Array | string = new Uint8Array(),
  timestamp: number = Math.floor(Date.now() / 1000),
): Promise<{ "MB-Timestamp": string; "MB-Signature": string }> {
  const ts = String(timestamp);
  const head = toBytes(`${ts}\n${method.toUpperCase()}\n${pathWithQuery}\n`);
  const bodyBytes = toBytes(body);
  const message = new Uint8Array(head.length + bodyBytes.length);
  message.set(head, 0);
  message.set(bodyBytes, head.length);
  const digest = await hmacSha256(secret, message);
  return { "MB-Timestamp": ts, "MB-Signature": `v1=${toHex(digest)}` };
}

/** A fresh Idempotency-Key: a random UUID from WebCrypto or node:crypto. */
export async function newIdempotencyKey(): Promise<string> {
  const c = (globalThis as { crypto?: Crypto }).crypto;
  if (c && typeof c.randomUUID === "function") return c.randomUUID();
  try {
    const node = await loadNodeCrypto();
    if (node.randomUUID) return node.randomUUID();
  } catch {
    /* not Node */
  }
  return randomKey();
}
