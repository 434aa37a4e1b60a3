/**
 * Server-Sent Events: `EventSource` where the platform has one and the credential may go in the URL
 * (a client secret), otherwise a reader over `fetch`'s body stream (Node, React Native with
 * streaming fetch, or a secret key that must stay in a header and may need signing).
 */

export interface SseMessage {
  /** The `event:` field (`payment.succeeded`, …); `message` when absent. */
  event: string;
  data: string;
  /** The last `id:` seen on the stream (kept across messages, as EventSource does). */
  id: string | null;
}

/** Parses an SSE byte stream into messages (WHATWG HTML §9.2 rules: fields, comments, `retry`). */
export async function* readSse(body: ReadableStream<Uint8Array>, onRetry?: (ms: number) => void): AsyncGenerator<SseMessage> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let lastId: string | null = null;
  let event = "";
  let data: string[] = [];
  let sawId = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let index: number;
      while ((index = buffer.search(/\r\n|\r|\n/)) >= 0) {
        const line = buffer.slice(0, index);
        const sepLength = buffer.startsWith("\r\n", index) ? 2 : 1;
        buffer = buffer.slice(index + sepLength);
        if (line === "") {
          if (data.length > 0) {
            yield { event: event || "message", data: data.join("\n"), id: lastId };
          } else if (sawId) {
            // A message with only an id (the bridge's resume point): no event, but the id sticks.
          }
          event = "";
          data = [];
          sawId = false;
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "event") event = value;
        else if (field === "data") data.push(value);
        else if (field === "id" && !value.includes("\0")) {
          lastId = value;
          sawId = true;
        } else if (field === "retry" && /^\d+$/.test(value)) onRetry?.(Number(value));
      }
    }
  } finally {
    reader.releaseLock();
    try {
      await body.cancel();
    } catch {
      /* already closed */
    }
  }
}

/** The platform's EventSource, if any. */
export function nativeEventSource(): (new (url: string) => EventSourceLike) | undefined {
  return (globalThis as { EventSource?: new (url: string) => EventSourceLike }).EventSource;
}

export interface EventSourceLike {
  addEventListener(type: string, listener: (e: { data: string; lastEventId?: string }) => void): void;
  close(): void;
  onerror: ((e: unknown) => void) | null;
}
