"""/v1/qr_codes: an M-Pesa Dynamic QR drawn by Daraja (`POST /mpesa/qrcode/v1/generate`).

Nothing is stored: the answer is the image. The QR codes of the bridge's own URLs (payment links,
checkout sessions) are drawn locally instead, by `mpesa_bridge/qr.py`.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query
from starlette.responses import Response

from mpesa_bridge.api.deps import RuntimeDep, TenantDep
from mpesa_bridge.api.responses import JSONResponse
from mpesa_bridge.api.routing import ParsedBodyRoute
from mpesa_bridge.api.schemas import BODY_REFUSED, RATE_LIMITED, ErrorResponse, QrCodeCreate, QrCodePublic
from mpesa_bridge.core.ports import DynamicQrCommand

router = APIRouter(prefix="/v1/qr_codes", tags=["qr_codes"], route_class=ParsedBodyRoute)

_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the QR code: JSON by default, the PNG itself with `?format=png`",
        "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
    },
    400: {"model": ErrorResponse, "description": "a field Daraja would refuse (the `param` names it)"},
    401: {"model": ErrorResponse, "description": "missing or wrong secret key"},
    429: RATE_LIMITED,
    502: {"model": ErrorResponse, "description": "Daraja could not be reached, is throttling, or refused the key"},
    **BODY_REFUSED,
}


@router.post("", response_model=QrCodePublic, responses=_RESPONSES, summary="Draw an M-Pesa Dynamic QR")
async def create_qr_code(
    runtime: RuntimeDep,
    tenant: TenantDep,
    body: Annotated[QrCodeCreate, Body()],
    format: Annotated[
        Literal["json", "png"], Query(description="json (the PNG in base64) or png (the image itself)")
    ] = "json",
) -> Response:
    """Asks Daraja, with this key's project and mode credentials, for a QR code the payer scans in
    the M-Pesa app to pay `cpi` the `amount`. Payments made with it arrive like any other payment
    to that till or paybill; the bridge does not track them as payments."""
    command = DynamicQrCommand(
        account=await runtime.projects.account(tenant),
        merchant_name=body.merchant_name,
        reference=body.reference,
        amount=body.amount,
        trx_code=body.trx_code,
        cpi=body.cpi,
        size=body.size,
    )
    image = await runtime.gateway.dynamic_qr(command)
    if format == "png":
        return Response(image.png, media_type="image/png", headers={"Cache-Control": "no-store"})
    return JSONResponse(
        {
            "object": "qr_code",
            "image_png_base64": base64.b64encode(image.png).decode("ascii"),
            "request_id": image.request_id,
            "description": image.description,
        }
    )
