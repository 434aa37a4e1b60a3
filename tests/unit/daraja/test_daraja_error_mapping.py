"""Every documented Daraja error answer, and the malformed ones, map to one exception class."""

import json
from collections.abc import AsyncIterator
from typing import NamedTuple

import httpx
import pytest

from mpesa_bridge.daraja import (
    DarajaAuthError,
    DarajaClient,
    DarajaCredentials,
    DarajaError,
    DarajaRejected,
    DarajaResponseError,
    DarajaServerError,
    DarajaStillProcessing,
    DarajaSubscriberLocked,
    DarajaThrottled,
    StkPushRequest,
    TokenCache,
)

OAUTH = "/oauth/v1/generate"
PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
WAF_PAGE = "<html><head><title>403 Forbidden</title></head><body>Request blocked." + " " * 2000 + "</body></html>"
APIGEE_FAULT = {
    "fault": {
        "faultstring": "Unable to identify proxy for host: secure and url: /mpesa/stkpush/v9/processrequest",
        "detail": {"errorcode": "messaging.adaptors.http.flow.ApplicationNotFound"},
    }
}


def daraja(status: int, code: str, message: str) -> httpx.Response:
    return httpx.Response(status, json={"requestId": "1c5b-4ba8-815c", "errorCode": code, "errorMessage": message})


class Row(NamedTuple):
    answer: httpx.Response
    error: type[DarajaResponseError]
    code: str  # the exception's stable `code`
    push_outcome_unknown: bool


ROWS: dict[str, Row] = {
    "invalid field": Row(
        daraja(400, "400.002.02", "Bad Request - Invalid Amount"), DarajaRejected, "daraja_rejected", False
    ),
    "invalid payload": Row(
        daraja(400, "400.002.05", "Invalid Request Payload"), DarajaRejected, "daraja_rejected", False
    ),
    "bad request 400.003.02": Row(daraja(400, "400.003.02", "Bad Request"), DarajaRejected, "daraja_rejected", False),
    "resource not found": Row(
        daraja(404, "404.001.01", "Resource not found"), DarajaRejected, "daraja_rejected", False
    ),
    "invalid auth header": Row(
        daraja(404, "404.001.04", "Invalid Authentication Header"), DarajaRejected, "daraja_rejected", False
    ),
    "method not allowed": Row(daraja(405, "405.001", "Method Not Allowed"), DarajaRejected, "daraja_rejected", False),
    "merchant does not exist": Row(
        daraja(500, "500.001.1001", "Merchant does not exist"), DarajaRejected, "daraja_rejected", False
    ),
    "wrong credentials": Row(
        daraja(500, "500.001.1001", "[MerchantValidate] - Wrong credentials"),
        DarajaRejected,
        "daraja_rejected",
        False,
    ),
    "unknown 1001 text": Row(
        daraja(500, "500.001.1001", "Something nobody documented"), DarajaRejected, "daraja_rejected", False
    ),
    "subscriber locked": Row(
        daraja(
            500,
            "500.001.1001",
            "Unable to lock subscriber, a transaction is already in process for the current subscriber",
        ),
        DarajaSubscriberLocked,
        "daraja_subscriber_locked",
        False,
    ),
    "subscriber locked, other case": Row(
        daraja(500, "500.001.1001", "UNABLE TO LOCK SUBSCRIBER"),
        DarajaSubscriberLocked,
        "daraja_subscriber_locked",
        False,
    ),
    "being processed": Row(
        daraja(500, "500.001.1001", "The transaction is being processed"),
        DarajaStillProcessing,
        "daraja_still_processing",
        False,
    ),
    "system busy": Row(
        daraja(500, "500.003.02", "System is busy. Please try again in few minutes."),
        DarajaThrottled,
        "daraja_throttled",
        False,
    ),
    "spike arrest": Row(
        daraja(500, "500.003.02", "Error Occurred: Spike Arrest Violation"), DarajaThrottled, "daraja_throttled", False
    ),
    "quota": Row(daraja(500, "500.003.03", "Quota Violation"), DarajaThrottled, "daraja_throttled", False),
    "http 429": Row(httpx.Response(429), DarajaThrottled, "daraja_throttled", False),
    "internal server error": Row(
        daraja(500, "500.003.1001", "Internal Server Error"), DarajaServerError, "daraja_server_error", True
    ),
    "undocumented 5xx code": Row(
        daraja(500, "500.002.1001", "Duplicate OriginatorConversationID."),
        DarajaServerError,
        "daraja_server_error",
        True,
    ),
    "no api product": Row(
        httpx.Response(
            401,
            json={
                "errorMessage": "Error Occurred - Invalid Access Token - Invalid API call as no apiproduct match found"
            },
        ),
        DarajaAuthError,
        "daraja_auth_error",
        False,
    ),
    "html 403 from the firewall": Row(
        httpx.Response(403, text=WAF_PAGE, headers={"content-type": "text/html"}),
        DarajaServerError,
        "daraja_server_error",
        True,
    ),
    "html 502": Row(
        httpx.Response(502, text="<html>Bad Gateway</html>", headers={"content-type": "text/html"}),
        DarajaServerError,
        "daraja_server_error",
        True,
    ),
    "apigee fault": Row(httpx.Response(404, json=APIGEE_FAULT), DarajaServerError, "daraja_server_error", True),
    "empty 500": Row(httpx.Response(500, content=b""), DarajaServerError, "daraja_server_error", True),
    "empty 400": Row(httpx.Response(400, content=b""), DarajaServerError, "daraja_server_error", True),
    "empty 200": Row(httpx.Response(200, content=b""), DarajaServerError, "daraja_server_error", True),
    "html 200": Row(
        httpx.Response(200, text="<html>hi</html>", headers={"content-type": "text/html"}),
        DarajaServerError,
        "daraja_server_error",
        True,
    ),
    "json list 200": Row(httpx.Response(200, json=[1, 2, 3]), DarajaServerError, "daraja_server_error", True),
    "json that lies": Row(
        httpx.Response(500, content=b"{not json", headers={"content-type": "application/json"}),
        DarajaServerError,
        "daraja_server_error",
        True,
    ),
    "invalid utf-8": Row(httpx.Response(500, content=b"\xff\xfe\xfa{"), DarajaServerError, "daraja_server_error", True),
    "absurdly nested json": Row(
        httpx.Response(500, content=b"[" * 100_000 + b"]" * 100_000),
        DarajaServerError,
        "daraja_server_error",
        True,
    ),
    "unknown charset": Row(
        httpx.Response(500, content=b"oops", headers={"content-type": "text/plain; charset=klingon"}),
        DarajaServerError,
        "daraja_server_error",
        True,
    ),
    "error envelope inside a 200": Row(
        daraja(200, "400.002.02", "Bad Request - Invalid PhoneNumber"), DarajaRejected, "daraja_rejected", False
    ),
    "numeric error code": Row(
        httpx.Response(400, json={"errorCode": 400.5, "errorMessage": "odd"}), DarajaRejected, "daraja_rejected", False
    ),
}


