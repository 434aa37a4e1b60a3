"""/docs: Swagger UI served from the bridge itself (the swagger-ui-bundle package), never a CDN.

Also trims `/openapi.json`: FastAPI documents a 422 `HTTPValidationError` on every route with
parameters, but this API answers invalid input with 400 and the usual error shape (`api/errors.py`).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse
from swagger_ui_bundle import swagger_ui_path

ASSETS = "/docs/assets"
_FASTAPI_422 = "#/components/schemas/HTTPValidationError"


def _without_fastapi_422(schema: dict[str, Any]) -> dict[str, Any]:
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            media = responses.get("422", {}).get("content", {}).get("application/json", {})
            if media.get("schema", {}).get("$ref") == _FASTAPI_422:
                del responses["422"]
    components = schema.get("components", {}).get("schemas", {})
    if _FASTAPI_422.encode() not in orjson.dumps(schema):
        components.pop("HTTPValidationError", None)
        if b'"#/components/schemas/ValidationError"' not in orjson.dumps(schema):
            components.pop("ValidationError", None)
    return schema


def install_docs(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _without_fastapi_422(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.mount(ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="mpesa-bridge API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        )
