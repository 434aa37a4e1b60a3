"""docs/mobile.md's HTTP exchanges are the bridge's: each request is sent, in the guide's order, to a
bridge with the simulator (SQLite and PostgreSQL), and each answer is compared with the one shown —
the status, every field name at every depth, and the values that say what happened (`status`,
`object`, error `code` and `param`, `failure_code`, `payment_in_flight`). Ids, secrets and times
differ: the guide's ids and secrets are replaced with the real ones as the answers give them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx

from tests.fixtures.bridge import InProcessBridge, wait_until

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "mobile.md"
BLOCK = re.compile(r"```http\n(.*?)```", re.DOTALL)
# Values compared as they are; every other value only by its JSON type (null stays null).
TELLING = {"status", "object", "code", "param", "type", "failure_code", "payment_in_flight", "currency", "mode"}
SECRETS = ("client_secret",)


def exchanges() -> list[tuple[str, dict[str, Any]]]:
    """(request text, answer) pairs; the answer: status and JSON body."""
    blocks = BLOCK.findall(GUIDE.read_text(encoding="utf-8"))
    assert len(blocks) % 2 == 0 and blocks, "each request block is followed by its answer block"
    pairs = []
    for request, answer in zip(blocks[::2], blocks[1::2], strict=True):
        head, _, body = answer.partition("\n\n")
        status = int(head.split()[1])
        pairs.append((request, {"status": status, "body": json.loads(body)}))
    return pairs


def compare(shown: Any, real: Any, where: str = "") -> None:
    if isinstance(shown, dict):
        assert isinstance(real, dict), f"{where}: the guide shows an object, the bridge answers {real!r}"
        assert set(shown) == set(real), f"{where}: fields differ: guide {sorted(shown)} vs bridge {sorted(real)}"
        for key in shown:
            if key in TELLING and not isinstance(shown[key], dict | list):
                assert shown[key] == real[key], f"{where}.{key}: guide {shown[key]!r}, bridge {real[key]!r}"
            compare(shown[key], real[key], f"{where}.{key}")
    elif shown is None:
        assert real is None, f"{where}: the guide shows null, the bridge answers {real!r}"
    else:
        assert type(shown) is type(real), f"{where}: guide {shown!r}, bridge {real!r}"


def learn(shown: Any, real: Any, names: dict[str, str]) -> None:
    """The guide's ids and secrets -> the bridge's, from an answer."""
    if isinstance(shown, dict) and isinstance(real, dict):
        for key, value in shown.items():
            if (key == "id" or key in SECRETS) and isinstance(value, str) and isinstance(real.get(key), str):
                names[value] = real[key]
            learn(value, real.get(key), names)


def send_request(text: str, key: str, names: dict[str, str]) -> tuple[str, str, dict[str, str], bytes]:
    for shown, actual in sorted(names.items(), key=lambda item: -len(item[0])):  # a secret before its id
        text = text.replace(shown, actual)
    head, _, body = text.partition("\n\n")
    first, *lines = head.splitlines()
    method, path, _ = first.split()
    headers = dict(line.split(": ", 1) for line in lines)
    headers.pop("Host")
    headers = {name: value.replace("sk_test_…", key) for name, value in headers.items()}
    return method, path, headers, body.strip().encode()


def outcome(body: dict[str, Any]) -> tuple[Any, Any]:
    return body.get("status"), (body.get("payment") or {}).get("status")


async def exchange(
    bridge: InProcessBridge, method: str, path: str, headers: dict[str, str], body: bytes, shown: dict[str, Any]
) -> httpx.Response:
    async def send() -> httpx.Response:
        return await bridge.client.request(method, path, headers=headers, content=body or None)

    if method != "GET":
        return await send()

    async def reached() -> httpx.Response | None:  # a read after the outcome: read until it is there
        response = await send()
        return response if outcome(response.json()) == outcome(shown) else None

    result: httpx.Response = await wait_until(reached, timeout=10)
    return result


async def test_the_guide_s_exchanges_are_the_bridge_s(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project("Shop")
    names: dict[str, str] = {}
    steps = exchanges()
    assert len(steps) >= 9
    for number, (request, answer) in enumerate(steps, 1):
        method, path, headers, body = send_request(request, shop.test_key, names)
        response = await exchange(bridge, method, path, headers, body, answer["body"])
        where = f"exchange {number} ({method} {path})"
        assert response.status_code == answer["status"], f"{where}: {response.status_code} {response.text}"
        compare(answer["body"], response.json(), where)
        learn(answer["body"], response.json(), names)
    assert any(value.startswith("cs_") and "_secret_" in value for value in names.values())


def test_the_guide_shows_the_calls_the_issue_names() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    requests = [request.splitlines()[0] for request, _ in exchanges()]
    assert requests[0].startswith("POST /v1/checkout_sessions ")
    assert any(line.startswith("POST /v1/checkout_sessions/cs_") and "/pay " in line for line in requests)
    assert any(line.startswith("GET /v1/checkout_sessions/cs_") for line in requests)
    for words in (
        "/v1/checkout_sessions/{id}/events",
        "Socket.IO",
        "OkHttp",
        "URLSession",
        "package:http",
        "React Native",
    ):
        assert words in text, words
    assert "Untested illustrations" in text and "no native Flutter (Dart) package" in text
