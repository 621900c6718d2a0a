"""Strict decoding from bytes, and encoding to bytes."""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable
from typing import Any

import msgspec

from events._errors import DecodeError, ReasonCode
from events._registry import EVENT_TYPES, Event
from events._types import FREE_TEXT

__all__ = ["MAX_EVENT_BYTES", "EventDecoder", "decode", "encode", "partition_key"]

MAX_EVENT_BYTES = 64 * 1024
"""Events above 64 KiB are rejected before they are parsed."""

_MAX_FUTURE = dt.timedelta(minutes=15)


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _reason(error: msgspec.ValidationError) -> ReasonCode:
    message = str(error)
    if message.startswith("Object missing required field"):
        return "missing_field"
    if message.startswith("Invalid value") and message.endswith("at `$.event`"):
        return "unknown_event"
    if message.startswith("unsupported schema_version"):
        return "unsupported_version"
    if message.startswith("Expected `") and "`, got `" in message:
        return "wrong_type"
    return "invalid_value"


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_BUT_WHITESPACE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@functools.cache
def _free_text_fields() -> frozenset[str]:
    """Names of the fields typed as free text anywhere in the contract."""
    names: set[str] = set()
    for info in msgspec.inspect.multi_type_info(EVENT_TYPES):
        _collect_free_text(info, names, set())
    return frozenset(names)


def _collect_free_text(info: msgspec.inspect.Type, names: set[str], seen: set[type]) -> None:
    if isinstance(info, msgspec.inspect.StructType):
        if info.cls in seen:
            return
        seen.add(info.cls)
        for field in info.fields:
            field_type = field.type
            if isinstance(field_type, msgspec.inspect.UnionType):
                options = field_type.types
            else:
                options = (field_type,)
            for option in options:
                if isinstance(option, msgspec.inspect.Metadata) and (option.extra or {}).get(
                    FREE_TEXT
                ):
                    names.add(field.encode_name)
                _collect_free_text(option, names, seen)
    elif isinstance(info, msgspec.inspect.UnionType):
        for option in info.types:
            _collect_free_text(option, names, seen)
    elif isinstance(info, msgspec.inspect.Metadata):
        _collect_free_text(info.type, names, seen)
    elif isinstance(info, msgspec.inspect.ListType):
        _collect_free_text(info.item_type, names, seen)


def _reject_control_characters(value: Any, path: str, key: str, free_text: frozenset[str]) -> None:
    if isinstance(value, str):
        pattern = _CONTROL_BUT_WHITESPACE if key in free_text else _CONTROL
        if pattern.search(value):
            raise DecodeError("invalid_value", f"control character in string - at `{path}`")
    elif isinstance(value, dict):
        for k, v in value.items():
            _reject_control_characters(v, f"{path}.{k}", k, free_text)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _reject_control_characters(v, f"{path}[{i}]", key, free_text)


class EventDecoder:
    """Decode bytes into typed events, or raise :class:`DecodeError` with a reason.

    Decoding is all-or-nothing: an event that breaks the contract anywhere is rejected
    whole, never half-read. It rejects payloads over ``max_bytes``, malformed JSON,
    unknown event names, missing or mistyped fields, out-of-range values (negative
    prices or quantities, ids over 128 characters or with control characters), naive
    timestamps, and timestamps more than ``max_future`` ahead of ``clock()``.

    Args:
        max_bytes: Largest payload accepted.
        max_future: How far ahead of the clock an event time may be (device clock skew).
        clock: Current UTC time; injected so tests and replays control it.

    Example:
        >>> decoder = EventDecoder()
        >>> event = decoder.decode(
        ...     b'{"event": "Products Searched", "message_id": "m-1", "customer_id": "c-1",'
        ...     b' "timestamp": "2025-05-01T12:00:00+02:00", "channel": "web",'
        ...     b' "properties": {"query": "espresso"}}'
        ... )
        >>> event.name, event.timestamp.isoformat(), event.properties.query
        ('Products Searched', '2025-05-01T10:00:00+00:00', 'espresso')
        >>> decoder.decode(b'{"event": "Products Searched"}')
        Traceback (most recent call last):
        ...
        events._errors.DecodeError: missing_field: Object missing required field `properties`
    """

    def __init__(
        self,
        *,
        max_bytes: int = MAX_EVENT_BYTES,
        max_future: dt.timedelta = _MAX_FUTURE,
        clock: Callable[[], dt.datetime] = _utc_now,
    ) -> None:
        self._decoder = msgspec.json.Decoder(Event)
        self._max_bytes = max_bytes
        self._max_future = max_future
        self._clock = clock

    def decode(self, data: bytes | bytearray | None) -> Event:
        """Decode one event.

        Raises:
            DecodeError: The bytes are not a valid event; ``code`` says why in a word,
                ``detail`` says which field and what is wrong.
        """
        if data is None:
            raise DecodeError("malformed_json", "empty message (no value)")
        if len(data) > self._max_bytes:
            raise DecodeError(
                "too_large", f"event is {len(data)} bytes, the limit is {self._max_bytes}"
            )
        try:
            event: Event = self._decoder.decode(data)
            # JSON carries control characters only as escapes (or a raw DEL), so a payload
            # with neither has none, and the common case costs two byte scans.
            if b"\\" in data or b"\x7f" in data:
                _reject_control_characters(msgspec.json.decode(data), "$", "", _free_text_fields())
        except msgspec.ValidationError as exc:
            raise DecodeError(_reason(exc), str(exc)) from None
        except msgspec.DecodeError as exc:
            raise DecodeError("malformed_json", str(exc)) from None
        except UnicodeDecodeError as exc:  # msgspec lets this through for bad UTF-8 in strings
            raise DecodeError(
                "malformed_json", f"invalid UTF-8: {exc.reason} at byte {exc.start}"
            ) from None
        latest = self._clock() + self._max_future
        if event.timestamp > latest:
            raise DecodeError(
                "future_timestamp",
                f"timestamp {event.timestamp.isoformat()} is after {latest.isoformat()}"
                " - at `$.timestamp`",
            )
        return event


_ENCODER = msgspec.json.Encoder()
_DEFAULT_DECODER = EventDecoder()


def encode(event: Event) -> bytes:
    """Encode an event as compact JSON; ``decode(encode(e)) == e``."""
    return _ENCODER.encode(event)


def decode(data: bytes | bytearray | None) -> Event:
    """Decode one event with the default limits and the system clock.

    Raises:
        DecodeError: The bytes are not a valid event.
    """
    return _DEFAULT_DECODER.decode(data)


def partition_key(event: Event) -> bytes:
    """Return the Kafka key: the customer for customer events, the product for catalogue ones.

    One customer's events share a partition, so their order holds.
    """
    key = event.customer_key
    if key is None:
        key = event.properties.product_id  # type: ignore[union-attr]
    return key.encode()
