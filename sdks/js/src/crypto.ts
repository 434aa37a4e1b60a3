/**
 * HMAC-SHA256 with WebCrypto (browsers, React Native with a WebCrypto polyfill, Node 19+) or
 * `node:crypto` (Node 18, or when asked). Nothing here is a runtime dependency.
 */

export type CryptoImplementation = "auto" | "webcrypto" | "node";

const encoder = new TextEncoder();

export function toBytes(data: string | Uint8Array | ArrayBuffer): Uint8Array {
  if (typeof data === "string") return encoder.encode(data);
  if (data instanceof Uint8Array) return data;
  return new Uint8Array(data);
}

function subtle(): SubtleCrypto | undefined {
  const c = (globalThis as { crypto?: Crypto }).crypto;
  return c && c.subtle ? c.subtle : undefined;
}

type NodeCrypto = {
  createHmac(alg: string, key: Uint8Array): { update(d: Uint8Array): { digest(): Uint8Array } };
  timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean;
  webcrypto?: Crypto;
  randomUUID?: () => string;
};

let nodeCrypto: Promise<NodeCrypto> | undefined;
/** `node:crypto`, loaded only when used (so browsers and bundlers never meet it). */
export function loadNodeCrypto(): Promise<NodeCrypto> {
  if (!nodeCrypto) {
    const specifier = "node:crypto";
    nodeCrypto = import(/* webpackIgnore: true */ specifier) as Promise<NodeCrypto>;
  }
  return nodeCrypto;
}

export async function hmacSha256(
  key: string | Uint8Array,
  message: Uint8Array,
  implementation: CryptoImplementation = "auto",
): Promise<Uint8Array> {
  const keyBytes = toBytes(key);
  const webcrypto = subtle();
  if (implementation === "webcrypto" || (implementation === "auto" && webcrypto)) {
    const s = webcrypto ?? (await loadNodeCrypto()).webcrypto?.subtle;
    if (!s) throw new Error("WebCrypto (crypto.subtle) is not available here");
    const cryptoKey = await s.importKey("raw", keyBytes as BufferSource, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    return new Uint8Array(await s.sign("HMAC", cryptoKey, message as BufferSource));
  }
  const node = await loadNodeCrypto();
  return new Uint8Array(node.createHmac("sha256", keyBytes).update(message).digest());
}

export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

export function toBase64(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    out += B64[(n >> 18) & 63] + B64[(n >> 12) & 63];
    out += i + 1 < bytes.length ? B64[(n >> 6) & 63] : "=";
    out += i + 2 < bytes.length ? B64[n & 63] : "=";
  }
  return out;
}

export function fromBase64(text: string): Uint8Array {
  const clean = text.replace(/[\s=]/g, "").replace(/-/g, "+").replace(/_/g, "/");
  const out: number[] = [];
  let buffer = 0;
  let bits = 0;
  for (const ch of clean) {
    const v = B64.indexOf(ch);
    if (v < 0) throw new Error("invalid base64");
    buffer = (buffer << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push((buffer >> bits) & 255);
    }
  }
  return new Uint8Array(out);
}

/** Compares in time that does not depend on where the inputs differ. */
export function constantTimeEqual(a: string, b: string): boolean {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

/** A random Idempotency-Key (a UUID v4). */
export function randomKey(): string {
  const c = (globalThis as { crypto?: Crypto }).crypto;
  if (c && typeof c.randomUUID === "function") return c.randomUUID();
  const bytes = new Uint8Array(16);
  if (c && typeof c.getRandomValues === "function") c.getRandomValues(bytes);
  else for (let i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const h = toHex(bytes);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
