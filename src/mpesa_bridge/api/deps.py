"""Request dependencies: the runtime, the authenticated tenant, the admin check."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from mpesa_bridge.api.bearer import bearer_token
from mpesa_bridge.api.errors import ApiError
from mpesa_bridge.api.parts import http_parts
from mpesa_bridge.core.accounts import INVALID_KEY_MESSAGE, Caller
from mpesa_bridge.core.projects import Tenant
from mpesa_bridge.core.sealing import signing_context
from mpesa_bridge.core.signing import verify
from mpesa_bridge.runtime import Runtime


# Every dependency here is `async def`, even with nothing to await: FastAPI runs a plain `def`
# dependency in a worker thread, a thread hop on every request (tests/unit/test_api_dependencies.py).
async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def _bearer(request: Request, *, code: str = "invalid_api_key", message: str = INVALID_KEY_MESSAGE) -> str:
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        raise ApiError(401, code, message)
    return token


async def get_caller(request: Request, runtime: RuntimeDep) -> Caller:
    secret = _bearer(request)
    caller = await runtime.projects.authenticate_key(secret)
    if caller.project.require_signed_requests:
        await check_signature(request, runtime, caller, secret)
    return caller


async def check_signature(request: Request, runtime: Runtime, caller: Caller, secret: str) -> None:
    project = caller.project
    key = secret
    if project.signing_secret_sealed:
        key = runtime.box.open(project.signing_secret_sealed, context=signing_context(project.id))
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    query = request.scope.get("query_string", b"")
    path = raw_path.decode("latin-1") + (("?" + query.decode("latin-1")) if query else "")
    await verify(
        key,
        request.headers,
        request.method,
        path,
        await request.body(),
        now=runtime.clock.now().timestamp(),
        tolerance=runtime.settings.signature_tolerance,
        replay=http_parts(request).replay_guard,
    )


async def get_tenant(caller: Annotated[Caller, Depends(get_caller)]) -> Tenant:
    return caller.tenant


CallerDep = Annotated[Caller, Depends(get_caller)]
TenantDep = Annotated[Tenant, Depends(get_tenant)]


async def require_admin(request: Request, runtime: RuntimeDep) -> None:
    expected = runtime.settings.admin_token
    if expected is None or not expected.get_secret_value():
        raise ApiError(404, "resource_missing", "Unrecognized request URL.")
    given = _bearer(request, code="invalid_admin_token", message="Invalid admin token.")
    if not hmac.compare_digest(given.encode(), expected.get_secret_value().encode()):
        raise ApiError(401, "invalid_admin_token", "Invalid admin token.")


AdminDep = Depends(require_admin)
