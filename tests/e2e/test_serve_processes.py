"""`serve --workers N`: N server processes on one port, PostgreSQL only.

Which process answered is read from /proc (the kernel's view of who holds each accepted socket),
so the bridge needs no header or field that tells a client which process it reached.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.bridge import ADMIN_TOKEN
from tests.fixtures.database import create_pg_database, drop_pg_database
from tests.fixtures.servers import ServerProcess, bridge_process, simulator_process
from tests.fixtures.services import need, postgres_available

pytestmark = pytest.mark.slow


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as handle:
            found.update(int(child) for child in handle.read().split())
    return found


def socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def tcp_sockets(port: int) -> list[tuple[int, str, str]]:
    """(peer port, state, inode) of every IPv4 socket whose local port is `port`."""
    found = []
    with open("/proc/net/tcp") as handle:
        for line in handle.readlines()[1:]:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
            if int(local.split(":")[1], 16) == port:
                found.append((int(remote.split(":")[1], 16), state, inode))
    return found


def server_processes(parent: int, port: int) -> set[int]:
    """The children holding the listening socket (not the supervisor's other helpers)."""
    listening = {inode for _peer, state, inode in tcp_sockets(port) if state == "0A"}
    return {child for child in children(parent) if socket_inodes(child) & listening}


def answered_by(port: int, client: socket.socket, processes: set[int]) -> int:
    """The process holding the server end of `client`'s connection."""
    mine = client.getsockname()[1]
    [inode] = [inode for peer, state, inode in tcp_sockets(port) if peer == mine and state == "01"]
    [owner] = [pid for pid in processes if inode in socket_inodes(pid)]
    return owner


def healthz(port: int) -> socket.socket:
    client = socket.create_connection(("127.0.0.1", port), timeout=10)
    client.sendall(b"GET /healthz HTTP/1.1\r\nHost: bridge\r\n\r\n")
    assert client.recv(64).startswith(b"HTTP/1.1 200"), "not answered"
    return client  # kept open: the connection stays in the process that accepted it


@pytest.fixture
def two_processes(tmp_path: Path) -> Iterator[ServerProcess]:
    need("PostgreSQL", postgres_available())
    database_url = asyncio.run(create_pg_database())
    simulator = simulator_process(tmp_path, callback_delay=0.05)
    bridge = bridge_process(tmp_path, database_url, simulator.url, MPESA_BRIDGE_WORKERS="2")
    try:
        simulator.start("/oauth/v1/generate")
        bridge.start(timeout=60)
        yield bridge
    finally:
        bridge.stop()
        simulator.stop()
        asyncio.run(drop_pg_database(database_url))


@pytest.mark.timeout(180)
def test_two_processes_serve_one_port_and_stop_on_sigterm(two_processes: ServerProcess) -> None:
    bridge = two_processes
    assert bridge.process is not None
    parent = bridge.process.pid
    deadline = time.monotonic() + 60
    while len(processes := server_processes(parent, bridge.port)) < 2:  # the second may still be starting
        assert time.monotonic() < deadline, f"server processes: {processes}\n{bridge.output()}"
        time.sleep(0.05)
    assert len(processes) == 2

    # Connections land on either process: open them until each process has answered one.
    clients, served = [], set()
    while served != processes:
        assert time.monotonic() < deadline and len(clients) < 200, f"only {served} answered"
        clients.append(healthz(bridge.port))
        served.add(answered_by(bridge.port, clients[-1], processes))
    for client in clients:
        client.close()

    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=bridge.url, timeout=10) as http:
        project = http.post("/v1/admin/projects", json={"name": "Two"}, headers=admin).json()
        auth = {"Authorization": f"Bearer {project['secret_keys']['test']}"}
        body = {"phone": "0708374149", "amount": 10, "account_reference": "TWO"}
        created = http.post("/v1/payments", json=body, headers=auth)
        assert created.status_code == 201, created.text
        url = f"/v1/payments/{created.json()['id']}"
        while (status := http.get(url, headers=auth).json()["status"]) != "succeeded":
            assert time.monotonic() < deadline, status
            time.sleep(0.05)

    bridge.process.send_signal(signal.SIGTERM)
    assert bridge.process.wait(30) == 0, bridge.output()
    assert not [pid for pid in processes if os.path.exists(f"/proc/{pid}")]
    assert "Traceback" not in bridge.output()


@pytest.mark.parametrize("how", ["option", "variable"])
def test_sqlite_refuses_several_processes(tmp_path: Path, how: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MPESA_BRIDGE_")}
    env |= {"MPESA_BRIDGE_DATA_DIR": str(tmp_path), "MPESA_BRIDGE_SIMULATOR_ENABLED": "false"}
    args = ["serve", "--workers", "2"] if how == "option" else ["serve"]
    if how == "variable":
        env["MPESA_BRIDGE_WORKERS"] = "2"
    run = subprocess.run(
        [sys.executable, "-m", "mpesa_bridge", *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 2, run.stdout + run.stderr
    assert "MPESA_BRIDGE_WORKERS" in run.stderr and "PostgreSQL" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr + run.stdout
