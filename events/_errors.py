"""Errors of the event contract.

Hierarchy::

    ContractError
    └── DecodeError        bytes that are not a valid event (carries a bounded ``code``
                           for metrics and DLQ routing, and a precise ``detail``)
"""

from __future__ import annotations

from typing import Literal

__all__ = ["ContractError", "DecodeError", "ReasonCode"]

ReasonCode = Literal[
    "too_large",
    "malformed_json",
    "unknown_event",
    "missing_field",
    "wrong_type",
    "invalid_value",
    "future_timestamp",
    "unsupported_version",
]
"""Bounded reason codes: safe as Prometheus label values and DLQ header values."""


class ContractError(Exception):
    """Root of every error raised by the event contract."""


class DecodeError(ContractError):
    """Raised when bytes do not decode to a valid event.

    Attributes:
        code: One of a small fixed set of reasons, for metrics and DLQ routing.
        detail: What is wrong and where, e.g.
            ``"Expected `int` >= 1 - at `$.properties.quantity`"``.
    """

    def __init__(self, code: ReasonCode, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code: ReasonCode = code
        self.detail = detail

    def __reduce__(self) -> tuple[type[DecodeError], tuple[ReasonCode, str]]:
        return (DecodeError, (self.code, self.detail))
