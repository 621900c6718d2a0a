"""A small grid search over ALS hyperparameters, on the evaluation's time split.

Every combination is fitted on the same training events and scored on the same test
purchases as ``shopkeeper evaluate`` (``shopkeeper.evaluate.TimeSplit``), so the numbers
compare with its report; the best is the one with the highest NDCG@10 (the first in grid
order on a tie). A plain function, usable from a notebook::

    from shopkeeper.grid_search import grid_search
    report = grid_search(stream, {"factors": [32, 64], "alpha": [1, 2, 5]})
    report["best"]["params"]

Example:
    >>> parse_grid(["factors=32,64", "alpha=1,2.5"])
    {'factors': [32, 64], 'alpha': [1.0, 2.5]}
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from tqdm import tqdm

import events
from models.als import AlsModel, AlsParams
from shopkeeper.evaluate import TimeSplit, recommender

__all__ = ["grid_search", "parse_grid", "write_grid_search"]

_KINDS: Final[dict[str, type[int] | type[float]]] = {
    "factors": int,
    "regularization": float,
    "alpha": float,
    "iterations": int,
    "seed": int,
}


def parse_grid(specs: Sequence[str]) -> dict[str, list[int | float]]:
    """Read ``name=v1,v2,...`` specs into a grid.

    Raises:
        ValueError: An unknown name, a repeated one, or a value of the wrong kind.
    """
    grid: dict[str, list[int | float]] = {}
    for spec in specs:
        name, sep, values = (s.strip() for s in spec.partition("="))
        kind = _KINDS.get(name)
        if kind is None or not sep:
            raise ValueError(f"grid {spec!r}: expected name=v1,v2 with a name among {list(_KINDS)}")
        if name in grid:
            raise ValueError(f"grid: {name} is given twice")
        try:
            grid[name] = [kind(v) for v in values.split(",")]
        except ValueError:
            raise ValueError(f"grid {spec!r}: {name} takes {kind.__name__} values") from None
    return grid


def grid_search(
    stream: list[events.Event],
    grid: Mapping[str, Sequence[int | float]],
    *,
    base: AlsParams | None = None,
    test_days: int = 60,
    progress: bool = False,
) -> dict[str, Any]:
    """Fit and score every combination of ``grid`` on one time split.

    Args:
        stream: Time-ordered events.
        grid: Parameter name -> the values to try; names are ``AlsParams`` fields.
        base: The parameters the grid does not set (defaults if ``None``).
        test_days: The test period, as in ``evaluate_als``.
        progress: Show a progress bar over the combinations (on stderr).

    Returns:
        ``results`` (one entry per combination, in grid order: params, metrics at every
        k, fit seconds), ``best`` (the highest NDCG@10), and the baselines' metrics.

    Raises:
        ValueError: An empty grid or list of values, an unknown parameter, or no
            interaction before the test period.
    """
    unknown = set(grid) - set(_KINDS)
    if not grid or unknown or not all(grid.values()):
        raise ValueError(f"a grid names ALS parameters {list(_KINDS)}, each with values")
    split = TimeSplit.of(stream, test_days=test_days)
    base = base or AlsParams()
    combinations = [
        AlsParams(
            **dataclasses.asdict(base)
            | {name: _KINDS[name](v) for name, v in zip(grid, values, strict=True)}
        )
        for values in itertools.product(*grid.values())
    ]
    results: list[dict[str, Any]] = []
    for params in tqdm(combinations, desc="grid", unit="fit", disable=not progress):
        started = time.perf_counter()
        model = AlsModel.fit(split.data, params)
        seconds = time.perf_counter() - started
        results.append(
            {
                "params": dataclasses.asdict(params),
                "fit_seconds": round(seconds, 3),
                "scores": split.scores(recommender(model)),
            }
        )
    best = max(results, key=lambda r: r["scores"]["@10"]["ndcg"])  # max keeps the first
    return {
        "split_at": split.at.isoformat(),
        "train_events": len(split.train),
        "test_customers": len(split.test),
        "grid": {name: list(values) for name, values in grid.items()},
        "metric": "ndcg@10",
        "results": results,
        "best": best,
        "baselines": {name: split.scores(b) for name, b in split.baselines.items()},
    }


def write_grid_search(report: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """Write ``grid_search.json`` and ``grid_search.png`` (NDCG@10 by combination)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "grid_search.json"
    json_path.write_text(json.dumps(report, indent=2))
    png_path = out / "grid_search.png"
    ranked = sorted(report["results"], key=lambda r: r["scores"]["@10"]["ndcg"])
    names = list(report["grid"])
    labels = [" ".join(f"{n}={r['params'][n]}" for n in names) for r in ranked]
    values = [r["scores"]["@10"]["ndcg"] for r in ranked]
    fig, ax = plt.subplots(figsize=(10, 1.6 + 0.32 * len(ranked)))
    colours = ["#DD8452" if r["params"] == report["best"]["params"] else "#4C72B0" for r in ranked]
    ax.barh(labels, values, color=colours)
    for (name, scores), style in zip(report["baselines"].items(), (":", "--", "-."), strict=False):
        ax.axvline(scores["@10"]["ndcg"], color="grey", linestyle=style, label=name)
    ax.set_xlabel("NDCG@10 on the test period")
    ax.set_title(f"ALS grid search, test period from {report['split_at'][:10]} (best in orange)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
    return json_path, png_path
