"""The ``shopkeeper`` command line and the demo, end to end on the real services."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

from shopkeeper.demo import run_demo
from shopkeeper.embedded import Endpoints
from shopkeeper.generator import GeneratorConfig
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


def test_demo_runs_the_flow_and_shows_a_live_profile(
    infra: Endpoints, topic_prefix: str, tmp_path: Path
) -> None:
    settings = Settings(
        kafka_bootstrap=infra.kafka_bootstrap, redis_url=infra.redis_url, data_dir=tmp_path
    )
    lines: list[str] = []
    report = run_demo(
        settings,
        rate=1_000,
        duration=3,
        config=GeneratorConfig(customers=400, products=300, malformed_share=0.02),
        namespace=topic_prefix,
        say=lines.append,
    )
    assert report.produced.total == 3_000
    o = report.outcomes
    assert o["applied"] + o["duplicate"] + o["rejected"] + o["ignored_erased"] == 3_000
    assert o["rejected"] == report.produced.malformed == sum(report.dead_letters.values())
    assert report.profile is not None
    assert int(report.profile["_seq"]) >= 1
    assert report.freshness_ms["p50"] is not None
    assert any(line.startswith(f"Live profile of {report.customer_id}") for line in lines)
    # The API served a model trained on the world's history, for the customer shown.
    answer = report.api["recommendations"]
    assert answer["customer_id"] == report.customer_id
    assert answer["model_version"] is not None
    assert len(answer["items"]) == 5
    assert any(line.startswith("GET recommendations for") for line in lines)
    # Orders in the traffic raised post-purchase offers (fired or held back by a guardrail).
    assert (
        report.offers.get("post_purchase fired", 0)
        + report.offers.get("post_purchase suppressed", 0)
        > 0
    )


def test_customer_show_prints_the_profile_or_says_unknown(
    infra: Endpoints, topic_prefix: str
) -> None:
    import redis

    from feature_store import CustomerWrite, FeatureStore, KeyLayout

    store = FeatureStore(redis.Redis.from_url(infra.redis_url), KeyLayout(topic_prefix))
    store.write([CustomerWrite("c-7", {"orders": '{"orders_total":"2"}'}, seq=3)])
    store.close()
    env = {**os.environ, "SHOPKEEPER_REDIS_URL": infra.redis_url}
    shown = _shopkeeper("customer", "show", "c-7", "--namespace", topic_prefix, env=env)
    assert shown.returncode == 0, shown.stderr
    profile = orjson.loads(shown.stdout)
    assert (profile["orders_total"], profile["_seq"], profile["orders_7d"]) == ("2", "3", 0)
    missing = _shopkeeper("customer", "show", "nobody", "--namespace", topic_prefix, env=env)
    assert missing.returncode == 1
    assert "unknown" in missing.stderr
