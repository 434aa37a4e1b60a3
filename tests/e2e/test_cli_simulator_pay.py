"""`mpesa-bridge simulator pay` against a standalone simulator process on a free port: the URLs are
registered with the Daraja client over real HTTP, the command runs as its own process, and a loopback
receiver standing in for the bridge gets the validation and the confirmation."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from mpesa_bridge.daraja import C2BRegisterRequest, DarajaClient, DarajaCredentials, TokenCache
from mpesa_bridge.daraja.c2b import accept_payment, reject_payment
from tests.fixtures.receiver import HANG, Receiver, Reply
from tests.fixtures.servers import ServerProcess, free_port, simulator_process

pytestmark = pytest.mark.slow

TRANS_ID = re.compile(r"^TransID ([A-Z0-9]{10})  status (\w+)$", re.MULTILINE)


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = simulator_process(tmp_path_factory.mktemp("c2b"))
    process.args += ["--c2b-validation-timeout", "0.5"]
    process.start(health_path="/oauth/v1/generate")
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as receiver:
        yield receiver


async def register(simulator: ServerProcess, receiver: Receiver, short_code: str, response_type: str) -> None:
    async with httpx.AsyncClient(trust_env=False) as http:
        client = DarajaClient(
            simulator.url,
            DarajaCredentials("sim_consumer_key", "sim_consumer_secret"),
            http=http,
            token_cache=TokenCache(),
        )
        request = C2BRegisterRequest(short_code, response_type, receiver.url + "/confirm", receiver.url + "/validate")  # type: ignore[arg-type]
        await client.c2b_register_urls(request)


async def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run `python -m mpesa_bridge …` without blocking the loop the receiver answers on."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mpesa_bridge",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def json_reply(body: dict[str, str]) -> Reply:
    return Reply(200, json.dumps(body).encode(), headers={"Content-Type": "application/json"})


async def test_pay_a_paybill_prints_the_trans_id_and_both_answers(simulator: ServerProcess, receiver: Receiver) -> None:
    await register(simulator, receiver, "600984", "Completed")
    receiver.script("/validate", json_reply(accept_payment()))
    code, out, err = await cli(
        "simulator", "pay", "--paybill", "600984", "--amount", "250", "--account", "INV9", "--phone", "254712000001",
        "--simulator-url", simulator.url,
    )  # fmt: skip
    assert code == 0, err
    match = TRANS_ID.search(out)
    assert match and match.group(2) == "completed", out
    assert 'validation: accepted (HTTP 200 {"ResultCode":"0","ResultDesc":"Accepted"})' in out
    assert "confirmation: HTTP 200" in out
    validation, confirmation = (r.json for r in await receiver.wait_for(2))
    assert validation["TransID"] == confirmation["TransID"] == match.group(1)
    assert confirmation["TransAmount"] == "250.00" and confirmation["BillRefNumber"] == "INV9"
    assert confirmation["MSISDN"] == "2547 ***** 001"


async def test_pay_a_till_the_bridge_refuses(simulator: ServerProcess, receiver: Receiver) -> None:
    await register(simulator, receiver, "600977", "Completed")
    receiver.script("/validate", json_reply(reject_payment("C2B00013", "Invalid Amount")))
    code, out, err = await cli(
        "simulator", "pay", "--till", "600977", "--amount", "5", "--simulator-url", simulator.url
    )
    assert code == 0, err
    assert "status rejected" in out and "validation: rejected" in out and "C2B00013" in out
    assert "confirmation: not sent" in out
    assert [r.path for r in receiver.requests] == ["/validate"]
    assert receiver.requests[0].json["TransactionType"] == "Buy Goods"


async def test_pay_reads_its_options_from_variables_and_a_slow_bridge_meets_cancelled(
    simulator: ServerProcess, receiver: Receiver
) -> None:
    await register(simulator, receiver, "600996", "Cancelled")
    receiver.script("/validate", HANG)
    env = {
        "PATH": "/usr/bin:/bin",
        "MPESA_BRIDGE_SIMULATOR_URL": simulator.url,
        "MPESA_BRIDGE_PAY_PAYBILL": "600996",
        "MPESA_BRIDGE_PAY_AMOUNT": "10",
        "MPESA_BRIDGE_PAY_ACCOUNT": "ACC1",
    }
    code, out, err = await cli("simulator", "pay", env=env)
    assert code == 0, err
    assert "status cancelled" in out and "validation: no_answer" in out and "confirmation: not sent" in out


async def test_pay_needs_exactly_one_short_code_and_a_reachable_simulator() -> None:
    both = await cli("simulator", "pay", "--till", "600977", "--paybill", "600984", "--amount", "5")
    neither = await cli("simulator", "pay", "--amount", "5")
    for code, _, err in (both, neither):
        assert code == 2 and "exactly one of --till and --paybill" in err
    url = f"http://127.0.0.1:{free_port()}"
    code, _, err = await cli("simulator", "pay", "--till", "600977", "--amount", "5", "--simulator-url", url)
    assert code == 1 and "cannot reach the simulator" in err and "Traceback" not in err
