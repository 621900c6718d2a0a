"""Reads and writes of features in Redis: absolute values, one pipeline per batch."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import itertools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, Literal, cast

import hiredis
import redis

from feature_store._errors import CorruptFeature, FeatureStoreUnavailable
from feature_store._keys import KeyLayout, PopularityKind, PopularityResolution

__all__ = [
    "CustomerErase",
    "CustomerWrite",
    "FeatureStore",
    "ItemWrite",
    "PopularityCount",
    "SegmentMove",
    "Write",
    "WriteStats",
]

SEQ_FIELD: Final = "_seq"

# Writes a hash only if its sequence number is not older than the stored one, and never
# for an erased customer. Returns 1 written, 0 older than stored, -1 erased.
_GUARDED_HSET: Final = """
if #KEYS > 1 and redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
local stored = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1')
if stored > tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
return 1
"""

_GUARDED_HSET_SHA: Final = hashlib.sha1(_GUARDED_HSET.encode()).hexdigest()  # noqa: S324 - Redis's id

# hiredis's stub types the argument as a 1-tuple; it takes any tuple of arguments.
_pack = cast("Callable[[tuple[Any, ...]], bytes]", hiredis.pack_command)

_POPULARITY_TTL_S: Final[dict[PopularityResolution, int]] = {"1h": 2 * 86_400, "1d": 9 * 86_400}
_CHANGES_KEPT: Final = 100_000  # catalogue change feed entries kept (about: MAXLEN ~)
_POPULARITY_WINDOWS: Final[dict[str, tuple[PopularityResolution, int, int]]] = {
    # window -> (resolution, bucket size, window length), in seconds
    "24h": ("1h", 3_600, 86_400),
    "7d": ("1d", 86_400, 7 * 86_400),
}


# The write records are plain slotted dataclasses, not frozen ones: the flow makes one per
# customer and product per batch, and a frozen dataclass takes several times as long to make.
@dataclasses.dataclass(slots=True)
class CustomerWrite:
    """A customer's features as of sequence number ``seq`` (events applied).

    ``fields`` maps each feature group to the JSON object of its fields (see ``_keys``);
    fields starting with ``_`` are stored as they are. ``guard`` names the field holding
    the sequence number: fields written by another writer (the churn model's scores,
    stamped with their event time) keep their own guard in the same hash.
    """

    customer_id: str
    fields: Mapping[str, str]
    seq: int
    guard: str = SEQ_FIELD


@dataclasses.dataclass(slots=True)
class CustomerErase:
    """Erase a customer everywhere, and refuse their features from now on."""

    customer_id: str


@dataclasses.dataclass(slots=True)
class PopularityCount:
    """One product's absolute count of ``kind`` in one time bucket, in one scope."""

    kind: PopularityKind
    resolution: PopularityResolution
    start: int
    scope: str
    count: float


@dataclasses.dataclass(slots=True)
class ItemWrite:
    """A product's features as of ``seq``, and its changed popularity buckets."""

    product_id: str
    fields: Mapping[str, str]
    seq: int
    popularity: Sequence[PopularityCount] = ()
    catalog_changed: bool = False  # announce it on the change feed


@dataclasses.dataclass(slots=True)
class SegmentMove:
    """Move a customer between RFM segment sets (``None``: no set)."""

    customer_id: str
    previous: str | None
    current: str | None


Write = CustomerWrite | CustomerErase | ItemWrite | SegmentMove


