"""The ``shopkeeper`` command line and the demo, end to end on the real services."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
from prometheus_client import CollectorRegistry

from shopkeeper.demo import counts_key, run_demo
from shopkeeper.embedded import Endpoints
from shopkeeper.generator import GeneratorConfig
from shopkeeper.metrics import ToolMetrics
from shopkeeper.settings import Settings

SMALL = ["--customers", "300", "--products", "200", "--seed", "5"]


def _shopkeeper(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shopkeeper.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def test_generate_writes_history_and_its_ground_truth(tmp_path: Path) -> None:
    out = tmp_path / "history.jsonl"
    result = _shopkeeper(
        "generate", "--days", "5", "--out", str(out), "--start", "2025-01-01", *SMALL
    )
    assert result.returncode == 0, result.stderr
    lines = out.read_bytes().splitlines()
    truth = orjson.loads(out.with_suffix(".truth.json").read_bytes())
    assert len(lines) > 1_000
    assert sum(truth["counts"].values()) + sum(truth["malformed"].values()) == len(lines)
    again = tmp_path / "again.jsonl"
    _shopkeeper("generate", "--days", "5", "--out", str(again), "--start", "2025-01-01", *SMALL)
    assert again.read_bytes() == out.read_bytes()


def test_live_generation_without_a_broker_says_what_to_set(tmp_path: Path) -> None:
    result = _shopkeeper(
        "generate", "--rate", "100", "--duration", "1", env={"PATH": "", "HOME": str(tmp_path)}
    )
    assert result.returncode == 2
    assert "SHOPKEEPER_KAFKA_BOOTSTRAP" in result.stderr


def test_unknown_options_are_refused() -> None:
    result = _shopkeeper("generate", "--days", "1", "--out", "x.jsonl", "--colour", "red")
    assert result.returncode == 2
    assert "--colour" in result.stderr


def test_demo_counts_every_produced_event_into_redis(
    infra: Endpoints, topic_prefix: str, tmp_path: Path
) -> None:
    import redis

    settings = Settings(
        kafka_bootstrap=infra.kafka_bootstrap, redis_url=infra.redis_url, data_dir=tmp_path
    )
    lines: list[str] = []
    registry = CollectorRegistry()
    report = run_demo(
        settings,
        rate=1_000,
        duration=2,
        config=GeneratorConfig(customers=400, products=300, malformed_share=0.02),
        namespace=topic_prefix,
        say=lines.append,
        metrics=ToolMetrics(registry),
    )
    assert report.produced.total > 1_000
    assert sum(report.consumed.values()) == report.produced.total
    assert (
        report.consumed["malformed"] == report.produced.malformed == sum(report.rejected.values())
    )
    client = redis.Redis.from_url(infra.redis_url)
    stored = {k.decode(): int(v) for k, v in client.hgetall(counts_key(topic_prefix)).items()}  # type: ignore[union-attr]
    client.close()
    assert stored == dict(report.consumed)
    assert (
        registry.get_sample_value("shopkeeper_demo_events_total", {"event": "malformed"})
        == report.produced.malformed
    )
    assert any(line.startswith("Produced") for line in lines)
