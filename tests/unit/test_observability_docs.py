"""docs/grafana/mpesa-bridge.json and docs/prometheus/alerts.yml parse, and every metric they name is
one the bridge exports (its instruments, and the gauges a scrape reads from the database)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import Counter, Gauge, Histogram

from mpesa_bridge.api.metrics import GAUGES
from mpesa_bridge.observability.instruments import COUNTED

ROOT = Path(__file__).resolve().parents[2]
METRIC = re.compile(r"\bmpesa_bridge_[a-z0-9_]+")


def exported() -> set[str]:
    names = set(GAUGES)
    for metric in COUNTED:
        base = metric._name
        if isinstance(metric, Counter):
            names.add(f"{base}_total")
        elif isinstance(metric, Histogram):
            names.update(f"{base}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        elif isinstance(metric, Gauge):
            names.add(base)
    return names


def alert_rules() -> list[dict[str, object]]:
    document = yaml.safe_load((ROOT / "docs/prometheus/alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    dashboard = json.loads((ROOT / "docs/grafana/mpesa-bridge.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_the_alert_rules_are_well_formed_and_cover_what_was_asked() -> None:
    rules = alert_rules()
    for rule in rules:
        assert {"alert", "expr", "for", "labels", "annotations"} <= set(rule), rule.get("alert")
        assert rule["labels"]["severity"] in {"critical", "warning"}  # type: ignore[index]
    names = {rule["alert"] for rule in rules}
    assert {
        "MpesaBridgeCallbacksStopped",
        "MpesaBridgeReconciliationBacklogGrowing",
        "MpesaBridgeEndpointFailing",
    } <= names


def test_every_metric_the_alerts_name_is_exported() -> None:
    named = {m for rule in alert_rules() for m in METRIC.findall(str(rule["expr"]))}
    assert named and named <= exported(), named - exported()


def test_every_metric_the_dashboard_names_is_exported() -> None:
    exprs = dashboard_exprs()
    named = {m for expr in exprs for m in METRIC.findall(expr)}
    assert named and named <= exported(), named - exported()


def test_the_dashboard_shows_every_exported_family() -> None:
    families = {re.sub(r"_(bucket|sum|count|total)$", "", name) for name in exported()}
    shown = {re.sub(r"_(bucket|sum|count|total)$", "", m) for expr in dashboard_exprs() for m in METRIC.findall(expr)}
    assert families <= shown, families - shown
