"""``shopkeeper train als`` and ``shopkeeper models``: versions, promotion, rollback; history
from every source; hyperparameters from settings; the progress bar."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

import events
from models.als import AlsModel, AlsParams
from models.artifact import RecommenderArtifact
from models.registry import ModelRegistry
from shopkeeper.cli import main
from shopkeeper.embedded import Endpoints
from shopkeeper.generator import GeneratorConfig, World, write_history
from shopkeeper.history import read_jsonl, write_parquet
from shopkeeper.produce import produce
from shopkeeper.settings import AlsSettings
from shopkeeper.topics import ALL_TOPICS, ensure_topics
from shopkeeper.train import train_als
from tests.historykit import ORDER_COLUMNS, write_orders_csv


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("history") / "events.jsonl"
    world = World.build(GeneratorConfig(seed=5, customers=300, products=200))
    write_history(
        world, path, start=dt.datetime(2025, 1, 1, tzinfo=dt.UTC), days=60, progress=False
    )
    return path


def _train(history: Path, registry: Path, seed: int, capsys: pytest.CaptureFixture[str]) -> str:
    status = main([
        "train", "als", "--events", str(history), "--registry", str(registry),
        "--factors", "8", "--iterations", "3", "--seed", str(seed),
    ])  # fmt: skip
    assert status == 0
    out = capsys.readouterr().out
    return out.split("Promote it with: shopkeeper models promote ")[1].strip()


def test_train_promote_and_roll_back(
    history: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = tmp_path / "als"
    first = _train(history, registry, 1, capsys)
    second = _train(history, registry, 2, capsys)
    assert first != second
    meta = json.loads((registry / first / "metadata.json").read_text())
    assert meta["params"]["factors"] == 8
    assert meta["users"] > 200
    assert meta["interactions"] > 1_000
    assert meta["catalog"]  # the catalogue snapshot, from Product Updated
    assert AlsModel.load(registry / first).recommend(AlsModel.load(registry / first).users[0], 5)

    assert main(["models", "promote", first, "--registry", str(registry)]) == 0
    assert main(["models", "promote", second, "--registry", str(registry)]) == 0
    assert ModelRegistry(registry).current() == second
    assert main(["models", "rollback", "--registry", str(registry)]) == 0
    assert ModelRegistry(registry).current() == first
    capsys.readouterr()
    assert main(["models", "list", "--registry", str(registry)]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert f"* {first}" in listed
    assert f"  {second}" in listed


def test_unknown_versions_and_empty_rollbacks_are_clear_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["models", "promote", "als-nope", "--registry", str(tmp_path)]) == 1
    assert "no model version 'als-nope'" in capsys.readouterr().err
    assert main(["models", "rollback", "--registry", str(tmp_path)]) == 1
    assert "nothing to roll back to" in capsys.readouterr().err


def _metadata(registry: Path) -> dict[str, Any]:
    (version,) = ModelRegistry(registry).versions()
    meta: dict[str, Any] = json.loads((registry / version / "metadata.json").read_text())
    return meta


SMALL_FIT = ["--factors", "4", "--iterations", "2", "--quiet"]


def test_a_retailers_csv_export_trains_as_it_is(history: Path, tmp_path: Path) -> None:
    export = tmp_path / "orders.csv"
    orders = write_orders_csv(read_jsonl(history).events, export)
    with export.open("a") as file:
        file.write("X1;not a date;c-1;P1;1;2.0;bad\nX2;01.02.2025 10:00:00.0;;P1;1;2.0;nobody\n")
    registry = tmp_path / "als"
    status = main([
        "train", "als", "--csv", str(export), "--map", ORDER_COLUMNS, "--delimiter", ";",
        "--time-format", "%d.%m.%Y %H:%M:%S.%f", "--registry", str(registry), *SMALL_FIT,
    ])  # fmt: skip
    assert status == 0
    meta = _metadata(registry)
    assert meta["source"] == str(export)
    assert meta["rejected"] == {"bad_time": 1, "missing_customer": 1}
    assert meta["users"] > 100
    (version,) = ModelRegistry(registry).versions()
    artifact = RecommenderArtifact.load(registry / version)
    assert artifact.complements.scores.nnz > 0  # the orders were baskets
    assert orders > 100


def test_a_parquet_file_trains_like_its_jsonl(history: Path, tmp_path: Path) -> None:
    parquet = tmp_path / "events.parquet"
    write_parquet(read_jsonl(history).events, parquet)
    for flag, path, registry in (
        ("--events", history, tmp_path / "from_jsonl"),
        ("--parquet", parquet, tmp_path / "from_parquet"),
    ):
        status = main(["train", "als", flag, str(path), "--registry", str(registry), *SMALL_FIT])
        assert status == 0
    jsonl, table = _metadata(tmp_path / "from_jsonl"), _metadata(tmp_path / "from_parquet")
    for key in ("users", "items", "interactions", "window", "complement_pairs", "popular"):
        assert jsonl[key] == table[key], key
    assert table["rejected"] == {}


def test_a_kafka_replay_trains(
    history: Path,
    tmp_path: Path,
    infra: Endpoints,
    unique: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    namespace = f"train{unique}"
    ensure_topics(
        infra.kafka_bootstrap,
        [events.in_namespace(t, namespace) for t in ALL_TOPICS],
        embedded=infra.embedded_kafka,
    )
    stream = read_jsonl(history).events
    summary = produce(stream, bootstrap=infra.kafka_bootstrap, namespace=namespace, progress=False)
    assert summary.delivery_errors == 0
    monkeypatch.setenv("SHOPKEEPER_KAFKA_BOOTSTRAP", infra.kafka_bootstrap)
    registry = tmp_path / "als"
    topics = ",".join(events.in_namespace(t, namespace) for t in events.TOPICS)
    status = main(["train", "als", "--topic", topics, "--registry", str(registry), *SMALL_FIT])
    assert status == 0
    meta = _metadata(registry)
    assert meta["source"].startswith("Kafka topics")
    assert meta["interactions"] == _train_interactions(history, tmp_path)


def _train_interactions(history: Path, tmp_path: Path) -> int:
    registry = tmp_path / "reference"
    assert main(["train", "als", "--events", str(history), "--registry", str(registry),
                 *SMALL_FIT]) == 0  # fmt: skip
    interactions: int = _metadata(registry)["interactions"]
    return interactions


def test_hyperparameters_come_from_settings_and_flags_override_them(
    history: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOPKEEPER_ALS_FACTORS", "6")
    monkeypatch.setenv("SHOPKEEPER_ALS_ALPHA", "4.5")
    monkeypatch.setenv("SHOPKEEPER_ALS_ITERATIONS", "9")
    registry = tmp_path / "als"
    status = main(["train", "als", "--events", str(history), "--registry", str(registry),
                   "--iterations", "2", "--quiet"])  # fmt: skip
    assert status == 0
    params = _metadata(registry)["params"]
    assert params == {"factors": 6, "regularization": 0.05, "alpha": 4.5, "iterations": 2,
                      "seed": 7}  # fmt: skip

    monkeypatch.setenv("SHOPKEEPER_ALS_FACTORS", "none")
    with pytest.raises(SystemExit) as exit_:
        main(["train", "als", "--events", str(history), "--registry", str(registry)])
    assert exit_.value.code == 2
    monkeypatch.delenv("SHOPKEEPER_ALS_FACTORS")
    with pytest.raises(SystemExit):
        main(["train", "als", "--events", str(history), "--alpha", "0"])


def test_training_shows_progress_on_stderr_unless_quiet(
    history: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["train", "als", "--events", str(history), "--registry", str(tmp_path / "als"),
            "--factors", "4", "--iterations", "3"]  # fmt: skip
    assert main(args) == 0
    shown = capsys.readouterr()
    assert "als: 100%" in shown.err
    assert "3/3" in shown.err
    assert "Trained" in shown.out
    assert main([*args, "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_sources_that_cannot_be_read_are_clear_errors(
    history: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    export = tmp_path / "orders.csv"
    export.write_text("Customer,SKU\nc-1,P1\n")
    status = main(["train", "als", "--csv", str(export), "--map", ORDER_COLUMNS,
                   "--registry", str(tmp_path)])  # fmt: skip
    assert status == 1
    assert "no column 'Date'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "als", "--csv", str(export)])  # --map missing
    with pytest.raises(SystemExit):
        main(["train", "als", "--events", str(history), "--parquet", str(history)])
    monkeypatch.delenv("SHOPKEEPER_KAFKA_BOOTSTRAP", raising=False)
    with pytest.raises(SystemExit):
        main(["train", "als", "--topic", "shopkeeper.purchases"])
    assert "SHOPKEEPER_KAFKA_BOOTSTRAP" in capsys.readouterr().err


def test_als_settings_default_to_the_models_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FACTORS", "REGULARIZATION", "ALPHA", "ITERATIONS", "SEED"):
        monkeypatch.delenv(f"SHOPKEEPER_ALS_{name}", raising=False)
    assert AlsParams(**AlsSettings().model_dump()) == AlsParams()


def test_the_same_training_twice_in_one_second_makes_two_versions(
    history: Path, tmp_path: Path
) -> None:
    registry = ModelRegistry(tmp_path / "als")
    now = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
    params = AlsParams(factors=4, iterations=2)
    first = train_als(history, registry, params=params, now=now)
    second = train_als(history, registry, params=params, now=now)
    assert first.version != second.version
    assert registry.versions() == [first.version, second.version]
    assert RecommenderArtifact.load(second.path).metadata["version"] == second.version
