"""Churn model on real data: CDNOW purchases replayed through the churn code.

The streaming model (prequential, scored before each label was known) beside a batch
logistic regression and a recency-only model trained on the first 60% of the period,
all scored on the rest. Budget: the streaming model within 0.02 ROC AUC of the batch one.
The same purchases replayed through the real flow give the flow's own prequential health
(over its latest 50,000 labelled examples), reported beside them.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from benchmarks import _report
from shopkeeper.churn_backtest import evaluate, read_events, run_backtest, write_report
from shopkeeper.churn_flow import through_flow
from shopkeeper.datasets import write_cdnow_events

BUDGET_AUC_GAP = 0.02


def run() -> dict[str, Any]:
    """Measure and write ``results/churn_cdnow.json`` and ``results/churn_cdnow.png``."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "cdnow.jsonl"
        write_cdnow_events(path, progress=False)
        stream, rejected = read_events(path)
        report = evaluate(run_backtest(stream, rejected=rejected, progress=False))
        flowed = through_flow(stream)
        report["flow"] = {"model_version": flowed.version, **flowed.health}
        write_report(report, Path(scratch))
        (_report.RESULTS / "churn_cdnow.png").write_bytes(
            (Path(scratch) / "churn_backtest.png").read_bytes()
        )
    test = report["test"]
    gap = test["batch_logistic"]["roc_auc"] - test["streaming"]["roc_auc"]
    result: dict[str, Any] = {
        "roc_auc": {name: round(m["roc_auc"], 4) for name, m in test.items()},
        "log_loss": {name: round(m["log_loss"], 4) for name, m in test.items()},
        "auc_gap_to_batch": round(gap, 4),
        "flow_prequential": {
            "roc_auc": round(report["flow"]["roc_auc"], 4),
            "log_loss": round(report["flow"]["log_loss"], 4),
            "examples": report["flow"]["examples"],
            "window": min(report["flow"]["examples"], 50_000),
        },
        "budgets": {"auc_gap_to_batch": BUDGET_AUC_GAP},
        "within_budget": gap <= BUDGET_AUC_GAP,
        "report": report,
    }
    _report.write("churn_cdnow", result)
    return result
