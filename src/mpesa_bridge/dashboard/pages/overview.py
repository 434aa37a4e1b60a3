"""The overview: what came in today, over 7 and 30 days, the success rate, and the latest payments
(updated live by `static/dashboard.js` from `/dashboard/live`).

    GET /dashboard/        the overview
    GET /dashboard/live    Server-Sent Events: every event of the project and mode looked at
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from mpesa_bridge.core.ports import PaymentFilter
from mpesa_bridge.dashboard.auth import SESSION_COOKIE, Viewer, page, runtime_of
from mpesa_bridge.dashboard.web import render
from mpesa_bridge.realtime.bus import Scope
from mpesa_bridge.realtime.sse import EventStream, resume_point, sse_response
from mpesa_bridge.runtime import stream_options

router = APIRouter()
LIVE_STREAMS_PER_SESSION = 10  # tabs of one browser session following live updates, per process


class StreamSlots:
    """Open live streams per session: a session may hold `limit` at once (a signed-in person cannot
    tie up the server's connections). The release it returns is idempotent."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._open: Counter[str] = Counter()

    def admit(self, session_id: str) -> Callable[[], None] | None:
        if self._open[session_id] >= self._limit:
            return None
        self._open[session_id] += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._open[session_id] -= 1
                if self._open[session_id] <= 0:
                    del self._open[session_id]

        return release

    def count(self, session_id: str) -> int:
        return self._open[session_id]


SLOTS = StreamSlots(LIVE_STREAMS_PER_SESSION)
ViewerDep = Annotated[Viewer, Depends(page())]


@router.get("/")
async def overview(request: Request, viewer: ViewerDep) -> Response:
    figures = await _figures(request, viewer)
    latest = await runtime_of(request).payments.list(viewer.tenant, PaymentFilter(limit=10))
    return render(request, "overview.html", {"figures": figures, "latest": latest})


@router.get("/figures")
async def figures(request: Request, viewer: ViewerDep) -> Response:
    """The overview's figures alone: what its script swaps in after a payment event."""
    return render(request, "_figures.html", {"figures": await _figures(request, viewer)})


async def _figures(request: Request, viewer: Viewer) -> list[dict[str, Any]]:
    project = viewer.project
    assert project is not None
    seen = await runtime_of(request).analytics.overview(project.id, viewer.mode, project.time_zone)
    figures = []
    for label, period in (
        ("Today", seen.today),
        ("Last 7 days", seen.last_7_days),
        ("Last 30 days", seen.last_30_days),
    ):
        f = period.figures
        rate = f.success_rate
        figures.append(
            {
                "label": label,
                "volume": f.succeeded_amount,
                "succeeded": f.succeeded,
                "count": f.count,
                "rate": None if rate is None else round(100 * rate, 1),
            }
        )
    return figures


@router.get("/live")
async def live(request: Request, viewer: ViewerDep) -> Response:
    """The project mode's events as they are committed, while the session lasts."""
    runtime = runtime_of(request)
    settings = runtime.settings
    scope = Scope(viewer.tenant.project_id, viewer.tenant.mode.value)
    options = stream_options(settings)
    start = await resume_point(runtime.db, scope, request.headers.get("last-event-id"))
    token = request.cookies.get(SESSION_COOKIE, "")

    async def still_signed_in() -> bool:
        return await runtime.people.identify(token) is not None

    release = SLOTS.admit(viewer.identity.session.id)
    if release is None:
        message = f"At most {LIVE_STREAMS_PER_SESSION} live views at once: close a tab and reload."
        return render(request, "error.html", {"title": "Too many live views", "message": message}, status=429)
    stream = EventStream(
        runtime.db, runtime.realtime.bus, scope, start.cursor, options, still_valid=still_signed_in, resume_id=start.id
    )
    return sse_response(stream, options, on_close=release)
