"""The alert rules and the dashboard only name metrics the flow exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import CollectorRegistry

from flows.metrics import FlowMetrics

DEPLOY = Path(__file__).parent.parent / "deploy"
_NAME = re.compile(r"\bshopkeeper_[a-z0-9_]+")


def _exported() -> set[str]:
    names: set[str] = set()
    registry = CollectorRegistry()
    FlowMetrics(registry)
    for family in registry.collect():
        suffixes = {
            "counter": ("_total",),
            "histogram": ("_bucket", "_sum", "_count"),
        }.get(family.type, ("",))
        names.update(family.name + suffix for suffix in suffixes)
    return names


def test_alert_rules_name_only_exported_metrics() -> None:
    text = (DEPLOY / "prometheus" / "alerts.yml").read_text()
    expressions = [line.split("expr:", 1)[1] for line in text.splitlines() if "expr:" in line]
    assert len(expressions) >= 8
    used = {name for expr in expressions for name in _NAME.findall(expr)}
    assert used, "no metric in the alert rules"
    assert used <= _exported()


def test_the_dashboard_names_only_exported_metrics() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "shopkeeper-flow.json").read_text())
    used = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in _NAME.findall(target["expr"])
    }
    assert len(dashboard["panels"]) >= 8
    assert used <= _exported()
