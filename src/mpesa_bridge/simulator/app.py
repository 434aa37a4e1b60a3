"""The HTTP face of the simulator: Daraja's paths, status codes and bodies, byte for byte where known."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Lifespan

from .c2b_app import c2b_routes
from .errors import (
    INTERNAL_ERROR,
    METHOD_NOT_ALLOWED,
    GatewayError,
    WrongConsumerCredentials,
    invalid_field,
    invalid_payload,
)
from .gateway import DarajaGateway
from .initiator import InitiatorGateway
from .inspection import (
    ACCOUNT_BALANCE,
    B2C_V1,
    B2C_V3,
    DYNAMIC_QR,
    OAUTH,
    REVERSAL,
    STK_PUSH,
    STK_QUERY,
    TRANSACTION_STATUS,
    Inspection,
    RequestTally,
    inspection_routes,
)

OAUTH_PATH = "/oauth/v1/generate"
STK_PUSH_PATH = "/mpesa/stkpush/v1/processrequest"
STK_QUERY_PATH = "/mpesa/stkpushquery/v1/query"
DYNAMIC_QR_PATH = "/mpesa/qrcode/v1/generate"
B2C_V3_PATH = "/mpesa/b2c/v3/paymentrequest"
B2C_V1_PATH = "/mpesa/b2c/v1/paymentrequest"
TRANSACTION_STATUS_PATH = "/mpesa/transactionstatus/v1/query"
ACCOUNT_BALANCE_PATH = "/mpesa/accountbalance/v1/query"
REVERSAL_PATH = "/mpesa/reversal/v1/request"
# Not Daraja's: where the simulator publishes the certificate of its initiator key (daraja.md 15).
CERTIFICATE_PATH = "/simulator-certificate.pem"


def build_app(
    gateway: DarajaGateway,
    lifespan: Lifespan[Starlette] | None = None,
    *,
    initiator: InitiatorGateway | None = None,
    inspection: Inspection | None = None,
) -> Starlette:
    """An ASGI app serving `gateway` (and the initiator APIs when `initiator` is given); mount it
    anywhere (e.g. under `/simulator`). With `inspection`, requests are counted in its tally and
    the read-only inspection routes (`inspection.py`) are served too."""
    tally = inspection.received if inspection is not None else RequestTally()

    async def generate_token(request: Request) -> Response:
        tally.count(OAUTH)
        authorization = request.headers.get("authorization")
        return JSONResponse(gateway.generate_token(authorization, request.query_params.get("grant_type")))

    async def stk_push(request: Request) -> Response:
        tally.count(STK_PUSH)
        gateway.authorize(request.headers.get("authorization"))
        accepted = gateway.stk_push(await _json_body(request))
        if gateway.config.push_answer_delay > 0:
            await asyncio.sleep(gateway.config.push_answer_delay)
        return JSONResponse(accepted)

    async def stk_query(request: Request) -> Response:
        tally.count(STK_QUERY)
        gateway.authorize(request.headers.get("authorization"))
        return JSONResponse(gateway.stk_query(await _json_body(request)))

    async def dynamic_qr(request: Request) -> Response:
        tally.count(DYNAMIC_QR)
        gateway.authorize(request.headers.get("authorization"))
        body = await _json_body(request, first_field="MerchantName")
        # Drawing a 2000-pixel PNG takes a while: off the event loop, which serves the callbacks too.
        return JSONResponse(await asyncio.to_thread(gateway.dynamic_qr, body))

    app = Starlette(
        routes=[
            Route(OAUTH_PATH, generate_token, methods=["GET"]),
            Route(STK_PUSH_PATH, stk_push, methods=["POST"]),
            Route(STK_QUERY_PATH, stk_query, methods=["POST"]),
            Route(DYNAMIC_QR_PATH, dynamic_qr, methods=["POST"]),
            *c2b_routes(gateway.c2b, gateway.authorize, _json_body, count=tally.count),
            *([] if initiator is None else _initiator_routes(gateway, initiator, tally)),
            *([] if inspection is None else inspection_routes(inspection)),
        ],
        exception_handlers={
            GatewayError: _gateway_error,
            404: _unknown_proxy,
            405: _method_not_allowed,
            500: _internal_error,
        },
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False  # Apigee does not redirect; a stray slash is an unknown path
    return app


def _initiator_routes(gateway: DarajaGateway, initiator: InitiatorGateway, tally: RequestTally) -> list[Route]:
    """B2C (v3 and v1), Transaction Status, Account Balance, Reversal and the certificate."""

    async def answer_money_moved(accepted: dict[str, str]) -> Response:
        # The payout or reversal is already made and its Result scheduled; only the answer waits —
        # so a test can stop the caller while it is in flight, as a crash or a cut connection loses
        # Daraja's answer. Queries move nothing (and are how such a caller recovers): never held.
        if initiator.config.initiator_answer_delay > 0:
            await asyncio.sleep(initiator.config.initiator_answer_delay)
        return JSONResponse(accepted)

    async def ready_key() -> None:
        # Made on first use: a 2048-bit key takes a moment, off the event loop (which also sends
        # the callbacks). Once made, decrypting a credential is quick enough to stay on it.
        if not initiator.key.ready:
            await asyncio.to_thread(initiator.key.load)

    async def b2c_v3(request: Request) -> Response:
        tally.count(B2C_V3)
        gateway.authorize(request.headers.get("authorization"))
        body = await _json_body(request, first_field="OriginatorConversationID")
        await ready_key()
        return await answer_money_moved(initiator.b2c_payment(body, v3=True))

    async def b2c_v1(request: Request) -> Response:
        tally.count(B2C_V1)
        gateway.authorize(request.headers.get("authorization"))
        body = await _json_body(request, first_field="InitiatorName")
        await ready_key()
        return await answer_money_moved(initiator.b2c_payment(body, v3=False))

    async def transaction_status(request: Request) -> Response:
        tally.count(TRANSACTION_STATUS)
        gateway.authorize(request.headers.get("authorization"))
        body = await _json_body(request, first_field="Initiator")
        await ready_key()
        return JSONResponse(initiator.transaction_status(body))

    async def account_balance(request: Request) -> Response:
        tally.count(ACCOUNT_BALANCE)
        gateway.authorize(request.headers.get("authorization"))
        body = await _json_body(request, first_field="Initiator")
        await ready_key()
        return JSONResponse(initiator.account_balance(body))

    async def reversal(request: Request) -> Response:
        tally.count(REVERSAL)
        gateway.authorize(request.headers.get("authorization"))
        body = await _json_body(request, first_field="Initiator")
        await ready_key()
        return await answer_money_moved(initiator.reversal(body))

    async def certificate(request: Request) -> Response:
        await ready_key()
        return Response(initiator.key.certificate_pem, media_type="application/x-pem-file")

    return [
        Route(B2C_V3_PATH, b2c_v3, methods=["POST"]),
        Route(B2C_V1_PATH, b2c_v1, methods=["POST"]),
        Route(TRANSACTION_STATUS_PATH, transaction_status, methods=["POST"]),
        Route(ACCOUNT_BALANCE_PATH, account_balance, methods=["POST"]),
        Route(REVERSAL_PATH, reversal, methods=["POST"]),
        Route(CERTIFICATE_PATH, certificate, methods=["GET"]),
    ]


async def _json_body(request: Request, first_field: str = "BusinessShortCode") -> Mapping[str, Any]:
    # Without a JSON Content-Type the gateway cannot parse the body and blames the first field.
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise invalid_field(first_field)
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise invalid_payload() from None
    if not isinstance(body, dict):
        raise invalid_payload()
    return body


async def _gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    if isinstance(exc, WrongConsumerCredentials):
        return Response(status_code=400)
    return JSONResponse(exc.envelope(), status_code=exc.status_code)


async def _unknown_proxy(request: Request, exc: Exception) -> Response:
    fault = {
        "faultstring": f"Unable to identify proxy for host: secure and url: {_route_path(request)}",
        "detail": {"errorcode": "messaging.adaptors.http.flow.ApplicationNotFound"},
    }
    return JSONResponse({"fault": fault}, status_code=404)


async def _method_not_allowed(request: Request, exc: Exception) -> Response:
    headers = exc.headers if isinstance(exc, HTTPException) else None
    error = GatewayError(405, METHOD_NOT_ALLOWED, "Method Not Allowed")
    return JSONResponse(error.envelope(), status_code=405, headers=headers)


async def _internal_error(request: Request, exc: Exception) -> Response:
    return JSONResponse(GatewayError(500, INTERNAL_ERROR, "Internal Server Error").envelope(), status_code=500)


def _route_path(request: Request) -> str:
    # Inside a Mount the simulator's own path is the full path minus the mount prefix.
    root_path = request.scope.get("root_path", "")
    path = request.url.path
    return path[len(root_path) :] if root_path and path.startswith(root_path) else path
