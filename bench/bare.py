"""The baseline: a bare ASGI app returning a fixed small JSON, served exactly like the bridge.

    python -m bench.bare --port N

Same uvicorn configuration and event loop (`mpesa_bridge.serving`), nothing else of the bridge
imported; it reads the request body so that POSTs cost what they cost.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

BODY = b'{"ResultCode":0,"ResultDesc":"Accepted"}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


def serve(asgi_app: Any, description: str | None) -> None:
    """`--port N`: serve `asgi_app` on loopback exactly as the bridge is served."""
    import uvicorn

    from mpesa_bridge.serving import ConnectionLimits, event_loop_factory, server_config

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # The read deadlines as the bridge's; the caps off, as `harness.bridge_env` turns them off.
    uncapped = ConnectionLimits(max_connections=0, max_connections_per_address=0)
    server = uvicorn.Server(server_config(asgi_app, "127.0.0.1", args.port, uncapped))
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(server.serve())


def main() -> None:
    serve(app, __doc__)


if __name__ == "__main__":
    main()
