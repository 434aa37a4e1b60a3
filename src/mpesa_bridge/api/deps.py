"""Request dependencies: the runtime, the authenticated tenant, the admin check."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from mpesa_bridge.api.errors import ApiError
from mpesa_bridge.core.accounts import INVALID_KEY_MESSAGE
from mpesa_bridge.core.projects import Tenant
from mpesa_bridge.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise ApiError(401, "invalid_api_key", INVALID_KEY_MESSAGE)
    return value.strip()


async def get_tenant(request: Request, runtime: RuntimeDep) -> Tenant:
    return await runtime.projects.authenticate(_bearer(request))


TenantDep = Annotated[Tenant, Depends(get_tenant)]


def require_admin(request: Request, runtime: RuntimeDep) -> None:
    expected = runtime.settings.admin_token
    if expected is None or not expected.get_secret_value():
        raise ApiError(404, "resource_missing", "Unrecognized request URL.")
    given = _bearer(request)
    if not hmac.compare_digest(given.encode(), expected.get_secret_value().encode()):
        raise ApiError(401, "invalid_admin_token", "Invalid admin token.")


AdminDep = Depends(require_admin)
