"""``shopkeeper train als`` and ``shopkeeper models``: versions, promotion, rollback."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from models.als import AlsModel
from models.registry import ModelRegistry
from shopkeeper.cli import main
from shopkeeper.generator import GeneratorConfig, World, write_history


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
