"""The consumer secret, passkey, STK Password and bearer token never show in a repr or an error."""

import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import httpx
import pytest

from mpesa_bridge.daraja import (
    AccessToken,
    DarajaClient,
    DarajaCredentials,
    DarajaError,
    DarajaValidationError,
    StkPushRequest,
    TokenCache,
    stk_password,
)

OAUTH = "/oauth/v1/generate"
SECRET = "consumer-secret-0f9e8d7c"
PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
TOKENS = ["bearer-token-AAAA1111", "bearer-token-BBBB2222"]
NOW = datetime(2021, 6, 28, 6, 24, 8, tzinfo=UTC)
PASSWORD = stk_password("174379", PASSKEY, "20210628092408")
BASIC = base64.b64encode(f"consumer-key:{SECRET}".encode()).decode()
SECRETS = [SECRET, PASSKEY, PASSWORD, BASIC, *TOKENS]

REQUEST = StkPushRequest(
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


def visible_text(exc: BaseException) -> str:
    """Everything a log line could show of an exception: str, repr and every attribute."""
    return " ".join([str(exc), repr(exc), *(repr(v) for v in vars(exc).values())])


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def test_credentials_repr_hides_the_secret() -> None:
    credentials = DarajaCredentials("consumer-key", SECRET)
    assert "consumer-key" in repr(credentials)
    assert_no_secret(repr(credentials) + str(credentials))


def test_request_repr_hides_the_passkey() -> None:
    assert "174379" in repr(REQUEST)
    assert_no_secret(repr(REQUEST) + str(REQUEST))


def test_access_token_repr_hides_the_token() -> None:
    assert_no_secret(repr(AccessToken(TOKENS[0], 3599)))


def test_validation_error_for_the_passkey_does_not_show_it() -> None:
    import dataclasses

    with pytest.raises(DarajaValidationError) as caught:
        dataclasses.replace(REQUEST, passkey=" ").validate()
    assert_no_secret(visible_text(caught.value))


Echo = Callable[[httpx.Request], httpx.Response]


def echo_everything(status: int, code: str) -> Echo:
    """A peer that pastes every secret it saw into its error answer, as 401.002.01 does with the token."""

    def answer(request: httpx.Request) -> httpx.Response:
        seen = f"{request.headers.get('authorization', '')} {request.content.decode()}"
        message = f"Error Occurred - Invalid Access Token - {seen} {SECRET}"
        return httpx.Response(status, json={"requestId": "r-1", "errorCode": code, "errorMessage": message})

    return answer


def raising_with_secrets(exc_type: type[httpx.TransportError]) -> Echo:
    def answer(request: httpx.Request) -> httpx.Response:
        raise exc_type(f"failed sending {request.headers.get('authorization')} {request.content.decode()}")

    return answer


@pytest.fixture
async def run_push() -> AsyncIterator[Callable[..., Awaitable[DarajaError]]]:
    opened: list[httpx.AsyncClient] = []

    async def run(push: Echo, oauth: Echo | None = None) -> DarajaError:
        tokens = iter(TOKENS)

        def handler(request: httpx.Request) -> httpx.Response:
            if request.url.path == OAUTH:
                if oauth is not None:
                    return oauth(request)
                return httpx.Response(200, json={"access_token": next(tokens), "expires_in": "3599"})
            return push(request)

        http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        opened.append(http)
        client = DarajaClient(
            "https://sandbox.safaricom.co.ke",
            DarajaCredentials("consumer-key", SECRET),
            http=http,
            token_cache=TokenCache(),
            now=lambda: NOW,
        )
        with pytest.raises(DarajaError) as caught:
            await client.stk_push(REQUEST)
        return caught.value

    yield run
    for http in opened:
        await http.aclose()


@pytest.mark.parametrize(
    ("status", "code"),
    [(401, "401.002.01"), (404, "404.001.03"), (400, "400.002.02"), (500, "500.001.1001"), (500, "500.003.1001")],
)
async def test_secrets_echoed_by_daraja_are_redacted(run_push, status: int, code: str) -> None:  # type: ignore[no-untyped-def]
    error = await run_push(echo_everything(status, code))

    text = visible_text(error)
    assert_no_secret(text)
    assert "[redacted]" in text


async def test_secrets_in_an_html_body_are_redacted(run_push) -> None:  # type: ignore[no-untyped-def]
    def html(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, text=f"<html>{request.content.decode()} {SECRET}</html>")

    assert_no_secret(visible_text(await run_push(html)))


@pytest.mark.parametrize("exc_type", [httpx.ConnectError, httpx.ReadTimeout, httpx.RemoteProtocolError])
async def test_secrets_in_transport_error_text_are_redacted(run_push, exc_type: type[httpx.TransportError]) -> None:  # type: ignore[no-untyped-def]
    assert_no_secret(visible_text(await run_push(raising_with_secrets(exc_type))))


async def test_secret_echoed_by_oauth_is_redacted(run_push) -> None:  # type: ignore[no-untyped-def]
    def oauth(request: httpx.Request) -> httpx.Response:
        auth = request.headers["authorization"]
        return httpx.Response(400, json={"errorCode": "400.008.01", "errorMessage": f"bad {auth} {SECRET}"})

    assert_no_secret(visible_text(await run_push(echo_everything(500, "x"), oauth)))


async def test_a_garbled_oauth_answer_is_not_quoted(run_push) -> None:  # type: ignore[no-untyped-def]
    def oauth(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"acces_token": TOKENS[0], "expires_in": "3599"})

    assert_no_secret(visible_text(await run_push(echo_everything(500, "x"), oauth)))
