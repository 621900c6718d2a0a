"""Shared by the history and training tests: a retailer's CSV export of generated orders."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

import events

ORDER_COLUMNS = "customer=Customer,product=SKU,time=Date,quantity=Qty,order=Order,price=Price"
"""The mapping of the export ``write_orders_csv`` writes."""


def write_orders_csv(stream: Iterable[events.Event], path: Path) -> int:
    """Write every completed order of ``stream`` as order lines, the way a shop system
    exports them (semicolons, local day-first times); return how many orders."""
    orders = 0
    with path.open("w", newline="", encoding="utf-8") as file:
        out = csv.writer(file, delimiter=";")
        out.writerow(["Order", "Date", "Customer", "SKU", "Qty", "Price", "Description"])
        for e in stream:
            if type(e) is not events.OrderCompleted or e.customer_id is None:
                continue
            orders += 1
            for line in e.properties.products:
                out.writerow([
                    e.properties.order_id, f"{e.timestamp:%d.%m.%Y %H:%M:%S.%f}", e.customer_id,
                    line.product_id, line.quantity, line.price, "generated; with a semicolon",
                ])  # fmt: skip
    return orders
