"""The recommendation commands of the CLI: ``shopkeeper train als`` and ``shopkeeper evaluate``.

Both read history from one source: ``--events FILE`` (JSONL), ``--parquet FILE``, ``--csv
FILE --map ...`` (a retailer's export of order lines) or ``--topic NAME`` (a Kafka replay
from ``SHOPKEEPER_KAFKA_BOOTSTRAP``). ALS hyperparameters come from ``SHOPKEEPER_ALS_*``
settings; flags override them. Progress bars go to stderr; ``--quiet`` turns them off.
Heavy imports wait until a command runs, so ``shopkeeper --help`` stays fast.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from models.als import AlsParams
    from models.registry import ModelRegistry
    from shopkeeper.history import History
    from shopkeeper.settings import Settings

__all__ = ["add_commands", "evaluate", "train"]

_ALS_FLAGS = ("factors", "regularization", "alpha", "iterations", "seed")


def add_commands(commands: Any) -> None:
    """Add ``train als`` and ``evaluate`` to the CLI's subcommands."""
    train_parser = commands.add_parser("train", help="train recommendation models")
    als = train_parser.add_subparsers(dest="action", required=True, metavar="ACTION").add_parser(
        "als", help="fit ALS and basket complements on history; store a new version"
    )
    _add_history_options(als)
    als.add_argument("--registry", type=Path, metavar="DIR", help="model registry directory")
    _add_als_options(als)
    als.add_argument("--quiet", action="store_true", help="no progress bars")

    evaluation = commands.add_parser(
        "evaluate", help="ALS against popularity and repeat-purchase baselines on a time split"
    )
    _add_history_options(evaluation)
    evaluation.add_argument("--test-days", type=int, default=60, help="test period (60 days)")
    evaluation.add_argument(
        "--truth", type=Path, metavar="FILE", help="the generator's ground truth (planted pairs)"
    )
    _add_als_options(evaluation)
    evaluation.add_argument(
        "--grid",
        nargs="+",
        metavar="NAME=V,V",
        help="grid search instead: every combination, e.g. factors=32,64 alpha=1,2,5 "
        "(names: factors, regularization, alpha, iterations, seed)",
    )
    evaluation.add_argument(
        "--out", type=Path, metavar="DIR", help="report directory (default: DATA_DIR/evaluation)"
    )
    evaluation.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_history_options(parser: argparse.ArgumentParser) -> None:
    source = parser.add_argument_group("history (one of)").add_mutually_exclusive_group(
        required=True
    )
    source.add_argument("--events", type=Path, metavar="FILE", help="JSONL events, one a line")
    source.add_argument("--parquet", type=Path, metavar="FILE", help="Parquet events, one a row")
    source.add_argument("--csv", type=Path, metavar="FILE", help="CSV of order lines, with --map")
    source.add_argument(
        "--topic",
        action="append",
        metavar="NAME",
        help="replay Kafka topics (SHOPKEEPER_KAFKA_BOOTSTRAP) from start to end; repeat it "
        "or separate names by commas",
    )
    csv = parser.add_argument_group("CSV of transactions")
    csv.add_argument(
        "--map",
        metavar="FIELD=COLUMN,...",
        help="columns: customer, product, time (required), quantity, order, price; "
        "e.g. customer=CustomerID,product=StockCode,time=InvoiceDate",
    )
    csv.add_argument(
        "--time-format", metavar="FORMAT", help="strptime format of times (default ISO-8601)"
    )
    csv.add_argument("--timezone", default="UTC", help="zone of times without offset (UTC)")
    csv.add_argument("--currency", default="EUR", help="ISO 4217 currency of prices (EUR)")
    csv.add_argument("--encoding", default="utf-8-sig", help="text encoding (utf-8; or latin-1)")
    csv.add_argument("--delimiter", default=",", help="field separator (,)")


def _add_als_options(parser: argparse.ArgumentParser) -> None:
    als = parser.add_argument_group("ALS (defaults: SHOPKEEPER_ALS_* settings)")
    als.add_argument("--factors", type=int, help="latent factors (64)")
    als.add_argument("--iterations", type=int, help="ALS sweeps (15)")
    als.add_argument("--regularization", type=float, help="L2 penalty (0.05)")
    als.add_argument("--alpha", type=float, help="confidence scaling (2.0)")
    als.add_argument("--seed", type=int, help="random seed (7)")


def _als_params(parser: argparse.ArgumentParser, args: argparse.Namespace) -> AlsParams:
    """The settings with the flags given on top, validated as one."""
    from pydantic import ValidationError

    from models.als import AlsParams
    from shopkeeper.settings import AlsSettings

    flags = {name: getattr(args, name) for name in _ALS_FLAGS if getattr(args, name) is not None}
    try:
        settings = AlsSettings(**flags)
    except ValidationError as exc:
        problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())
        parser.error(f"ALS parameters (flags or SHOPKEEPER_ALS_*): {problems}")
    return AlsParams(**settings.model_dump())


