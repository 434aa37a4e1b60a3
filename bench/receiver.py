"""A webhook receiver for B4, run as its own process: raw asyncio (uvloop when installed), HTTP/1.1 keep-alive.

    python -m bench.receiver --port N

`POST /ok/<anything>` answers 200, `POST /fail/<anything>` answers 500. Every POST is counted per path
with its arrival time (CLOCK_MONOTONIC, the same clock in every process) and its `webhook-id`;
duplicate ids are counted, and an order-independent digest of the ids lets the caller check the set
without shipping it. A few requests per path are kept whole (headers and raw body) for signature
checks. Control routes: `GET /healthz`, `GET /__counts` (distinct ids per path) and `GET /__stats` (JSON),
`POST /__reset`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

SAMPLE_FIRST = 3  # the first requests of every path are kept whole...
SAMPLE_EVERY = 97  # ...and then one in this many
DIGEST_MASK = (1 << 64) - 1


def id_digest(ids: Any) -> int:
    """Sum of the first 8 bytes of SHA-256 of each id, modulo 2**64: the same for the same multiset."""
    total = 0
    for item in ids:
        total += int.from_bytes(hashlib.sha256(item.encode()).digest()[:8], "big")
    return total & DIGEST_MASK


@dataclass
class PathStats:
    count: int = 0
    first: float = 0.0
    last: float = 0.0
    ids: dict[str, int] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "first": self.first,
            "last": self.last,
            "distinct": len(self.ids),
            "duplicates": self.count - len(self.ids),
            "digest": id_digest(self.ids),
            "samples": self.samples,
        }


class State:
    def __init__(self) -> None:
        self.paths: dict[str, PathStats] = {}

    def record(self, path: str, headers: dict[str, str], body: bytes) -> None:
        now = time.monotonic()
        stats = self.paths.get(path)
        if stats is None:
            stats = self.paths[path] = PathStats(first=now)
        stats.count += 1
        stats.last = now
        event_id = headers.get("webhook-id", "")
        stats.ids[event_id] = stats.ids.get(event_id, 0) + 1
        if stats.count <= SAMPLE_FIRST or stats.count % SAMPLE_EVERY == 0:
            stats.samples.append({"headers": headers, "body": body.decode("utf-8", errors="replace")})

    def stats(self) -> bytes:
        return json.dumps({"now": time.monotonic(), "paths": {p: s.summary() for p, s in self.paths.items()}}).encode()


STATE = State()
REASONS = {200: b"OK", 404: b"Not Found", 500: b"Internal Server Error"}


def response(status: int, body: bytes, content_type: bytes = b"text/plain") -> bytes:
    head = b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n" % (
        status,
        REASONS.get(status, b"Status"),
        content_type,
        len(body),
    )
    return head + body


OK = response(200, b"ok")
FAIL = response(500, b"receiver told to fail")


class Receiver(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio.Transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0") or 0)
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            method, path, _ = [*lines[0].split(" ", 2), "", ""][:3]
            assert self.transport is not None
            self.transport.write(self.handle(method, path, headers, body))
            if headers.get("connection", "").lower() == "close":
                self.transport.close()
                return

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
        if method == "POST" and path.startswith(("/ok/", "/fail/")):
            STATE.record(path, headers, body)
            return OK if path.startswith("/ok/") else FAIL
        if path == "/healthz":
            return OK
        if path == "/__counts":
            return response(
                200, json.dumps({p: len(s.ids) for p, s in STATE.paths.items()}).encode(), b"application/json"
            )
        if path == "/__stats":
            return response(200, STATE.stats(), b"application/json")
        if path == "/__reset" and method == "POST":
            STATE.paths.clear()
            return OK
        return response(404, b"not found")


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Receiver, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover
        factory = asyncio.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(serve(args.port))


if __name__ == "__main__":
    main()
