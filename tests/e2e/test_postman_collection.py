"""The committed Postman collection, walked top to bottom against a real `serve --dev` bridge.

The bridge runs as `make run` starts it (the built-in simulator, SQLite), with an admin token. The
runner (`tests/fixtures/postman.py`) sends each request in order with the collection's variables,
auth and example bodies, checks its status as the test script says and keeps what the script keeps,
exactly as Postman would; a request answered outside its documented success statuses fails the test.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mpesa_bridge.cli.apifiles import OPENAPI_FILE, POSTMAN_FILE, REGENERATE
from tests.fixtures.bridge import ADMIN_TOKEN
from tests.fixtures.postman import initial_variables, requests, run
from tests.fixtures.servers import ServerProcess, free_port

COLLECTION = Path(__file__).resolve().parents[2] / "docs" / POSTMAN_FILE


@pytest.fixture(scope="module")
def dev_bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("postman")
    port = free_port()
    env = {
        "MPESA_BRIDGE_PORT": str(port),
        "MPESA_BRIDGE_DATA_DIR": str(tmp / "data"),
        "MPESA_BRIDGE_ADMIN_TOKEN": ADMIN_TOKEN,
        "MPESA_BRIDGE_SIMULATOR_CALLBACK_DELAY": "0.05",
    }
    server = ServerProcess(["serve", "--dev"], env, port, tmp / "bridge.log").start()
    try:
        yield server
    finally:
        server.stop()


def test_the_collection_runs_top_to_bottom_against_a_dev_bridge(dev_bridge: ServerProcess) -> None:
    collection = json.loads(COLLECTION.read_text(encoding="utf-8"))
    variables = initial_variables(collection, baseUrl=dev_bridge.url, adminToken=ADMIN_TOKEN)
    with httpx.Client(timeout=15) as client:
        results = run(client, collection, variables)
    last = results[-1]
    assert last.status in last.expected, (
        f"{last.name}: {last.method} {last.url} answered {last.status}: {last.body[:500]}"
    )
    assert len(results) == len(list(requests(collection)))
    # The variables were carried along: the project's test key created a payment, the session's client
    # secret paid it, the list of events gave an event id, and the rotated key revoked its predecessor.
    by_url = {(result.method, result.url.removeprefix(dev_bridge.url)): result for result in results}
    payment = json.loads(by_url["POST", "/v1/payments"].body)
    assert payment["id"] == variables["paymentId"] and payment["status"] in {"pending", "succeeded"}
    assert variables["clientSecret"].startswith(variables["checkoutSessionId"] + "_secret_")
    paid = json.loads(by_url["POST", f"/v1/checkout_sessions/{variables['checkoutSessionId']}/pay"].body)
    assert paid["payment"]["status"] in {"pending", "succeeded"}
    assert variables["eventId"].startswith("evt_") and ("GET", f"/v1/events/{variables['eventId']}") in by_url
    revoked = json.loads(by_url["POST", f"/v1/keys/{variables['keyId']}/revoke"].body)
    assert revoked["revoked_at"] is not None and variables["secretKey"].startswith("sk_test_")
    with httpx.Client(timeout=15) as client:  # the revoked key is the one the admin API issued first
        answer = client.get(f"{dev_bridge.url}/v1/keys", headers={"Authorization": f"Bearer {variables['secretKey']}"})
    assert answer.status_code == 200
    keys = {key["id"]: key for key in answer.json()["data"]}
    assert keys[variables["keyId"]]["revoked_at"] is not None


def test_the_running_bridge_serves_the_committed_openapi_document(dev_bridge: ServerProcess) -> None:
    """The file is the document a real `serve --dev` serves, plus the `servers` placeholder."""
    committed = json.loads((COLLECTION.parent / OPENAPI_FILE).read_text(encoding="utf-8"))
    with httpx.Client(timeout=15) as client:
        served = client.get(f"{dev_bridge.url}/openapi.json").json()
    assert "servers" not in served  # Try it out calls the bridge that served the page
    assert {**served, "servers": committed["servers"]} == committed, f"run `{REGENERATE}`"


def test_the_mobile_guide_s_stream_tells_the_app_the_session_is_paid(dev_bridge: ServerProcess) -> None:
    """docs/mobile.md: the session's stream, opened with the client secret, opens with its resume
    point and tells `checkout_session.completed` once the customer paid."""
    with httpx.Client(base_url=dev_bridge.url, timeout=15) as client:
        project = client.post(
            "/v1/admin/projects", json={"name": "App"}, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        key = project.json()["secret_keys"]["test"]
        session = client.post(
            "/v1/checkout_sessions",
            json={"amount": 1500, "reference": "ORDER42", "description": "Order 42"},
            headers={"Authorization": f"Bearer {key}"},
        ).json()
        secret = session["client_secret"]
        paid = client.post(
            f"/v1/checkout_sessions/{session['id']}/pay",
            json={"phone": "0712345670"},
            headers={"Authorization": f"Bearer {secret}"},
        )
        assert paid.status_code == 200, paid.text
        lines: list[str] = []
        url = f"/v1/checkout_sessions/{session['id']}/events"
        with client.stream("GET", url, params={"client_secret": secret}) as stream:
            assert stream.status_code == 200
            deadline = time.monotonic() + 15  # heartbeats keep the lines coming
            for line in stream.iter_lines():
                lines.append(line)
                if line.startswith("data: ") or time.monotonic() > deadline:
                    break
    assert lines[:3] == ["id: 0", "retry: 2000", ""], lines
    assert lines[3].startswith("id: evt_") and lines[4] == "event: checkout_session.completed", lines
    event = json.loads(lines[5].removeprefix("data: "))
    assert event["type"] == "checkout_session.completed"
    assert event["data"]["object"]["status"] == "complete"
    assert event["data"]["object"]["paid_payment_id"].startswith("pay_")
