"""Dynamic QR in the Daraja client and its gateway adapter, against a scripted Daraja (httpx.MockTransport):
the fields checked before sending, the body sent, tolerant parsing, and errors into each exception tree."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import AsyncIterator, Callable, Mapping

import httpx
import pytest

from mpesa_bridge.core.errors import InvalidRequest, UpstreamUnavailable
from mpesa_bridge.core.ports import DynamicQrCommand, DynamicQrImage, QrRefused, QrUnavailable
from mpesa_bridge.core.projects import DarajaAccount, DarajaEnvironment
from mpesa_bridge.daraja import (
    DarajaAuthError,
    DarajaClient,
    DarajaCredentials,
    DarajaRejected,
    DarajaServerError,
    DarajaThrottled,
    DarajaValidationError,
    DynamicQr,
    DynamicQrRequest,
    TokenCache,
)
from mpesa_bridge.daraja.gateway import DarajaGatewayAdapter

BASE = "https://sandbox.safaricom.co.ke"
QR_PATH = "/mpesa/qrcode/v1/generate"
CREDENTIALS = DarajaCredentials("consumer-key", "consumer-secret-s3cr3t")
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40  # only the signature is looked at
PNG_B64 = base64.b64encode(PNG).decode()
QR_OK: dict[str, object] = {
    "ResponseCode": "00",
    "RequestID": "16738-27456357-1",
    "ResponseDescription": "QR Code Successfully Generated.",
    "QRCode": PNG_B64,
}
SAMPLE = DynamicQrRequest(
    merchant_name="TEST SUPERMARKET", ref_no="Invoice Test", amount=1, trx_code="BG", cpi="373132", size=300
)

Answer = Callable[[httpx.Request], httpx.Response]
MakeHttp = Callable[["Peer"], httpx.AsyncClient]


class Peer:
    """Daraja's OAuth and QR paths; records the QR requests."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.sent: list[dict[str, object]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/v1/generate":
            return httpx.Response(200, json={"access_token": "token-1", "expires_in": "3599"})
        assert request.url.path == QR_PATH
        assert request.headers["authorization"] == "Bearer token-1"
        self.sent.append(json.loads(request.content))
        return self.answer(request)


def reply(body: Mapping[str, object], status: int = 200) -> Answer:
    return lambda _: httpx.Response(status, json=dict(body))


def envelope(status: int, code: str, message: str) -> Answer:
    return reply({"requestId": "30764-19833054-1", "errorCode": code, "errorMessage": message}, status)


@pytest.fixture
async def http() -> AsyncIterator[MakeHttp]:
    opened: list[httpx.AsyncClient] = []

    def make(peer: Peer) -> httpx.AsyncClient:
        client = httpx.AsyncClient(transport=httpx.MockTransport(peer))
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.aclose()


async def generate(http: MakeHttp, answer: Answer, request: DynamicQrRequest = SAMPLE) -> tuple[DynamicQr, Peer]:
    peer = Peer(answer)
    client = DarajaClient(BASE, CREDENTIALS, http=http(peer), token_cache=TokenCache())
    return await client.dynamic_qr(request), peer


# The request ----------------------------------------------------------------------------------


async def test_the_body_is_dynamic_qrs_fields_spelled_as_daraja_spells_them(http: MakeHttp) -> None:
    qr, peer = await generate(http, reply(QR_OK))

    assert peer.sent == [
        {
            "MerchantName": "TEST SUPERMARKET",
            "RefNo": "Invoice Test",
            "Amount": 1,  # a JSON integer: whole shillings
            "TrxCode": "BG",
            "CPI": "373132",
            "Size": "300",  # a string, as in Daraja's documentation
        }
    ]
    assert qr.png == PNG
    assert qr.request_id == "16738-27456357-1"
    assert qr.response_code == "0"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("merchant_name", ""),
        ("merchant_name", "   "),
        ("merchant_name", "A" * 65),
        ("merchant_name", "Duka & Sons"),
        ("merchant_name", "Café"),
        ("merchant_name", "Line\nbreak"),
        ("merchant_name", 42),
        ("ref_no", ""),
        ("ref_no", "R" * 21),
        ("ref_no", "INV#1"),
        ("ref_no", None),
        ("amount", 0),
        ("amount", 250_001),
        ("amount", 10.5),
        ("amount", "100"),
        ("amount", True),
        ("trx_code", "XX"),
        ("trx_code", "bg"),
        ("trx_code", None),
        ("cpi", ""),
        ("cpi", "12345678"),
        ("cpi", "0712345678"),
        ("cpi", "37313a"),
        ("size", 99),
        ("size", 1001),
        ("size", "300"),
        ("size", False),
    ],
)
async def test_a_field_daraja_would_refuse_is_refused_before_sending(http: MakeHttp, field: str, value: object) -> None:
    request = dataclasses.replace(SAMPLE, **{field: value})

    with pytest.raises(DarajaValidationError) as caught:
        await generate(http, reply(QR_OK), request)

    assert caught.value.field == field


