"""The Daraja simulator as its own process, with request counts the benchmarks can read.

    python -m bench.simulator --port N [--callback-delay S]

It is `mpesa-bridge simulator` (the same app and configuration), wrapped in a counter:
`GET /_bench/counts` answers {path: requests}, so B2 can check how many OAuth tokens the bridge
asked for. The counter is the benchmark's, not part of the simulator.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import Counter
from typing import Any


class Counting:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.counts: Counter[str] = Counter()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            if scope["path"] == "/_bench/counts":
                body = json.dumps(self.counts).encode()
                headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            self.counts[scope["path"]] += 1
        await self.app(scope, receive, send)


def main() -> None:
    import uvicorn

    from mpesa_bridge.api.app import simulator_config
    from mpesa_bridge.config import Settings
    from mpesa_bridge.serving import event_loop_factory, server_config
    from mpesa_bridge.simulator import create_app

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--callback-delay", type=float, default=0.0)
    args = parser.parse_args()
    settings = Settings(simulator_callback_delay=args.callback_delay)
    app = Counting(create_app(simulator_config(settings)))
    server = uvicorn.Server(server_config(app, "127.0.0.1", args.port))
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(server.serve())


if __name__ == "__main__":
    main()
