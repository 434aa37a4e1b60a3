"""POST /v1/qr_codes over ASGI, with the simulator as Daraja — on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qs

import pytest

from mpesa_bridge.simulator.qr import PAYLOAD_PREFIX
from tests.fixtures.bridge import InProcessBridge
from tests.fixtures.qr import decode_png, png_size

BODY: dict[str, Any] = {
    "merchant_name": "TEST SUPERMARKET",
    "reference": "Invoice 42",
    "amount": 1500,
    "trx_code": "BG",
    "cpi": "373132",
    "size": 300,
}


def fields_in(png: bytes) -> dict[str, list[str]]:
    (text,) = decode_png(png)
    assert text.startswith(PAYLOAD_PREFIX)
    return parse_qs(text[len(PAYLOAD_PREFIX) :], strict_parsing=True)


async def test_a_qr_code_comes_back_as_json_with_the_png_daraja_drew(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()

    response = await bridge.client.post("/v1/qr_codes", json=BODY, headers=shop.headers())

    assert response.status_code == 200, response.text
    data = response.json()
    assert set(data) == {"object", "image_png_base64", "request_id", "description"}
    assert data["object"] == "qr_code"
    assert data["request_id"]
    assert data["description"] == "QR Code Successfully Generated."
    png = base64.b64decode(data["image_png_base64"], validate=True)
    assert png_size(png) == (300, 300)
    assert fields_in(png) == {
        "TrxCode": ["BG"],
        "CPI": ["373132"],
        "Amount": ["1500"],
        "RefNo": ["Invoice 42"],
        "MerchantName": ["TEST SUPERMARKET"],
    }


async def test_format_png_answers_with_the_image_itself(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    body = {k: v for k, v in BODY.items() if k != "size"} | {"trx_code": "SM", "cpi": "254708374149"}

    response = await bridge.client.post("/v1/qr_codes?format=png", json=body, headers=shop.headers())

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert png_size(response.content) == (300, 300)  # Daraja's default size
    assert fields_in(response.content)["CPI"] == ["254708374149"]


@pytest.mark.parametrize(
    ("changes", "param"),
    [
        ({"merchant_name": ""}, "merchant_name"),
        ({"merchant_name": "Duka & Sons"}, "merchant_name"),
        ({"reference": "INV#42"}, "reference"),
        ({"reference": "R" * 21}, "reference"),
        ({"amount": 0}, "amount"),
        ({"amount": 12.5}, "amount"),
        ({"amount": "100"}, "amount"),
        ({"trx_code": "XX"}, "trx_code"),
        ({"cpi": "0712345678"}, "cpi"),
        ({"trx_code": "SM", "cpi": "373132"}, "cpi"),
        ({"size": 50}, "size"),
        ({"size": 1001}, "size"),
    ],
)
async def test_a_field_daraja_would_refuse_is_a_400_naming_it(
    bridge: InProcessBridge, changes: dict[str, Any], param: str
) -> None:
    shop = await bridge.create_project()

    response = await bridge.client.post("/v1/qr_codes", json=BODY | changes, headers=shop.headers())

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "invalid_for_daraja"
    assert error["param"] == param
    assert error["request_id"] == response.headers["x-request-id"]


async def test_a_missing_or_unknown_field_is_a_400_naming_it(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    missing = {k: v for k, v in BODY.items() if k != "cpi"}

    response = await bridge.client.post("/v1/qr_codes", json=missing, headers=shop.headers())
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parameter_missing"
    assert response.json()["error"]["param"] == "cpi"

    response = await bridge.client.post("/v1/qr_codes", json=BODY | {"colour": "red"}, headers=shop.headers())
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "colour"

    response = await bridge.client.post("/v1/qr_codes?format=gif", json=BODY, headers=shop.headers())
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "format"


async def test_a_secret_key_is_required(bridge: InProcessBridge) -> None:
    response = await bridge.client.post("/v1/qr_codes", json=BODY)
    assert response.status_code == 401
    response = await bridge.client.post("/v1/qr_codes", json=BODY, headers={"Authorization": "Bearer sk_test_nope"})
    assert response.status_code == 401


async def test_a_mode_without_daraja_settings_is_refused_before_daraja(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()  # test mode on the simulator; live mode not set up

    response = await bridge.client.post("/v1/qr_codes", json=BODY, headers=shop.headers("live"))

    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "mode_not_configured"
