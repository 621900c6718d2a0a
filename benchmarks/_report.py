"""Shared by every benchmark: the machine description, JSON results and plots."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

RESULTS = Path(__file__).parent / "results"

_PACKAGES = (
    "bytewax",
    "confluent-kafka",
    "redis",
    "msgspec",
    "orjson",
    "numpy",
    "implicit",
    "river",
)


def machine() -> dict[str, Any]:
    """Describe where the numbers were measured."""
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "packages": versions,
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def write(name: str, result: dict[str, Any]) -> Path:
    """Write ``results/<name>.json`` with the machine description added."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_bytes(
        orjson.dumps(
            {**result, "machine": machine()}, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
        )
    )
    return path


def bar_plot(name: str, title: str, values: dict[str, float], unit: str) -> Path:
    """Write ``results/<name>.png``: one bar per measured configuration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    labels = list(values)
    bars = ax.barh(labels, [values[k] for k in labels], color="#4C72B0")
    ax.bar_label(bars, labels=[f"{values[k]:,.0f}" for k in labels], padding=3)
    ax.set_xlabel(unit)
    ax.set_title(title)
    ax.margins(x=0.2)
    fig.tight_layout()
    path = RESULTS / f"{name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


Curve = tuple[list[float], list[float]]
"""A cumulative distribution: values ascending, and the share of samples at or below each."""


def cdf(samples: Iterable[float]) -> Curve:
    """The empirical cumulative distribution of ``samples``."""
    values = sorted(samples)
    return values, [(i + 1) / len(values) for i in range(len(values))]


def draw_cdf(
    ax: Any,
    curves: Mapping[str, Curve],
    unit: str,
    *,
    baselines: Mapping[str, Curve] | None = None,
    budget: tuple[str, float] | None = None,
) -> None:
    """Draw on a matplotlib ``ax`` one cumulative distribution per measured series, the
    baselines measured in the same run in grey, and a budget as a vertical line."""
    for label, (xs, ys) in curves.items():
        ax.step(xs, ys, where="post", label=label)
    for i, (label, (xs, ys)) in enumerate((baselines or {}).items()):
        style = ("--", ":", "-.")[i % 3]
        ax.step(xs, ys, where="post", color="#777", linestyle=style, label=label)
    if budget is not None:
        ax.axvline(budget[1], color="#C44E52", linestyle="--", label=budget[0])
    ax.set_xscale("log")
    ax.set_ylim(0, 1.01)
    ax.set_xlabel(unit)
    ax.set_ylabel("share at or below")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small", loc="best")


def save(fig: Any, name: str) -> Path:
    """Write a matplotlib figure to ``results/<name>.png`` and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = RESULTS / f"{name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
