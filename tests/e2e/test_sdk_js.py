"""The TypeScript SDK (`sdks/js`, npm package `mpesa-bridge`) and the Express example shop, run by the suite.

`npm ci` (skipped while `node_modules` matches the lockfile), `npm run build`, then the SDK's own node
tests (`npm test`: each test file starts a real bridge with its simulator from this venv); then the
packed tarball installed in an empty folder and imported from ESM and CommonJS against a real bridge;
then `examples/express_shop` taking a test payment and marking its order paid from a verified webhook.
One module, so that nothing rebuilds `sdks/js/dist` while another module uses it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.servers import ServerProcess, free_port, sandbox_bridge
from tests.fixtures.services import need

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "sdks" / "js"
SHOP = ROOT / "examples" / "express_shop"
BRIDGE_BIN = Path(sys.executable).parent / "mpesa-bridge"
NODE = shutil.which("node")
NPM = shutil.which("npm")


def wait_until(predicate: Callable[[], object], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.05)


def run(args: list[str], cwd: Path, timeout: float = 120, env: dict[str, str] | None = None) -> str:
    assert NPM is not None
    result = subprocess.run(
        args,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={
            **os.environ,
            "npm_config_fund": "false",
            "npm_config_audit": "false",
            "npm_config_update_notifier": "false",
            **(env or {}),
        },
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(args)} in {cwd} failed ({result.returncode}):\n"
            f"{result.stdout[-8000:]}\n{result.stderr[-4000:]}",
            pytrace=False,
        )
    return result.stdout


def npm_ci(folder: Path) -> None:
    """`npm ci` unless node_modules was installed from this very lockfile (npm keeps a copy there)."""
    installed = folder / "node_modules" / ".package-lock.json"
    lock = json.loads((folder / "package-lock.json").read_text())
    if installed.exists():
        have = json.loads(installed.read_text()).get("packages", {})
        want = {k: v for k, v in lock.get("packages", {}).items() if k.startswith("node_modules/")}
        if all(have.get(k, {}).get("version") == v.get("version") for k, v in want.items()) and set(have) >= set(want):
            return
    assert NPM is not None
    run([NPM, "ci", "--no-audit", "--no-fund"], folder)


@pytest.fixture(scope="module")
def built_sdk() -> Path:
    need("node and npm (apt-get install nodejs npm)", NODE is not None and NPM is not None)
    assert NPM is not None and NODE is not None
    version = subprocess.run([NODE, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    major, minor = (int(part) for part in version.lstrip("v").split(".")[:2])
    need(
        f"node 20.10+ (the SDK's tests use node --test --test-concurrency; found {version})", (major, minor) >= (20, 10)
    )
    npm_ci(SDK)
    run([NPM, "run", "build"], SDK)
    return SDK


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    with sandbox_bridge(
        tmp_path_factory.mktemp("sdkjs"), "SDK JS", callback_delay=0.2, MPESA_BRIDGE_WEBHOOK_POLL_INTERVAL="0.1"
    ) as started:
        yield started


def test_the_sdks_node_tests_pass_against_a_real_bridge(built_sdk: Path) -> None:
    assert NPM is not None
    output = run([NPM, "test"], built_sdk, timeout=180, env={"MPESA_BRIDGE_BIN": str(BRIDGE_BIN)})
    assert "# fail 0" in output, output[-8000:]
    assert "# pass " in output and "# pass 0\n" not in output


ESM = """
import { MpesaBridge, verifyWebhook } from "mpesa-bridge";
import { CheckoutClient } from "mpesa-bridge/browser";
const bridge = new MpesaBridge(process.env.KEY, { baseUrl: process.env.URL });
const payment = await bridge.payments.create({ phone: "0708374149", amount: 10, account_reference: "ESM" });
console.log(JSON.stringify({ id: payment.id, verify: typeof verifyWebhook, checkout: typeof CheckoutClient }));
"""

CJS = """
const { MpesaBridge, NotFoundError } = require("mpesa-bridge");
const bridge = new MpesaBridge(process.env.KEY, { baseUrl: process.env.URL });
bridge.payments.get("pay_missing").catch((e) =>
  console.log(JSON.stringify({ notFound: e instanceof NotFoundError, code: e.code })));
