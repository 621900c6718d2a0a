"""``shopkeeper evaluate``: ALS against baselines on a time split, and planted structure.

The protocol (``TimeSplit``): train on the events before ``T`` (the last ``test_days`` are
the test period), score the purchases of the test period for customers known at ``T``:
Precision, Recall, NDCG and MAP at k and catalogue coverage, for ALS and three baselines
(global popularity, popularity over the last 30 days before ``T``, the customer's own
repeat purchases). With the generator's ground truth, also how many planted cross-sell
pairs and up-sell ladder steps are recovered (the partner among the 10 best): by ALS's
item similarities, and for cross-sells by the basket complements serving uses. The grid
search (``shopkeeper.grid_search``) runs the same protocol.
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
from models.baskets import Complements, baskets_of
from models.evaluation import Recommender, evaluate, popular, repeat_purchases
from models.interactions import Interactions
from shopkeeper.train import fit_als

__all__ = ["KS", "TimeSplit", "evaluate_als", "recommender", "write_evaluation"]

KS = (5, 10, 20)
"""The cut-offs every metric is reported at."""


@dataclasses.dataclass(frozen=True)
class TimeSplit:
    """History cut at ``at``: what trains, what is scored, and the baselines.

    Attributes:
        at: The start of the test period.
        train: The events before ``at``.
        data: The interactions of ``train``, decayed to ``at``.
        test: Each customer known at ``at`` -> the products they bought from ``at`` on.
        baselines: Recommenders that need no model, fitted on ``train``.
    """

    at: dt.datetime
    train: list[events.Event]
    data: Interactions
    test: dict[str, set[str]]
    baselines: dict[str, Recommender]

    @classmethod
    def of(cls, stream: list[events.Event], *, test_days: int = 60) -> TimeSplit:
        """Cut time-ordered ``stream`` ``test_days`` before its last event.

        Raises:
            ValueError: No event, or no interaction before the test period.
        """
        if not stream:
            raise ValueError("no event to evaluate on")
        at = stream[-1].timestamp - dt.timedelta(days=test_days)
        train = [e for e in stream if e.timestamp < at]
        data = Interactions.from_events(train, until=at)
        if data.matrix.nnz == 0:
            raise ValueError(f"no view, add or purchase before the test period ({at.date()})")
        known = set(data.users)
        test: dict[str, set[str]] = {}
        bought: dict[str, Counter[str]] = {}
        overall: Counter[str] = Counter()
        recent: Counter[str] = Counter()
        for e in stream:
            if type(e) is not events.OrderCompleted or e.customer_key is None:
                continue
            items = [line.product_id for line in e.properties.products]
            if e.timestamp >= at:
                if e.customer_key in known:
                    test.setdefault(e.customer_key, set()).update(items)
                continue
            bought.setdefault(e.customer_key, Counter()).update(items)
            overall.update(items)
            if e.timestamp >= at - dt.timedelta(days=30):
                recent.update(items)
        baselines = {
            "global_popularity": popular(overall),
            "recent_popularity": popular(recent),
            "repeat_purchases": repeat_purchases(bought, popular(overall)),
        }
        return cls(at, train, data, test, baselines)

    def scores(self, recommend: Recommender) -> dict[str, dict[str, Any]]:
        """``recommend``'s metrics at every k in ``KS`` (keys ``"@5"``, ``"@10"``, ...)."""
        catalog = len(self.data.items)
        return {
            f"@{k}": dataclasses.asdict(evaluate(recommend, self.test, k=k, catalog=catalog))
            for k in KS
        }


def recommender(model: AlsModel) -> Recommender:
    """ALS as a recommender for the protocol (bought items may come back: replenishment)."""
    return lambda user, k: [i for i, _ in model.recommend(user, k, exclude_seen=False)]


def evaluate_als(
    stream: list[events.Event],
    *,
    test_days: int = 60,
    params: AlsParams | None = None,
    truth: dict[str, Any] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Fit on the history before the test period and compare with the baselines.

    Args:
        stream: Time-ordered events.
        test_days: The test period: the last days of ``stream``.
        params: ALS hyperparameters (defaults if ``None``).
        truth: The generator's ground truth, to count the planted structure recovered.
        progress: Show a progress bar over the ALS iterations (on stderr).

    Raises:
        ValueError: No event, or no interaction before the test period.
    """
    split = TimeSplit.of(stream, test_days=test_days)
    model = fit_als(split.data, params or AlsParams(), progress=progress)
    scores = {"als": split.scores(recommender(model))} | {
        name: split.scores(baseline) for name, baseline in split.baselines.items()
    }
    report: dict[str, Any] = {
        "split_at": split.at.isoformat(),
        "train_events": len(split.train),
        "test_customers": len(split.test),
        "params": dataclasses.asdict(model.params),
        "scores": scores,
        "ndcg@10_lift_over_global_popularity": scores["als"]["@10"]["ndcg"]
        / max(scores["global_popularity"]["@10"]["ndcg"], 1e-12)
        - 1,
    }
    if truth is not None:
        complements = Complements.from_baskets(baskets_of(split.train), items=model.items)
        report["planted"] = _planted(model, complements, truth)
    return report


def _planted(model: AlsModel, complements: Complements, truth: dict[str, Any]) -> dict[str, Any]:
    def similar(a: str, b: str) -> bool:
        return b in {item for item, _ in model.similar(a, 10)}

    def complement(a: str, b: str) -> bool:
        return b in {item for item, _, _ in complements.of(a, 10)}

    pairs = [tuple(p) for p in truth.get("co_purchase_pairs", [])]
    steps = [
        (ladder[i], ladder[i + 1])
        for ladder in truth.get("price_ladders", [])
        for i in range(len(ladder) - 1)
    ]
    return {
        "cross_sell_pairs": len(pairs),
        "cross_sell_recovered": sum(similar(a, b) or similar(b, a) for a, b in pairs),
        "cross_sell_recovered_by_complements": sum(
            complement(a, b) or complement(b, a) for a, b in pairs
        ),
        "up_sell_steps": len(steps),
        "up_sell_recovered": sum(similar(a, b) for a, b in steps),
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
