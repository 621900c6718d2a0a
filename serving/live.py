"""What a serving process holds and keeps fresh: the model, the catalogue, trending, and
its link to Redis.

Requests only read ``Live.recommender`` and ``Live.trending``: each is replaced whole by a
refresh (one attribute assignment), never changed in place, so a request that started on
the old model finishes on it, and the next one gets the new. That is the hot swap: no
lock, no restart, no failed request.

Redis failures open a circuit for ``redis_retry_seconds``: requests skip Redis and say
they are degraded, instead of each paying a timeout while Redis is away.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import logging
import time
from collections.abc import Callable

import redis

from feature_store import (
    CorruptFeature,
    DiscountBudget,
    FeatureStore,
    FeatureStoreError,
    KeyLayout,
)
from models.artifact import RecommenderArtifact
from models.registry import ModelRegistry
from serving.catalog import Catalog, ItemInfo
from serving.customers import READ_GROUPS, CustomerView
from serving.metrics import ServingMetrics
from serving.recommend import Recommender, Rules, Trending
from serving.settings import ServingSettings

__all__ = ["CustomerRead", "Live"]

log = logging.getLogger(__name__)

_TRENDING_DEPTH = 1_000  # products read per refresh; category lists are cut from these
_PURCHASE_WEIGHT = 5.0  # a purchase in the last 24 h counts as five views
_CATALOG_CHUNK = 500  # products per Redis round trip in a full catalogue read
_YIELD_SECONDS = 0.001  # the pause between chunks, so requests get the GIL


@dataclasses.dataclass(frozen=True, slots=True)
class CustomerRead:
    """A customer read from Redis: the view, and whether Redis failed to answer."""

    view: CustomerView | None
    degraded: bool


class Live:
    """The state of one serving process.

    Args:
        settings: Serving settings.
        metrics: Where to count.
        clock: Wall clock in epoch seconds (tests may pass their own).
    """

    def __init__(
        self,
        settings: ServingSettings,
        metrics: ServingMetrics,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.clock = clock
        self.registry = ModelRegistry(settings.model_registry)
        self.rules = Rules(
            exclude_bought_days=settings.exclude_bought_days,
            replenishment_lead=settings.replenishment_lead,
            up_sell_band=settings.up_sell_band,
            requires_consent=settings.personalization_requires_consent,
        )
        layout = KeyLayout(settings.namespace)
        timeout = settings.redis_timeout_seconds
        # Requests get short timeouts; background refreshes may take longer.
        requests = redis.Redis.from_url(
            settings.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self.store = FeatureStore(requests, layout)
        self.budget = DiscountBudget(requests, layout)
        self._background = FeatureStore(
            redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=1),
            layout,
        )
        self.recommender: Recommender | None = None
        self.trending = Trending()
        self._live_items: dict[str, ItemInfo] = {}
        self._cursor: str | None = None  # the catalogue change feed, read up to here
        self._snapshot: tuple[str, dict[str, ItemInfo]] = ("", {})  # parsed once per version
        self._down_until = 0.0
        self._trending_at = 0.0

    def close(self) -> None:
        """Release the Redis connections."""
        self.store.close()
        self._background.close()

    # -- Redis, behind a circuit breaker ---------------------------------------------

    @property
    def redis_down(self) -> bool:
        """Whether a recent failure keeps requests off Redis."""
        return self.clock() < self._down_until

    def _failed(self, operation: str, exc: Exception) -> None:
        self.metrics.redis_errors.labels(operation).inc()
        self._down_until = self.clock() + self.settings.redis_retry_seconds
        log.warning("redis %s failed: %s", operation, exc)

    def read_customer(self, customer_id: str) -> CustomerRead:
        """The customer's view; ``degraded`` when Redis could not be asked or failed."""
        if self.redis_down:
            return CustomerRead(None, degraded=True)
        try:
            fields = self.store.customer_groups(customer_id, READ_GROUPS)
        except FeatureStoreError as exc:
            self._failed("read_customer", exc)
            return CustomerRead(None, degraded=True)
        return CustomerRead(None if fields is None else CustomerView.parse(fields), False)

    def read_profile(self, customer_id: str) -> tuple[dict[str, str] | None, bool]:
        """The whole stored profile and whether the customer was erased.

        Raises:
            FeatureStoreError: Redis failed (the caller answers 503).
        """
        try:
            profile = self.store.customer(customer_id)
            erased = profile is None and self.store.is_erased(customer_id)
        except FeatureStoreError as exc:
            self._failed("read_profile", exc)
            raise
        return profile, erased

    def read_fields(self, customer_id: str) -> tuple[dict[str, str] | None, str | None]:
        """The whole stored profile (None if unknown or erased), or None and why it could
        not be read (``redis_unavailable``, ``corrupt_profile``)."""
        if self.redis_down:
            return None, "redis_unavailable"
        try:
            return self.store.customer(customer_id), None
        except CorruptFeature as exc:  # this customer's hash, not Redis: keep the circuit shut
            self.metrics.redis_errors.labels("read_fields").inc()
            log.warning("corrupt profile of %s: %s", customer_id, exc)
            return None, "corrupt_profile"
        except FeatureStoreError as exc:
            self._failed("read_fields", exc)
            return None, "redis_unavailable"

    def budget_spent(self, day: str) -> float | None:
        """What the day's discount budget granted so far; None when Redis failed."""
        if self.redis_down:
            return None
        try:
            return self.budget.spent(day)
        except FeatureStoreError as exc:
            self._failed("budget_spent", exc)
            return None

    def reserve_discount(self, day: str, offer_id: str, wanted: float) -> float | None:
        """Reserve an offer's discount in the day's budget (idempotent by offer id): the
        amount granted, or None when Redis failed."""
        if self.redis_down:
            return None
        try:
            return self.budget.reserve(day, offer_id, wanted, self.settings.offer_daily_budget)
        except FeatureStoreError as exc:
            self._failed("reserve_discount", exc)
            return None

    def ping(self) -> bool:
        """Whether Redis answers now."""
        return self.store.ping()

    # -- refreshes (run off the event loop, in a worker thread) -----------------------

    def poll_model(self) -> bool:
        """Load the promoted version if it is not the one served; True if swapped."""
        self.update_ages()
        version = self.registry.current()
        current = self.recommender
        if version is None or (current is not None and current.version == version):
            return False
        try:
            artifact = RecommenderArtifact.load(self.registry.path(version))
        except Exception:  # a broken artifact must not take the served one down
            self.metrics.model_loads.labels("failed").inc()
            log.exception("loading model %s failed; still serving %s", version, current)
            return False
        self.recommender = self._recommender(artifact)
        # The model's arrays and id maps live until the next swap: keep the cyclic
        # collector from walking them on every full collection (tail latency).
        gc.freeze()
        self.metrics.model_loads.labels("loaded").inc()
        self.metrics.model_info.clear()
        self.metrics.model_info.labels(version).set(1)
        log.info("serving model %s", version)
        return True

    def update_ages(self) -> None:
        """Set the model and trending age gauges (plain values work with several workers,
        where a gauge cannot be a function)."""
        now = self.clock()
        current = self.recommender
        created = current.artifact.metadata.get("created_at") if current else None
        if created:
            born = dt.datetime.fromisoformat(created).timestamp()
            self.metrics.model_age.set(max(0.0, now - born))
        if self._trending_at:
            self.metrics.trending_age.set(now - self._trending_at)

    def refresh_catalog(self) -> None:
        """Re-read the stock, lifecycle and prices of the products that changed.

        The first refresh reads every product the flow keeps (in chunks, handing the GIL
        back between them); later ones read only those on the flow's catalogue change
        feed since the last, so a refresh costs what changed, not the catalogue's size.
        """
        store = self._background
        current = self.recommender
        try:
            changed = None
            if self._cursor is not None:
                cursor, changed = store.catalog_changes(self._cursor)
            if changed is None:  # first refresh, or the feed was trimmed past our cursor
                cursor = store.catalog_cursor()  # before the read: later changes come again
                ids = sorted(store.product_ids())
            else:
                ids = sorted(changed)
            rows: list[dict[str, str] | None] = []
            for start in range(0, len(ids), _CATALOG_CHUNK):
                rows += store.item_groups(ids[start : start + _CATALOG_CHUNK], ["catalog"])
                time.sleep(_YIELD_SECONDS)
        except FeatureStoreError as exc:
            self._failed("refresh_catalog", exc)
            return
        live = {} if changed is None else dict(self._live_items)
        for product, fields in zip(ids, rows, strict=True):
            if fields:
                live[product] = ItemInfo.parse(fields)
            else:
                live.pop(product, None)
        self._cursor = cursor
        self.metrics.catalog_items.set(len(live))
        if live == self._live_items:
            return  # nothing changed: keep the arrays (a rebuild holds the GIL for ms)
        self._live_items = live
        if current is not None and self.recommender is current:
            self.recommender = self._recommender(current.artifact)

    def refresh_trending(self) -> None:
        """Re-read the last 24 hours' most viewed and bought products."""
        now = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        try:
            views = self._background.popularity("views", window="24h", now=now, k=_TRENDING_DEPTH)
            bought = self._background.popularity(
                "purchases", window="24h", now=now, k=_TRENDING_DEPTH
            )
        except FeatureStoreError as exc:
            self._failed("refresh_trending", exc)
            return
        score: dict[str, float] = {}
        for product, count in views:
            score[product] = score.get(product, 0.0) + count
        for product, count in bought:
            score[product] = score.get(product, 0.0) + _PURCHASE_WEIGHT * count
        ranked = [p for p, _ in sorted(score.items(), key=lambda kv: (-kv[1], kv[0]))]
        by_category: dict[str, list[str]] = {}
        current = self.recommender
        for product in ranked:
            facts = current.catalog.get(product) if current else self._live_items.get(product)
            if facts is not None and facts.category is not None:
                by_category.setdefault(facts.category, []).append(product)
        self.trending = Trending(ranked, by_category)
        self._trending_at = self.clock()

    def _recommender(self, artifact: RecommenderArtifact) -> Recommender:
        version, snapshot = self._snapshot
        if version != artifact.version:
            snapshot = {p: ItemInfo.parse(f) for p, f in artifact.catalog.items()}
            self._snapshot = (artifact.version, snapshot)
        info = dict(snapshot)
        for product, facts in self._live_items.items():
            info[product] = facts  # the live fields are newer than the snapshot
        catalog = Catalog.build(artifact.als.items, info)
        self.metrics.unavailable_items.set(int((~catalog.available).sum()))
        return Recommender(artifact, catalog, self.rules)
