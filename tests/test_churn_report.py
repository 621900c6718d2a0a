"""``shopkeeper churn backtest`` end to end on CDNOW's sample, also through the real flow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shopkeeper.cli import main
from shopkeeper.datasets import write_cdnow_events


def test_the_report_sets_the_flow_beside_the_backtest_and_both_baselines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events_file = tmp_path / "cdnow.jsonl"
    write_cdnow_events(events_file, sample=True, progress=False)
    out = tmp_path / "report"
    status = main(
        ["churn", "backtest", "--events", str(events_file), "--out", str(out), "--through-flow"]
    )
    assert status == 0
    report = json.loads((out / "churn_backtest.json").read_text())
    assert report["events"] == 6_919
    assert report["customers"] == 2_357
    test = report["test"]
    assert set(test) == {"streaming", "batch_logistic", "recency_only"}
    assert test["streaming"]["roc_auc"] > test["recency_only"]["roc_auc"]
    # The flow learned the same examples as the backtest (but the hour of lateness at the
    # end of the data) and its model is as good: one code path, two drivers.
    flow = report["flow"]
    assert 0.98 * report["examples_resolved"] <= flow["examples"] <= report["examples_resolved"]
    assert flow["model_version"] == f"logistic-{flow['examples']}"
    assert flow["roc_auc"] > test["recency_only"]["roc_auc"]
    assert (out / "churn_backtest.png").read_bytes()[:4] == b"\x89PNG"
    assert list((out / "checkpoints").glob("logistic-*.json"))
    printed = capsys.readouterr().out
    assert "the real flow" in printed
    assert "batch_logistic" in printed
