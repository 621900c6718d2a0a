"""The ``shopkeeper`` command line.

shopkeeper demo                               the engine on embedded Kafka and Redis
shopkeeper infra                              run embedded Kafka and Redis for other commands
shopkeeper generate --rate 2000 --duration 60 live traffic to Kafka
shopkeeper generate --days 365 --out FILE     a year of history to a JSONL file
shopkeeper clv fit --events FILE              fit the CLV models, save their parameters
shopkeeper churn backtest --events FILE       replay history through the churn model; report
shopkeeper train als --events FILE            fit ALS, store a new version in the registry
                     | --parquet FILE | --csv FILE --map ... | --topic NAME   (other sources)
shopkeeper evaluate --events FILE [--grid ...] ALS vs baselines on a time split; grid search
shopkeeper models list | promote V | rollback the model registry
shopkeeper serve --port 8000 --workers 2      the recommendation API (uvicorn)
shopkeeper datasets cdnow --out FILE          the CDNOW purchases as events
shopkeeper report offers [--window-hours 48]  offer attribution and uplift, from Kafka
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shopkeeper._report_cli import add_commands as add_report_commands
from shopkeeper._report_cli import report
from shopkeeper._training_cli import add_commands as add_training_commands
from shopkeeper._training_cli import evaluate, train

if TYPE_CHECKING:
    from shopkeeper.generator import GeneratorConfig
    from shopkeeper.settings import Settings

# One BLAS thread per process, set before numpy loads (see LIBRARIES.md).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__all__ = ["main"]


def _add_world_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("synthetic world")
    group.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    group.add_argument("--customers", type=int, default=10_000, help="customers (default 10,000)")
    group.add_argument("--products", type=int, default=5_000, help="products (default 5,000)")
    group.add_argument(
        "--malformed-share",
        type=float,
        default=0.005,
        help="share of deliberately malformed payloads (default 0.005)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shopkeeper", description="Real-time retail CRM engine.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="run the engine on embedded Kafka and Redis")
    demo.add_argument("--rate", type=float, default=2000, help="events per second (default 2000)")
    demo.add_argument("--duration", type=float, default=60, help="seconds of traffic (default 60)")
    _add_world_options(demo)

    commands.add_parser("infra", help="run embedded Kafka and Redis until interrupted")

    topics = commands.add_parser("topics", help="Kafka topics").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    create = topics.add_parser("create", help="create the engine's topics if missing")
    create.add_argument("--partitions", type=int, default=4, help="partitions (default 4)")
    create.add_argument("--replication", type=int, default=-1, help="replicas (broker default)")
    create.add_argument("--namespace", default="shopkeeper", help="topic namespace")

    flow = commands.add_parser("flow", help="the feature flow").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    run = flow.add_parser("run", help="run the feature flow until interrupted (or replayed)")
    run.add_argument("--processes", type=int, default=1, help="processes, one per core")
    run.add_argument("--namespace", default="shopkeeper", help="topic namespace and key prefix")
    run.add_argument(
        "--replay", action="store_true", help="stop at the end of the topics instead of tailing"
    )
    run.add_argument(
        "--recovery", type=Path, help="recovery directory: resume after a crash without loss"
    )
    run.add_argument(
        "--snapshot-interval", type=int, default=5, help="seconds between snapshots (default 5)"
    )
    run.add_argument("--metrics-port", type=int, help="serve /metrics from this port on")

    customer = commands.add_parser("customer", help="customer profiles").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    show = customer.add_parser("show", help="print a customer's live profile as JSON")
    show.add_argument("customer_id")
    show.add_argument("--namespace", default="shopkeeper", help="key prefix")

    generate = commands.add_parser(
        "generate", help="synthetic retail traffic: live to Kafka, or history to a file"
    )
    mode = generate.add_mutually_exclusive_group(required=True)
    mode.add_argument("--rate", type=float, help="live: events per second to Kafka")
    mode.add_argument("--days", type=int, help="history: days to write to --out")
    generate.add_argument("--duration", type=float, help="live: seconds (default: until stopped)")
    generate.add_argument("--out", type=Path, help="history: the JSONL file to write")
    generate.add_argument(
        "--start",
        type=dt.date.fromisoformat,
        help="history: first day (default: DAYS before today)",
    )
    generate.add_argument(
        "--namespace", default="shopkeeper", help="live: topic namespace (default shopkeeper)"
    )
    _add_world_options(generate)

    _add_model_commands(commands)
    add_report_commands(commands)
    return parser


def _add_model_commands(commands: Any) -> None:
    """The data scientists' commands: clv, churn, datasets."""
    clv = commands.add_parser("clv", help="customer lifetime value models").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    fit = clv.add_parser("fit", help="fit BG/NBD and Gamma-Gamma on a JSONL file of events")
    fit.add_argument("--events", type=Path, required=True, metavar="FILE", help="JSONL events file")
    fit.add_argument(
        "--until",
        type=dt.date.fromisoformat,
        metavar="YYYY-MM-DD",
        help="last day observed, included (default: the day of the last event)",
    )
    fit.add_argument(
        "--unit", choices=["weeks", "days"], default="weeks", help="time unit (default weeks)"
    )
    fit.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="parameters directory (default $SHOPKEEPER_DATA_DIR/models/clv, var/models/clv)",
    )

    churn = commands.add_parser("churn", help="the online churn model").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    backtest = churn.add_parser(
        "backtest",
        help="replay a JSONL file of events through the churn code; report against baselines",
    )
    backtest.add_argument(
        "--events", type=Path, required=True, metavar="FILE", help="JSONL events file"
    )
    backtest.add_argument(
        "--horizon-days", type=float, default=60, help="no purchase within this is churn (60)"
    )
    backtest.add_argument(
        "--model", default="logistic", help="learner: logistic (default) or hoeffding_tree"
    )
    backtest.add_argument(
        "--split", type=float, default=0.6, help="share of the period that trains the baselines"
    )
    backtest.add_argument(
        "--through-flow",
        action="store_true",
        help="also replay the file through the real flow (embedded or configured Kafka and "
        "Redis) and report its churn model's prequential health",
    )
    backtest.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="report and checkpoint directory (default $SHOPKEEPER_DATA_DIR/churn/backtest)",
    )

    add_training_commands(commands)
    models = commands.add_parser("models", help="the model registry").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    for name, text in (("list", "list versions; * marks the promoted one"),
                       ("promote", "make VERSION the one serving uses"),
                       ("rollback", "go back to the version promoted before")):  # fmt: skip
        sub = models.add_parser(name, help=text)
        sub.add_argument("--registry", type=Path, metavar="DIR", help="model registry directory")
        if name == "promote":
            sub.add_argument("version", metavar="VERSION")

    serve = commands.add_parser("serve", help="serve the recommendation API over HTTP")
    serve.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--workers", type=int, default=1, help="processes (one per core; default 1)")
    serve.add_argument("--registry", type=Path, metavar="DIR", help="model registry directory")

    datasets = commands.add_parser("datasets", help="real data sets as events").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    cdnow = datasets.add_parser("cdnow", help="the CDNOW purchases as Order Completed events")
    cdnow.add_argument(
        "--out", type=Path, required=True, metavar="FILE", help="the JSONL file to write"
    )
    cdnow.add_argument(
        "--sample", action="store_true", help="the 2,357-customer sample instead of all 23,570"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    from shopkeeper.settings import Settings

    settings = Settings()
    handlers: dict[str, Callable[[], int]] = {
        "demo": lambda: _demo(args, settings),
        "infra": lambda: _infra(settings),
        "topics": lambda: _topics(parser, args, settings),
        "flow": lambda: _flow(args, settings),
        "customer": lambda: _customer(parser, args, settings),
        "generate": lambda: _generate(parser, args, settings),
        "clv": lambda: _clv(parser, args, settings),
        "churn": lambda: _churn(parser, args, settings),
        "datasets": lambda: _datasets(args),
        "train": lambda: train(parser, args, settings, _registry(args, settings)),
        "models": lambda: _models(args, settings),
        "evaluate": lambda: evaluate(parser, args, settings),
        "serve": lambda: _serve(parser, args, settings),
        "report": lambda: report(parser, args, settings),
    }
    return handlers[args.command]()


def _world_config(args: argparse.Namespace) -> GeneratorConfig:
    from shopkeeper.generator import GeneratorConfig

    return GeneratorConfig(
        seed=args.seed,
        customers=args.customers,
        products=args.products,
        malformed_share=args.malformed_share,
    )


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from shopkeeper.demo import run_demo

    run_demo(settings, rate=args.rate, duration=args.duration, config=_world_config(args))
    return 0


def _infra(settings: Settings) -> int:
    from shopkeeper.embedded import endpoints

    with endpoints(kafka_bootstrap=None, redis_url=None, data_dir=settings.data_dir) as found:
        print("Embedded Kafka and Redis are running. In another shell:")
        print(f"  export SHOPKEEPER_KAFKA_BOOTSTRAP={found.kafka_bootstrap}")
        print(f"  export SHOPKEEPER_REDIS_URL={found.redis_url}")
        print("Press Ctrl-C to stop.", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    return 0


def _topics(parser: argparse.ArgumentParser, args: argparse.Namespace, settings: Settings) -> int:
    import events
    from shopkeeper.topics import ALL_TOPICS, ensure_topics

    if settings.kafka_bootstrap is None:
        parser.error("set SHOPKEEPER_KAFKA_BOOTSTRAP to the Kafka to create topics on")
    counts = ensure_topics(
        settings.kafka_bootstrap,
        [events.in_namespace(t, args.namespace) for t in ALL_TOPICS],
        partitions=args.partitions,
        replication=args.replication,
    )
    for topic, partitions in counts.items():
        print(f"{topic:<32} {partitions} partitions")
    return 0


def _flow(args: argparse.Namespace, settings: Settings) -> int:
    import events
    from shopkeeper.embedded import endpoints
    from shopkeeper.flow_runner import flow_settings, run_flow
    from shopkeeper.topics import ALL_TOPICS, ensure_topics

    with endpoints(
        kafka_bootstrap=settings.kafka_bootstrap,
        redis_url=settings.redis_url,
        data_dir=settings.data_dir,
    ) as found:
        if found.embedded_kafka or found.embedded_redis:
            print("Embedded infrastructure for this run; point other shells at it with:")
            print(f"  export SHOPKEEPER_KAFKA_BOOTSTRAP={found.kafka_bootstrap}")
            print(f"  export SHOPKEEPER_REDIS_URL={found.redis_url}", flush=True)
            ensure_topics(
                found.kafka_bootstrap,
                [events.in_namespace(t, args.namespace) for t in ALL_TOPICS],
                embedded=found.embedded_kafka,
            )
        env = flow_settings(
            kafka_bootstrap=found.kafka_bootstrap,
            redis_url=found.redis_url,
            namespace=args.namespace,
            tail=not args.replay,
        )
        return run_flow(
            env,
            processes=args.processes,
            recovery_dir=args.recovery,
            snapshot_interval_s=args.snapshot_interval,
            metrics_port=args.metrics_port,
        )


def _customer(parser: argparse.ArgumentParser, args: argparse.Namespace, settings: Settings) -> int:
    import orjson
    import redis

    from feature_store import FeatureStore, KeyLayout, folded

    if settings.redis_url is None:
        parser.error("set SHOPKEEPER_REDIS_URL to the feature store's Redis")
    store = FeatureStore(redis.Redis.from_url(settings.redis_url), KeyLayout(args.namespace))
    profile = store.customer(args.customer_id)
    erased = profile is None and store.is_erased(args.customer_id)
    store.close()
    if profile is None:
        print(f"{args.customer_id}: {'erased' if erased else 'unknown'}", file=sys.stderr)
        return 1
    view = {**profile, **folded(profile, dt.datetime.now(dt.UTC))}
    print(orjson.dumps(view, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())
    return 0


def _generate(parser: argparse.ArgumentParser, args: argparse.Namespace, settings: Settings) -> int:
    from shopkeeper.generator import World, write_history

    config = _world_config(args)
    if args.days is not None:
        if args.out is None:
            parser.error("--days needs --out FILE")
        today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        start = (
            dt.datetime.combine(args.start, dt.time(), tzinfo=dt.UTC)
            if args.start is not None
            else today - dt.timedelta(days=args.days)
        )
        summary = write_history(World.build(config), args.out, start=start, days=args.days)
        print(f"Wrote {args.out} and {args.out.with_suffix('.truth.json')}: {summary}")
        return 0
    if settings.kafka_bootstrap is None:
        parser.error(
            "live traffic needs a broker: set SHOPKEEPER_KAFKA_BOOTSTRAP "
            "(`shopkeeper infra` runs an embedded one)"
        )
    from shopkeeper.produce import produce

    world = World.build(config)
    result = produce(
        world.live(dt.datetime.now(dt.UTC), args.rate),
        bootstrap=settings.kafka_bootstrap,
        namespace=args.namespace,
        rate=args.rate,
        duration=args.duration,
    )
    print(
        f"Produced {result.total:,} events ({result.malformed:,} malformed) in "
        f"{result.seconds:.1f} s; {result.delivery_errors} delivery errors"
    )
    return 1 if result.delivery_errors else 0


def _clv(parser: argparse.ArgumentParser, args: argparse.Namespace, settings: Settings) -> int:
    from shopkeeper.clv_fit import fit_events_file

    if not args.events.is_file():
        parser.error(f"--events {args.events}: no such file")
    try:
        result = fit_events_file(
            args.events,
            out_dir=args.out or settings.data_dir / "models" / "clv",
            now=dt.datetime.now(dt.UTC),
            until=args.until,
            unit=args.unit,
        )
    except (ValueError, RuntimeError) as exc:
        print(f"clv fit: {exc}", file=sys.stderr)
        return 1
    print(result.describe())
    return 0


def _churn(parser: argparse.ArgumentParser, args: argparse.Namespace, settings: Settings) -> int:
    from models.churn import MODEL_KINDS
    from shopkeeper.churn_backtest import evaluate, read_events, run_backtest, write_report

    if not args.events.is_file():
        parser.error(f"--events {args.events}: no such file")
    if args.model not in MODEL_KINDS:
        parser.error(f"--model {args.model}: choose one of {', '.join(MODEL_KINDS)}")
    if not 0 < args.split < 1 or args.horizon_days <= 0:
        parser.error("--split must be in (0, 1) and --horizon-days positive")
    out = args.out or settings.data_dir / "churn" / "backtest"
    stream, rejected = read_events(args.events)
    result = run_backtest(
        stream, horizon_days=args.horizon_days, model_kind=args.model, rejected=rejected
    )
    report = evaluate(result, split=args.split)
    if args.through_flow and "error" not in report:
        from shopkeeper.churn_flow import through_flow

        flowed = through_flow(
            stream,
            horizon_days=args.horizon_days,
            model_kind=args.model,
            kafka_bootstrap=settings.kafka_bootstrap,
            redis_url=settings.redis_url,
        )
        report["flow"] = {"model_version": flowed.version, **flowed.health}
    json_path, png_path = write_report(report, out)
    checkpoint = result.model.save(out / "checkpoints", health=result.prequential.health())
    if "error" in report:
        print(f"churn backtest: {report['error']}", file=sys.stderr)
        return 1
    print(
        f"{report['events']:,} events ({rejected:,} lines did not decode), "
        f"{report['customers']:,} customers, {report['examples_resolved']:,} resolved examples"
    )
    print(
        f"test period from {report['split']['at'][:10]}: "
        f"{report['split']['test_examples']:,} examples"
    )
    for name, metrics in report["test"].items():
        print(
            f"  {name:<15} ROC AUC {metrics['roc_auc']:.4f}  log loss {metrics['log_loss']:.4f}"
            f"  Brier {metrics['brier']:.4f}"
        )
    if "flow" in report:
        flow = report["flow"]
        print(
            f"  {'the real flow':<15} ROC AUC {flow['roc_auc']:.4f}  log loss "
            f"{flow['log_loss']:.4f}  Brier {flow['brier']:.4f}  (prequential, latest "
            f"{min(flow['examples'], 50_000):,} examples; model {flow['model_version']})"
        )
    print(f"Report: {json_path} and {png_path}; model checkpoint: {checkpoint}")
    return 0


def _registry(args: argparse.Namespace, settings: Settings) -> Any:
    from models.registry import ModelRegistry

    return ModelRegistry(args.registry or settings.data_dir / "models" / "als")


def _serve(parser: argparse.ArgumentParser, args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    if settings.redis_url is None:
        parser.error("set SHOPKEEPER_REDIS_URL to the feature store's Redis")
    # Worker processes build their app from the environment (uvicorn's factory).
    os.environ["SHOPKEEPER_REDIS_URL"] = settings.redis_url
    os.environ["SHOPKEEPER_MODEL_REGISTRY"] = str(_registry(args, settings).root)
    if args.workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # Several processes, one /metrics: each writes its values where the others add up.
        import tempfile

        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="shopkeeper-metrics-")
    uvicorn.run(
        "serving.app:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=False,
        log_level="info",
    )
    return 0


def _models(args: argparse.Namespace, settings: Settings) -> int:
    from models.registry import RegistryError

    registry = _registry(args, settings)
    try:
        if args.action == "promote":
            registry.promote(args.version)
            print(f"Promoted {args.version}")
        elif args.action == "rollback":
            print(f"Rolled back to {registry.rollback()}")
        else:
            current = registry.current()
            for version in registry.versions():
                print(f"{'*' if version == current else ' '} {version}")
    except RegistryError as exc:
        print(f"models {args.action}: {exc}", file=sys.stderr)
        return 1
    return 0


def _datasets(args: argparse.Namespace) -> int:
    from shopkeeper.datasets import DatasetUnavailable, write_cdnow_events

    try:
        summary = write_cdnow_events(args.out, sample=args.sample)
    except DatasetUnavailable as exc:
        print(f"datasets cdnow: {exc}", file=sys.stderr)
        return 1
    print(f"Wrote {args.out}: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