@dataclasses.dataclass
class WriteStats:
    """What one batch did."""

    written: int = 0
    stale: int = 0
    refused_erased: int = 0


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class FeatureStore:
    """Customer and item features in Redis.

    Every write is an absolute value guarded by a sequence number, so replaying a batch
    after a crash changes nothing, and an older state never overwrites a newer one.
    Erased customers leave a tombstone that refuses later writes, so a replay does not
    bring them back.

    Args:
        client: A redis-py client (its connection pool is shared by every call).
        layout: The key layout (and namespace).

    Example::

        store = FeatureStore(redis.Redis.from_url(url), KeyLayout("shop"))
        store.write([CustomerWrite("c-1", {"orders": '{"orders_total":"2"}'}, seq=7)])
        # WriteStats(written=1, stale=0, refused_erased=0)
        store.customer("c-1")  # {"orders_total": "2", "_seq": "7"}
    """

    def __init__(self, client: redis.Redis, layout: KeyLayout | None = None) -> None:
        self._client = client
        self.keys = layout or KeyLayout()

    # -- writes -------------------------------------------------------------------------

    def write(self, batch: Iterable[Write]) -> WriteStats:
        """Apply a batch of writes in one pipelined round trip.

        Raises:
            FeatureStoreUnavailable: Redis did not take the batch.
        """
        keys = self.keys
        commands: list[bytes] = []
        pack = _pack
        guarded: list[int] = []  # positions of the guarded writes among the replies
        products: list[str] = []
        changed: list[str] = []
        # One ZADD per popularity key per batch, however many products it touches.
        ranks: dict[str, dict[str, float]] = {}
        ttls: dict[str, int] = {}
        for write in batch:
            if isinstance(write, CustomerWrite):
                guarded.append(len(commands))
                customer = write.customer_id
                commands.append(pack((
                    "EVALSHA", _GUARDED_HSET_SHA, 2, keys.customer(customer),
                    keys.tombstone(customer), write.guard, write.seq, write.guard, write.seq,
                    *itertools.chain.from_iterable(write.fields.items()),
                )))  # fmt: skip
            elif isinstance(write, ItemWrite):
                guarded.append(len(commands))
                product = write.product_id
                commands.append(pack((
                    "EVALSHA", _GUARDED_HSET_SHA, 1, keys.item(product), SEQ_FIELD, write.seq,
                    SEQ_FIELD, write.seq, *itertools.chain.from_iterable(write.fields.items()),
                )))  # fmt: skip
                products.append(product)
                if write.catalog_changed:
                    changed.append(product)
                for count in write.popularity:
                    key = keys.popularity(count.kind, count.resolution, count.start, count.scope)
                    ranks.setdefault(key, {})[product] = count.count
                    ttls[key] = _POPULARITY_TTL_S[count.resolution]
            else:
                commands += self._unguarded(write)
        commands += self._item_indexes(products, changed, ranks, ttls)
        replies = self._execute(commands)
        stats = WriteStats()
        for outcome in (replies[i] for i in guarded):
            if outcome == 1:
                stats.written += 1
            elif outcome == 0:
                stats.stale += 1
            else:
                stats.refused_erased += 1
        return stats

    def _item_indexes(
        self,
        products: list[str],
        changed: list[str],
        ranks: dict[str, dict[str, float]],
        ttls: dict[str, int],
    ) -> list[bytes]:
        """The item index, the catalogue change feed and the popularity buckets."""
        keys = self.keys
        commands = [_pack(("SADD", keys.items, *products))] if products else []
        for product in changed:
            # A replay may announce a change again: readers re-read, which is harmless.
            commands.append(_pack((
                "XADD", keys.catalog_changes, "MAXLEN", "~", _CHANGES_KEPT, "*",
                "product", product,
            )))  # fmt: skip
        for key, members in ranks.items():
            # GT: counts in a bucket only grow, so a replayed lower count is ignored.
            scored = itertools.chain.from_iterable((n, m) for m, n in members.items())
            commands.append(_pack(("ZADD", key, "GT", *scored)))
            commands.append(_pack(("EXPIRE", key, ttls[key])))
        return commands

    def _unguarded(self, write: CustomerErase | SegmentMove) -> list[bytes]:
        keys = self.keys
        customer = write.customer_id
        if isinstance(write, CustomerErase):
            return [
                _pack(("DEL", keys.customer(customer))),
                _pack(("SET", keys.tombstone(customer), "1")),
            ]
        # In the order of the moves: a replay repeats them in the same order.
        out = []
        if write.previous is not None:
            out.append(_pack(("SREM", keys.segment(write.previous), customer)))
        if write.current is not None:
            out.append(_pack(("SADD", keys.segment(write.current), customer)))
        return out

    def _execute(self, commands: list[bytes]) -> list[Any]:
        """Send packed commands in one round trip and read every reply.

        redis-py's pipeline spends more time in Python per command than Redis spends
        running it (measured: 17 against 9 us per guarded write), so the writes are packed
        by hiredis and sent on one of the client's pooled connections. If Redis does not
        know the guard script (a restart or a failover), it is loaded and the batch,
        idempotent, runs again.
        """
        replies = self._round_trip(commands)
        if any(isinstance(r, redis.exceptions.NoScriptError) for r in replies):
            try:
                self._client.script_load(_GUARDED_HSET)
            except redis.RedisError as exc:
                raise FeatureStoreUnavailable(f"loading the write script failed: {exc}") from exc
            replies = self._round_trip(commands)
        for reply in replies:
            if isinstance(reply, redis.exceptions.ResponseError):
                raise FeatureStoreUnavailable(f"feature write failed: {reply}")
        return replies

    def _round_trip(self, commands: list[bytes]) -> list[Any]:
        if not commands:
            return []
        pool = self._client.connection_pool
        try:
            connection: Any = pool.get_connection()
        except redis.RedisError as exc:
            raise FeatureStoreUnavailable(f"feature write failed: {exc}") from exc
        replies: list[Any] = []
        try:
            connection.send_packed_command([b"".join(commands)], check_health=False)
            for _ in commands:
                try:
                    replies.append(connection.read_response())
                except redis.exceptions.ResponseError as error:  # one command's error reply
                    replies.append(error)
        except (redis.RedisError, OSError) as exc:
            connection.disconnect()  # unread replies would answer the next caller
            raise FeatureStoreUnavailable(f"feature write failed: {exc}") from exc
        finally:
            pool.release(connection)
        return replies

    def ping(self) -> bool:
        """Whether Redis answers now."""
        try:
            return bool(self._client.ping())
        except redis.RedisError:
            return False

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()

    # -- reads --------------------------------------------------------------------------

    def customer(self, customer_id: str) -> dict[str, str] | None:
        """One customer's stored fields in one round trip; ``None`` if unknown or erased."""
        return self.customers([customer_id])[0]

    def customers(self, customer_ids: Sequence[str]) -> list[dict[str, str] | None]:
        """Many customers in one pipelined round trip, in the order asked."""
        return self._hashes([self.keys.customer(c) for c in customer_ids])

    def customer_groups(self, customer_id: str, groups: Sequence[str]) -> dict[str, str] | None:
        """Some feature groups of one customer (one HMGET: a request reads only what it
        uses), flattened; ``{"_erased": "1"}`` for an erased customer, ``None`` if unknown.

        Raises:
            FeatureStoreUnavailable: Redis did not answer.
            CorruptFeature: A group is not a JSON object.
        """
        key = self.keys.customer(customer_id)
        names = list(groups)
        try:
            values = cast("list[bytes | None]", self._client.hmget(key, names))
            # Erasing deletes the hash and writes for an erased customer are refused, so
            # only a customer with nothing stored can be erased: one command otherwise.
            if all(v is None for v in values):
                erased = self._client.exists(self.keys.tombstone(customer_id))
                return {"_erased": "1"} if erased else None
        except redis.RedisError as exc:
            raise FeatureStoreUnavailable(f"feature read failed: {exc}") from exc
        stored = {n.encode(): v for n, v in zip(names, values, strict=True) if v is not None}
        return _flatten(key, stored)

    def item(self, product_id: str) -> dict[str, str] | None:
        """One product's stored fields; ``None`` if unknown."""
        return self.items([product_id])[0]

    def items(self, product_ids: Sequence[str]) -> list[dict[str, str] | None]:
        """Many products in one pipelined round trip, in the order asked."""
        return self._hashes([self.keys.item(p) for p in product_ids])

    def item_groups(
        self, product_ids: Sequence[str], groups: Sequence[str]
    ) -> list[dict[str, str] | None]:
        """Some feature groups (``catalog``, ``popularity``) of many products in one
        pipelined round trip, flattened, in the order asked; ``None`` for an unknown one.

        Raises:
            FeatureStoreUnavailable: Redis did not answer.
            CorruptFeature: A group is not a JSON object.
        """
        keys = [self.keys.item(p) for p in product_ids]
        pipe = self._client.pipeline(transaction=False)
        for key in keys:
            pipe.hmget(key, list(groups))
        try:
            found = pipe.execute()
        except redis.RedisError as exc:
            raise FeatureStoreUnavailable(f"item read failed: {exc}") from exc
        out: list[dict[str, str] | None] = []
        for key, values in zip(keys, found, strict=True):
            stored = {g.encode(): v for g, v in zip(groups, values, strict=True) if v is not None}
            out.append(_flatten(key, stored) if stored else None)
        return out

    def catalog_cursor(self) -> str:
        """The id of the newest catalogue change (``"0-0"`` if none): read it before a
        full read of the catalogue, then ask ``catalog_changes`` for what came after."""
        try:
            newest = cast(
                "list[tuple[bytes, dict[bytes, bytes]]]",
                self._client.xrevrange(self.keys.catalog_changes, count=1),
            )
        except redis.RedisError as exc:
            raise FeatureStoreUnavailable(f"reading the change feed failed: {exc}") from exc
        return _text(newest[0][0]) if newest else "0-0"

    def catalog_changes(self, since: str, *, count: int = 10_000) -> tuple[str, set[str] | None]:
        """Products whose catalogue changed after ``since``, and the new cursor; ``None``
        for the products when the feed no longer reaches back to ``since`` (trimmed: the
        reader must read the whole catalogue again).

        Raises:
            FeatureStoreUnavailable: Redis did not answer.
        """
        key = self.keys.catalog_changes
        try:
            pipe = self._client.pipeline(transaction=False)
            pipe.xrange(key, count=1)
            pipe.xrange(key, min=f"({since}", count=count)
            oldest, entries = pipe.execute()
        except redis.RedisError as exc:
            raise FeatureStoreUnavailable(f"reading the change feed failed: {exc}") from exc
        if oldest and since != "0-0" and _stream_id(_text(oldest[0][0])) > _stream_id(since):
            # The entry right after ``since`` may be gone; if ``since`` itself was trimmed
            # the oldest kept entry is newer than it and something may be lost.
            return self.catalog_cursor(), None
        if not entries:
            return since, set()
        products = {_text(fields.get(b"product") or b"") for _, fields in entries} - {""}
        return _text(entries[-1][0]), products

    def product_ids(self) -> set[str]:
        """Every product id that has features."""
        try:
            members = self._client.smembers(self.keys.items)
        except redis.RedisError as exc:
            raise FeatureStoreUnavailable(f"reading the item index failed: {exc}") from exc
        return {_text(m) for m in members}

    def segment_members(self, name: str) -> set[str]:
        """The customer ids in RFM segment ``name`` now (for campaign export)."""
        try:
            members = self._client.smembers(self.keys.segment(name))
        except redis.RedisError as exc:
            raise FeatureStoreUnavailable(f"reading segment {name!r} failed: {exc}") from exc
        return {_text(m) for m in members}

    def is_erased(self, customer_id: str) -> bool:
        """Whether the customer was erased."""
        try:
            return bool(self._client.exists(self.keys.tombstone(customer_id)))
        except redis.RedisError as exc:
            raise FeatureStoreUnavailable(f"reading a tombstone failed: {exc}") from exc

    def popularity(
        self,
        kind: PopularityKind,
        *,
        window: Literal["24h", "7d"],
        now: dt.datetime,
        scope: str = "all",
        k: int = 100,
    ) -> list[tuple[str, float]]:
        """The ``k`` most viewed (or bought) products in ``scope`` over ``window`` before ``now``.

        Folded at read time from hourly (24 h) or daily (7 d) buckets, so it is right even
        when no event arrived recently; exact to the bucket at the window's far edge (it
        may reach one bucket further back, as windowed counts do).
        """
        resolution, size, length = _POPULARITY_WINDOWS[window]
        high = int(now.timestamp())
        # Buckets that start after now - window - bucket: the same edge rule as ``fold``.
        first = (high - length - size) // size * size + size
        starts = range(first, high // size * size + 1, size)
        keys = [self.keys.popularity(kind, resolution, s, scope) for s in starts]
        try:
            ranked = cast("list[tuple[bytes, float]]", self._client.zunion(keys, withscores=True))
        except redis.RedisError as exc:
            raise FeatureStoreUnavailable(f"reading popularity failed: {exc}") from exc
        pairs = [(_text(member), float(score)) for member, score in ranked]
        pairs.sort(key=lambda pair: (-pair[1], pair[0]))
        return pairs[:k]

    def _hashes(self, keys: list[str]) -> list[dict[str, str] | None]:
        pipe = self._client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        try:
            found = pipe.execute()
        except redis.RedisError as exc:
            raise FeatureStoreUnavailable(f"feature read failed: {exc}") from exc
        return [
            _flatten(key, stored) if stored else None
            for key, stored in zip(keys, found, strict=True)
        ]


def _stream_id(text: str) -> tuple[int, int]:
    millis, _, sequence = text.partition("-")
    return int(millis), int(sequence or 0)


def _flatten(key: str, stored: dict[bytes, bytes]) -> dict[str, str]:
    """Merge the group fields of a stored hash into one flat mapping of features."""
    flat: dict[str, str] = {}
    for raw_name, raw_value in stored.items():
        name, value = _text(raw_name), _text(raw_value)
        if name.startswith("_"):
            flat[name] = value
            continue
        try:
            group = json.loads(value)
        except ValueError as exc:
            raise CorruptFeature(f"{key} field {name!r} is not JSON: {exc}") from exc
        if not isinstance(group, dict):
            raise CorruptFeature(f"{key} field {name!r} is not a JSON object")
        flat.update(group)
    return flat
