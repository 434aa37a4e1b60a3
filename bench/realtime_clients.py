"""B3's live subscribers and callback sender: their own process, raw sockets, uvloop.

    python -m bench.realtime_clients SPEC.json OUT.json

SPEC: {"host", "port", "senders",
       "groups": [{"name", "concurrency", "deadline" (s, optional),
                   "subscribers": [{"kind": "sse", "path"} | {"kind": "sio", "path": "/socket.io/", "auth"}, …]}, …],
       "phases": {name: {"rate": callbacks/s, "timeout": s, "callbacks": [[subscriber, path, body], …]}}}

Subscribers are numbered across the groups, in order. The process is driven over stdin/stdout,
one line each way, so that the orchestrator can read the server's CPU and memory between steps:

    ← "open <group>"   → "opened <ready> <failed> <seconds> <skipped>"   at most `concurrency`
                         handshakes at a time; none started after `deadline` s (skipped)
    ← "drop <group>"   → "dropped <group>"      close that group's connections
    ← "phase <name>"   → "done <name>"          post the callbacks at `rate`, wait for the events
    ← "count"          → "open <n>"             connections still open
    ← "exit"                                    close everything, write OUT, exit

A subscriber is ready once the server has really set it up: an SSE stream when its first event
(the payment's `payment.created`) arrived, a Socket.IO socket when its namespace connect was
accepted. Delivery latency is measured per payment: from the moment the callback's `200`
answer was read to the moment the subscriber's `payment.succeeded` arrived, both on this
process's monotonic clock (`Protocol.data_received` takes its timestamp before any parsing).

The clients are asyncio Protocols speaking HTTP/1.1, SSE, WebSocket and Engine.IO 4 /
Socket.IO 5 just far enough for this (websocket transport only, no compression): a client
library would spend more CPU per message than the server does, on the same two cores.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import resource
import sys
import time
from typing import Any

SUCCEEDED = b"event: payment.succeeded"
CREATED = b"event: payment.created"
TAIL = 64  # bytes of an SSE stream kept between reads, so that a marker split across reads is found


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Subscriber(asyncio.Protocol):
    """One live client. `ready` resolves when set up (or with the reason it failed)."""

    def __init__(self, index: int, host: str) -> None:
        self.index = index
        self.host = host
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self.got_at: float | None = None  # when payment.succeeded arrived
        self.on_event: Any = None  # called once it has
        self.open = False
        self.error: str | None = None
        self._head = bytearray()
        self._headers_done = False

    def _ready(self, error: str | None = None) -> None:
        if not self.ready.done():
            self.error = error
            self.ready.set_result(error)

    def _got(self, now: float) -> None:
        self.got_at = now
        if self.on_event is not None:
            self.on_event()

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        self._ready(f"closed before ready: {exc!r}")

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _split_head(self, data: bytes, expect: bytes) -> bytes | None:
        """Collect the response head; None until complete, then what came after it."""
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end < 0:
            return None
        head, rest = bytes(self._head[:end]), bytes(self._head[end + 4 :])
        self._head = bytearray()
        self._headers_done = True
        if not head.startswith(expect, 9):
            self._ready(f"status {head[9:12].decode(errors='replace')}")
            self.close()
            return None
        self.open = True
        return rest


class SseSubscriber(Subscriber):
    def __init__(self, index: int, host: str, path: str) -> None:
        super().__init__(index, host)
        self.path = path
        self._tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        request = f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nAccept: text/event-stream\r\n\r\n"
        self.transport.write(request.encode())

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        if not self._headers_done:
            rest = self._split_head(data, b"200")
            if rest is None:
                return
            data = rest
        if self.got_at is not None:
            return
        buf = self._tail + data
        if not self.ready.done() and CREATED in buf:
            self._ready()
        if SUCCEEDED in buf:
            self._got(now)
        self._tail = buf[-TAIL:]


class SioSubscriber(Subscriber):
    """Engine.IO 4 over a WebSocket opened directly (no polling first), Socket.IO 5 namespace '/'."""

    def __init__(self, index: int, host: str, path: str, auth: dict[str, Any]) -> None:
        super().__init__(index, host)
        self.path = path
        self.auth = json.dumps(auth).encode()
        self._frames = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {self.path}?EIO=4&transport=websocket HTTP/1.1\r\nHost: {self.host}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        )
        self.transport.write(request.encode())

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        if not self._headers_done:
            rest = self._split_head(data, b"101")
            if rest is None:
                return
            data = rest
        frames = self._frames
        frames += data
        while len(frames) >= 2:
            opcode, length, start = frames[0] & 0x0F, frames[1] & 0x7F, 2
            if length == 126:
                if len(frames) < 4:
                    return
                length, start = int.from_bytes(frames[2:4], "big"), 4
            elif length == 127:
                if len(frames) < 10:
                    return
                length, start = int.from_bytes(frames[2:10], "big"), 10
            if len(frames) < start + length:
                return
            payload = bytes(frames[start : start + length])
            del frames[: start + length]
            self._frame(opcode, payload, now)

    def _frame(self, opcode: int, payload: bytes, now: float) -> None:
        if opcode == 0x9:  # ping
            self._send(payload, 0xA)
        elif opcode == 0x8:  # close
            self._ready("websocket closed")
            self.close()
        elif opcode in (0x1, 0x0):
            self._packet(payload, now)

    def _packet(self, packet: bytes, now: float) -> None:
        kind = packet[:1]
        if kind == b"2":  # Engine.IO ping: answer or be dropped
            self._send(b"3")
        elif kind == b"0":  # Engine.IO open: connect to namespace '/' with the credentials
            self._send(b"40" + self.auth)
        elif kind == b"4":
            sio = packet[1:2]
            if sio == b"0":
                self._ready()
            elif sio == b"4":
                self._ready(f"refused: {packet[2:200].decode(errors='replace')}")
            elif (
                sio == b"2"
                and self.got_at is None
                and packet.startswith(b'42["payment.updated"')
                and b'"payment.succeeded"' in packet
            ):
                self._got(now)
        elif kind == b"1":
            self._ready("engine.io closed")

    def _send(self, payload: bytes, opcode: int = 0x1) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        mask = os.urandom(4)
        length = len(payload)
        head = bytes([0x80 | opcode])
        if length < 126:
            head += bytes([0x80 | length])
        else:
            head += bytes([0x80 | 126]) + length.to_bytes(2, "big")
        masked = (int.from_bytes(payload, "big") ^ int.from_bytes((mask * (length // 4 + 1))[:length], "big")).to_bytes(
            length, "big"
        )
        self.transport.write(head + mask + masked)


# --- the callback sender ------------------------------------------------------------------------


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return int(head[9:12])


async def send_paced(
    host: str, port: int, callbacks: list[list[Any]], rate: float, senders: int
) -> tuple[list[float], list[float], list[str], float]:
    """POST each callback at its time (i / rate after the start) on a pool of keep-alive
    connections. Returns, per callback, when its answer was read and how long it took."""
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(min(senders, len(callbacks)) or 1):
        pool.put_nowait(await asyncio.open_connection(host, port))
    acked = [float("nan")] * len(callbacks)
    took = [float("nan")] * len(callbacks)
    errors: list[str] = []

    async def post(i: int, path: str, body: str) -> None:
        raw = body.encode()
        request = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(raw)}\r\n\r\n"
        ).encode() + raw
        reader, writer = await pool.get()
        try:
            started = time.perf_counter()
            writer.write(request)
            status = await _read_response(reader)
            done = time.perf_counter()
            if status == 200:
                acked[i], took[i] = done, done - started
            else:
                errors.append(f"callback {i}: status {status}")
        except (OSError, asyncio.IncompleteReadError) as exc:
            errors.append(f"callback {i}: {exc!r}")
            writer.close()
            reader, writer = await asyncio.open_connection(host, port)
        finally:
            pool.put_nowait((reader, writer))

    tasks = []
    t0 = time.perf_counter()
    for i, (_, path, body) in enumerate(callbacks):
        delay = t0 + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(post(i, path, body)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - t0
    while not pool.empty():
        pool.get_nowait()[1].close()
    return acked, took, errors, elapsed


# --- the process --------------------------------------------------------------------------------


async def open_all(
    host: str, port: int, specs: list[dict[str, Any]], first: int, concurrency: int, deadline: float | None
) -> tuple[list[Subscriber], list[str], int]:
    """Open every subscriber, at most `concurrency` handshakes at a time; none is started after
    `deadline` seconds (those are counted as skipped)."""
    loop = asyncio.get_running_loop()
    hostport = f"{host}:{port}"
    gate = asyncio.Semaphore(concurrency)
    subscribers: list[Subscriber] = []
    errors: list[str] = []
    skipped = 0
    stop_at = time.perf_counter() + deadline if deadline else float("inf")

    def make(index: int, spec: dict[str, Any]) -> Subscriber:
        if spec["kind"] == "sse":
            return SseSubscriber(index, hostport, spec["path"])
        return SioSubscriber(index, hostport, spec["path"], spec["auth"])

    async def one(index: int, spec: dict[str, Any]) -> None:
        nonlocal skipped
        async with gate:
            if time.perf_counter() > stop_at:
                skipped += 1
                return
            subscriber = make(index, spec)
            subscribers.append(subscriber)
            try:
                await loop.create_connection(lambda: subscriber, host, port)
                error = await asyncio.wait_for(subscriber.ready, 60)
            except (OSError, TimeoutError) as exc:
                error = repr(exc)
                subscriber.error = error
            if error is not None:
                errors.append(f"{spec['kind']} {index}: {error}")

    await asyncio.gather(*(one(first + i, spec) for i, spec in enumerate(specs)))
    subscribers.sort(key=lambda s: s.index)
    return subscribers, errors, skipped


async def run_phase(
    host: str, port: int, by_index: dict[int, Subscriber], phase: dict[str, Any], senders: int
) -> dict[str, Any]:
    callbacks = phase["callbacks"]
    targets = [by_index[c[0]] for c in callbacks]
    all_in = asyncio.Event()
    remaining = len(targets)

    def arrived() -> None:
        nonlocal remaining
        remaining -= 1
        if remaining <= 0:
            all_in.set()

    for target in targets:
        target.on_event = arrived
    acked, took, errors, elapsed = await send_paced(host, port, callbacks, float(phase["rate"]), senders)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_in.wait(), float(phase.get("timeout", 10)))
    latencies = [
        (t.got_at - a) if t.got_at is not None and a == a else float("nan") for t, a in zip(targets, acked, strict=True)
    ]
    return {
        "sent": len(callbacks),
        "acked": sum(1 for a in acked if a == a),
        "delivered": sum(1 for t in targets if t.got_at is not None),
        "missing": [c[0] for c, t in zip(callbacks, targets, strict=True) if t.got_at is None][:20],
        "latencies": latencies,
        "ack_latencies": took,
        "send_elapsed": elapsed,
        "errors": errors[:20],
        "error_count": len(errors),
    }


async def main_async(spec: dict[str, Any]) -> dict[str, Any]:
    host, port = spec["host"], int(spec["port"])
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    groups: dict[str, dict[str, Any]] = {}
    first = 0
    for group in spec["groups"]:
        groups[group["name"]] = {**group, "first": first, "open": []}
        first += len(group["subscribers"])
    by_index: dict[int, Subscriber] = {}
    result: dict[str, Any] = {"groups": {}, "phases": {}}
    while line := (await stdin.readline()).decode().strip():
        command, _, argument = line.partition(" ")
        if command == "open":
            group = groups[argument]
            started = time.perf_counter()
            subscribers, errors, skipped = await open_all(
                host,
                port,
                group["subscribers"],
                group["first"],
                int(group.get("concurrency", 100)),
                group.get("deadline"),
            )
            elapsed = time.perf_counter() - started
            group["open"] = subscribers
            by_index.update((s.index, s) for s in subscribers)
            ready = sum(1 for s in subscribers if s.error is None)
            result["groups"][argument] = {
                "wanted": len(group["subscribers"]),
                "ready": ready,
                "skipped": skipped,
                "seconds": elapsed,
                "errors": errors[:20],
                "error_count": len(errors),
            }
            print(f"opened {ready} {len(errors)} {elapsed:.3f} {skipped}", flush=True)
        elif command == "drop":
            for subscriber in groups[argument]["open"]:
                subscriber.close()
                by_index.pop(subscriber.index, None)
            groups[argument]["open"] = []
            await asyncio.sleep(0.05)
            print(f"dropped {argument}", flush=True)
        elif command == "phase":
            phase = spec["phases"][argument]
            result["phases"][argument] = await run_phase(host, port, by_index, phase, int(spec["senders"]))
            print(f"done {argument}", flush=True)
        elif command == "count":
            print(f"open {sum(1 for s in by_index.values() if s.open)}", flush=True)
        elif command == "exit":
            break
    for subscriber in by_index.values():
        subscriber.close()
    await asyncio.sleep(0.1)
    return result


def main() -> None:
    spec_path, out_path = sys.argv[1], sys.argv[2]
    with open(spec_path) as handle:
        spec = json.load(handle)
    raise_fd_limit()
    try:
        import uvloop

        result = uvloop.run(main_async(spec))
    except ImportError:  # pragma: no cover
        result = asyncio.run(main_async(spec))
    with open(out_path, "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main()
