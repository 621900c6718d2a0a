"""``shopkeeper evaluate`` on generated history: ALS against the baselines."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from shopkeeper.cli import main
from shopkeeper.generator import GeneratorConfig, World, write_history


def test_als_beats_popularity_and_recovers_planted_structure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = tmp_path / "history.jsonl"
    world = World.build(GeneratorConfig(seed=9, customers=1_500, products=500))
    write_history(world, history, start=dt.datetime(2025, 1, 1, tzinfo=dt.UTC), days=365,
                  progress=False)  # fmt: skip
    out = tmp_path / "report"
    status = main([
        "evaluate", "--events", str(history), "--truth", str(history.with_suffix(".truth.json")),
        "--factors", "32", "--iterations", "10", "--out", str(out),
    ])  # fmt: skip
    assert status == 0
    report = json.loads((out / "evaluation.json").read_text())
    scores = report["scores"]
    assert set(scores) == {"als", "global_popularity", "recent_popularity", "repeat_purchases"}
    assert report["test_customers"] > 500
    assert scores["als"]["@10"]["ndcg"] >= 1.2 * scores["global_popularity"]["@10"]["ndcg"]
    assert scores["als"]["@10"]["coverage"] > scores["global_popularity"]["@10"]["coverage"]
    planted = report["planted"]
    assert planted["up_sell_recovered"] > planted["up_sell_steps"] / 2
    assert planted["cross_sell_recovered"] > 0
    # The complements serving's cross-sell uses find most of the planted pairs too.
    assert planted["cross_sell_recovered_by_complements"] > planted["cross_sell_pairs"] / 2
    assert (out / "evaluation.png").read_bytes()[:4] == b"\x89PNG"
    printed = capsys.readouterr().out
    assert "planted cross-sell pairs recovered" in printed
    assert "by basket complements" in printed
