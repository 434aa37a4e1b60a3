"""A tiny HTTP/1.1 server on loopback that records what it receives: the merchant's side of a callback.

For tests and demos: the simulator's callbacks travel over real sockets to it, so nothing between
the simulator and the merchant is mocked. It understands `Content-Length` bodies and keep-alive,
which is all an httpx client sends; it is not a general web server.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from http import HTTPStatus
from types import MappingProxyType, TracebackType
from typing import Any

_ACCEPTED = json.dumps({"ResultCode": 0, "ResultDesc": "Accepted"}).encode()


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    headers: Mapping[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class CallbackReceiver:
    """Records every request; answers 200 `{"ResultCode": 0, ...}`, or `status_for[path]`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, status_for: Mapping[str, int] | None = None):
        self.host = host
        self.port = port
        self.status_for: Mapping[str, int] = MappingProxyType(dict(status_for or {}))
        self.requests: list[ReceivedRequest] = []
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}
        self._changed = asyncio.Condition()

    def url(self, path: str = "/callback") -> str:
        return f"http://{self.host}:{self.port}{path}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in self._connections.values():
            writer.close()
        await asyncio.gather(*self._connections, return_exceptions=True)

    async def __aenter__(self) -> CallbackReceiver:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def received(self, path: str | None = None) -> list[ReceivedRequest]:
        return [request for request in self.requests if path is None or request.path == path]

    async def wait_for(self, count: int, *, path: str | None = None, within: float = 5.0) -> list[ReceivedRequest]:
        """Wait until `count` requests (to `path`, if given) have arrived; TimeoutError after `within` s."""
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: len(self.received(path)) >= count)
        return self.received(path)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        try:
            while await self._serve_one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass  # a client that hangs up mid-request is not our problem
        finally:
            del self._connections[task]
            writer.close()
            with suppress(ConnectionError):
                await writer.wait_closed()

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        request_line = await reader.readline()
        if not request_line.strip():
            return False
        method, target, _ = request_line.decode("latin-1").split(" ", 2)
        headers = await _read_headers(reader)
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        request = ReceivedRequest(method, target.split("?", 1)[0], MappingProxyType(headers), body)
        async with self._changed:
            self.requests.append(request)
            self._changed.notify_all()
        status = HTTPStatus(self.status_for.get(request.path, 200))
        head = (
            f"HTTP/1.1 {status.value} {status.phrase}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(_ACCEPTED)}\r\n\r\n"
        )
        writer.write(head.encode("latin-1") + _ACCEPTED)
        await writer.drain()
        return headers.get("connection", "").lower() != "close"


async def _read_headers(reader: asyncio.StreamReader) -> dict[str, str]:
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return headers