@pytest.mark.parametrize(
    ("trx_code", "cpi", "valid"),
    [
        ("BG", "373132", True),
        ("WA", "1234567", True),
        ("PB", "600100", True),
        ("SM", "254712345678", True),
        ("SM", "254112345678", True),
        ("SM", "373132", False),  # send money goes to a phone
        ("BG", "254712345678", False),  # a till, not a phone
        ("SB", "600100", True),
        ("SB", "254712345678", True),  # "business number CPI in MSISDN format"
        ("SB", "0712345678", False),
    ],
)
async def test_the_cpi_follows_the_trx_code(http: MakeHttp, trx_code: str, cpi: str, valid: bool) -> None:
    request = dataclasses.replace(SAMPLE, trx_code=trx_code, cpi=cpi)
    if valid:
        _, peer = await generate(http, reply(QR_OK), request)
        assert peer.sent[0]["CPI"] == cpi
    else:
        with pytest.raises(DarajaValidationError) as caught:
            await generate(http, reply(QR_OK), request)
        assert caught.value.field == "cpi"


# The answer -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"ResponseCode": "0"},
        {"ResponseCode": 0},
        {"ResponseCode": "00000000"},
        {"QRCode": "data:image/png;base64," + PNG_B64},
        {"QRCode": PNG_B64[:20] + "\n" + PNG_B64[20:]},
        {"QRCode": PNG_B64.rstrip("=")},
        {"RequestID": None, "ResponseDescription": None},
        {"responsecode": "00", "ResponseCode": ...},
    ],
)
async def test_the_answer_is_read_tolerantly(http: MakeHttp, changes: dict[str, object]) -> None:
    body = {k: v for k, v in (QR_OK | changes).items() if v is not ...}

    qr, _ = await generate(http, reply(body))

    assert qr.png == PNG


@pytest.mark.parametrize(
    "changes",
    [
        {"QRCode": None},
        {"QRCode": ""},
        {"QRCode": "not base64 !"},
        {"QRCode": base64.b64encode(b"GIF89a....").decode()},  # an image, but not a PNG
        {"QRCode": 12345},
        {"ResponseCode": None},
    ],
)
async def test_an_answer_without_a_png_is_a_server_error(http: MakeHttp, changes: dict[str, object]) -> None:
    with pytest.raises(DarajaServerError) as caught:
        await generate(http, reply(QR_OK | changes))
    assert caught.value.outcome_unknown is False  # nothing moved: asking again is harmless


async def test_a_non_zero_response_code_is_a_rejection(http: MakeHttp) -> None:
    with pytest.raises(DarajaRejected) as caught:
        await generate(http, reply({"ResponseCode": "1", "ResponseDescription": "Invalid CPI"}))
    assert caught.value.error_code == "1"
    assert caught.value.error_message == "Invalid CPI"


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (envelope(400, "400.002.02", "Bad Request - Invalid RefNo"), DarajaRejected),
        (envelope(400, "400.002.05", "Invalid Request Payload"), DarajaRejected),
        (envelope(500, "500.003.02", "System is busy"), DarajaThrottled),
        (
            envelope(401, "401.002.01", "Error Occurred - Invalid Access Token - no apiproduct match found"),
            DarajaAuthError,
        ),
        (lambda _: httpx.Response(403, text="<html>Access denied</html>"), DarajaServerError),
        (lambda _: httpx.Response(503, content=b""), DarajaServerError),
    ],
)
async def test_error_answers_land_in_the_clients_tree(http: MakeHttp, answer: Answer, error: type[Exception]) -> None:
    with pytest.raises(error):
        await generate(http, answer)


