"""The reports of the CLI: ``shopkeeper report offers``.

It reads the engine's topics on ``SHOPKEEPER_KAFKA_BOOTSTRAP`` in the namespace
``--namespace`` (default ``SHOPKEEPER_NAMESPACE``, ``shopkeeper``). Unlike ``flow run``
it starts no embedded broker when none is set: a new embedded broker holds nothing to
report on. ``shopkeeper infra`` runs one that other shells share. Progress bars go to
stderr; ``--quiet`` turns them off. Heavy imports wait until a command runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shopkeeper.settings import Settings

__all__ = ["add_commands", "report"]


def add_commands(commands: Any) -> None:
    """Add ``report offers`` to the CLI's subcommands."""
    reports = commands.add_parser("report", help="reports on what the engine did").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    offers = reports.add_parser(
        "offers",
        help="attribution and uplift of the real-time offers (treated vs held out), from Kafka",
    )
    offers.add_argument(
        "--namespace", help="topic namespace (default $SHOPKEEPER_NAMESPACE, shopkeeper)"
    )
    offers.add_argument(
        "--window-hours",
        type=float,
        default=48.0,
        help="a decision converts on an order within this many hours (default 48, the "
        "offers' time to live)",
    )
    offers.add_argument(
        "--recommendation-window-hours",
        type=float,
        default=24.0,
        help="a recommendation click converts when its product is bought within this many "
        "hours (default 24)",
    )
    offers.add_argument(
        "--level", type=float, default=0.95, help="confidence level of the intervals (0.95)"
    )
    offers.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="report directory (default $SHOPKEEPER_DATA_DIR/reports/offers)",
    )
    offers.add_argument(
        "--prom-file",
        type=Path,
        metavar="PATH",
        help="also write the uplift as Prometheus gauges (textfile collector format)",
    )
    offers.add_argument("--quiet", action="store_true", help="no progress bars")


def report(parser: argparse.ArgumentParser, args: argparse.Namespace, settings: Settings) -> int:
    """``shopkeeper report offers``."""
    from shopkeeper.history import HistoryError
    from shopkeeper.report_offers import format_table, read_report, write_prometheus, write_report

    if args.window_hours <= 0 or args.recommendation_window_hours <= 0:
        parser.error("--window-hours and --recommendation-window-hours must be positive")
    if not 0 < args.level < 1:
        parser.error("--level must be within (0, 1), e.g. 0.95")
    if settings.kafka_bootstrap is None:
        parser.error(
            "set SHOPKEEPER_KAFKA_BOOTSTRAP to the Kafka holding the engine's topics "
            "(`shopkeeper infra` runs an embedded one other shells can share)"
        )
    try:
        result = read_report(
            settings.kafka_bootstrap,
            args.namespace or settings.namespace,
            window_s=args.window_hours * 3_600,
            recommendation_window_s=args.recommendation_window_hours * 3_600,
            level=args.level,
            now=dt.datetime.now(dt.UTC),
            progress=not args.quiet,
        )
    except HistoryError as exc:
        print(f"report offers: {exc}", file=sys.stderr)
        return 1
    json_path, png_path = write_report(result, args.out or settings.data_dir / "reports" / "offers")
    print(format_table(result))
    if args.prom_file is not None:
        write_prometheus(result, args.prom_file)
        print(f"Prometheus gauges: {args.prom_file}")
    print(f"Report: {json_path} and {png_path}")
    return 0