"""


def test_the_packed_tarball_installs_and_works_in_an_empty_folder(
    built_sdk: Path, bridge: tuple[ServerProcess, str], tmp_path: Path
) -> None:
    assert NPM is not None and NODE is not None
    server, key = bridge
    packed = json.loads(run([NPM, "pack", "--json", "--pack-destination", str(tmp_path)], built_sdk))
    tarball = tmp_path / packed[0]["filename"]
    files = {f["path"] for f in packed[0]["files"]}
    assert {
        "dist/esm/index.js",
        "dist/cjs/index.js",
        "dist/esm/index.d.ts",
        "dist/cjs/package.json",
        "package.json",
    } <= files
    assert not any(f.startswith(("src/", "test/", "node_modules/")) for f in files)
    app = tmp_path / "app"
    app.mkdir()
    run([NPM, "init", "-y"], app)
    run([NPM, "install", "--no-audit", "--no-fund", str(tarball)], app)
    assert json.loads((app / "node_modules" / "mpesa-bridge" / "package.json").read_text()).get("dependencies") is None
    (app / "esm.mjs").write_text(ESM)
    (app / "cjs.cjs").write_text(CJS)
    env = {"KEY": key, "URL": server.url}
    esm = json.loads(run([NODE, "esm.mjs"], app, env=env).strip().splitlines()[-1])
    assert esm["id"].startswith("pay_") and esm["verify"] == "function" and esm["checkout"] == "function"
    cjs = json.loads(run([NODE, "cjs.cjs"], app, env=env).strip().splitlines()[-1])
    assert cjs == {"notFound": True, "code": "resource_missing"}
    # The type declarations, through the exports map, from an ES module and a CommonJS one.
    (app / "check.mts").write_text(TYPES_ESM)
    (app / "check.cts").write_text(TYPES_CJS)
    (app / "tsconfig.json").write_text(json.dumps(TSCONFIG))
    run([NODE, str(built_sdk / "node_modules" / "typescript" / "bin" / "tsc"), "-p", "."], app)


TSCONFIG = {
    "compilerOptions": {
        "strict": True,
        "noEmit": True,
        "module": "nodenext",
        "moduleResolution": "nodenext",
        "lib": ["es2020", "dom"],
        "types": [],
    },
    "files": ["check.mts", "check.cts"],
}

TYPES_ESM = """
import { MpesaBridge, type Payment, NotFoundError } from "mpesa-bridge";
import { CheckoutClient } from "mpesa-bridge/browser";
const bridge = new MpesaBridge("sk_test_x", { baseUrl: "http://127.0.0.1:1" });
const p: Promise<Payment> = bridge.payments.create({ phone: "0708374149", amount: 10, account_reference: "A" });
const c: CheckoutClient = new CheckoutClient("cs_1_secret_2");
export { p, c, NotFoundError };
"""

TYPES_CJS = """
import { MpesaBridge, type Payment } from "mpesa-bridge";
import browser = require("mpesa-bridge/browser");
const bridge = new MpesaBridge("sk_test_x");
const p: Promise<Payment> = bridge.payments.get("pay_1");
const w: typeof browser.watchPayment = browser.watchPayment;
export { p, w };
"""


@pytest.fixture(scope="module")
def shop(built_sdk: Path, bridge: tuple[ServerProcess, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """examples/express_shop on a free port; it registers its own webhook endpoint at start."""
    assert NODE is not None
    npm_ci(SHOP)
    server, key = bridge
    port = free_port()
    log_path = tmp_path_factory.mktemp("shop") / "shop.log"
    env = {**os.environ, "PORT": str(port), "MPESA_BRIDGE_URL": server.url, "MPESA_BRIDGE_KEY": key}
    env.pop("MPESA_BRIDGE_WEBHOOK_SECRET", None)
    with log_path.open("ab") as log:
        process = subprocess.Popen([NODE, "server.mjs"], cwd=SHOP, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if process.poll() is not None:
            pytest.fail(f"the shop exited with {process.returncode}:\n{log_path.read_text()}", pytrace=False)
        try:
            with httpx.Client(timeout=1) as client:
                return client.get(f"{url}/orders/none").status_code == 404
        except httpx.HTTPError:
            return False

    try:
        wait_until(up, timeout=30)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _order(client: httpx.Client, shop: str, order_id: str) -> dict[str, object]:
    response = client.get(f"{shop}/orders/{order_id}")
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_the_express_shop_takes_a_test_payment_and_a_verified_webhook_marks_the_order_paid(
    shop: str, bridge: tuple[ServerProcess, str]
) -> None:
    with httpx.Client(timeout=15) as client:
        created = client.post(f"{shop}/orders", json={"amount": 120, "phone": "0712300001"})
        assert created.status_code == 201, created.text
        order_id = created.json()["order"]["id"]
        assert created.json()["payment"]["id"].startswith("pay_")
        wait_until(lambda: _order(client, shop, order_id)["status"] == "paid", timeout=30)
        order = _order(client, shop, order_id)
        assert order["paid_by"] == created.json()["payment"]["id"]
        assert order["receipt"]

        # A forged webhook is refused and changes nothing.
        forged = client.post(
            f"{shop}/webhooks/mpesa",
            content=b'{"id":"evt_x","type":"payment.succeeded","data":{"object":{"metadata":{}}}}',
            headers={
                "Content-Type": "application/json",
                "webhook-id": "evt_x",
                "webhook-timestamp": str(int(time.time())),
                "webhook-signature": "v1,bm90IGEgc2lnbmF0dXJl",
            },
        )
        assert forged.status_code == 400


def test_the_express_shop_sells_through_a_checkout_session(shop: str, bridge: tuple[ServerProcess, str]) -> None:
    server, _ = bridge
    with httpx.Client(timeout=15) as client:
        created = client.post(f"{shop}/orders", json={"amount": 80})
        assert created.status_code == 201, created.text
        body = created.json()
        session = body["checkout_session"]
        assert body["checkout_url"].startswith(f"{server.url}/pay/{session['id']}?client_secret=")
        paid = client.post(
            f"{server.url}/v1/checkout_sessions/{session['id']}/pay",
            json={"phone": "0712300002"},
            headers={"Authorization": f"Bearer {session['client_secret']}"},
        )
        assert paid.status_code in (200, 201), paid.text
        wait_until(lambda: _order(client, shop, body["order"]["id"])["status"] == "paid", timeout=30)
