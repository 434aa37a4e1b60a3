"""B3's baseline: the least a server can do to push a callback's news to a live client.

    python -m bench.realtime_bare --port N

Served exactly like the bridge (`mpesa_bridge.serving`: uvicorn, httptools, uvloop) and with the
same python-socketio server, but with no database, no authentication and nothing else:

    GET  /sse/{key}          an SSE stream: a `retry:` hint, a fake `payment.created`, then waits
    /socket.io/              Socket.IO; the connect `auth` {"client_secret": key} joins room `key`
    POST /cb/{key}           answers Daraja's ACK first, then sends a `payment.succeeded` event of
                             the bridge's size to the stream and to the room of `key`
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import socketio

ACK = b'{"ResultCode":0,"ResultDesc":"Accepted"}'
JSON = [(b"content-type", b"application/json"), (b"content-length", str(len(ACK)).encode())]
SSE_HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-store")]
OPENING = b"retry: 2000\r\n: stream open\r\n\r\n"


def _event(key: str, kind: str) -> dict[str, Any]:
    """An event shaped and sized like the bridge's (about 1 KB of JSON)."""
    payment = {
        "id": key,
        "object": "payment",
        "status": kind.rpartition(".")[2],
        "amount": 10,
        "currency": "KES",
        "phone": "254708374149",
        "account_reference": "B3",
        "description": "bench",
        "metadata": {},
        "result_desc": "The service request is processed successfully.",
        "mpesa_receipt_number": "B3RECEIPT1",
        "merchant_request_id": "29115-34620561-1",
        "checkout_request_id": "ws_CO_191220191020363925",
        "business_short_code": "174379",
        "created_at": "2026-11-26T07:51:36.110919Z",
        "updated_at": "2026-11-26T07:51:36.110919Z",
    }
    return {"id": "evt_" + "0" * 26, "object": "event", "type": kind, "mode": "test", "data": {"object": payment}}


def _message(key: str, kind: str) -> bytes:
    body = json.dumps(_event(key, kind), separators=(",", ":"))
    return f"id: evt_{'0' * 26}\r\nevent: {kind}\r\ndata: {body}\r\n\r\n".encode()


sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins="*", logger=False, engineio_logger=False)
waiting: dict[str, asyncio.Future[bytes]] = {}


@sio.on("connect")
async def connect(sid: str, _environ: dict[str, Any], auth: Any) -> None:
    await sio.enter_room(sid, auth["client_secret"])


async def stream(key: str, receive: Any, send: Any) -> None:
    while (await receive()).get("more_body", False):  # the (empty) request body
        pass
    await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
    await send({"type": "http.response.body", "body": OPENING + _message(key, "payment.created"), "more_body": True})
    news = waiting[key] = asyncio.get_running_loop().create_future()
    gone = asyncio.ensure_future(receive())  # http.disconnect
    try:
        await asyncio.wait([news, gone], return_when=asyncio.FIRST_COMPLETED)
        if news.done():
            await send({"type": "http.response.body", "body": news.result(), "more_body": True})
            await gone
    finally:
        waiting.pop(key, None)
        gone.cancel()


async def callback(key: str, receive: Any, send: Any) -> None:
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": JSON})
    await send({"type": "http.response.body", "body": ACK})
    news = waiting.get(key)
    if news is not None and not news.done():
        news.set_result(_message(key, "payment.succeeded"))
    await sio.emit("payment.updated", _event(key, "payment.succeeded"), to=key)


async def http(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path: str = scope["path"]
    if scope["method"] == "GET" and path.startswith("/sse/"):
        await stream(path[5:], receive, send)
    elif scope["method"] == "POST" and path.startswith("/cb/"):
        await callback(path[4:], receive, send)
    else:
        await send({"type": "http.response.start", "status": 404, "headers": JSON})
        await send({"type": "http.response.body", "body": ACK})


app = socketio.ASGIApp(sio, other_asgi_app=http, socketio_path="socket.io")


def main() -> None:
    from bench.bare import serve

    serve(app, __doc__)


if __name__ == "__main__":
    main()
