"""`mpesa-bridge simulator pay` finds the payments endpoint of a standalone simulator and of one a
bridge mounts at /simulator (where it is the flat /simulator/c2b/payments)."""

from __future__ import annotations

from mpesa_bridge.cli.simulator_pay import payments_url


def test_standalone_and_mounted_simulators() -> None:
    assert payments_url("http://127.0.0.1:8001") == "http://127.0.0.1:8001/simulator/c2b/payments"
    assert payments_url("http://127.0.0.1:8001/") == "http://127.0.0.1:8001/simulator/c2b/payments"
    assert payments_url("http://127.0.0.1:8000/simulator") == "http://127.0.0.1:8000/simulator/c2b/payments"
    assert payments_url("http://127.0.0.1:8000/simulator/") == "http://127.0.0.1:8000/simulator/c2b/payments"
