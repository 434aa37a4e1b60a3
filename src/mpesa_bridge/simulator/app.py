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

OAUTH_PATH = "/oauth/v1/generate"
STK_PUSH_PATH = "/mpesa/stkpush/v1/processrequest"
STK_QUERY_PATH = "/mpesa/stkpushquery/v1/query"
DYNAMIC_QR_PATH = "/mpesa/qrcode/v1/generate"


def build_app(gateway: DarajaGateway, lifespan: Lifespan[Starlette] | None = None) -> Starlette:
    """An ASGI app serving `gateway`; mount it anywhere (e.g. under `/simulator`)."""

    async def generate_token(request: Request) -> Response:
        authorization = request.headers.get("authorization")
        return JSONResponse(gateway.generate_token(authorization, request.query_params.get("grant_type")))

    async def stk_push(request: Request) -> Response:
        gateway.authorize(request.headers.get("authorization"))
        accepted = gateway.stk_push(await _json_body(request))
        if gateway.config.push_answer_delay > 0:
            await asyncio.sleep(gateway.config.push_answer_delay)
        return JSONResponse(accepted)

    async def stk_query(request: Request) -> Response:
        gateway.authorize(request.headers.get("authorization"))
        return JSONResponse(gateway.stk_query(await _json_body(request)))

    async def dynamic_qr(request: Request) -> Response:
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
            *c2b_routes(gateway.c2b, gateway.authorize, _json_body),
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
