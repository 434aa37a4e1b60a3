"""CPU per outgoing POST of the bridge's HTTP clients (issue 10 part 5), a focused measurement.

    .venv/bin/python -m bench.http_cpu [--count 2000] [--concurrency 32] [--clients daraja-httpx,...]

A canned HTTP/1.1 keep-alive server runs as its own process (its CPU is not counted); this process
sends `--count` requests sequentially, then `--count` with `--concurrency` in flight, through:

- `daraja-httpx` / `daraja-aiohttp`: `DarajaClient.stk_push` (token cached after the first call)
  over an httpx.AsyncClient / an aiohttp.ClientSession sized as the runtime sizes its pool;
- `webhook`: `workers.delivery.HttpSender.post` (whatever client it is built on).

CPU is this process's user + system time (`time.process_time`) divided by the requests sent;
the warm-up (first token, first connections) is not counted. Never a timed assertion anywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

PUSH_OK = json.dumps(
    {
        "MerchantRequestID": "2654-4b64-97ff-b827b542881d3130",
        "CheckoutRequestID": "ws_CO_1007202409152617172396192",
        "ResponseCode": "0",
        "ResponseDescription": "Success. Request accepted for processing",
        "CustomerMessage": "Success. Request accepted for processing",
    }
).encode()
TOKEN = json.dumps({"access_token": "t" * 28, "expires_in": "3599"}).encode()


class _Canned(asyncio.Protocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            head, _, rest = self.buffer.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(rest) < length:
                return
            self.buffer = rest[length:]
            body = TOKEN if head.startswith(b"GET") else PUSH_OK
            self.transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body
            )


def _serve(sock: socket.socket) -> None:
    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_Canned, sock=sock)
        await server.serve_forever()

    asyncio.run(main())


async def _measure(send: Callable[[], Awaitable[object]], count: int, concurrency: int) -> tuple[float, float]:
    for _ in range(50):  # warm-up: token, connections, code paths
        await send()
    started, wall = time.process_time(), time.monotonic()
    for _ in range(count):
        await send()
    sequential = (time.process_time() - started) / count * 1000
    # Wall time per sequential POST near its CPU time: no stall (Nagle, delayed ACKs) on the way.
    print(f"  sequential wall time per POST {(time.monotonic() - wall) / count * 1000:.3f} ms")
    queue = iter(range(count))

    async def worker() -> None:
        for _ in queue:
            await send()

    started = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    concurrent = (time.process_time() - started) / count * 1000
    return sequential, concurrent


async def _daraja(base: str, kind: str, count: int, concurrency: int) -> tuple[float, float]:
    import aiohttp
    import httpx

    from mpesa_bridge.daraja import DarajaClient, DarajaCredentials, StkPushRequest, TokenCache

    request = StkPushRequest(
        business_short_code="174379",
        passkey="bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919",
        transaction_type="CustomerPayBillOnline",
        amount=10,
        party_a="254708374149",
        party_b="174379",
        phone_number="254708374149",
        callback_url="https://bridge.example.test/v1/callbacks/daraja/stk/abc",
        account_reference="INV-1",
        transaction_desc="Order 1",
    )
    credentials = DarajaCredentials("key", "secret")
    http: Any
    if kind == "httpx":
        http = httpx.AsyncClient(limits=httpx.Limits(max_connections=32, max_keepalive_connections=32))
    else:
        http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32))
    try:
        client = DarajaClient(base, credentials, http=http, token_cache=TokenCache(), now=lambda: datetime.now(UTC))
        return await _measure(lambda: client.stk_push(request), count, concurrency)
    finally:
        await (http.aclose() if kind == "httpx" else http.close())


async def _webhook(base: str, count: int, concurrency: int) -> tuple[float, float]:
    from mpesa_bridge.workers.delivery import HttpSender, SystemResolver

    sender = HttpSender(
        timeout=10.0, allow_private=False, test_loopback=True, resolver=SystemResolver(), max_connections=32
    )
    body = b'{"type":"payment.succeeded","data":{"object":{"id":"pay_1","amount":10}}}' + b" " * 600
    headers = {"webhook-id": "msg_1", "webhook-timestamp": "1700000000", "webhook-signature": "v1,abc"}

    async def send() -> object:
        result = await sender.post(base + "/hook", "test", headers, body)
        assert result.status_code == 200, result
        return result

    try:
        return await _measure(send, count, concurrency)
    finally:
        await sender.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--clients", default="daraja-httpx,daraja-aiohttp,webhook")
    args = parser.parse_args()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(256)
    server = multiprocessing.get_context("fork").Process(target=_serve, args=(sock,), daemon=True)
    server.start()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        for name in args.clients.split(","):
            if name == "webhook":
                figures = asyncio.run(_webhook(base, args.count, args.concurrency))
            else:
                figures = asyncio.run(_daraja(base, name.removeprefix("daraja-"), args.count, args.concurrency))
            print(
                f"{name:15s} CPU/POST sequential {figures[0]:.3f} ms   {args.concurrency} in flight {figures[1]:.3f} ms"
            )
    finally:
        server.terminate()
        server.join()


if __name__ == "__main__":
    main()
