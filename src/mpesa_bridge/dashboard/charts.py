"""Charts drawn on the server as SVG, and the table view beside each one. No JavaScript, no fonts.

Every chart is an `<svg>` with a viewBox and `width="100%"` (it scales with its container), a
`<title>` and `<desc>` named by `role="img" aria-labelledby`, labelled axes with rounded ticks, and a
`<title>` on each bar or point (the browser's tooltip). Every label and caption is escaped; the
numbers are ours. An empty series draws the "No payments in this range" state instead of axes.

Colours and lines are presentation attributes (the defaults); a stylesheet overrides them through
these classes:

    mb-chart                 the <svg>; plus mb-chart--bar, mb-chart--line or mb-chart--hbar
    mb-chart__frame          the background rectangle
    mb-chart__grid           the grid lines at each tick
    mb-chart__axis           the two axis lines
    mb-chart__tick           tick labels (text)
    mb-chart__axis-label     the axis titles (text)
    mb-chart__bar            a bar (vertical or horizontal)
    mb-chart__line           the line of a line chart (a gap where a value is missing)
    mb-chart__point          a point of a line chart
    mb-chart__value          the value written at the end of a horizontal bar
    mb-chart__empty          the empty state's text
    mb-table                 the table of `data_table`; its numeric cells are mb-table__num

`chart_id` becomes the `<svg>`'s id and prefixes its title's and description's ids: give each
chart on a page its own. Money is whole shillings, written "KES 1,234".
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Literal

from markupsafe import Markup, escape

Format = Literal["amount", "count", "percent"]
EMPTY = "No payments in this range"
WIDTH, HEIGHT = 640, 320
HBAR_ROW = 30  # a horizontal bar chart is as tall as its rows need
FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif" font-size="11"'
_BAR_FILL = "#2f7d4f"
_LINE_STROKE = "#1f5f99"
_GRID = "#e3e6ea"
_AXIS = "#5b6470"
_TEXT = "#2b3139"
MAX_X_LABELS = 12


def format_kes(amount: int | float) -> str:
    return f"KES {round(amount):,}"


def format_count(value: int | float) -> str:
    return f"{round(value):,}"


def format_percent(rate: float | None) -> str:
    """A rate in 0..1 as a percentage; None (nothing finished) as an em dash."""
    return "\u2014" if rate is None else f"{rate * 100:.1f} %"


def _formatter(kind: Format) -> Callable[[float], str]:
    if kind == "amount":
        return format_kes
    if kind == "percent":
        return lambda v: f"{round(v * 100)} %"
    return format_count


def nice_ticks(maximum: float, count: int = 5) -> list[float]:
    """0, step, 2·step … up to the first tick at or above `maximum`, step 1, 2, 2.5 or 5 times a power of ten."""
    if maximum <= 0:
        return [0.0, 1.0]
    raw = maximum / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    if step < 1 and maximum >= 1:  # whole shillings and whole payments: no fractional ticks
        step = 1
    top = math.ceil(maximum / step - 1e-9) * step
    return [round(i * step, 9) for i in range(round(top / step) + 1)]


def _markup(html: str) -> Markup:
    """The one place markup is declared safe: every caller builds `html` from our own numbers and
    constants, and passes every label, title and caption through `escape`."""
    return Markup(html)  # noqa: S704 - see the docstring


def _safe_id(chart_id: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "-", chart_id).strip("-")
    return cleaned if cleaned[:1].isalpha() else f"chart-{cleaned}"


def _num(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _open(kind: str, chart_id: str, title: str, desc: str, height: int = HEIGHT) -> str:
    cid = _safe_id(chart_id)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="100%" '
        f'preserveAspectRatio="xMidYMid meet" role="img" aria-labelledby="{cid}-title {cid}-desc" '
        f'class="mb-chart mb-chart--{kind}" id="{cid}" {FONT}>'
        f'<title id="{cid}-title">{escape(title)}</title><desc id="{cid}-desc">{escape(desc)}</desc>'
        f'<rect class="mb-chart__frame" x="0" y="0" width="{WIDTH}" height="{height}" fill="#ffffff"/>'
    )


def _empty(kind: str, chart_id: str, title: str, message: str) -> Markup:
    return _markup(
        _open(kind, chart_id, title, message)
        + f'<text class="mb-chart__empty" x="{WIDTH // 2}" y="{HEIGHT // 2}" text-anchor="middle" '
        f'font-size="16" fill="{_AXIS}">{escape(message)}</text></svg>'
    )


class _Plot:
    """The plotting area inside the margins, and the value axis (vertical, or horizontal for hbar)."""

    def __init__(self, left: float, top: float, right: float, bottom: float, height: int = HEIGHT) -> None:
        self.left, self.top, self.right, self.bottom = left, top, WIDTH - right, height - bottom
        self.total_height = height

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top


def _y_axis(plot: _Plot, ticks: Sequence[float], fmt: Callable[[float], str], label: str) -> str:
    parts, top = [], ticks[-1]
    for tick in ticks:
        y = plot.bottom - plot.height * tick / top
        parts.append(
            f'<line class="mb-chart__grid" x1="{_num(plot.left)}" x2="{_num(plot.right)}" y1="{_num(y)}" '
            f'y2="{_num(y)}" stroke="{_GRID}"/>'
            f'<text class="mb-chart__tick" x="{_num(plot.left - 6)}" y="{_num(y + 4)}" text-anchor="end" '
            f'fill="{_TEXT}">{escape(fmt(tick))}</text>'
        )
    mid = plot.top + plot.height / 2
    parts.append(
        f'<text class="mb-chart__axis-label" x="14" y="{_num(mid)}" text-anchor="middle" fill="{_TEXT}" '
        f'transform="rotate(-90 14 {_num(mid)})">{escape(label)}</text>'
    )
    return "".join(parts)


def _axes(plot: _Plot) -> str:
    return (
        f'<line class="mb-chart__axis" x1="{_num(plot.left)}" x2="{_num(plot.left)}" y1="{_num(plot.top)}" '
        f'y2="{_num(plot.bottom)}" stroke="{_AXIS}"/>'
        f'<line class="mb-chart__axis" x1="{_num(plot.left)}" x2="{_num(plot.right)}" y1="{_num(plot.bottom)}" '
        f'y2="{_num(plot.bottom)}" stroke="{_AXIS}"/>'
    )


def _x_labels(plot: _Plot, labels: Sequence[str], centre: Callable[[int], float], axis_label: str) -> str:
    step = max(1, math.ceil(len(labels) / MAX_X_LABELS))
    parts = [
        f'<text class="mb-chart__tick" x="{_num(centre(i))}" y="{_num(plot.bottom + 16)}" text-anchor="middle" '
        f'fill="{_TEXT}">{escape(label)}</text>'
        for i, label in enumerate(labels)
        if i % step == 0
    ]
    parts.append(
        f'<text class="mb-chart__axis-label" x="{_num(plot.left + plot.width / 2)}" y="{HEIGHT - 6}" '
        f'text-anchor="middle" fill="{_TEXT}">{escape(axis_label)}</text>'
    )
    return "".join(parts)


def bar_chart(
    points: Sequence[tuple[str, int]],
    *,
    title: str,
    chart_id: str,
    x_label: str,
    y_label: str,
    value_format: Format = "amount",
    empty: str = EMPTY,
) -> Markup:
    """Vertical bars, one per (label, value), e.g. revenue per day. Empty (or all zero): the empty state."""
    if not points or all(v == 0 for _, v in points):
        return _empty("bar", chart_id, title, empty)
    fmt = _formatter(value_format)
    plot = _Plot(left=96, top=16, right=16, bottom=48)
    ticks = nice_ticks(max(v for _, v in points))
    slot = plot.width / len(points)
    bar = max(1.0, slot * 0.7)
    desc = (
        f"{y_label} by {x_label.lower()}, {points[0][0]} to {points[-1][0]}; highest {fmt(max(v for _, v in points))}."
    )
    parts = [_open("bar", chart_id, title, desc), _y_axis(plot, ticks, fmt, y_label)]
    for i, (label, value) in enumerate(points):
        h = plot.height * value / ticks[-1]
        x = plot.left + slot * i + (slot - bar) / 2
        parts.append(
            f'<rect class="mb-chart__bar" x="{_num(x)}" y="{_num(plot.bottom - h)}" width="{_num(bar)}" '
            f'height="{_num(h)}" fill="{_BAR_FILL}"><title>{escape(label)}: {escape(fmt(value))}</title></rect>'
        )
    parts += [_axes(plot), _x_labels(plot, [p[0] for p in points], lambda i: plot.left + slot * (i + 0.5), x_label)]
    return _markup("".join(parts) + "</svg>")


def line_chart(
    points: Sequence[tuple[str, float | None]],
    *,
    title: str,
    chart_id: str,
    x_label: str,
    y_label: str = "Success rate",
    empty: str = EMPTY,
) -> Markup:
    """A rate (0..1) over time on a 0-100 % axis. None (nothing finished in a bucket) leaves a gap."""
    if not points or all(v is None for _, v in points):
        return _empty("line", chart_id, title, empty)
    fmt = _formatter("percent")
    plot = _Plot(left=64, top=16, right=16, bottom=48)
    ticks = [0.0, 0.25, 0.5, 0.75, 1.0]
    slot = plot.width / len(points)
    known = [v for _, v in points if v is not None]
    desc = (
        f"{y_label} by {x_label.lower()}, {points[0][0]} to {points[-1][0]}; "
        f"from {format_percent(min(known))} to {format_percent(max(known))}."
    )
    parts = [_open("line", chart_id, title, desc), _y_axis(plot, ticks, fmt, y_label)]
    segments: list[list[tuple[float, float]]] = [[]]
    dots = []
    for i, (label, value) in enumerate(points):
        if value is None:
            segments.append([])
            continue
        x, y = plot.left + slot * (i + 0.5), plot.bottom - plot.height * min(max(value, 0.0), 1.0)
        segments[-1].append((x, y))
        dots.append(
            f'<circle class="mb-chart__point" cx="{_num(x)}" cy="{_num(y)}" r="3" fill="{_LINE_STROKE}">'
            f"<title>{escape(label)}: {escape(format_percent(value))}</title></circle>"
        )
    for segment in segments:
        if len(segment) > 1:
            d = " ".join(f"{'M' if k == 0 else 'L'}{_num(x)} {_num(y)}" for k, (x, y) in enumerate(segment))
            parts.append(f'<path class="mb-chart__line" d="{d}" fill="none" stroke="{_LINE_STROKE}" stroke-width="2"/>')
    parts += dots
    parts += [_axes(plot), _x_labels(plot, [p[0] for p in points], lambda i: plot.left + slot * (i + 0.5), x_label)]
    return _markup("".join(parts) + "</svg>")


def hbar_chart(
    items: Sequence[tuple[str, int]],
    *,
    title: str,
    chart_id: str,
    x_label: str,
    value_format: Format = "count",
    empty: str = EMPTY,
) -> Markup:
    """Horizontal bars, largest first as given (failure reasons, top customers); at most 10 read well."""
    if not items:
        return _empty("hbar", chart_id, title, empty)
    fmt = _formatter(value_format)
    height = 12 + 40 + HBAR_ROW * len(items)
    plot = _Plot(left=150, top=12, right=96, bottom=40, height=height)
    ticks = nice_ticks(max(max(v for _, v in items), 1), count=4)
    row = plot.height / len(items)
    bar = row * 0.7
    desc = f"{x_label} by {title.lower()}: " + "; ".join(f"{label} {fmt(v)}" for label, v in items[:3]) + "."
    parts = [_open("hbar", chart_id, title, desc, height)]
    for tick in ticks:
        x = plot.left + plot.width * tick / ticks[-1]
        parts.append(
            f'<line class="mb-chart__grid" x1="{_num(x)}" x2="{_num(x)}" y1="{_num(plot.top)}" '
            f'y2="{_num(plot.bottom)}" stroke="{_GRID}"/>'
            f'<text class="mb-chart__tick" x="{_num(x)}" y="{_num(plot.bottom + 14)}" text-anchor="middle" '
            f'fill="{_TEXT}">{escape(fmt(tick))}</text>'
        )
    for i, (label, value) in enumerate(items):
        w = plot.width * value / ticks[-1]
        y = plot.top + row * i + (row - bar) / 2
        shown = label if len(label) <= 24 else label[:23] + "\u2026"
        parts.append(
            f'<text class="mb-chart__tick" x="{_num(plot.left - 6)}" y="{_num(y + bar / 2 + 4)}" text-anchor="end" '
            f'fill="{_TEXT}">{escape(shown)}</text>'
            f'<rect class="mb-chart__bar" x="{_num(plot.left)}" y="{_num(y)}" width="{_num(w)}" height="{_num(bar)}" '
            f'fill="{_BAR_FILL}"><title>{escape(label)}: {escape(fmt(value))}</title></rect>'
            f'<text class="mb-chart__value" x="{_num(plot.left + w + 4)}" y="{_num(y + bar / 2 + 4)}" '
            f'fill="{_TEXT}">{escape(fmt(value))}</text>'
        )
    parts.append(_axes(plot))
    parts.append(
        f'<text class="mb-chart__axis-label" x="{_num(plot.left + plot.width / 2)}" y="{plot.total_height - 6}" '
        f'text-anchor="middle" fill="{_TEXT}">{escape(x_label)}</text>'
    )
    return _markup("".join(parts) + "</svg>")


Cell = str | int | float | None


def data_table(
    caption: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    *,
    formats: Sequence[Format | None] | None = None,
    empty: str = EMPTY,
) -> Markup:
    """The table view of a chart: a caption, column headers, the first cell of each row its header.

    `formats` (one per column, None: as given) writes numbers as the chart does; a None value is an
    em dash. Every cell is escaped."""
    kinds = list(formats) if formats is not None else [None] * len(columns)

    def cell(value: Cell, kind: Format | None) -> tuple[str, bool]:
        if value is None:
            return "\u2014", True
        if kind == "percent":
            return format_percent(float(value)), True
        if kind is not None and isinstance(value, int | float):
            return _formatter(kind)(value), True
        return str(value), isinstance(value, int | float)

    head = "".join(f'<th scope="col">{escape(c)}</th>' for c in columns)
    body = []
    for values in rows:
        cells = []
        for k, (value, kind) in enumerate(zip(values, kinds, strict=True)):
            text, numeric = cell(value, kind)
            cls = ' class="mb-table__num"' if numeric else ""
            tag = '<th scope="row"' if k == 0 else "<td"
            cells.append(f"{tag}{cls}>{escape(text)}</{'th' if k == 0 else 'td'}>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    if not body:
        body.append(f'<tr><td colspan="{len(columns)}">{escape(empty)}</td></tr>')
    return _markup(
        f'<table class="mb-table"><caption>{escape(caption)}</caption><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )
