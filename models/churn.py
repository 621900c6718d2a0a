"""Online churn model: a River classifier that learns from resolved labels, and its health.

A customer has churned when no ``Order Completed`` follows a purchase within the horizon
(60 days by default). The stream makes an example each time it scores a customer (on a
purchase, and again as their silence grows); the example's label resolves on the next
purchase (0) or when event time passes the last purchase plus the horizon (1). Examples
are scored before they are learned, so the running metrics are prequential: each is an
honest out-of-sample estimate at the time it was made.

Example:
    >>> model = ChurnModel.create("logistic")
    >>> for _ in range(200):
    ...     model.learn_one({"recency_days": 5.0}, False)
    ...     model.learn_one({"recency_days": 90.0}, True)
    >>> model.predict_proba_one({"recency_days": 90.0}) > 0.5 > model.predict_proba_one(
    ...     {"recency_days": 5.0})
    True
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
import pickle
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
from river import compose, linear_model, optim, preprocessing, tree

__all__ = [
    "MODEL_KINDS",
    "BatchLogistic",
    "ChurnModel",
    "Health",
    "Prequential",
    "calibration",
    "log1p_features",
    "matrix",
    "roc_auc",
]

ModelKind = Literal["logistic", "hoeffding_tree"]
Features = Mapping[str, float]


def log1p_features(x: dict[str, float]) -> dict[str, float]:
    """``log(1 + x)`` of each (non-negative) feature: counts, days and money are heavy-
    tailed, and a linear model on their logs ranked churners better (generated history,
    2,000 customers: test AUC 0.845 -> 0.870, log loss 0.396 -> 0.308)."""
    return {k: math.log1p(v) if v > 0 else 0.0 for k, v in x.items()}


_FACTORIES: Final[dict[str, Callable[[], Any]]] = {
    "logistic": lambda: compose.Pipeline(
        compose.FuncTransformer(log1p_features),
        preprocessing.StandardScaler(),
        # AdaGrad, not plain SGD: the features are correlated and drift with time, and
        # per-feature step sizes ranked better in the backtests (CDNOW test AUC 0.678 ->
        # 0.765) and calibrated far better. The intercept's step decays (0.1 / sqrt(t)):
        # at a constant rate it chased the churn rate's drift, and scores made at
        # different times stopped being comparable (CDNOW 0.765 -> 0.777).
        linear_model.LogisticRegression(
            optimizer=optim.AdaGrad(0.03),
            intercept_lr=optim.schedulers.InverseScaling(0.1, power=0.5),
        ),
    ),
    "hoeffding_tree": lambda: compose.Pipeline(
        preprocessing.StandardScaler(),
        tree.HoeffdingAdaptiveTreeClassifier(grace_period=100, seed=7),
    ),
}
MODEL_KINDS: Final = tuple(_FACTORIES)
"""The learners a setting can name (``logistic`` is the default)."""


class ChurnModel:
    """An online binary classifier of churn, with a version that moves as it learns.

    Args:
        kind: Which learner (``MODEL_KINDS``).
        estimator: A River classifier pipeline (from ``create`` or a checkpoint).
        examples: Examples learned so far.
    """

    def __init__(self, kind: str, estimator: Any, examples: int = 0) -> None:
        self.kind = kind
        self._estimator = estimator
        self.examples = examples

    @classmethod
    def create(cls, kind: str = "logistic") -> ChurnModel:
        """A new, untrained model.

        Raises:
            ValueError: ``kind`` is not one of ``MODEL_KINDS``.
        """
        if kind not in _FACTORIES:
            raise ValueError(f"unknown churn model {kind!r}: choose one of {', '.join(_FACTORIES)}")
        return cls(kind, _FACTORIES[kind]())

    @property
    def version(self) -> str:
        """``<kind>-<examples learned>``: two models with one version scored alike."""
        return f"{self.kind}-{self.examples}"

    def learn_one(self, x: Features, y: bool) -> None:
        """Learn one resolved example (``y``: churned)."""
        self._estimator.learn_one(dict(x), bool(y))
        self.examples += 1

    def predict_proba_one(self, x: Features) -> float:
        """The probability that the customer churns; 0.5 before any learning."""
        proba: dict[bool, float] = self._estimator.predict_proba_one(dict(x))
        if not proba:  # trees answer {} before their first split
            return 0.5
        return float(proba.get(True, 0.0))

    # -- checkpoints ----------------------------------------------------------------------

    def save(self, directory: Path, *, health: Health | None = None) -> Path:
        """Write a versioned checkpoint: ``<version>.pkl`` and ``<version>.json`` beside it.

        The estimator is a River object, which only pickles; the JSON holds the metadata
        and the pickle's SHA-256, checked on load. Load only checkpoints this engine wrote.
        """
        directory.mkdir(parents=True, exist_ok=True)
        blob = pickle.dumps(self._estimator, protocol=pickle.HIGHEST_PROTOCOL)
        stem = directory / self.version
        stem.with_suffix(".pkl").write_bytes(blob)
        meta = {
            "kind": self.kind,
            "version": self.version,
            "examples": self.examples,
            "sha256": hashlib.sha256(blob).hexdigest(),
            "saved_at": dt.datetime.now(dt.UTC).isoformat(),
            "health": dataclasses.asdict(health) if health is not None else None,
        }
        stem.with_suffix(".json").write_text(json.dumps(meta, indent=2))
        return stem.with_suffix(".json")

    @staticmethod
    def newest(directory: Path) -> Path:
        """The metadata file of the checkpoint in ``directory`` that learned the most.

        Raises:
            FileNotFoundError: No checkpoint there.
        """
        found = sorted(
            directory.glob("*.json"), key=lambda p: json.loads(p.read_text())["examples"]
        )
        if not found:
            raise FileNotFoundError(f"no churn checkpoint in {directory}")
        return found[-1]

    @classmethod
    def load(cls, path: Path) -> ChurnModel:
        """Load a checkpoint by its JSON file (or the newest one in a directory).

        Raises:
            FileNotFoundError: No checkpoint there.
            ValueError: The pickle does not match the SHA-256 its metadata recorded.
        """
        if path.is_dir():
            path = cls.newest(path)
        meta = json.loads(path.read_text())
        blob = path.with_suffix(".pkl").read_bytes()
        if hashlib.sha256(blob).hexdigest() != meta["sha256"]:
            raise ValueError(f"{path.with_suffix('.pkl')} does not match its checksum")
        estimator = pickle.loads(blob)  # noqa: S301 - our own checkpoint, checksum verified
        return cls(meta["kind"], estimator, meta["examples"])


# -- model health ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Health:
    """Prequential metrics of the examples seen so far (AUC and calibration over the
    latest ``window``)."""

    examples: int
    positives: int
    roc_auc: float | None
    log_loss: float | None
    brier: float | None
    calibration: list[tuple[float, float, int]]  # (mean predicted, observed rate, n) by decile


class Prequential:
    """Score-then-learn evaluation of a stream of resolved examples.

    Log loss and Brier score are running means over every example; ROC AUC and the
    calibration deciles are exact over the latest ``window`` examples.

    Example:
        >>> evaluation = Prequential(window=100)
        >>> for p, y in [(0.9, True), (0.2, False), (0.7, True), (0.4, False)]:
        ...     evaluation.update(y, p)
        >>> evaluation.health().roc_auc
        1.0
    """

    def __init__(self, window: int = 50_000) -> None:
        self._recent: deque[tuple[float, bool]] = deque(maxlen=window)
        self._n = 0
        self._positives = 0
        self._log_loss = 0.0
        self._brier = 0.0

    def update(self, y: bool, p: float) -> None:
        """Count one example: its label and the probability predicted before learning it."""
        q = min(max(p, 1e-15), 1 - 1e-15)
        self._n += 1
        self._positives += bool(y)
        self._log_loss -= float(np.log(q if y else 1 - q))
        self._brier += (p - float(y)) ** 2
        self._recent.append((p, bool(y)))

    def health(self) -> Health:
        """The metrics now."""
        if not self._n:
            return Health(0, 0, None, None, None, [])
        p = np.fromiter((e[0] for e in self._recent), float, len(self._recent))
        y = np.fromiter((e[1] for e in self._recent), bool, len(self._recent))
        return Health(
            examples=self._n,
            positives=self._positives,
            roc_auc=roc_auc(y, p),
            log_loss=self._log_loss / self._n,
            brier=self._brier / self._n,
            calibration=calibration(y, p),
        )


def roc_auc(y: Sequence[bool] | np.ndarray, p: Sequence[float] | np.ndarray) -> float | None:
    """Exact ROC AUC (the Mann-Whitney statistic, ties counted half); None with one class.

    Example:
        >>> roc_auc([False, True, False, True], [0.1, 0.8, 0.8, 0.9])
        0.875
    """
    labels = np.asarray(y, dtype=bool)
    scores = np.asarray(p, dtype=float)
    positives = int(labels.sum())
    negatives = labels.size - positives
    if positives == 0 or negatives == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(labels.size)
    sorted_scores = scores[order]
    # Average ranks over ties.
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], labels.size]
    average = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(average, ends - starts)
    rank_sum = float(ranks[labels].sum())
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def calibration(
    y: Sequence[bool] | np.ndarray, p: Sequence[float] | np.ndarray, bins: int = 10
) -> list[tuple[float, float, int]]:
    """Mean predicted probability, observed rate and count in each decile of prediction."""
    labels = np.asarray(y, dtype=float)
    scores = np.asarray(p, dtype=float)
    if scores.size == 0:
        return []
    order = np.argsort(scores, kind="mergesort")
    out: list[tuple[float, float, int]] = []
    for chunk in np.array_split(order, min(bins, scores.size)):
        out.append((float(scores[chunk].mean()), float(labels[chunk].mean()), int(chunk.size)))
    return out


# -- baselines ------------------------------------------------------------------------------


class BatchLogistic:
    """Batch L2-regularised logistic regression (Newton's method on standardised columns):
    the baseline a streaming model must match.

    Example:
        >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
        >>> model = BatchLogistic().fit(X, np.array([False, False, True, True]))
        >>> bool(model.predict_proba(np.array([[3.0]]))[0] > 0.5)
        True
    """

    def __init__(self, l2: float = 1e-3, iterations: int = 50) -> None:
        self._l2 = l2
        self._iterations = iterations
        self._mean = np.zeros(0)
        self._scale = np.ones(0)
        self._weights = np.zeros(0)

    def fit(self, X: np.ndarray, y: np.ndarray) -> BatchLogistic:
        """Fit on rows ``X`` and boolean labels ``y``."""
        self._mean = X.mean(axis=0)
        self._scale = X.std(axis=0)
        self._scale[self._scale == 0] = 1.0
        Z = self._design(X)
        target = y.astype(float)
        w = np.zeros(Z.shape[1])
        penalty = self._l2 * np.eye(Z.shape[1])
        penalty[0, 0] = 0.0  # no penalty on the intercept
        for _ in range(self._iterations):
            prob = 1.0 / (1.0 + np.exp(-(Z @ w)))
            gradient = Z.T @ (prob - target) + penalty @ w
            hessian = (Z * (prob * (1 - prob))[:, None]).T @ Z + penalty
            step = np.linalg.solve(hessian + 1e-9 * np.eye(len(w)), gradient)
            w -= step
            if float(np.abs(step).max()) < 1e-8:
                break
        self._weights = w
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Churn probability of each row."""
        return np.asarray(1.0 / (1.0 + np.exp(-(self._design(X) @ self._weights))))

    def _design(self, X: np.ndarray) -> np.ndarray:
        Z = (X - self._mean) / self._scale
        return np.hstack([np.ones((X.shape[0], 1)), Z])


def matrix(rows: Iterable[Features], columns: Sequence[str]) -> np.ndarray:
    """Stack feature dicts into a float matrix with ``columns`` in order (missing: 0)."""
    return np.array([[float(row.get(c, 0.0)) for c in columns] for row in rows], dtype=float)
