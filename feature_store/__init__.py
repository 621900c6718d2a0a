"""The Redis contract of customer and item features: key layout and version, reads, writes.

Writes are absolute values guarded by a sequence number (one pipeline per batch); windowed
counts are stored as time buckets and folded at read time (``fold``), so they are right
whenever they are read. ``DiscountBudget`` holds the daily offer budget: idempotent
reservations by offer id.
"""

from feature_store._budget import DiscountBudget
from feature_store._errors import CorruptFeature, FeatureStoreError, FeatureStoreUnavailable
from feature_store._keys import LAYOUT_VERSION, KeyLayout, PopularityKind, PopularityResolution
from feature_store._store import (
    SEQ_FIELD,
    CustomerErase,
    CustomerWrite,
    FeatureStore,
    ItemWrite,
    PopularityCount,
    SegmentMove,
    Write,
    WriteStats,
)
from feature_store._views import WINDOWED, folded
from feature_store._windows import RESOLUTIONS, WINDOWS, BucketCounts, encode_log, fold, fold_log

__all__ = [
    "LAYOUT_VERSION",
    "RESOLUTIONS",
    "SEQ_FIELD",
    "WINDOWED",
    "WINDOWS",
    "BucketCounts",
    "CorruptFeature",
    "CustomerErase",
    "CustomerWrite",
    "DiscountBudget",
    "FeatureStore",
    "FeatureStoreError",
    "FeatureStoreUnavailable",
    "ItemWrite",
    "KeyLayout",
    "PopularityCount",
    "PopularityKind",
    "PopularityResolution",
    "SegmentMove",
    "Write",
    "WriteStats",
    "encode_log",
    "fold",
    "fold_log",
    "folded",
]
