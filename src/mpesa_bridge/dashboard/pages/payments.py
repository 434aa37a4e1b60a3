"""The payments list: filters, sorting, keyset pages that stay fast at 10⁶ rows, live updates, and
the export of exactly the filtered list.

    GET /dashboard/payments?status=&from=&to=&phone=&min=&max=&q=&attention=&sort=&cursor=
    GET /dashboard/payments/export.csv?<the same filters>
    GET /dashboard/payments/export.xlsx?<the same filters>

Dates are local days in the project's time zone; `q` is a reference prefix, an M-Pesa receipt or a
payment id. The export streams (memory stays flat: see dashboard/export.py); phones are whole for
developers and owners, masked for viewers, as on the pages.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from mpesa_bridge.core.analytics import local_midnight, zone
from mpesa_bridge.core.errors import InvalidRequest
from mpesa_bridge.core.payments.entity import Payment
from mpesa_bridge.core.payments.search import SORTS, PaymentSearch
from mpesa_bridge.core.payments.status import PaymentStatus
from mpesa_bridge.core.people.entity import Role
from mpesa_bridge.dashboard.auth import Viewer, page, runtime_of
from mpesa_bridge.dashboard.export import csv_chunks, xlsx_chunks
from mpesa_bridge.dashboard.web import SECURITY_HEADERS, render
from mpesa_bridge.storage.payment_search import SqlPaymentSearch

router = APIRouter()
ViewerDep = Annotated[Viewer, Depends(page())]
PAGE_SIZE = 50
SORT_LABELS = [
    {"value": "-created", "label": "Newest first"},
    {"value": "created", "label": "Oldest first"},
    {"value": "-amount", "label": "Largest amount first"},
    {"value": "amount", "label": "Smallest amount first"},
]
assert [s["value"] for s in SORT_LABELS] == list(SORTS)
FILTERS = ("status", "from", "to", "phone", "min", "max", "q", "attention", "sort")


def _int(text: str, param: str) -> int | None:
    if not text:
        return None
    try:
        return int(text.replace(",", "").strip())
    except ValueError:
        raise InvalidRequest("Use a whole number of shillings.", param=param) from None


def _day(text: str, param: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidRequest("Use a date like 2026-12-31.", param=param) from None


def search_from(viewer: Viewer, params: dict[str, str], *, limit: int = PAGE_SIZE) -> PaymentSearch:
    """The search the list's query string asks for (InvalidRequest names the field that is wrong)."""
    project = viewer.project
    assert project is not None
    tz = zone(project.time_zone)
    first, last = _day(params.get("from", ""), "from"), _day(params.get("to", ""), "to")
    status = params.get("status", "")
    if status and status not in tuple(PaymentStatus):
        raise InvalidRequest("Choose a status from the list.", param="status")
    return PaymentSearch(
        project_id=project.id,
        mode=viewer.mode.value,
        statuses=(PaymentStatus(status),) if status else (),
        created_from=local_midnight(first, tz) if first else None,
        created_before=local_midnight(last + timedelta(days=1), tz) if last else None,
        phone=params.get("phone") or None,
        amount_min=_int(params.get("min", ""), "min"),
        amount_max=_int(params.get("max", ""), "max"),
        text=params.get("q") or None,
        needs_attention=True if params.get("attention") == "1" else None,
        sort=params.get("sort") or "-created",
        cursor=params.get("cursor") or None,
        limit=limit,
    )


def _params(request: Request) -> dict[str, str]:
    return {k: v.strip() for k, v in request.query_params.items() if k in (*FILTERS, "cursor")}


@router.get("/payments")
async def payments_page(request: Request, viewer: ViewerDep) -> Response:
    params = _params(request)
    errors: dict[str, str] = {}
    items: tuple[Payment, ...] = ()
    next_cursor = None
    try:
        query = search_from(viewer, params)
        async with runtime_of(request).db.read() as uow:
            found = await SqlPaymentSearch(uow.connection).search(query)
        items, next_cursor = found.items, found.next_cursor
    except InvalidRequest as exc:
        errors[_field(exc.param)] = exc.message
    filters = {k: v for k, v in params.items() if k in FILTERS and v}
    unfiltered = not {k for k in filters if k != "sort"} and params.get("sort", "-created") in ("", "-created")
    context: dict[str, Any] = {
        "items": items,
        "form": {k: params.get(k, "") for k in FILTERS},
        "errors": errors,
        "statuses": [s.value for s in PaymentStatus],
        "sorts": SORT_LABELS,
        "next_url": f"/dashboard/payments?{urlencode({**filters, 'cursor': next_cursor})}" if next_cursor else None,
        "first_url": f"/dashboard/payments?{urlencode(filters)}" if params.get("cursor") else None,
        "export_query": urlencode(filters),
        "filtered": bool(filters),
        "live_append": unfiltered and not params.get("cursor"),
    }
    return render(request, "payments.html", context, status=400 if errors else 200)


def _field(param: str | None) -> str:
    names = {"created_from": "from", "created_before": "to", "amount_min": "min", "amount_max": "max", "text": "q"}
    name = names.get(param or "", param or "q")
    return name if name in FILTERS else "q"


@router.get("/payments/export.csv")
async def export_csv(request: Request, viewer: ViewerDep) -> Response:
    return await _export(request, viewer, "csv")


@router.get("/payments/export.xlsx")
async def export_xlsx(request: Request, viewer: ViewerDep) -> Response:
    return await _export(request, viewer, "xlsx")


async def _export(request: Request, viewer: Viewer, kind: str) -> Response:
    runtime = runtime_of(request)
    params = {k: v for k, v in _params(request).items() if k != "cursor"}
    query = search_from(viewer, params)  # a bad filter is a 400 page before anything is streamed
    reveal = viewer.can(Role.DEVELOPER)
    await runtime.people.record(
        viewer.identity, "payments.exported", viewer.tenant.project_id, detail=f"{kind} {urlencode(params)}"[:500]
    )

    async def rows() -> AsyncIterator[Payment]:
        # One read transaction, read in keyset batches: no row is repeated or skipped. On SQLite it is
        # one snapshot; PostgreSQL's READ COMMITTED lets a batch see a status changed meanwhile.
        async with runtime.db.read() as uow:
            async for payment in SqlPaymentSearch(uow.connection).iter_all(query):
                yield payment

    project = viewer.project
    assert project is not None
    stamp = runtime.clock.now().astimezone(zone(project.time_zone)).strftime("%Y%m%d-%H%M")
    name = f"payments-{viewer.mode.value}-{stamp}.{kind}"
    if kind == "csv":
        body, media = csv_chunks(rows(), reveal_phones=reveal), "text/csv; charset=utf-8"
    else:
        body = xlsx_chunks(rows(), reveal_phones=reveal)
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    headers = {**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{name}"'}
    return StreamingResponse(body, media_type=media, headers=headers)