@pytest.fixture
async def http_for() -> AsyncIterator[object]:
    opened: list[httpx.AsyncClient] = []

    def make(answer: httpx.Response) -> httpx.AsyncClient:
        def handler(request: httpx.Request) -> httpx.Response:
            if request.url.path == OAUTH:
                return httpx.Response(200, json={"access_token": "tok", "expires_in": "3599"})
            return answer

        http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        opened.append(http)
        return http

    yield make
    for http in opened:
        await http.aclose()


def client_with(http: httpx.AsyncClient) -> DarajaClient:
    return DarajaClient(
        "https://sandbox.safaricom.co.ke", DarajaCredentials("k", "s3cret"), http=http, token_cache=TokenCache()
    )


def push_request() -> StkPushRequest:
    return StkPushRequest(
        business_short_code="174379",
        passkey=PASSKEY,
        transaction_type="CustomerPayBillOnline",
        amount=10,
        party_a="254708374149",
        party_b="174379",
        phone_number="254708374149",
        callback_url="https://pay.example.com/hooks/stk/abc",
        account_reference="INV1",
        transaction_desc="Order 1",
    )


@pytest.mark.parametrize("row", ROWS.values(), ids=ROWS.keys())
async def test_stk_push_error_mapping(http_for, row: Row) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DarajaError) as caught:
        await client_with(http_for(row.answer)).stk_push(push_request())

    error = caught.value
    assert type(error) is row.error
    assert isinstance(error, DarajaResponseError)
    assert error.code == row.code
    assert error.outcome_unknown is row.push_outcome_unknown
    assert error.http_status == row.answer.status_code
    assert len(error.body_prefix) <= 500
    assert error.message == str(error)


@pytest.mark.parametrize("row", ROWS.values(), ids=ROWS.keys())
async def test_stk_query_errors_never_leave_an_unknown_outcome(http_for, row: Row) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DarajaError) as caught:
        await client_with(http_for(row.answer)).stk_query("174379", PASSKEY, "ws_CO_1")

    assert type(caught.value) is row.error
    assert caught.value.outcome_unknown is False


async def test_envelope_fields_are_kept(http_for) -> None:  # type: ignore[no-untyped-def]
    answer = daraja(400, "400.002.02", "Bad Request - Invalid CallBackURL")

    with pytest.raises(DarajaRejected) as caught:
        await client_with(http_for(answer)).stk_push(push_request())

    error = caught.value
    assert error.error_code == "400.002.02"
    assert error.error_message == "Bad Request - Invalid CallBackURL"
    assert error.request_id == "1c5b-4ba8-815c"
    assert "400.002.02" in str(error)
    assert "Invalid CallBackURL" in str(error)
    assert "1c5b-4ba8-815c" in str(error)
    assert json.loads(error.body_prefix)["errorCode"] == "400.002.02"


async def test_apigee_fault_fields_are_kept(http_for) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DarajaServerError) as caught:
        await client_with(http_for(httpx.Response(404, json=APIGEE_FAULT))).stk_push(push_request())

    assert caught.value.error_code == "messaging.adaptors.http.flow.ApplicationNotFound"
    assert caught.value.error_message.startswith("Unable to identify proxy")


async def test_html_body_is_kept_as_a_500_character_prefix(http_for) -> None:  # type: ignore[no-untyped-def]
    answer = httpx.Response(403, text=WAF_PAGE, headers={"content-type": "text/html"})

    with pytest.raises(DarajaServerError) as caught:
        await client_with(http_for(answer)).stk_push(push_request())

    assert caught.value.body_prefix == WAF_PAGE[:500]
    assert caught.value.error_code is None
    assert "text/html" in str(caught.value)


def test_every_response_error_is_a_daraja_error() -> None:
    for row in ROWS.values():
        assert issubclass(row.error, DarajaResponseError)
        assert issubclass(row.error, DarajaError)
    assert issubclass(DarajaSubscriberLocked, DarajaRejected)
