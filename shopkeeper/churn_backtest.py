"""``shopkeeper churn backtest``: replay a history of events through the churn code and
compare the streaming model with batch baselines on the same split.

The replay runs the flow's own per-customer code (``CustomerProfile``, ``ChurnTracker``,
``churn_features``) and the same model in event-time order, with the same watermark rule
(latest event time minus the allowed lateness) deciding rescoring and label deadlines.

The split is by time: examples scored before ``split`` of the period (and resolved by
then) train the batch baselines; examples scored after it are the test set for all three.
The streaming model is evaluated prequentially on that test set: each prediction was made
before its label was known, by a model that kept learning from earlier resolutions.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import heapq
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Final

import numpy as np
from tqdm import tqdm

import events
from flows.profile import CHURN_FEATURES, CustomerProfile, Resolved, churn_due_offsets
from models.churn import (
    BatchLogistic,
    ChurnModel,
    Prequential,
    calibration,
    matrix,
    roc_auc,
)

__all__ = ["Backtest", "BacktestResult", "read_events", "run_backtest"]

_DAY: Final = 86_400.0
_MONTH: Final = 30 * _DAY


@dataclasses.dataclass
class _Row:
    made_at: float
    resolved_at: float
    features: dict[str, float]
    churned: bool
    streamed: float  # the streaming model's prediction when the example was scored


@dataclasses.dataclass
class BacktestResult:
    """What a replay produced: every resolved example, and the model at the end."""

    rows: list[_Row]
    model: ChurnModel
    prequential: Prequential
    events: int
    rejected: int
    customers: int
    scored: int
    start: float
    end: float


class Backtest:
    """Replay events in time order through profiles, their churn windows and one model.

    The same event-time rule as the flow's shard clocks: each purchase schedules its
    ticks (the purchase itself, rescoring after days of silence, the label deadline), and
    a tick fires once the watermark (latest event time minus the allowed lateness) passes
    it. Each example is scored when it is made, by the model as it is then.

    Args:
        horizon_days: Churn horizon ``H``.
        lateness: Allowed lateness.
        model: The learner (default: a new ``logistic`` model).
    """

    def __init__(
        self,
        *,
        horizon_days: float = 60,
        lateness: dt.timedelta = dt.timedelta(hours=1),
        model: ChurnModel | None = None,
    ) -> None:
        self._horizon_days = horizon_days
        self._offsets = churn_due_offsets(horizon_days)
        self._lateness = lateness.total_seconds()
        self.model = model or ChurnModel.create()
        self.prequential = Prequential()
        self._profiles: dict[str, CustomerProfile] = {}
        self._due: list[tuple[float, str, float]] = []  # (time, customer, window's purchase)
        self._rows: list[_Row] = []
        self._latest = -np.inf
        self.scored = 0

    def run(self, stream: Iterable[events.Event]) -> None:
        """Apply events (in time order) and the ticks they imply."""
        for event in stream:
            t = event.timestamp.timestamp()
            if t > self._latest:
                self._latest = t
                self._advance(t - self._lateness)
            self._apply(event, t)

    def finish(self) -> None:
        """Fire what the end of the data decides (the watermark reaches the last event)."""
        self._advance(self._latest)

    def rows(self) -> list[_Row]:
        """Every resolved example so far."""
        return self._rows

    def _apply(self, event: events.Event, t: float) -> None:
        customer = event.customer_key
        if customer is None:
            return
        profile = self._profiles.get(customer)
        if profile is None:
            profile = self._profiles[customer] = CustomerProfile(
                churn_horizon_days=self._horizon_days
            )
        profile.fold(event)
        if type(event) is events.OrderCompleted:
            for offset in self._offsets:
                heapq.heappush(self._due, (t + offset, customer, t))

    def _advance(self, watermark: float) -> None:
        due = self._due
        while due and due[0][0] <= watermark:
            at, customer, window = heapq.heappop(due)
            profile = self._profiles[customer]
            profile.churn_tick(at, window, self._score)
            self._learn(profile.take_learned())

    def _score(self, x: dict[str, float]) -> tuple[float, str]:
        self.scored += 1
        return self.model.predict_proba_one(x), self.model.version

    def _learn(self, resolved: Iterable[Resolved]) -> None:
        for r in resolved:
            example = r.example
            self.prequential.update(r.churned, example.predicted)
            self.model.learn_one(example.features, r.churned)
            row = _Row(
                example.at, r.resolved_at, dict(example.features), r.churned, example.predicted
            )
            self._rows.append(row)

    @property
    def customers(self) -> int:
        """Customers seen."""
        return len(self._profiles)


def read_events(path: Path) -> tuple[list[events.Event], int]:
    """Decode a JSONL file of events, sorted by event time (stable); count what did not
    decode."""
    decoder = events.EventDecoder()  # what the flow accepts: no event from the future
    decoded: list[events.Event] = []
    rejected = 0
    with path.open("rb") as lines:
        for line in lines:
            if not line.strip():
                continue
            try:
                decoded.append(decoder.decode(line.rstrip(b"\n")))
            except events.DecodeError:
                rejected += 1
    decoded.sort(key=lambda e: e.timestamp)
    return decoded, rejected


def run_backtest(
    stream: list[events.Event],
    *,
    horizon_days: float = 60,
    model_kind: str = "logistic",
    rejected: int = 0,
    progress: bool = True,
) -> BacktestResult:
    """Replay ``stream`` (time-ordered events) and collect every resolved example."""
    backtest = Backtest(horizon_days=horizon_days, model=ChurnModel.create(model_kind))
    backtest.run(_progress(stream, progress))
    backtest.finish()
    return BacktestResult(
        rows=backtest.rows(),
        model=backtest.model,
        prequential=backtest.prequential,
        events=len(stream),
        rejected=rejected,
        customers=backtest.customers,
        scored=backtest.scored,
        start=stream[0].timestamp.timestamp() if stream else 0.0,
        end=stream[-1].timestamp.timestamp() if stream else 0.0,
    )


def _progress(stream: list[events.Event], enabled: bool) -> Iterator[events.Event]:
    yield from tqdm(stream, unit="ev", desc="replay", disable=not enabled, mininterval=1.0)


def evaluate(result: BacktestResult, *, split: float = 0.6) -> dict[str, Any]:
    """Compare the streaming model with a batch logistic regression and a recency-only
    model, both trained on the examples before the split, on the examples after it."""
    rows = result.rows
    cut = result.start + split * (result.end - result.start)
    train = [r for r in rows if r.resolved_at <= cut]
    test = [r for r in rows if r.made_at > cut]
    report: dict[str, Any] = {
        "events": result.events,
        "rejected_lines": result.rejected,
        "customers": result.customers,
        "examples_scored": result.scored,
        "examples_resolved": len(rows),
        "model": {"kind": result.model.kind, "version": result.model.version},
        "split": {
            "at": dt.datetime.fromtimestamp(cut, dt.UTC).isoformat(),
            "train_examples": len(train),
            "test_examples": len(test),
            "test_churn_rate": float(np.mean([r.churned for r in test])) if test else None,
        },
        "features": list(CHURN_FEATURES),
    }
    if not train or not test or len({r.churned for r in train}) < 2:
        report["error"] = "not enough resolved examples of both labels on each side of the split"
        return report
    y_train = np.array([r.churned for r in train])
    y_test = np.array([r.churned for r in test])
    X_train = matrix((r.features for r in train), CHURN_FEATURES)
    X_test = matrix((r.features for r in test), CHURN_FEATURES)
    recency = CHURN_FEATURES.index("recency_days")
    scores = {
        "streaming": np.array([r.streamed for r in test]),
        "batch_logistic": BatchLogistic().fit(X_train, y_train).predict_proba(X_test),
        "recency_only": BatchLogistic()
        .fit(X_train[:, [recency]], y_train)
        .predict_proba(X_test[:, [recency]]),
    }
    report["test"] = {name: _metrics(y_test, p) for name, p in scores.items()}
    report["streaming_auc_over_time"] = _auc_by_month(test)
    health = result.prequential.health()
    report["prequential_all"] = {
        "examples": health.examples,
        "roc_auc_recent": health.roc_auc,
        "log_loss": health.log_loss,
        "brier": health.brier,
    }
    return report


def _metrics(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    q = np.clip(p, 1e-15, 1 - 1e-15)
    return {
        "roc_auc": roc_auc(y, p),
        "log_loss": float(-np.mean(np.where(y, np.log(q), np.log(1 - q)))),
        "brier": float(np.mean((p - y) ** 2)),
        "calibration": calibration(y, p),
    }


def _auc_by_month(rows: list[_Row]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if not rows:
        return out
    first = min(r.made_at for r in rows)
    months: dict[int, list[_Row]] = {}
    for r in rows:
        months.setdefault(int((r.made_at - first) // _MONTH), []).append(r)
    for index in sorted(months):
        chunk = months[index]
        auc = roc_auc([r.churned for r in chunk], [r.streamed for r in chunk])
        if auc is not None:
            start = dt.datetime.fromtimestamp(first + index * _MONTH, dt.UTC)
            out.append({"from": start.date().isoformat(), "examples": len(chunk), "roc_auc": auc})
    return out


def write_report(report: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """Write ``churn_backtest.json`` and ``churn_backtest.png`` (AUC over time, calibration)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "churn_backtest.json"
    json_path.write_text(json.dumps(report, indent=2))
    png_path = out / "churn_backtest.png"
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
    test = report.get("test", {})
    over_time = report.get("streaming_auc_over_time", [])
    if over_time:
        left.plot(
            [dt.date.fromisoformat(m["from"]) for m in over_time],
            [m["roc_auc"] for m in over_time],
            marker="o",
            label="streaming (prequential, by month)",
        )
    for name, style in (("batch_logistic", "--"), ("recency_only", ":")):
        if name in test and test[name]["roc_auc"] is not None:
            left.axhline(test[name]["roc_auc"], linestyle=style, color="grey", label=name)
    flow = report.get("flow")
    if flow is not None and flow.get("roc_auc") is not None:
        left.axhline(
            flow["roc_auc"], linestyle="-.", color="#55A868", label="the real flow (prequential)"
        )
    left.set_ylabel("ROC AUC on the test period")
    left.set_title("Churn AUC over time")
    left.legend(loc="lower right")
    right.plot([0, 1], [0, 1], color="lightgrey", linestyle="--")
    for name in ("streaming", "batch_logistic", "recency_only"):
        if name in test:
            bins = test[name]["calibration"]
            right.plot([b[0] for b in bins], [b[1] for b in bins], marker="o", label=name)
    right.set_xlabel("predicted churn probability (decile mean)")
    right.set_ylabel("observed churn rate")
    right.set_title("Calibration on the test period")
    right.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
    return json_path, png_path
