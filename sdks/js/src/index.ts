/**
 * mpesa-bridge: the TypeScript/JavaScript client of the mpesa-bridge payments gateway.
 * Zero runtime dependencies: `fetch`, WebCrypto or `node:crypto`. Node 18+, browsers, React Native.
 */

export { MpesaBridge, MpesaBridgeAdmin, BaseClient, PageRequest, type ProjectSettings, type ProjectSettingsUpdateParams } from "./client.js";
export type { MpesaBridgeOptions, CallOptions, StreamOptions, WaitOptions } from "./client.js";
export { Transport, signRequest, newIdempotencyKey } from "./http.js";
export type { ClientOptions, SigningOptions, RequestOptions, RequestSpec, ApiResponse, FetchLike } from "./http.js";
export { verifyWebhook, type VerifyOptions, type HeaderSource } from "./webhooks.js";
export { readSse, type SseMessage } from "./sse.js";
export { CheckoutClient, watchPayment, idOfClientSecret, outcomeOf, type CheckoutOutcome, type WatchOptions } from "./browser.js";
export * from "./errors.js";
export * from "./types.js";
