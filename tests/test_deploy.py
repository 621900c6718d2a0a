"""The alert rules and the dashboards only name metrics the flow and serving export."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from flows.metrics import FlowMetrics
from serving.metrics import ServingMetrics

DEPLOY = Path(__file__).parent.parent / "deploy"
_NAME = re.compile(r"\bshopkeeper_[a-z0-9_]+")


def _exported() -> set[str]:
    names: set[str] = set()
    registry = CollectorRegistry()
    FlowMetrics(registry)
    ServingMetrics(registry)
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


@pytest.mark.parametrize(
    ("dashboard", "panels"), [("shopkeeper-flow", 8), ("shopkeeper-serving", 8)]
)
def test_the_dashboards_name_only_exported_metrics(dashboard: str, panels: int) -> None:
    board = json.loads((DEPLOY / "grafana" / f"{dashboard}.json").read_text())
    used = {
        name
        for panel in board["panels"]
        for target in panel["targets"]
        for name in _NAME.findall(target["expr"])
    }
    assert len(board["panels"]) >= panels
    assert used
    assert used <= _exported()


def test_serving_has_alerts_on_latency_errors_and_the_model() -> None:
    text = (DEPLOY / "prometheus" / "alerts.yml").read_text()
    for name in ("ShopkeeperServingSlow", "ShopkeeperServingErrors", "ShopkeeperModelStale"):
        assert f"alert: {name}" in text
