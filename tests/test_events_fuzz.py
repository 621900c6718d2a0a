"""Fuzzing the decoder: whatever the bytes, it returns a valid event or raises DecodeError.

More than 10,000 cases across random bytes, random JSON, valid events generated from the
contract's own type information, and mutations of valid payloads.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

import msgspec
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

import events
from events import DecodeError, EventDecoder
from tests.samples import SAMPLES

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
decoder = EventDecoder(clock=lambda: NOW)

_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=24)
_ZONES = sorted(zoneinfo.available_timezones())


def _strategy(info: msgspec.inspect.Type, name: str = "") -> st.SearchStrategy[Any]:
    """A strategy of JSON values that satisfy a msgspec type (cross-field rules aside)."""
    it = msgspec.inspect
    if isinstance(info, it.Metadata):
        return _strategy(info.type, name)
    if isinstance(info, it.StructType):
        required = {
            f.encode_name: _strategy(f.type, f.encode_name) for f in info.fields if f.required
        }
        optional = {
            f.encode_name: _strategy(f.type, f.encode_name) for f in info.fields if not f.required
        }
        body = st.fixed_dictionaries(required, optional=optional)
        if info.tag_field is None:
            return body
        return st.tuples(body, st.just({info.tag_field: info.tag})).map(
            lambda pair: pair[0] | pair[1]
        )
    if isinstance(info, it.UnionType):
        return st.one_of([_strategy(t, name) for t in info.types])
    if isinstance(info, it.NoneType):
        return st.none()
    if isinstance(info, it.BoolType):
        return st.booleans()
    if isinstance(info, it.LiteralType):
        if name == "currency":
            return st.just("EUR")  # one currency per event, as the contract requires
        return st.sampled_from(info.values)
    if isinstance(info, it.IntType):
        return st.integers(info.ge, info.le)
    if isinstance(info, it.FloatType):
        return st.floats(info.ge, min(info.le or 1e6, 1e6), allow_nan=False).map(
            lambda x: round(x, 2)
        )
    if isinstance(info, it.StrType):
        if name == "schema_version":
            return st.from_regex(r"1-\d{1,3}-\d{1,3}", fullmatch=True)
        if name == "timezone":
            return st.sampled_from(_ZONES)
        if info.pattern is not None:
            return st.from_regex(info.pattern, fullmatch=True)
        return st.text(
            alphabet=st.characters(blacklist_categories=("Cc", "Cs")),
            min_size=info.min_length or 0,
            max_size=min(info.max_length or 40, 40),
        )
    if isinstance(info, it.DateTimeType):
        return st.datetimes(
            min_value=dt.datetime(1990, 1, 1),  # noqa: DTZ001 - zones come from `timezones`
            max_value=dt.datetime(2029, 12, 31),  # noqa: DTZ001
            timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=-5, minutes=-30))]),
        ).map(lambda d: d.isoformat())
    if isinstance(info, it.DateType):
        return st.dates().map(lambda d: d.isoformat())
    if isinstance(info, it.ListType):
        return st.lists(_strategy(info.item_type, name), min_size=info.min_length or 0, max_size=3)
    raise TypeError(f"no strategy for {info}")


def _consistent(payload: dict[str, Any]) -> dict[str, Any]:
    """Make the money fields agree, as a producer following the contract would."""
    props = payload.get("properties") or {}
    if payload["event"] == "Order Completed":
        props["subtotal"] = props["revenue"]
        if "total" in props:
            props["total"] = round(
                props["revenue"] + (props.get("tax") or 0) + (props.get("shipping") or 0), 2
            )
    if payload["event"] == "Product Updated" and ("price" in props or "list_price" in props):
        props["currency"] = "EUR"
    if payload["event"] in {"Offer Clicked", "Offer Redeemed"} and "revenue" in props:
        props["currency"] = "EUR"
    if payload["event"] == "Offer Sent" and "discount_amount" in props:
        props["currency"] = "EUR"
    if props.get("successor_product_id") == props.get("product_id"):
        props.pop("successor_product_id", None)
    if payload.get("customer_id") is None and payload.get("anonymous_id") is None:
        payload["customer_id"] = "c-1"
    return payload


VALID_PAYLOADS = st.one_of(
    [_strategy(msgspec.inspect.type_info(t)).map(_consistent) for t in events.EVENT_TYPES]
)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def _check(data: bytes) -> None:
    """The property: a valid event that round-trips, or a DecodeError with a reason."""
    try:
        event = decoder.decode(data)
    except DecodeError as error:
        assert error.code
        assert error.detail
        return
    assert isinstance(event, events.EVENT_TYPES)
    assert event.timestamp.utcoffset() == dt.timedelta(0)
    assert decoder.decode(events.encode(event)) == event


@settings(max_examples=2_500)
@given(st.binary(max_size=512))
def test_random_bytes(data: bytes) -> None:
    _check(data)


@settings(max_examples=2_500)
@given(JSON_VALUES)
def test_random_json(value: Any) -> None:
    _check(orjson.dumps(value))


@settings(max_examples=2_500)
@given(VALID_PAYLOADS)
def test_valid_events_decode_and_encode_then_decode_is_identity(payload: dict[str, Any]) -> None:
    event = decoder.decode(orjson.dumps(payload))
    assert type(event).__struct_config__.tag == payload["event"]
    assert decoder.decode(events.encode(event)) == event


_SAMPLE_BYTES = [orjson.dumps(p) for p in SAMPLES.values()]


@settings(max_examples=2_000)
@given(
    st.sampled_from(_SAMPLE_BYTES),
    st.lists(
        st.tuples(
            st.integers(0, 2), st.integers(0, 2_000), st.integers(0, 8), st.binary(max_size=8)
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_byte_mutations_of_valid_payloads(
    data: bytes, edits: list[tuple[int, int, int, bytes]]
) -> None:
    buffer = bytearray(data)
    for kind, position, length, insert in edits:
        at = position % (len(buffer) or 1)
        if kind == 0:
            del buffer[at : at + length]
        elif kind == 1:
            buffer[at:at] = insert
        else:
            buffer[at : at + len(insert)] = insert
    _check(bytes(buffer))


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path] if path else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*path, index))
    return found


@settings(max_examples=2_000)
@given(st.sampled_from(list(SAMPLES.values())), st.data())
def test_structural_mutations_of_valid_payloads(
    payload: dict[str, Any], data: st.DataObject
) -> None:
    mutated = orjson.loads(orjson.dumps(payload))
    path = data.draw(st.sampled_from(_paths(mutated)))
    parent = mutated
    for part in path[:-1]:
        parent = parent[part]
    if data.draw(st.booleans()):
        parent[path[-1]] = data.draw(JSON_VALUES)
    elif isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent.pop(path[-1])
    _check(orjson.dumps(mutated))
