"""The gateway's C2B side: Daraja's register answers translated into the core's C2B errors, and the
validation/confirmation body read for the core (`read_c2b_body`), refusing what storage could not keep."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest

from mpesa_bridge.core.c2b.errors import C2BRegisterRefused, C2BRegisterUnavailable
from mpesa_bridge.core.c2b.ports import C2BRegisterCommand, MalformedC2B
from mpesa_bridge.core.projects import DarajaAccount, DarajaEnvironment
from mpesa_bridge.daraja.gateway import DarajaGatewayAdapter, read_c2b_body

BASE = "http://daraja.test"
ACCOUNT = DarajaAccount(DarajaEnvironment.SANDBOX, "key", "secret", "174379")
BODY = {
    "TransactionType": "Pay Bill",
    "TransID": "RKL51ZDR4F",
    "TransTime": "20231121121325",
    "TransAmount": "5.00",
    "BusinessShortCode": "600966",
    "BillRefNumber": "Sample Transaction",
    "InvoiceNumber": "",
    "OrgAccountBalance": "25.00",
    "ThirdPartyTransID": "",
    "MSISDN": "2547 ***** 126",
    "FirstName": "NICHOLAS",
    "MiddleName": "",
    "LastName": "",
}


def command(url: str = "http://bridge.test/v1/callbacks/daraja/c2b_validation/ab12") -> C2BRegisterCommand:
    return C2BRegisterCommand(ACCOUNT, "600984", "Completed", url.replace("validation", "confirmation"), url, 2)


async def register_with(answer: Callable[[httpx.Request], httpx.Response], cmd: C2BRegisterCommand) -> str:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/v1/generate":
            return httpx.Response(200, json={"access_token": "tok", "expires_in": "3599"})
        return answer(request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        gateway = DarajaGatewayAdapter(http, {DarajaEnvironment.SANDBOX: BASE})
        return await gateway.c2b_register(cmd)


async def test_a_registration_goes_to_v2_and_answers_the_conversation_id() -> None:
    seen: list[httpx.Request] = []

    def ok(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"OriginatorCoversationID": "6e86-45dd", "ResponseCode": "0"})

    assert await register_with(ok, command()) == "6e86-45dd"
    assert seen[0].url.path == "/mpesa/c2b/v2/registerurl"
    sent = json.loads(seen[0].content)
    assert sent["ShortCode"] == "600984" and sent["ResponseType"] == "Completed"


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (
            httpx.Response(500, json={"errorCode": "500.003.1001", "errorMessage": "Urls are already registered."}),
            C2BRegisterRefused,
        ),
        (
            httpx.Response(500, json={"fault": {"faultstring": "Execution of ServiceCallout SCO-AddURLVault failed."}}),
            C2BRegisterRefused,
        ),
        (
            httpx.Response(
                400, json={"errorCode": "400.003.02", "errorMessage": "Bad Request - Invalid ValidationURL"}
            ),
            C2BRegisterRefused,
        ),
        (
            httpx.Response(500, json={"errorCode": "500.003.02", "errorMessage": "Spike arrest violation"}),
            C2BRegisterUnavailable,
        ),
    ],
)
async def test_darajas_refusals_and_troubles_become_the_cores_errors(
    answer: httpx.Response, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await register_with(lambda _request: answer, command())


async def test_a_url_daraja_would_refuse_is_refused_before_sending() -> None:
    def never(_request: httpx.Request) -> httpx.Response:
        raise AssertionError("sent")

    with pytest.raises(C2BRegisterRefused):
        await register_with(never, command("http://mpesa.example/v1/callbacks/daraja/c2b_validation/ab"))


def test_a_body_is_read_in_whole_shillings_and_utc() -> None:
    read = read_c2b_body(json.dumps(BODY).encode())
    assert read.amount == 5 and read.trans_id == "RKL51ZDR4F" and read.short_code == "600966"
    assert read.trans_time == datetime(2023, 11, 21, 9, 13, 25, tzinfo=UTC)
    assert read.msisdn_kind == "masked" and read.customer_name == "NICHOLAS" and read.org_account_balance == "25.00"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        json.dumps({**BODY, "TransAmount": "5.50"}).encode(),  # cents: never rounded
        json.dumps({**BODY, "TransID": ""}).encode(),
        json.dumps({**BODY, "BillRefNumber": "INV\u00001"}).encode(),  # PostgreSQL refuses NUL
        json.dumps({**BODY, "TransID": "X" * 65}).encode(),
    ],
)
def test_what_cannot_be_kept_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedC2B):
        read_c2b_body(body)
