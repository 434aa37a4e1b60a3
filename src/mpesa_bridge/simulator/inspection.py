"""Read-only inspection routes: what the simulator received, the Results it POSTed, its balances.

Not Daraja's — real Daraja has nothing like them. They exist for tests that run the simulator as
its own process (and for a person debugging a client): "exactly one B2C request reached Daraja"
is counted at Daraja's door, and a Result the simulator delivered can be replayed from here.
They sit under the simulator's own `/simulator` prefix, like the C2B customer-payment endpoint,
and need no authentication (the simulator holds nothing secret).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .results import ResultAttempt

# The APIs counted, by the name the inspection answer uses.
OAUTH = "oauth"
STK_PUSH = "stk_push"
STK_QUERY = "stk_query"
DYNAMIC_QR = "dynamic_qr"
C2B_REGISTER = "c2b_register"
C2B_SIMULATE = "c2b_simulate"
B2C_V3 = "b2c_v3"
B2C_V1 = "b2c_v1"
TRANSACTION_STATUS = "transaction_status"
ACCOUNT_BALANCE = "account_balance"
REVERSAL = "reversal"
APIS = (
    OAUTH,
    STK_PUSH,
    STK_QUERY,
    DYNAMIC_QR,
    C2B_REGISTER,
    C2B_SIMULATE,
    B2C_V3,
    B2C_V1,
    TRANSACTION_STATUS,
    ACCOUNT_BALANCE,
    REVERSAL,
)

# Standalone: under the simulator's own prefix. Inside a bridge, which mounts the simulator at
# /simulator, the short forms make them /simulator/requests … too (as C2B_PAYMENTS_MOUNTED_PATH).
REQUESTS_PATH = "/simulator/requests"
RESULTS_PATH = "/simulator/results"
BALANCES_PATH = "/simulator/balances"
REQUESTS_MOUNTED_PATH = "/requests"
RESULTS_MOUNTED_PATH = "/results"
BALANCES_MOUNTED_PATH = "/balances"


class RequestTally:
    """How many requests reached each Daraja path, whatever became of them (refused ones count too)."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()

    def count(self, api: str) -> None:
        self._counts[api] += 1

    def snapshot(self) -> dict[str, int]:
        """Every API by name, zero for those never called."""
        return {api: self._counts[api] for api in APIS}


@dataclass(frozen=True)
class Inspection:
    """What the inspection routes read: the tally, the Result attempts and the balances."""

    received: RequestTally
    results: Callable[[], list[ResultAttempt]]
    balances: Callable[[], Mapping[str, int]]


def result_public(attempt: ResultAttempt) -> dict[str, Any]:
    """One Result POST as the inspection route shows it."""
    return {
        "at": attempt.at.isoformat(),
        "url": attempt.delivery.url,
        "timed_out": attempt.delivery.timed_out,
        "body": attempt.delivery.body,
        "status_code": attempt.status_code,
        "error": attempt.error,
        "delivered": attempt.delivered,
    }


def inspection_routes(inspection: Inspection) -> list[Route]:
    """GET routes, each standalone and mounted: `requests`, `results` and `balances`."""

    async def requests(request: Request) -> Response:
        return JSONResponse({"received": inspection.received.snapshot()})

    async def results(request: Request) -> Response:
        return JSONResponse({"data": [result_public(attempt) for attempt in inspection.results()]})

    async def balances(request: Request) -> Response:
        return JSONResponse({"balances": dict(inspection.balances())})

    return [
        Route(REQUESTS_PATH, requests, methods=["GET"]),
        Route(REQUESTS_MOUNTED_PATH, requests, methods=["GET"]),
        Route(RESULTS_PATH, results, methods=["GET"]),
        Route(RESULTS_MOUNTED_PATH, results, methods=["GET"]),
        Route(BALANCES_PATH, balances, methods=["GET"]),
        Route(BALANCES_MOUNTED_PATH, balances, methods=["GET"]),
    ]
