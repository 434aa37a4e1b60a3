"""The short code's balances (Daraja Account Balance), asked from the dashboard.

GET  /dashboard/balance   the latest balance queries; the newest completed one's accounts
POST /dashboard/balance   developer: ask Daraja now, waiting up to WAIT seconds for the Result
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mpesa_bridge.core.balances.entity import BalanceQueryStatus
from mpesa_bridge.core.errors import BridgeError
from mpesa_bridge.core.people.entity import Role
from mpesa_bridge.dashboard.auth import Viewer, page, runtime_of
from mpesa_bridge.dashboard.web import render

router = APIRouter()
ViewerDep = Annotated[Viewer, Depends(page())]
DeveloperDep = Annotated[Viewer, Depends(page(Role.DEVELOPER))]
WAIT = 10.0
SHOWN = 10


@router.get("/balance")
async def balance_page(request: Request, viewer: ViewerDep) -> Response:
    queries = list(await runtime_of(request).balance_queries.list(viewer.tenant, None, SHOWN))[:SHOWN]
    latest = next((q for q in queries if q.status is BalanceQueryStatus.COMPLETED), None)
    context = {
        "queries": queries,
        "latest": latest,
        "error": request.query_params.get("error"),
    }
    return render(request, "balance.html", context)


@router.post("/balance")
async def ask_balance(request: Request, viewer: DeveloperDep) -> Response:
    runtime = runtime_of(request)
    try:
        query = await runtime.balance_queries.create(viewer.tenant, WAIT)
    except BridgeError as exc:
        return RedirectResponse(f"/dashboard/balance?error={exc.code}", status_code=303)
    await runtime.people.record(
        viewer.identity, "balance.queried", viewer.tenant.project_id, target=query.id, detail=query.status.value
    )
    return RedirectResponse("/dashboard/balance", status_code=303)
