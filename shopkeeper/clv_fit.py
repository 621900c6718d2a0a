"""``shopkeeper clv fit``: fit the CLV models on a JSONL file of events and save the parameters."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from pathlib import Path

from tqdm import tqdm

import events
from models.clv import CLVParams, TimeUnit, fit_clv, summarise_orders

__all__ = ["FitResult", "OrderHistory", "fit_events_file", "read_orders"]

_PROGRESS_EVERY = 10_000  # lines between progress-bar updates


@dataclasses.dataclass(frozen=True)
class OrderHistory:
    """The ``Order Completed`` events of a file, and what else was in it.

    Attributes:
        orders: The orders, in file order, without those of erased customers.
        lines: Non-blank lines read.
        undecodable: Lines that are not a valid event (skipped).
        erased_customers: Customers with a ``Deletion Requested`` in the file; their
            orders are left out, so a fit does not learn from them.
        last_timestamp: The latest event time of any decoded event.
    """

    orders: list[events.OrderCompleted]
    lines: int
    undecodable: int
    erased_customers: int
    last_timestamp: dt.datetime | None


@dataclasses.dataclass(frozen=True)
class FitResult:
    """What ``shopkeeper clv fit`` did."""

    params: CLVParams
    path: Path
    history: OrderHistory

    def describe(self) -> str:
        """A human summary: the input, the parameters, the file written."""
        p, h = self.params, self.history
        bg, gg = p.beta_geo, p.gamma_gamma
        return "\n".join(
            [
                f"Read {h.lines:,} lines: {len(h.orders):,} Order Completed, "
                f"{h.undecodable:,} undecodable lines skipped, "
                f"{h.erased_customers:,} erased customers left out",
                f"Until {p.observation_end} (time in {p.unit}): {p.customers:,} customers, "
                f"{p.returning_customers:,} with repeat purchases; amounts in {p.currency}",
                f"BG/NBD       r={bg.r:.4f} alpha={bg.alpha:.4f} a={bg.a:.4f} b={bg.b:.4f}"
                f"  log-likelihood {p.log_likelihood:,.2f}",
                f"Gamma-Gamma  p={gg.p:.4f} q={gg.q:.4f} v={gg.v:.4f}"
                f"  log-likelihood {p.gamma_gamma_log_likelihood:,.2f}",
                f"Wrote {self.path} (version {p.version})",
            ]
        )


def read_orders(path: Path, *, progress: bool = True) -> OrderHistory:
    """Decode a JSONL file of events; keep the orders, count what does not decode.

    Args:
        path: One event a line (``events.encode``), e.g. from ``shopkeeper generate --days``
            or ``shopkeeper datasets cdnow``.
        progress: Show a progress bar on stderr.
    """
    decoder = events.EventDecoder()
    orders: list[events.OrderCompleted] = []
    erased: set[str] = set()
    lines = undecodable = 0
    last: dt.datetime | None = None
    with (
        path.open("rb") as source,
        tqdm(
            total=os.path.getsize(path),
            unit="B",
            unit_scale=True,
            disable=not progress,
            desc="read events",
        ) as bar,
    ):
        done = 0
        for line in source:
            done += len(line)
            if not line.strip():
                continue
            lines += 1
            if lines % _PROGRESS_EVERY == 0:
                bar.update(done - bar.n)
            try:
                event = decoder.decode(line)
            except events.DecodeError:
                undecodable += 1
                continue
            if last is None or event.timestamp > last:
                last = event.timestamp
            if isinstance(event, events.OrderCompleted):
                orders.append(event)
            elif isinstance(event, events.DeletionRequested) and event.customer_key is not None:
                erased.add(event.customer_key)
        bar.update(done - bar.n)
    if erased:
        orders = [order for order in orders if order.customer_key not in erased]
    return OrderHistory(orders, lines, undecodable, len(erased), last)


def fit_events_file(
    path: Path,
    *,
    out_dir: Path,
    now: dt.datetime,
    until: dt.date | None = None,
    unit: TimeUnit = "weeks",
    progress: bool = True,
) -> FitResult:
    """Fit BG/NBD and Gamma-Gamma on the orders in ``path`` and write the parameters.

    Args:
        path: JSONL events file.
        out_dir: Directory of parameter files; written as ``<version>.json``.
        now: The fit time, part of the version.
        until: Last day observed, included. Default: the day of the file's last event.
        unit: Time unit of the models.
        progress: Show a progress bar while reading.

    Raises:
        ValueError: No usable orders (none, several currencies, no repeat purchase).
        RuntimeError: A model fit did not converge.
    """
    history = read_orders(path, progress=progress)
    if history.last_timestamp is None:
        raise ValueError(f"{path} holds no valid event")
    end = until if until is not None else history.last_timestamp.date()
    summary = summarise_orders(history.orders, until=end, unit=unit)
    currencies = {order.properties.currency for order in history.orders}
    params = fit_clv(summary, fitted_at=now, currency=currencies.pop() if currencies else None)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{params.version}.json"
    partial = target.with_suffix(".json.partial")
    partial.write_bytes(params.to_json())
    partial.replace(target)  # readers never see half a file
    return FitResult(params, target, history)
