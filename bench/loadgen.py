"""The load generator: its own process, raw HTTP/1.1 over keep-alive connections on loopback.

    python -m bench.loadgen SPEC.json OUT.json

SPEC: {"host", "port", "connections", "requests": [[method, path, {headers}, body], ...]}
or, instead of "requests", {"request": [method, path, {headers}, body], "count": N}.
Each connection takes the next request when its previous answer is complete (a closed loop), so
at most `connections` requests are in flight. OUT: per-request latencies (s), statuses, the
wall-clock window and the number of connection errors.

Written for this harness (no dependency): a Python HTTP client library would cost more CPU per
request than the server under test, and on two cores that would measure the client.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from typing import Any

Request = tuple[bytes, int]  # rendered bytes, index


def render(method: str, path: str, headers: dict[str, str], body: str, host: str) -> bytes:
    raw = body.encode()
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(raw)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + raw


async def read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = -1
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        lname = name.strip().lower()
        if lname == b"content-length":
            length = int(value)
        elif lname == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length > 0:
        await reader.readexactly(length)
    return status


async def worker(
    host: str, port: int, queue: list[Request], latencies: list[float], statuses: Counter[int], errors: list[str]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while queue:
            payload, index = queue.pop()
            started = time.perf_counter()
            writer.write(payload)
            try:
                status = await read_response(reader)
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                errors.append(repr(exc))
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                continue
            latencies[index] = time.perf_counter() - started
            statuses[status] += 1
    finally:
        writer.close()


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    host, port = spec["host"], int(spec["port"])
    hostport = f"{host}:{port}"
    if "requests" in spec:
        rendered = [render(*r, host=hostport) for r in spec["requests"]]
    else:
        one = render(*spec["request"], host=hostport)
        rendered = [one] * int(spec["count"])
    queue: list[Request] = [(payload, i) for i, payload in enumerate(rendered)]
    queue.reverse()  # pop() from the end keeps the given order
    latencies = [float("nan")] * len(rendered)
    statuses: Counter[int] = Counter()
    errors: list[str] = []
    started_wall, started = time.time(), time.perf_counter()
    connections = min(int(spec.get("connections", 64)), max(1, len(rendered)))
    await asyncio.gather(*(worker(host, port, queue, latencies, statuses, errors) for _ in range(connections)))
    elapsed = time.perf_counter() - started
    return {
        "started_at": started_wall,
        "elapsed": elapsed,
        "count": len(rendered),
        "latencies": latencies,
        "statuses": {str(k): v for k, v in statuses.items()},
        "errors": errors[:20],
        "error_count": len(errors),
    }


def main() -> None:
    spec_path, out_path = sys.argv[1], sys.argv[2]
    with open(spec_path) as handle:
        spec = json.load(handle)
    try:
        import uvloop

        result = uvloop.run(run(spec))
    except ImportError:  # pragma: no cover
        result = asyncio.run(run(spec))
    with open(out_path, "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main()
