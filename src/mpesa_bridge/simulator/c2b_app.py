"""The C2B routes: Daraja's register and simulate paths, and the simulator's own customer-payment endpoint."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .c2b import C2BDesk, OrderError, parse_order
from .inspection import C2B_REGISTER, C2B_SIMULATE

C2B_REGISTER_V1_PATH = "/mpesa/c2b/v1/registerurl"
C2B_REGISTER_V2_PATH = "/mpesa/c2b/v2/registerurl"
C2B_SIMULATE_V1_PATH = "/mpesa/c2b/v1/simulate"
C2B_SIMULATE_V2_PATH = "/mpesa/c2b/v2/simulate"
# Not Daraja's: a customer paying a till or paybill. Under the simulator's own /simulator prefix.
C2B_PAYMENTS_PATH = "/simulator/c2b/payments"
# The same inside a bridge, which mounts the simulator at /simulator: there it is /simulator/c2b/payments
# too (rather than /simulator/simulator/c2b/payments, which also still works).
C2B_PAYMENTS_MOUNTED_PATH = "/c2b/payments"

JsonBody = Callable[..., Awaitable[Mapping[str, Any]]]


def c2b_routes(
    desk: C2BDesk,
    authorize: Callable[[str | None], None],
    json_body: JsonBody,
    count: Callable[[str], None] = lambda api: None,
) -> list[Route]:
    """The C2B routes over `desk`; `authorize` checks a bearer token, `json_body` reads a body as
    Daraja does, `count` hears of each request to Daraja's paths (by API name, `inspection.py`)."""

    def register(version: int) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            count(C2B_REGISTER)
            authorize(request.headers.get("authorization"))
            return JSONResponse(desk.register(await json_body(request, first_field="ShortCode"), version))

        return handler

    async def simulate(request: Request) -> Response:
        count(C2B_SIMULATE)
        authorize(request.headers.get("authorization"))
        return JSONResponse(desk.simulate(await json_body(request, first_field="ShortCode")))

    async def pay(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _bad_order("body", "must be a JSON object")
        if not isinstance(body, dict):
            return _bad_order("body", "must be a JSON object")
        try:
            order = parse_order(body)
        except OrderError as exc:
            return _bad_order(exc.field, exc.message)
        payment = await desk.pay(order)
        return JSONResponse(payment.public(), status_code=201)

    return [
        Route(C2B_REGISTER_V1_PATH, register(1), methods=["POST"]),
        Route(C2B_REGISTER_V2_PATH, register(2), methods=["POST"]),
        Route(C2B_SIMULATE_V1_PATH, simulate, methods=["POST"]),
        Route(C2B_SIMULATE_V2_PATH, simulate, methods=["POST"]),
        Route(C2B_PAYMENTS_PATH, pay, methods=["POST"]),
        Route(C2B_PAYMENTS_MOUNTED_PATH, pay, methods=["POST"]),
    ]


def _bad_order(field: str, message: str) -> Response:
    error = {"code": "invalid_field", "param": field, "message": f"{field} {message}"}
    return JSONResponse({"error": error}, status_code=400)
