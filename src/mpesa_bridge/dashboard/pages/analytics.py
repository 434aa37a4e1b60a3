"""Analytics: volume and revenue per day or hour, success rate over time, failure reasons, top paying
customers (phones masked), time from push to a final state — in the project's time zone.

    GET /dashboard/analytics?from=2026-11-01&to=2026-11-30&bucket=day&mode=test
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response

from mpesa_bridge.core.analytics import Analytics, AnalyticsQuery, zone
from mpesa_bridge.core.errors import InvalidRequest
from mpesa_bridge.core.projects import Mode
from mpesa_bridge.dashboard import charts, i18n
from mpesa_bridge.dashboard.auth import Viewer, page, runtime_of
from mpesa_bridge.dashboard.web import language_of, render

router = APIRouter()
ViewerDep = Annotated[Viewer, Depends(page())]
DEFAULT_DAYS = 30


def _day(text: str | None, fallback: date, name: str) -> date:
    if not text:
        return fallback
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidRequest("Use a date like 2026-12-31.", param=name) from None


@router.get("/analytics")
async def analytics_page(request: Request, viewer: ViewerDep) -> Response:
    project = viewer.project
    assert project is not None
    params = request.query_params
    today = runtime_of(request).clock.now().astimezone(zone(project.time_zone)).date()
    form: dict[str, Any] = {
        "from": params.get("from", ""),
        "to": params.get("to", ""),
        "bucket": params.get("bucket", "day") if params.get("bucket") in ("day", "hour") else "day",
        "mode": params.get("mode", viewer.mode.value) if params.get("mode") in ("test", "live") else viewer.mode.value,
    }
    errors: dict[str, str] = {}
    result = None
    try:
        last = _day(form["to"], today, "to")
        first = _day(form["from"], last - timedelta(days=DEFAULT_DAYS - 1), "from")
        form["from"], form["to"] = first.isoformat(), last.isoformat()
        query = AnalyticsQuery.local_days(
            project.id, Mode(form["mode"]), first, last, bucket=form["bucket"], time_zone=project.time_zone
        )
        result = await runtime_of(request).analytics.analytics(query)
    except InvalidRequest as exc:
        errors[exc.param if exc.param in ("from", "to") else "to"] = exc.message
    t = i18n.translator(language_of(request))
    context = {"form": form, "errors": errors, "sections": _sections(result, form["bucket"], t) if result else []}
    return render(request, "analytics.html", context, status=400 if errors else 200)


def _sections(result: Analytics, bucket: str, t: Callable[..., str]) -> list[dict[str, Any]]:
    fmt = "%Y-%m-%d" if bucket == "day" else "%m-%d %H:00"
    labels = [b.start.strftime(fmt) for b in result.buckets]
    axis = t("Day") if bucket == "day" else t("Hour")
    revenue = [(label, b.succeeded_amount) for label, b in zip(labels, result.buckets, strict=True)]
    counts = [(label, b.count) for label, b in zip(labels, result.buckets, strict=True)]
    rates = [(label, b.success_rate) for label, b in zip(labels, result.buckets, strict=True)]
    reasons = [(r.reason, r.count) for r in result.failure_reasons]
    payers = [(c.phone, c.amount) for c in result.top_customers]
    settle = result.settle_times
    bins = [(b.label, b.count) for b in settle.histogram]
    sections = [
        _section(
            "Revenue",
            charts.bar_chart(
                revenue, title=t("Revenue (succeeded)"), chart_id="revenue", x_label=axis, y_label=t("KES")
            ),
            charts.data_table(
                t("Revenue (succeeded)"),
                [axis, t("Revenue"), t("Payments"), t("Succeeded")],
                [
                    (label, b.succeeded_amount, b.count, b.succeeded)
                    for label, b in zip(labels, result.buckets, strict=True)
                ],
                formats=[None, "amount", "count", "count"],
            ),
        ),
        _section(
            "Payments",
            charts.bar_chart(
                counts,
                title=t("Payments made"),
                chart_id="volume",
                x_label=axis,
                y_label=t("Payments"),
                value_format="count",
            ),
            None,
        ),
        _section(
            "Success rate",
            charts.line_chart(rates, title=t("Success rate"), chart_id="rate", x_label=axis),
            charts.data_table(
                t("Success rate"),
                [axis, t("Success rate"), t("Finished")],
                [(label, r, b.finished) for (label, r), b in zip(rates, result.buckets, strict=True)],
                formats=[None, "percent", "count"],
            ),
        ),
        _section(
            "Failure reasons",
            charts.hbar_chart(reasons, title=t("Failure reasons"), chart_id="reasons", x_label=t("Payments")),
            charts.data_table(t("Failure reasons"), [t("Reason"), t("Payments")], reasons, formats=[None, "count"]),
        ),
        _section(
            "Top paying customers",
            charts.hbar_chart(
                payers, title=t("Top paying customers"), chart_id="payers", x_label=t("KES"), value_format="amount"
            ),
            charts.data_table(
                t("Top paying customers"),
                [t("Phone"), t("Paid"), t("Payments")],
                [(c.phone, c.amount, c.count) for c in result.top_customers],
                formats=[None, "amount", "count"],
            ),
        ),
        _section(
            "Time to a final state",
            charts.bar_chart(
                bins,
                title=t("Time from push to final state"),
                chart_id="settle",
                x_label=t("Time"),
                y_label=t("Payments"),
                value_format="count",
            ),
            charts.data_table(
                t("Time from push to final state"), [t("Time"), t("Payments")], bins, formats=[None, "count"]
            ),
            facts={"median": settle.p50, "90th percentile": settle.p90, "99th percentile": settle.p99},
        ),
    ]
    total = result.total
    sections[0]["totals"] = {"revenue": total.succeeded_amount, "count": total.count, "rate": total.success_rate}
    return sections


def _section(
    title: str, chart: Markup, table: Markup | None, facts: dict[str, int | None] | None = None
) -> dict[str, Any]:
    return {"title": title, "chart": chart, "table": table, "facts": facts or {}}
