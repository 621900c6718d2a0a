"""The event contract: what it accepts, what it rejects, and why."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import orjson
import pytest

import events
from events import DecodeError, EventDecoder
from tests.samples import SAMPLES

NOW = dt.datetime(2025, 5, 2, tzinfo=dt.UTC)
decoder = EventDecoder(clock=lambda: NOW)


def _decode(payload: dict[str, Any]) -> events.Event:
    return decoder.decode(orjson.dumps(payload))


def _rejects(payload: dict[str, Any] | bytes) -> DecodeError:
    data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    with pytest.raises(DecodeError) as info:
        decoder.decode(data)
    return info.value


def test_every_event_type_has_a_sample() -> None:
    assert set(SAMPLES) == {t.__struct_config__.tag for t in events.EVENT_TYPES}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample_decodes_to_its_type_and_round_trips(name: str) -> None:
    event = _decode(SAMPLES[name])
    assert type(event) is events.event_type(name)
    assert event.name == name
    assert decoder.decode(events.encode(event)) == event
    assert events.topic_for(event) in events.TOPICS


def test_timestamps_are_normalised_to_utc() -> None:
    event = _decode(SAMPLES["Order Completed"])
    assert event.timestamp == dt.datetime(2025, 5, 1, 10, 2, 3, 120_000, tzinfo=dt.UTC)
    assert event.timestamp.utcoffset() == dt.timedelta(0)
    assert b'"timestamp":"2025-05-01T10:02:03.120000Z"' in events.encode(event)


def test_order_fields_are_typed() -> None:
    event = _decode(SAMPLES["Order Completed"])
    assert isinstance(event, events.OrderCompleted)
    assert event.properties.revenue == 54.0
    assert event.properties.products[0].quantity == 3
    assert event.customer_key == "C123"
    assert events.partition_key(event) == b"C123"


def test_anonymous_events_are_keyed_by_anonymous_id() -> None:
    payload = copy.deepcopy(SAMPLES["Product Viewed"])
    del payload["customer_id"]
    assert events.partition_key(_decode(payload)) == b"a-77"


def test_catalogue_events_need_no_customer_and_are_keyed_by_product() -> None:
    event = _decode(SAMPLES["Product Updated"])
    assert event.customer_key is None
    assert events.partition_key(event) == b"P1"
    assert events.topic_for(event) == events.CATALOG


def test_unknown_properties_are_ignored_for_forward_compatibility() -> None:
    payload = copy.deepcopy(SAMPLES["Products Searched"])
    payload["properties"]["added_in_1_1_0"] = {"anything": [1, 2]}
    payload["schema_version"] = "1-1-0"
    assert isinstance(_decode(payload), events.ProductsSearched)


def _mutated(name: str, path: str, value: Any) -> dict[str, Any]:
    payload = copy.deepcopy(SAMPLES[name])
    *parents, leaf = path.split(".")
    node: Any = payload
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is _DELETE:
        del node[leaf]
    else:
        node[leaf] = value
    return payload


_DELETE = object()


@pytest.mark.parametrize(
    ("name", "path", "value", "code", "where"),
    [
        ("Order Completed", "properties.products.0.price", -1.0, "invalid_value", "price"),
        ("Order Completed", "properties.products.0.quantity", -2, "invalid_value", "quantity"),
        ("Order Completed", "properties.products.0.quantity", 0, "invalid_value", "quantity"),
        ("Order Completed", "properties.revenue", -0.01, "invalid_value", "revenue"),
        ("Order Completed", "properties.revenue", "54.00", "wrong_type", "revenue"),
        ("Order Completed", "properties.currency", "eur", "invalid_value", "currency"),
        ("Order Completed", "properties.products", [], "invalid_value", "products"),
        ("Order Completed", "properties.total", 70.0, "invalid_value", "total"),
        ("Order Completed", "properties.subtotal", 50.0, "invalid_value", "subtotal"),
        ("Order Completed", "properties.products.0.currency", "USD", "invalid_value", "currency"),
        ("Order Completed", "properties.order_id", _DELETE, "missing_field", "order_id"),
        ("Order Refunded", "properties.refund_amount", -5.0, "invalid_value", "refund_amount"),
        ("Product Viewed", "message_id", "m" * 129, "invalid_value", "message_id"),
        ("Product Viewed", "customer_id", "", "invalid_value", "customer_id"),
        ("Product Viewed", "customer_id", "c\u0001x", "invalid_value", "customer_id"),
        ("Product Viewed", "properties.product_id", "p\nx", "invalid_value", "product_id"),
        ("Product Viewed", "properties.name", "bell\u0007", "invalid_value", "name"),
        ("Product Viewed", "timestamp", "2025-05-01T10:00:00", "invalid_value", "timestamp"),
        ("Product Viewed", "timestamp", "yesterday", "invalid_value", "timestamp"),
        ("Product Viewed", "timestamp", "2025-05-02T00:16:00Z", "future_timestamp", "timestamp"),
        ("Product Viewed", "channel", "fax", "invalid_value", "channel"),
        ("Product Viewed", "event", "Product Teleported", "unknown_event", "event"),
        ("Product Viewed", "event", _DELETE, "missing_field", "event"),
        ("Product Viewed", "schema_version", "2-0-0", "unsupported_version", "schema_version"),
        ("Product Viewed", "properties", [], "wrong_type", "properties"),
        ("Customer Updated", "properties.traits.timezone", "Mars/Olympus", "invalid_value", "zone"),
        ("Product Updated", "properties.currency", _DELETE, "invalid_value", "currency"),
        ("Product Updated", "properties.margin_rate", 1.5, "invalid_value", "margin_rate"),
        ("NPS Survey Responded", "properties.score", 11, "invalid_value", "score"),
        ("Offer Redeemed", "properties.currency", _DELETE, "invalid_value", "currency"),
    ],
)
def test_contract_violations_are_rejected_with_a_precise_reason(
    name: str, path: str, value: Any, code: str, where: str
) -> None:
    error = _rejects(_mutated(name, path, value))
    assert error.code == code
    assert where in error.detail


def test_an_event_about_nobody_is_rejected() -> None:
    payload = copy.deepcopy(SAMPLES["Product Viewed"])
    del payload["customer_id"], payload["anonymous_id"]
    error = _rejects(payload)
    assert error.code == "invalid_value"
    assert "customer_id" in error.detail


def test_text_fields_may_hold_newlines_but_ids_may_not() -> None:
    assert isinstance(_decode(SAMPLES["NPS Survey Responded"]), events.NPSSurveyResponded)
    payload = _mutated("NPS Survey Responded", "properties.survey_id", "nps\nq2")
    assert "survey_id" in _rejects(payload).detail


def test_oversized_events_are_rejected_before_parsing() -> None:
    payload = _mutated("Products Searched", "properties.query", "x" * 500)
    payload["properties"]["padding"] = "y" * events.MAX_EVENT_BYTES
    error = _rejects(payload)
    assert error.code == "too_large"
    assert str(events.MAX_EVENT_BYTES) in error.detail


@pytest.mark.parametrize(
    "data",
    [b"", b"{", b"\xff\xfe\x00", b'{"event": "Order Completed",', b"null", b"[]", b"42"],
)
def test_bytes_that_are_not_an_event_object_are_rejected(data: bytes) -> None:
    assert _rejects(data).code in {"malformed_json", "wrong_type"}


def test_a_missing_value_is_rejected() -> None:
    with pytest.raises(DecodeError) as info:
        decoder.decode(None)
    assert info.value.code == "malformed_json"


def test_decode_error_pickles_with_its_reason() -> None:
    import pickle

    error = _rejects(b"{")
    again = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own object
    assert (again.code, again.detail) == (error.code, error.detail)
