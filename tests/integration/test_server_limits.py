"""Read timeouts and connection caps (security.md "Slow clients and connection caps") against a real
`mpesa-bridge serve` process on loopback, spoken to with raw sockets.

Each wait is a deadline: the bound under test plus `SLACK` for a busy machine. Before these
controls the server held such connections for ever, so every wait below would hit its deadline.
Pacing a trickle (one byte every `TRICKLE_EVERY` s) is the attack itself, not a wait for a result.
"""

from __future__ import annotations

import contextlib
import re
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.bridge import ADMIN_TOKEN, TEST_MASTER_KEY
from tests.fixtures.servers import ServerProcess, free_port

SLACK = 4.0
TRICKLE_EVERY = 0.2
QUICK = {"HEADER_TIMEOUT": 1.0, "BODY_TIMEOUT": 1.5, "KEEP_ALIVE_TIMEOUT": 1.0}
PER_ADDRESS = 4
TOTAL = 8
CALLBACK = "/v1/callbacks/daraja/stk/cbt_0123456789abcdef0123456789abcdef"


def _serve(tmp: Path, **settings: object) -> Iterator[ServerProcess]:
    """`serve` in `tmp` (its own working directory: no developer .env), on SQLite, settings as env."""
    port = free_port()
    env = {
        "MPESA_BRIDGE_PORT": str(port),
        "MPESA_BRIDGE_DATA_DIR": str(tmp / "data"),
        "MPESA_BRIDGE_MASTER_KEY": TEST_MASTER_KEY,
        "MPESA_BRIDGE_ADMIN_TOKEN": ADMIN_TOKEN,
        "MPESA_BRIDGE_RATE_LIMIT_ENABLED": "false",
        **{f"MPESA_BRIDGE_{name}": str(value) for name, value in settings.items()},
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp)
        server = ServerProcess(["serve"], env, port, tmp / "bridge.log").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Short read timeouts, default caps."""
    yield from _serve(tmp_path_factory.mktemp("quick"), **QUICK)


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Small caps and long read timeouts, so a refusal cannot be mistaken for a timeout."""
    caps = {"MAX_CONNECTIONS_PER_ADDRESS": PER_ADDRESS, "MAX_CONNECTIONS": TOTAL}
    yield from _serve(tmp_path_factory.mktemp("capped"), **caps, HEADER_TIMEOUT=120, KEEP_ALIVE_TIMEOUT=120)


