"""The simulator's Dynamic QR (daraja.md 12): Daraja's fields and answers, and a PNG that really decodes."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from mpesa_bridge.simulator import Simulator, SimulatorConfig
from mpesa_bridge.simulator.qr import PAYLOAD_PREFIX
from tests.fixtures.qr import decode_png, png_size

QR = "/mpesa/qrcode/v1/generate"
SAMPLE: dict[str, Any] = {
    "MerchantName": "TEST SUPERMARKET",
    "RefNo": "Invoice Test",
    "Amount": 1,
    "TrxCode": "BG",
    "CPI": "373132",
    "Size": "300",
}


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with (
        Simulator(SimulatorConfig()) as simulator,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=simulator.app), base_url="http://sim") as client,
    ):
        token = await client.get(
            "/oauth/v1/generate?grant_type=client_credentials", auth=("sim_consumer_key", "sim_consumer_secret")
        )
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        yield client


def payload(png: bytes) -> dict[str, list[str]]:
    texts = decode_png(png)
    assert len(texts) == 1 and texts[0].startswith(PAYLOAD_PREFIX), texts
    return parse_qs(texts[0][len(PAYLOAD_PREFIX) :], strict_parsing=True)


async def test_the_documented_sample_gets_a_png_qr_of_its_fields(client: httpx.AsyncClient) -> None:
    response = await client.post(QR, json=SAMPLE)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"ResponseCode", "RequestID", "ResponseDescription", "QRCode"}
    assert body["ResponseCode"] == "00"
    assert body["ResponseDescription"] == "QR Code Successfully Generated."
    assert body["QRCode"].startswith("iVBOR")  # base64 of a PNG signature, as Daraja's
    png = base64.b64decode(body["QRCode"], validate=True)
    assert png_size(png) == (300, 300)
    assert payload(png) == {
        "TrxCode": ["BG"],
        "CPI": ["373132"],
        "Amount": ["1"],
        "RefNo": ["Invoice Test"],
        "MerchantName": ["TEST SUPERMARKET"],
    }


@pytest.mark.parametrize("size", [100, "150", 640, 1000])
async def test_the_image_is_size_pixels_square_and_reads(client: httpx.AsyncClient, size: object) -> None:
    response = await client.post(QR, json=SAMPLE | {"Size": size, "TrxCode": "SM", "CPI": 254708374149})

    assert response.status_code == 200, response.text
    png = base64.b64decode(response.json()["QRCode"])
    assert png_size(png) == (int(str(size)), int(str(size)))
    assert payload(png)["CPI"] == ["254708374149"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"MerchantName": None}, "MerchantName"),
        ({"MerchantName": ""}, "MerchantName"),
        ({"RefNo": ...}, "RefNo"),
        ({"RefNo": "  "}, "RefNo"),
        ({"Amount": 10.5}, "Amount"),
        ({"Amount": 0}, "Amount"),
        ({"Amount": "ten"}, "Amount"),
        ({"TrxCode": "XX"}, "TrxCode"),
        ({"TrxCode": ...}, "TrxCode"),
        ({"CPI": "0712345678"}, "CPI"),
        ({"TrxCode": "SM", "CPI": "373132"}, "CPI"),
        ({"TrxCode": "PB", "CPI": "254708374149"}, "CPI"),
        ({"Size": "0"}, "Size"),
        ({"Size": "300px"}, "Size"),
        ({"Size": 5000}, "Size"),
        ({"Size": ...}, "Size"),
    ],
)
async def test_a_bad_field_is_named_in_darajas_envelope(
    client: httpx.AsyncClient, changes: dict[str, Any], field: str
) -> None:
    body = {k: v for k, v in (SAMPLE | changes).items() if v is not ...}

    response = await client.post(QR, json=body)

    assert response.status_code == 400
    error = response.json()
    assert error["errorCode"] == "400.002.02"
    assert error["errorMessage"] == f"Bad Request - Invalid {field}"
    assert error["requestId"]


async def test_fields_are_checked_in_darajas_order(client: httpx.AsyncClient) -> None:
    response = await client.post(QR, json={"Amount": 0, "Size": "x"})
    assert response.json()["errorMessage"] == "Bad Request - Invalid MerchantName"


async def test_a_body_that_is_not_json_blames_the_first_field(client: httpx.AsyncClient) -> None:
    response = await client.post(QR, data={"MerchantName": "TEST"})
    assert response.status_code == 400
    assert response.json()["errorMessage"] == "Bad Request - Invalid MerchantName"


async def test_a_missing_or_wrong_token_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(QR, json=SAMPLE, headers={"Authorization": "Bearer nope"})
    assert response.status_code == 404
    assert response.json()["errorCode"] == "404.001.03"


async def test_only_post_is_allowed(client: httpx.AsyncClient) -> None:
    response = await client.get(QR)
    assert response.status_code == 405
    assert response.json()["errorCode"] == "405.001"
