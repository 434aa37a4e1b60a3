"""dashboard.charts: well-formed, labelled, accessible SVG; hostile labels escaped; the empty state."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from markupsafe import Markup

from mpesa_bridge.dashboard.charts import (
    EMPTY,
    bar_chart,
    data_table,
    format_kes,
    format_percent,
    hbar_chart,
    line_chart,
    nice_ticks,
)

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert("x")</script> & \' "'


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def texts(root: ET.Element, cls: str) -> list[str]:
    return [el.text or "" for el in root.iter(f"{SVG}text") if cls in el.get("class", "").split()]


def check_accessible(root: ET.Element, title: str) -> None:
    assert root.get("role") == "img" and root.get("width") == "100%"
    assert (root.get("viewBox") or "").startswith("0 0 640 ")
    labelled_by = (root.get("aria-labelledby") or "").split()
    ids = {el.get("id"): el for el in root.iter() if el.get("id")}
    assert labelled_by and all(name in ids for name in labelled_by)
    assert ids[labelled_by[0]].tag == f"{SVG}title" and ids[labelled_by[0]].text == title
    assert not list(root.iter(f"{SVG}script"))
    assert all(not name.startswith("on") for el in root.iter() for name in el.attrib)


REVENUE = [("1 Dec", 1200), ("2 Dec", 0), ("3 Dec", 5400), ("4 Dec", 250)]


def test_bar_chart_has_rounded_ticks_amounts_and_labels() -> None:
    svg = bar_chart(REVENUE, title="Revenue per day", chart_id="revenue", x_label="Day", y_label="Revenue")
    assert isinstance(svg, Markup)
    root = parse(svg)
    check_accessible(root, "Revenue per day")
    assert texts(root, "mb-chart__tick") == [
        "KES 0",
        "KES 2,000",
        "KES 4,000",
        "KES 6,000",
        "1 Dec",
        "2 Dec",
        "3 Dec",
        "4 Dec",
    ]
    assert texts(root, "mb-chart__axis-label") == ["Revenue", "Day"]
    bars = [el for el in root.iter(f"{SVG}rect") if el.get("class") == "mb-chart__bar"]
    assert len(bars) == 4
    assert [bar.find(f"{SVG}title").text for bar in bars][2] == "3 Dec: KES 5,400"  # type: ignore[union-attr]
    heights = [float(bar.get("height", "0")) for bar in bars]
    assert heights[2] == pytest.approx(256 * 5400 / 6000, abs=0.1) and heights[1] == 0


def test_many_buckets_thin_the_x_labels() -> None:
    points = [(f"{h:02d}:00", h * 10) for h in range(24)]
    root = parse(
        bar_chart(points, title="Per hour", chart_id="hours", x_label="Hour", y_label="Payments", value_format="count")
    )
    hours = [t for t in texts(root, "mb-chart__tick") if ":" in t]
    assert hours == [f"{h:02d}:00" for h in range(0, 24, 2)]
    assert "230" not in texts(root, "mb-chart__tick") and "250" in texts(root, "mb-chart__tick")


def test_line_chart_is_on_a_0_to_100_percent_axis_with_gaps() -> None:
    points = [("1 Dec", 0.5), ("2 Dec", None), ("3 Dec", 0.9), ("4 Dec", 1.0)]
    root = parse(line_chart(points, title="Success rate", chart_id="rate", x_label="Day"))
    check_accessible(root, "Success rate")
    assert texts(root, "mb-chart__tick")[:5] == ["0 %", "25 %", "50 %", "75 %", "100 %"]
    paths = [el for el in root.iter(f"{SVG}path") if el.get("class") == "mb-chart__line"]
    assert len(paths) == 1 and paths[0].get("d", "").count("L") == 1  # 3 Dec - 4 Dec; 1 Dec stands alone
    points_drawn = [el.find(f"{SVG}title").text for el in root.iter(f"{SVG}circle")]  # type: ignore[union-attr]
    assert points_drawn == ["1 Dec: 50.0 %", "3 Dec: 90.0 %", "4 Dec: 100.0 %"]


def test_hbar_chart_lists_labels_and_values() -> None:
    items = [("insufficient_funds", 120), ("1032", 45), ("timeout", 3)]
    root = parse(hbar_chart(items, title="Failure reasons", chart_id="reasons", x_label="Payments"))
    check_accessible(root, "Failure reasons")
    ticks = texts(root, "mb-chart__tick")
    assert ticks[:4] == ["0", "50", "100", "150"]
    assert {"insufficient_funds", "1032", "timeout"} <= set(ticks)
    assert texts(root, "mb-chart__value") == ["120", "45", "3"]
    customers = parse(
        hbar_chart(
            [("2547****5678", 12500)], title="Top customers", chart_id="top", x_label="Paid", value_format="amount"
        )
    )
    assert texts(customers, "mb-chart__value") == ["KES 12,500"]


@pytest.mark.parametrize("kind", ["bar", "line", "hbar"])
def test_hostile_labels_and_titles_are_escaped(kind: str) -> None:
    title, cid = f"Title {HOSTILE}", 'x" onload="alert(1)'
    if kind == "bar":
        svg = bar_chart([(HOSTILE, 5)], title=title, chart_id=cid, x_label=HOSTILE, y_label=HOSTILE)
    elif kind == "line":
        svg = line_chart([(HOSTILE, 0.5), ("b", 0.6)], title=title, chart_id=cid, x_label=HOSTILE, y_label=HOSTILE)
    else:
        svg = hbar_chart([(HOSTILE, 5)], title=title, chart_id=cid, x_label=HOSTILE)
    assert "<script" not in svg and "onload" not in svg.replace("onload-", "")
    root = parse(svg)  # still well-formed
    check_accessible(root, title)
    every_text = "".join(root.itertext())
    assert HOSTILE in every_text or HOSTILE[:20] in every_text  # shown as text, not markup


@pytest.mark.parametrize(
    "svg",
    [
        bar_chart([], title="Revenue", chart_id="e1", x_label="Day", y_label="Revenue"),
        bar_chart([("1 Dec", 0), ("2 Dec", 0)], title="Revenue", chart_id="e2", x_label="Day", y_label="Revenue"),
        line_chart([("1 Dec", None)], title="Revenue", chart_id="e3", x_label="Day"),
        hbar_chart([], title="Revenue", chart_id="e4", x_label="Payments"),
    ],
)
def test_empty_data_says_so(svg: str) -> None:
    root = parse(svg)
    check_accessible(root, "Revenue")
    assert texts(root, "mb-chart__empty") == [EMPTY]
    assert not [el for el in root.iter(f"{SVG}rect") if el.get("class") == "mb-chart__bar"]


def test_data_table_is_accessible_and_escaped() -> None:
    html = data_table(
        "Revenue per day",
        ["Day", "Payments", "Revenue", "Success rate"],
        [("1 Dec", 3, 1200, 0.5), (HOSTILE, 0, 0, None)],
        formats=[None, "count", "amount", "percent"],
    )
    root = ET.fromstring(html)
    assert root.tag == "table"
    assert root.findtext("caption") == "Revenue per day"
    assert [th.get("scope") for th in root.iter("th")][:4] == ["col"] * 4
    rows = root.findall("./tbody/tr")
    assert [c.text for c in rows[0]] == ["1 Dec", "3", "KES 1,200", "50.0 %"]
    assert rows[0][0].tag == "th" and rows[0][0].get("scope") == "row"
    assert [c.text for c in rows[1]] == [HOSTILE, "0", "KES 0", "\u2014"]
    assert "<script>" not in html
    empty = ET.fromstring(data_table("Nothing", ["Day", "Revenue"], []))
    assert "".join(empty.itertext()).endswith(EMPTY)


def test_formats_and_ticks() -> None:
    assert format_kes(1234) == "KES 1,234" and format_kes(0) == "KES 0" and format_kes(1_000_000) == "KES 1,000,000"
    assert format_percent(None) == "\u2014" and format_percent(0.9234) == "92.3 %"
    assert nice_ticks(1234) == [0, 250, 500, 750, 1000, 1250]
    assert nice_ticks(7) == [0, 2, 4, 6, 8]
    assert nice_ticks(3) == [0, 1, 2, 3]
    assert nice_ticks(0) == [0, 1]
    assert nice_ticks(250_000) == [0, 50_000, 100_000, 150_000, 200_000, 250_000]
    assert all(float(t).is_integer() for t in nice_ticks(1))