@pytest.fixture(scope="module")
def test_key(quick: ServerProcess) -> str:
    response = httpx.post(
        f"{quick.url}/v1/admin/projects", json={"name": "Slow"}, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert response.status_code == 201, response.text
    key: str = response.json()["secret_keys"]["test"]
    return key


def connect(server: ServerProcess, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket()
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", server.port))
    return sock


def until_closed(sock: socket.socket, within: float, trickle: bytes = b"") -> tuple[float, bytes]:
    """Read until the server closes the connection, sending `trickle` one byte at a time meanwhile.

    Returns (seconds it took, bytes received); fails if the connection is still open after `within`.
    """
    start = time.monotonic()
    received = b""
    while (remaining := start + within - time.monotonic()) > 0:
        wait = min(TRICKLE_EVERY, remaining) if trickle else remaining
        readable, _, _ = select.select([sock], [], [], wait)
        try:
            if readable:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
            elif trickle:
                sock.send(trickle[:1])
                trickle = trickle[1:]
        except (ConnectionResetError, BrokenPipeError):
            break
    else:
        raise AssertionError(f"the server still held the connection after {within}s")
    return time.monotonic() - start, received


def still_open(sock: socket.socket) -> bool:
    """True when the server has neither closed nor answered: nothing to read right now."""
    readable, _, _ = select.select([sock], [], [], 0)
    return not readable


def request(server: ServerProcess, source: str, path: str = "/healthz") -> bytes:
    with connect(server, source) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: bridge\r\nConnection: close\r\n\r\n".encode())
        return until_closed(sock, SLACK)[1]


def test_a_connection_that_sends_nothing_is_closed_within_the_header_timeout(quick: ServerProcess) -> None:
    with connect(quick) as sock:
        _, received = until_closed(sock, QUICK["HEADER_TIMEOUT"] + SLACK)
    assert received == b""


def test_headers_that_never_end_are_closed_within_the_header_timeout(quick: ServerProcess) -> None:
    with connect(quick) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: bridge\r\n")
        took, received = until_closed(sock, QUICK["HEADER_TIMEOUT"] + SLACK, trickle=b"X-Slow: " + b"a" * 500)
    assert not received.startswith(b"HTTP/1.1 2"), received
    assert took >= QUICK["HEADER_TIMEOUT"] / 2  # the timeout closed it, not a parse error


def test_blank_lines_between_requests_do_not_keep_a_connection_open(quick: ServerProcess) -> None:
    """httptools skips CRLFs before a request line without starting a request; they still count."""
    with connect(quick) as sock:
        until_closed(sock, QUICK["HEADER_TIMEOUT"] + SLACK, trickle=b"\r\n" * 500)


@pytest.mark.parametrize("path", ["/v1/payments", CALLBACK], ids=["payments", "callback"])
def test_a_trickled_body_is_cut_off_within_the_body_timeout(quick: ServerProcess, test_key: str, path: str) -> None:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: bridge\r\nAuthorization: Bearer {test_key}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    )
    with connect(quick) as sock:
        sock.sendall(head.encode())
        took, received = until_closed(sock, QUICK["BODY_TIMEOUT"] + SLACK, trickle=b'{"a": "' + b"x" * 990)
    assert received == b"" or received.startswith(b"HTTP/1.1 408 "), received
    assert took >= QUICK["BODY_TIMEOUT"] / 2


def test_an_idle_keep_alive_connection_is_closed_within_the_keep_alive_timeout(quick: ServerProcess) -> None:
    with connect(quick) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: bridge\r\n\r\n")
        # A smaller slack here: uvicorn's own default (5 s) must not pass for the setting.
        _, received = until_closed(sock, QUICK["KEEP_ALIVE_TIMEOUT"] + 2.5)
    assert received.startswith(b"HTTP/1.1 200 "), received


def test_answers_carry_no_server_banner(quick: ServerProcess) -> None:
    answers = [
        httpx.get(f"{quick.url}/healthz"),
        httpx.get(f"{quick.url}/v1/payments"),  # 401 from the app
        httpx.post(f"{quick.url}{CALLBACK}", content=b"{}"),  # the raw ASGI callback route
    ]
    for answer in answers:
        assert "server" not in answer.headers, answer.headers
        assert "date" in answer.headers
    with connect(quick) as sock:  # uvicorn's own 400 for a request it cannot parse
        sock.sendall(b"NOT HTTP\r\n\r\n")
        _, received = until_closed(sock, SLACK)
    assert received.startswith(b"HTTP/1.1 400 ") and b"\r\nserver:" not in received.lower(), received


def test_connections_past_the_per_address_cap_are_refused_while_another_address_is_served(
    capped: ServerProcess,
) -> None:
    with contextlib.ExitStack() as stack:
        held = [stack.enter_context(half_open(capped, "127.0.0.1")) for _ in range(PER_ADDRESS)]
        for _ in range(3):
            with connect(capped) as extra:
                extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: bridge\r\n")
                _, received = until_closed(extra, SLACK)
                assert received == b""
        assert request(capped, "127.0.0.2").startswith(b"HTTP/1.1 200 ")
        assert all(still_open(sock) for sock in held)
        assert "server.connections_refused" in capped.output()  # the operator is told, once a minute at most
        held[0].close()
        wait_served(capped, "127.0.0.1")  # a closed connection gives its place back


def test_connections_past_the_total_cap_are_refused(capped: ServerProcess) -> None:
    with contextlib.ExitStack() as stack:
        sources = ["127.0.0.1"] * PER_ADDRESS + ["127.0.0.2"] * (TOTAL - PER_ADDRESS)
        held = [stack.enter_context(half_open(capped, source)) for source in sources]
        with connect(capped, "127.0.0.3") as extra:
            _, received = until_closed(extra, SLACK)
        assert received == b""
        assert all(still_open(sock) for sock in held)
    wait_served(capped, "127.0.0.3")


def test_a_head_larger_than_the_limit_is_refused_before_the_header_timeout(capped: ServerProcess) -> None:
    with half_open(capped, "127.0.0.5") as sock:  # admitted: what follows is refused for its size alone
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            for _ in range(64):  # 4 MiB of one header value, never ended
                sock.sendall(b"X-Big: " + b"a" * 65_536)
        _, received = until_closed(sock, SLACK)
    assert received == b"" or received.startswith(b"HTTP/1.1 431 "), received[:200]


def test_an_open_websocket_holds_its_place_until_it_closes(capped: ServerProcess) -> None:
    upgrade = (
        b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: bridge\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    for _ in range(2):  # twice: the places given back on close are usable again
        wait_served(capped, "127.0.0.4")
        with contextlib.ExitStack() as stack:
            for _ in range(PER_ADDRESS):
                sock = stack.enter_context(connect(capped, "127.0.0.4"))
                sock.sendall(upgrade)
                readable, _, _ = select.select([sock], [], [], SLACK)
                assert readable and sock.recv(65536).startswith(b"HTTP/1.1 101 ")
            assert request(capped, "127.0.0.4") == b""  # every place is taken by a websocket
    wait_served(capped, "127.0.0.4")


@contextlib.contextmanager
def half_open(server: ServerProcess, source: str) -> Iterator[socket.socket]:
    """A connection the server has admitted (it answered one request), now sending a head that never
    ends. Places freed by an earlier test are given back a moment after its close: retry until then."""
    deadline = time.monotonic() + SLACK
    while True:
        sock = connect(server, source)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: bridge\r\n\r\n")
        if read_answer(sock).startswith(b"HTTP/1.1 200 "):
            break
        sock.close()
        assert time.monotonic() < deadline, f"{source} not admitted within {SLACK}s"
        time.sleep(0.01)
    with sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: bridge\r\n")
        yield sock


def read_answer(sock: socket.socket) -> bytes:
    """One whole answer with a Content-Length, or what came before the server closed."""
    answer = b""
    deadline = time.monotonic() + SLACK
    while (remaining := deadline - time.monotonic()) > 0 and select.select([sock], [], [], remaining)[0]:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        length = re.search(rb"(?im)^content-length: *(\d+)", head)
        if not chunk or (length and len(body) >= int(length[1])):
            break
    return answer


def wait_served(server: ServerProcess, source: str, path: str = "/healthz") -> None:
    """A released place is seen by the server a moment after our close: retry until the deadline."""
    deadline = time.monotonic() + SLACK
    while True:
        with contextlib.suppress(AssertionError, OSError):
            if request(server, source, path).startswith(b"HTTP/1.1 200 "):
                return
        assert time.monotonic() < deadline, f"{source} still refused after {SLACK}s"
        time.sleep(0.01)
