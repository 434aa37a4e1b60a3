/**
 * `verifyWebhook`: checks a delivery's Standard Webhooks headers (`webhook-id`,
 * `webhook-timestamp`, `webhook-signature`) against the endpoint's `whsec_…` secret, on the raw
 * body, with WebCrypto or `node:crypto`; then parses it.
 */

import { WebhookVerificationError } from "./errors.js";
import { constantTimeEqual, fromBase64, hmacSha256, toBase64, toBytes, type CryptoImplementation } from "./crypto.js";
import type { Event } from "./types.js";

export type HeaderSource = Headers | Record<string, string | string[] | undefined>;

export interface VerifyOptions {
  /** Refuse a timestamp further than this from now, either way (default 300 s). */
  toleranceSeconds?: number;
  /** `"webcrypto"`, `"node"` or `"auto"` (WebCrypto when present, else node:crypto). */
  crypto?: CryptoImplementation;
  /** The clock, in seconds (tests). */
  now?: () => number;
}

function header(headers: HeaderSource, name: string): string | undefined {
  if (typeof (headers as Headers).get === "function") return (headers as Headers).get(name) ?? undefined;
  const record = headers as Record<string, string | string[] | undefined>;
  for (const key of Object.keys(record)) {
    if (key.toLowerCase() === name) {
      const v = record[key];
      return Array.isArray(v) ? v[0] : v;
    }
  }
  return undefined;
}

function secretBytes(secret: string): Uint8Array {
  const raw = secret.startsWith("whsec_") ? secret.slice("whsec_".length) : secret;
  try {
    return fromBase64(raw);
  } catch {
    throw new WebhookVerificationError("the webhook secret is not a whsec_ secret");
  }
}

/**
 * Verifies and parses one delivery. `payload` must be the raw body (a string or the bytes as
 * received), not JSON parsed and serialised again. `secret` may be a list (during a rotation).
 * Throws {@link WebhookVerificationError}.
 */
export async function verifyWebhook<T = Record<string, unknown>>(
  payload: string | Uint8Array | ArrayBuffer,
  headers: HeaderSource,
  secret: string | string[],
  options: VerifyOptions = {},
): Promise<Event<T>> {
  const id = header(headers, "webhook-id");
  const timestamp = header(headers, "webhook-timestamp");
  const signatures = header(headers, "webhook-signature");
  if (!id || !timestamp || !signatures) throw new WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature");
  if (!/^\d{1,12}$/.test(timestamp)) throw new WebhookVerificationError("invalid webhook-timestamp");
  const now = options.now ? options.now() : Math.floor(Date.now() / 1000);
  const tolerance = options.toleranceSeconds ?? 300;
  if (Math.abs(now - Number(timestamp)) > tolerance) throw new WebhookVerificationError("webhook-timestamp is too old or too new");
  const body = toBytes(payload);
  const head = toBytes(`${id}.${timestamp}.`);
  const message = new Uint8Array(head.length + body.length);
  message.set(head, 0);
  message.set(body, head.length);
  const given = signatures
    .split(" ")
    .map((part) => part.trim())
    .filter((part) => part.startsWith("v1,"))
    .map((part) => part.slice(3));
  for (const s of Array.isArray(secret) ? secret : [secret]) {
    const expected = toBase64(await hmacSha256(secretBytes(s), message, options.crypto ?? "auto"));
    if (given.some((g) => constantTimeEqual(g, expected))) {
      const text = typeof payload === "string" ? payload : new TextDecoder().decode(body);
      try {
        return JSON.parse(text) as Event<T>;
      } catch {
        throw new WebhookVerificationError("the payload is not JSON");
      }
    }
  }
  throw new WebhookVerificationError("no signature matches");
}
