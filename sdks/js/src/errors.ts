/**
 * The error tree. Every error the bridge answers becomes an {@link ApiError} subclass carrying the
 * API's stable `code`, its `type`, `param`, the HTTP `status` and the `requestId` (quote it when
 * reporting a problem). Branch on `code`; `message` is for people.
 */

export interface ErrorBody {
  type?: string;
  code?: string;
  message?: string;
  param?: string | null;
  request_id?: string;
}

/** The root of every error this SDK throws. */
export class MpesaBridgeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The request never got an answer: the connection failed, or the timeout passed. */
export class ConnectionError extends MpesaBridgeError {
  readonly cause?: unknown;
  constructor(message: string, cause?: unknown) {
    super(message);
    this.cause = cause;
  }
}

/** The request took longer than the client's `timeoutMs`. */
export class TimeoutError extends ConnectionError {}

/** A webhook's signature, timestamp or headers did not verify. */
export class WebhookVerificationError extends MpesaBridgeError {}

/** An HTTP error answered by the bridge (`{"error": {...}}`). */
export class ApiError extends MpesaBridgeError {
  readonly status: number;
  readonly code: string;
  readonly type: string;
  readonly param: string | null;
  readonly requestId: string | null;
  readonly headers: Headers;
  readonly body: unknown;

  constructor(status: number, error: ErrorBody, headers: Headers, body: unknown) {
    super(error.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = error.code ?? "unknown";
    this.type = error.type ?? "api_error";
    this.param = error.param ?? null;
    this.requestId = error.request_id ?? headers.get("x-request-id");
    this.headers = headers;
    this.body = body;
  }
}

/** 400, 404, 405, 413, 415, 422: the request is wrong; fix it (or its `Idempotency-Key`). */
export class InvalidRequestError extends ApiError {}
/** 401: bad key, client secret, admin token or request signature (`code` says which). */
export class AuthenticationError extends ApiError {}
/** 403: refused, e.g. an origin not allowed for a client secret. */
export class PermissionError extends ApiError {}
/** 404 `resource_missing`. */
export class NotFoundError extends InvalidRequestError {}
/** 409: a conflict such as `idempotency_key_in_use`, `phone_busy`, `duplicate_in_flight`. */
export class ConflictError extends ApiError {}
/** 422 `idempotency_key_reused`: the same key with another request. */
export class IdempotencyError extends InvalidRequestError {}
/** 429: a rate limit; `retryAfter` holds the server's `Retry-After` in seconds. */
export class RateLimitError extends ApiError {
  get retryAfter(): number | null {
    return parseRetryAfter(this.headers.get("retry-after"));
  }
}
/** 5xx: the bridge or Daraja failed. */
export class ServerError extends ApiError {}

/** Builds the error of the right class from an error answer. */
export function errorFromResponse(status: number, body: unknown, headers: Headers): ApiError {
  const envelope = (body && typeof body === "object" && "error" in body ? (body as { error: ErrorBody }).error : null) ?? {
    message: typeof body === "string" && body ? body.slice(0, 200) : `HTTP ${status}`,
  };
  if (status === 401) return new AuthenticationError(status, envelope, headers, body);
  if (status === 403) return new PermissionError(status, envelope, headers, body);
  if (status === 404) return new NotFoundError(status, envelope, headers, body);
  if (status === 409) return new ConflictError(status, envelope, headers, body);
  if (status === 422) return new IdempotencyError(status, envelope, headers, body);
  if (status === 429) return new RateLimitError(status, envelope, headers, body);
  if (status >= 500) return new ServerError(status, envelope, headers, body);
  return new InvalidRequestError(status, envelope, headers, body);
}

/** `Retry-After` in seconds (delta-seconds or an HTTP date), or null. */
export function parseRetryAfter(value: string | null): number | null {
  if (value == null || value === "") return null;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  if (Number.isNaN(at)) return null;
  return Math.max(0, (at - Date.now()) / 1000);
}
