"""The Redis key layout, owned here and nowhere else.

Version 1 (``v1`` in every key)::

    <ns>:v1:c:{<customer_id>}                 hash   customer features
    <ns>:v1:erased:{<customer_id>}            string tombstone of an erased customer
    <ns>:v1:i:{<product_id>}                  hash   item features (catalogue, popularity buckets)
    <ns>:v1:items                             set    every product id with features
    <ns>:v1:pop:<kind>:<res>:<start>:<scope>  zset   product -> count in one time bucket
    <ns>:v1:catalog_changes                   stream products whose catalogue changed
    <ns>:v1:segment:<name>                    set    customer ids in one RFM segment
    <ns>:v1:budget:<day>                      hash   one day's discount reservations

A customer or item hash holds ``_seq`` (the state's sequence number, which guards
writes) and one field per feature group (``activity``, ``orders``, ``cart``, ...; for items
``catalog`` and ``popularity``), each the compact JSON object of that group's features,
all values strings. Redis pays per hash field on every write, so ten group fields cost a
fifth of fifty single ones; readers get the flat mapping back from ``FeatureStore``.

Ids sit inside a Redis Cluster hash tag (``{...}``) so that a customer's hash and its
tombstone share a slot and one script can guard both. ``<kind>`` is ``views`` or
``purchases``; ``<res>`` is ``1h`` or ``1d``; ``<start>`` the bucket start in epoch
seconds; ``<scope>`` is ``all`` or a category path.

Changing the layout means a new version: readers of ``v1`` keep working on ``v1`` keys
while a flow writes ``v2`` beside them.
"""

from __future__ import annotations

from typing import Final, Literal

__all__ = ["LAYOUT_VERSION", "KeyLayout", "PopularityKind", "PopularityResolution"]

LAYOUT_VERSION: Final = 1

PopularityKind = Literal["views", "purchases"]
PopularityResolution = Literal["1h", "1d"]


class KeyLayout:
    """Key names for one namespace.

    Args:
        namespace: Prefix of every key, so one Redis can hold several engines or tests.

    Example:
        >>> keys = KeyLayout("shop")
        >>> keys.customer("c-1"), keys.tombstone("c-1")
        ('shop:v1:c:{c-1}', 'shop:v1:erased:{c-1}')
    """

    def __init__(self, namespace: str = "shopkeeper") -> None:
        if not namespace or any(c in namespace for c in "{}: "):
            raise ValueError(f"namespace {namespace!r} must be non-empty, without '{{}}: '")
        self.namespace = namespace
        self._base = f"{namespace}:v{LAYOUT_VERSION}"

    def customer(self, customer_id: str) -> str:
        """The hash of one customer's features."""
        return f"{self._base}:c:{{{customer_id}}}"

    def tombstone(self, customer_id: str) -> str:
        """Marks an erased customer; writes for them are refused while it exists."""
        return f"{self._base}:erased:{{{customer_id}}}"

    def item(self, product_id: str) -> str:
        """The hash of one product's features."""
        return f"{self._base}:i:{{{product_id}}}"

    @property
    def items(self) -> str:
        """The set of every product id that has features."""
        return f"{self._base}:items"

    def popularity(
        self, kind: PopularityKind, resolution: PopularityResolution, start: int, scope: str
    ) -> str:
        """The sorted set of per-product counts in one time bucket."""
        return f"{self._base}:pop:{kind}:{resolution}:{start}:{scope}"

    @property
    def catalog_changes(self) -> str:
        """The stream of products whose catalogue fields changed (``product`` per entry),
        so readers re-read what changed instead of every product."""
        return f"{self._base}:catalog_changes"

    def segment(self, name: str) -> str:
        """The set of customer ids in RFM segment ``name`` (for campaign export)."""
        return f"{self._base}:segment:{name}"

    def budget(self, day: str) -> str:
        """The hash of one day's discount reservations: cents granted per offer id, and
        ``_spent``, their total (see ``DiscountBudget``)."""
        return f"{self._base}:budget:{day}"