def _read_history(
    parser: argparse.ArgumentParser, args: argparse.Namespace, settings: Settings
) -> History | None:
    """The history the flags name; ``None`` (after saying why) if it cannot be read."""
    from shopkeeper.history import (
        ColumnMap,
        HistoryError,
        read_jsonl,
        read_parquet,
        read_transactions,
        replay_topics,
    )

    if (args.map is not None) != (args.csv is not None):
        parser.error("--csv and --map go together")
    path = args.events or args.parquet or args.csv
    if path is not None and not path.is_file():
        parser.error(f"{path}: no such file")
    try:
        if args.events is not None:
            return read_jsonl(args.events)
        if args.parquet is not None:
            return read_parquet(args.parquet, progress=not args.quiet)
        if args.csv is not None:
            return read_transactions(
                args.csv,
                ColumnMap.parse(args.map),
                time_format=args.time_format,
                timezone=args.timezone,
                currency=args.currency,
                encoding=args.encoding,
                delimiter=args.delimiter,
            )
        if settings.kafka_bootstrap is None:
            parser.error("--topic needs SHOPKEEPER_KAFKA_BOOTSTRAP, the Kafka to replay from")
        topics = [name for arg in args.topic for name in arg.split(",") if name]
        return replay_topics(settings.kafka_bootstrap, topics, progress=not args.quiet)
    except HistoryError as exc:
        print(f"{args.command}: {exc}", file=sys.stderr)
        return None


def train(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    settings: Settings,
    registry: ModelRegistry,
) -> int:
    """``shopkeeper train als``."""
    from shopkeeper.train import train_als

    params = _als_params(parser, args)
    history = _read_history(parser, args, settings)
    if history is None:
        return 1
    print(history.describe())
    try:
        result = train_als(
            history, registry, params=params, now=dt.datetime.now(dt.UTC), progress=not args.quiet
        )
    except ValueError as exc:
        print(f"train als: {exc}", file=sys.stderr)
        return 1
    print(result.describe())
    print(f"Promote it with: shopkeeper models promote {result.version}")
    return 0


def evaluate(parser: argparse.ArgumentParser, args: argparse.Namespace, settings: Settings) -> int:
    """``shopkeeper evaluate``, or its grid search with ``--grid``."""
    from shopkeeper.evaluate import evaluate_als, write_evaluation
    from shopkeeper.grid_search import grid_search, parse_grid, write_grid_search

    if args.test_days < 1:
        parser.error("--test-days must be positive")
    if args.grid and args.truth:
        parser.error("--truth goes with a single evaluation, not with --grid")
    params = _als_params(parser, args)
    try:
        grid = parse_grid(args.grid) if args.grid else None
    except ValueError as exc:
        parser.error(str(exc))
    history = _read_history(parser, args, settings)
    if history is None:
        return 1
    print(history.describe())
    out = args.out or settings.data_dir / "evaluation"
    try:
        if grid is not None:
            report = grid_search(
                history.events, grid, base=params, test_days=args.test_days, progress=not args.quiet
            )
            _print_grid(report, *write_grid_search(report, out))
            return 0
        truth = json.loads(args.truth.read_text()) if args.truth else None
        report = evaluate_als(
            history.events,
            test_days=args.test_days,
            params=params,
            truth=truth,
            progress=not args.quiet,
        )
    except ValueError as exc:
        print(f"evaluate: {exc}", file=sys.stderr)
        return 1
    _print_evaluation(report, *write_evaluation(report, out))
    return 0


def _print_evaluation(report: dict[str, Any], json_path: Path, png_path: Path) -> None:
    print(f"Test period from {report['split_at'][:10]}: {report['test_customers']:,} customers")
    for name, by_k in report["scores"].items():
        at10 = by_k["@10"]
        print(
            f"  {name:<18} NDCG@10 {at10['ndcg']:.4f}  Recall@10 {at10['recall']:.4f}  "
            f"MAP@10 {at10['map']:.4f}  coverage {at10['coverage']:.3f}"
        )
    if "planted" in report:
        p = report["planted"]
        print(
            f"  planted cross-sell pairs recovered {p['cross_sell_recovered']}/"
            f"{p['cross_sell_pairs']} by ALS similarity, "
            f"{p['cross_sell_recovered_by_complements']}/{p['cross_sell_pairs']} by basket "
            f"complements; up-sell steps {p['up_sell_recovered']}/{p['up_sell_steps']}"
        )
    print(f"Report: {json_path} and {png_path}")


def _print_grid(report: dict[str, Any], json_path: Path, png_path: Path) -> None:
    names = list(report["grid"])
    print(
        f"Test period from {report['split_at'][:10]}: {report['test_customers']:,} customers, "
        f"{len(report['results'])} combinations"
    )
    ranked = sorted(report["results"], key=lambda r: -r["scores"]["@10"]["ndcg"])
    labels = [" ".join(f"{n}={r['params'][n]}" for n in names) for r in ranked]
    width = max(len(label) for label in [*labels, *report["baselines"]])
    for result, label in zip(ranked, labels, strict=True):
        at10 = result["scores"]["@10"]
        mark = "*" if result["params"] == report["best"]["params"] else " "
        print(
            f"{mark} {label:<{width}}  NDCG@10 {at10['ndcg']:.4f}  Recall@10 {at10['recall']:.4f}"
        )
    for name, by_k in report["baselines"].items():
        print(f"  {name:<{width}}  NDCG@10 {by_k['@10']['ndcg']:.4f}")
    print(f"Report: {json_path} and {png_path}")