# The gateway adapter: the core's errors, with the API's field names ----------------------------

ACCOUNT = DarajaAccount(DarajaEnvironment.SANDBOX, "consumer-key", "consumer-secret-s3cr3t", short_code="174379")


def command(**changes: object) -> DynamicQrCommand:
    base = DynamicQrCommand(ACCOUNT, "TEST SUPERMARKET", "Invoice Test", 1, "BG", "373132", 300)
    return dataclasses.replace(base, **changes)


async def adapt(http: MakeHttp, answer: Answer, cmd: DynamicQrCommand) -> DynamicQrImage:
    adapter = DarajaGatewayAdapter(http(Peer(answer)), {DarajaEnvironment.SANDBOX: BASE})
    return await adapter.dynamic_qr(cmd)


async def test_the_adapter_returns_the_png(http: MakeHttp) -> None:
    image = await adapt(http, reply(QR_OK), command())
    assert image.png == PNG
    assert image.request_id == "16738-27456357-1"
    assert image.description == "QR Code Successfully Generated."


@pytest.mark.parametrize(
    ("changes", "param"),
    [
        ({"merchant_name": ""}, "merchant_name"),
        ({"reference": "INV#1"}, "reference"),
        ({"amount": 0}, "amount"),
        ({"trx_code": "XX"}, "trx_code"),
        ({"cpi": "12"}, "cpi"),
        ({"size": 5}, "size"),
    ],
)
async def test_a_field_refused_before_sending_names_the_apis_param(
    http: MakeHttp, changes: dict[str, object], param: str
) -> None:
    with pytest.raises(QrRefused) as caught:
        await adapt(http, reply(QR_OK), command(**changes))
    assert caught.value.param == param
    assert caught.value.code == "invalid_for_daraja"
    assert isinstance(caught.value, InvalidRequest)  # the API answers 400


@pytest.mark.parametrize(
    ("field", "param"),
    [
        ("MerchantName", "merchant_name"),
        ("RefNo", "reference"),
        ("Amount", "amount"),
        ("TrxCode", "trx_code"),
        ("CPI", "cpi"),
        ("Size", "size"),
    ],
)
async def test_darajas_own_field_refusal_names_the_apis_param(http: MakeHttp, field: str, param: str) -> None:
    with pytest.raises(QrRefused) as caught:
        await adapt(http, envelope(400, "400.002.02", f"Bad Request - Invalid {field}"), command())
    assert caught.value.param == param
    assert "400.002.02" in caught.value.message


async def test_another_refusal_is_a_400_without_a_param(http: MakeHttp) -> None:
    with pytest.raises(QrRefused) as caught:
        await adapt(http, envelope(500, "500.001.1001", "Merchant does not exist"), command())
    assert caught.value.param is None
    assert caught.value.code == "merchant_not_found"


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (envelope(500, "500.003.02", "System is busy"), "daraja_throttled"),
        (
            envelope(401, "401.002.01", "Error Occurred - Invalid Access Token - no apiproduct match found"),
            "daraja_auth_failed",
        ),
        (lambda _: httpx.Response(502, text="<html>bad gateway</html>"), "daraja_error"),
    ],
)
async def test_daraja_unavailable_is_an_upstream_error(http: MakeHttp, answer: Answer, code: str) -> None:
    with pytest.raises(QrUnavailable) as caught:
        await adapt(http, answer, command())
    assert caught.value.code == code
    assert isinstance(caught.value, UpstreamUnavailable)  # the API answers 502


async def test_an_unreachable_daraja_is_an_upstream_error(http: MakeHttp) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(QrUnavailable) as caught:
        await adapt(http, refuse, command())
    assert caught.value.code == "daraja_unreachable"


async def test_an_environment_the_bridge_lacks_is_an_upstream_error(http: MakeHttp) -> None:
    live = dataclasses.replace(ACCOUNT, environment=DarajaEnvironment.PRODUCTION)
    with pytest.raises(QrUnavailable) as caught:
        await adapt(http, reply(QR_OK), command(account=live))
    assert caught.value.code == "environment_unavailable"
