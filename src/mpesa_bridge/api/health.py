"""/healthz (the process answers) and /readyz (database reachable, migrations at head)."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Request

from mpesa_bridge.api.responses import JSONResponse
from mpesa_bridge.api.schemas import Health
from mpesa_bridge.runtime import Runtime
from mpesa_bridge.storage.migrate import at_head

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok", "checks": {}})


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
async def readyz(request: Request) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    checks: dict[str, str] = {}
    try:
        async with runtime.db.read_engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
        checks["migrations"] = "ok" if await at_head(runtime.db) else "behind"
    except Exception as exc:
        checks["database"] = f"unreachable: {exc.__class__.__name__}"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status_code=200 if ready else 503
    )
