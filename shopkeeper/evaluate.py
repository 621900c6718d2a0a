"""``shopkeeper evaluate``: ALS against baselines on a time split, and planted structure.

Train on the events before ``T`` (the last ``test_days`` are the test period), score the
purchases of the test period for customers known at ``T``: Precision, Recall, NDCG and MAP
at k and catalogue coverage, for ALS and three baselines (global popularity, popularity
over the last 30 days before ``T``, the customer's own repeat purchases). With the
generator's ground truth, also how many planted cross-sell pairs and up-sell ladder steps
ALS's item similarities recover (the partner in the 10 most similar items).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections import Counter
from pathlib import Path
from typing import Any

import events
from models.als import AlsModel, AlsParams
from models.evaluation import evaluate, popular, repeat_purchases
from models.interactions import Interactions

__all__ = ["evaluate_als", "write_evaluation"]

KS = (5, 10, 20)


def evaluate_als(
    stream: list[events.Event],
    *,
    test_days: int = 60,
    params: AlsParams | None = None,
    truth: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Fit on the history before the test period and compare with the baselines."""
    end = stream[-1].timestamp
    split = end - dt.timedelta(days=test_days)
    train = [e for e in stream if e.timestamp < split]
    model = AlsModel.fit(Interactions.from_events(train, until=split), params)
    known = set(model.users)
    test: dict[str, set[str]] = {}
    bought: dict[str, Counter[str]] = {}
    overall: Counter[str] = Counter()
    recent: Counter[str] = Counter()
    for e in stream:
        if type(e) is not events.OrderCompleted or e.customer_key is None:
            continue
        items = [line.product_id for line in e.properties.products]
        if e.timestamp >= split:
            if e.customer_key in known:
                test.setdefault(e.customer_key, set()).update(items)
            continue
        bought.setdefault(e.customer_key, Counter()).update(items)
        overall.update(items)
        if e.timestamp >= split - dt.timedelta(days=30):
            recent.update(items)
    recommenders = {
        "als": lambda user, k: [i for i, _ in model.recommend(user, k, exclude_seen=False)],
        "global_popularity": popular(overall),
        "recent_popularity": popular(recent),
        "repeat_purchases": repeat_purchases(bought, popular(overall)),
    }
    catalog = len(model.items)
    scores = {
        name: {f"@{k}": dataclasses.asdict(evaluate(rec, test, k=k, catalog=catalog)) for k in KS}
        for name, rec in recommenders.items()
    }
    report: dict[str, Any] = {
        "split_at": split.isoformat(),
        "train_events": len(train),
        "test_customers": len(test),
        "params": dataclasses.asdict(model.params),
        "scores": scores,
        "ndcg@10_lift_over_global_popularity": scores["als"]["@10"]["ndcg"]
        / max(scores["global_popularity"]["@10"]["ndcg"], 1e-12)
        - 1,
    }
    if truth is not None:
        report["planted"] = _planted(model, truth)
    return report


def _planted(model: AlsModel, truth: dict[str, Any]) -> dict[str, Any]:
    def found(a: str, b: str) -> bool:
        return b in {item for item, _ in model.similar(a, 10)}

    pairs = [tuple(p) for p in truth.get("co_purchase_pairs", [])]
    steps = [
        (ladder[i], ladder[i + 1])
        for ladder in truth.get("price_ladders", [])
        for i in range(len(ladder) - 1)
    ]
    return {
        "cross_sell_pairs": len(pairs),
        "cross_sell_recovered": sum(found(a, b) or found(b, a) for a, b in pairs),
        "up_sell_steps": len(steps),
        "up_sell_recovered": sum(found(a, b) for a, b in steps),
    }


def write_evaluation(report: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """Write ``evaluation.json`` and ``evaluation.png`` (metrics at k by recommender)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "evaluation.json"
    json_path.write_text(json.dumps(report, indent=2))
    png_path = out / "evaluation.png"
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, metric in zip(axes, ("ndcg", "recall", "coverage"), strict=True):
        for name, by_k in report["scores"].items():
            ax.plot(list(KS), [by_k[f"@{k}"][metric] for k in KS], marker="o", label=name)
        ax.set_xlabel("k")
        ax.set_title(metric)
    axes[0].legend()
    fig.suptitle(f"Recommendations on the test period from {report['split_at'][:10]}")
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
    return json_path, png_path
