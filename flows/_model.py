"""The churn model step: one online model that every process learns into and scores with.

How learner and scorers share one model across processes: they do not share it, they
send to it. The step is keyed by one constant key, so Bytewax routes every labelled
example and every score request, from every worker of every process, to the one worker
that owns that key; that worker holds the only model. It predicts each training example
when the example is made and evaluates that prediction when the label comes (so the
health metrics are prequential), learns the example, scores the requests of the batch
with the model as it then is, and emits each score with the
model's version (``<kind>-<examples learned>``). Restarts continue learning from the
newest versioned checkpoint (and, with Bytewax recovery, from the step's snapshot).

Within a batch, examples are learned in event-time order (``resolved_at``, then the
customer), so a replay learns as a live run does; across processes the interleaving
of batches can differ, so scores may differ in the last digits while labels do not.
"""

from __future__ import annotations

import math
import pickle
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Final

import msgspec
from bytewax.operators import StatefulBatchLogic

from flows._state import MODEL_KEY, Learn, Message, ScoreRequest
from flows.metrics import FlowMetrics
from models.churn import ChurnModel, Prequential

__all__ = ["MODEL_KEY", "ChurnScore", "ModelLogic", "ModelState"]

_HEALTH_EVERY_S: Final = 5.0


class ChurnScore(msgspec.Struct, frozen=True, gc=False):
    """A customer's churn probability as of event time ``at``, by model ``version``."""

    probability: float
    version: str
    at: float


class ModelState:
    """The model and its prequential evaluation (what a snapshot holds)."""

    def __init__(self, model: ChurnModel) -> None:
        self.model = model
        self.prequential = Prequential()
        self.checkpointed = model.examples
        # Predictions of the examples made and not yet labelled: (customer, made at) -> p.
        self.made: dict[tuple[str, float], float] = {}
        self.resolved_until = float("-inf")


class ModelLogic(StatefulBatchLogic[Message, tuple[str, ChurnScore], bytes | ModelState]):
    """Learn labelled examples, score requests; one instance in the whole cluster."""

    def __init__(
        self,
        state: ModelState,
        metrics: FlowMetrics,
        *,
        checkpoints: Path | None,
        every: int,
        copy: bool,
        horizon_days: float = 60,
    ) -> None:
        self._state = state
        self._forget_after = (horizon_days + 1) * 86_400.0
        self._remember = max(len(state.made), 100_000)
        self._metrics = metrics
        self._checkpoints = checkpoints
        self._every = every
        self._copy = copy
        self._health_at = 0.0

    @classmethod
    def builder(
        cls,
        metrics: FlowMetrics,
        *,
        kind: str,
        checkpoints: Path | None,
        every: int,
        copy: bool,
        horizon_days: float = 60,
    ) -> Callable[[bytes | ModelState | None], ModelLogic]:
        """The ``stateful_batch`` builder: the snapshot, else the newest checkpoint, else a
        new model of ``kind``."""

        def build(resume: bytes | ModelState | None) -> ModelLogic:
            if isinstance(resume, bytes):
                state: ModelState = pickle.loads(resume)  # noqa: S301 - our own snapshot
            elif resume is not None:
                state = resume
            elif checkpoints is not None and any(checkpoints.glob("*.json")):
                state = ModelState(ChurnModel.load(checkpoints))
            else:
                state = ModelState(ChurnModel.create(kind))
            return cls(
                state,
                metrics,
                checkpoints=checkpoints,
                every=every,
                copy=copy,
                horizon_days=horizon_days,
            )

        return build

    def on_batch(self, values: list[Message]) -> tuple[Iterable[tuple[str, ChurnScore]], bool]:
        state = self._state
        model, prequential, made = state.model, state.prequential, state.made
        # Examples are predicted when they are made, by the model as it is then, and
        # evaluated with that prediction when their label comes: prequential health. In
        # event-time order within the batch (a label known at a time is learned before an
        # example made then is predicted), so a replay's big batches do not predict with
        # a model that has not yet learned what came before.
        timeline: list[tuple[float, int, str, float, ScoreRequest | Learn]] = []
        for customer, message in values:
            if type(message) is Learn:
                timeline.append((message.resolved_at, 0, customer, message.made_at, message))
            elif type(message) is ScoreRequest and message.example:
                timeline.append((message.at, 1, customer, message.at, message))
        timeline.sort(key=lambda entry: entry[:4])
        labels = [0, 0]
        for at, _, customer, made_at, message in timeline:
            if type(message) is ScoreRequest:
                made[(customer, at)] = model.predict_proba_one(message.features)
                continue
            assert isinstance(message, Learn)  # noqa: S101 - for the type checker
            predicted = made.pop((customer, made_at), None)
            if predicted is None:  # made before a restart without recovery
                predicted = model.predict_proba_one(message.features)
            prequential.update(message.churned, predicted)
            model.learn_one(message.features, message.churned)
            labels[message.churned] += 1
            state.resolved_until = max(state.resolved_until, at)
        scores: list[tuple[str, ChurnScore]] = []
        for customer, request in values:
            if type(request) is ScoreRequest and not request.example:
                p = model.predict_proba_one(request.features)
                scores.append((customer, ChurnScore(p, model.version, request.at)))
        self._forget_unlabelled()
        self._report(labels, len(scores))
        if model.examples - state.checkpointed >= self._every:
            self._checkpoint()
        return (scores, StatefulBatchLogic.RETAIN)

    def _checkpoint(self) -> None:
        """Save a versioned checkpoint of what was learned since the last one, if any."""
        state = self._state
        if self._checkpoints is None or state.model.examples == state.checkpointed:
            return
        state.model.save(self._checkpoints, health=state.prequential.health())
        state.checkpointed = state.model.examples
        self._metrics.churn_checkpoints.inc()

    def _forget_unlabelled(self) -> None:
        # An example is labelled within the horizon of its window; one that was not (its
        # customer was erased) is forgotten.
        made = self._state.made
        if len(made) > 2 * self._remember:
            cutoff = self._state.resolved_until - self._forget_after
            for key in [k for k in made if k[1] < cutoff]:
                del made[key]

    def on_eof(self) -> tuple[Iterable[tuple[str, ChurnScore]], bool]:
        # The end of a bounded replay: checkpoint what was learned since the last one.
        self._checkpoint()
        return ((), StatefulBatchLogic.RETAIN)

    def _report(self, labels: list[int], scored: int) -> None:
        metrics = self._metrics
        if labels[0]:
            metrics.churn_labels.labels("not_churned").inc(labels[0])
        if labels[1]:
            metrics.churn_labels.labels("churned").inc(labels[1])
        metrics.churn_scores.inc(scored)
        metrics.churn_examples.set(self._state.model.examples)
        now = time.monotonic()
        if now - self._health_at < _HEALTH_EVERY_S:
            return
        self._health_at = now
        health = self._state.prequential.health()
        for name in ("roc_auc", "log_loss", "brier"):
            value = getattr(health, name)
            metrics.churn_health.labels(name).set(math.nan if value is None else value)
        for i, (_, observed, _) in enumerate(health.calibration):
            metrics.churn_calibration.labels(str(i + 1)).set(observed)

    def snapshot(self) -> bytes | ModelState:
        if self._copy:
            return pickle.dumps(self._state, protocol=pickle.HIGHEST_PROTOCOL)
        return self._state
