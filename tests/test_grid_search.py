"""The grid search: every combination on the evaluation's own time split, the best by NDCG@10."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from pathlib import Path

import pytest

import events
from models.als import AlsParams
from shopkeeper.cli import main
from shopkeeper.evaluate import evaluate_als
from shopkeeper.generator import GeneratorConfig, World, write_history
from shopkeeper.grid_search import grid_search, parse_grid, write_grid_search
from shopkeeper.history import read_jsonl

GRID: dict[str, list[int | float]] = {"factors": [4, 8], "alpha": [1.0, 5.0], "iterations": [3]}


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("history") / "events.jsonl"
    world = World.build(GeneratorConfig(seed=12, customers=400, products=150))
    write_history(world, path, start=dt.datetime(2025, 1, 1, tzinfo=dt.UTC), days=120,
                  progress=False)  # fmt: skip
    return path


@pytest.fixture(scope="module")
def stream(history: Path) -> list[events.Event]:
    return read_jsonl(history).events


def test_every_combination_is_scored_and_the_best_has_the_highest_ndcg(
    stream: list[events.Event], tmp_path: Path
) -> None:
    report = grid_search(stream, GRID, test_days=30)
    tried = [(r["params"]["factors"], r["params"]["alpha"], r["params"]["iterations"])
             for r in report["results"]]  # fmt: skip
    assert tried == list(itertools.product(*GRID.values()))
    ndcg = [r["scores"]["@10"]["ndcg"] for r in report["results"]]
    assert len(set(ndcg)) > 1  # the parameters matter on this history
    assert report["best"]["scores"]["@10"]["ndcg"] == max(ndcg)
    assert report["best"] == report["results"][ndcg.index(max(ndcg))]
    assert set(report["baselines"]) == {"global_popularity", "recent_popularity",
                                        "repeat_purchases"}  # fmt: skip
    assert report["test_customers"] > 50
    assert {r["params"]["regularization"] for r in report["results"]} == {0.05}  # from the base

    json_path, png_path = write_grid_search(report, tmp_path)
    assert json.loads(json_path.read_text())["best"] == report["best"]
    assert png_path.read_bytes()[:4] == b"\x89PNG"


def test_the_grid_uses_the_protocol_of_the_evaluation(stream: list[events.Event]) -> None:
    base = AlsParams(factors=8, regularization=0.1, alpha=5.0, iterations=3, seed=3)
    report = grid_search(stream, {"factors": [8]}, base=base, test_days=30)
    single = evaluate_als(stream, test_days=30, params=base)
    (result,) = report["results"]
    assert result["scores"] == single["scores"]["als"]
    assert report["baselines"]["repeat_purchases"] == single["scores"]["repeat_purchases"]
    assert report["split_at"] == single["split_at"]


def test_evaluate_grid_on_the_command_line(
    history: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    status = main([
        "evaluate", "--events", str(history), "--test-days", "30", "--out", str(out),
        "--grid", "factors=4,8", "alpha=1,5", "iterations=3", "--seed", "3", "--quiet",
    ])  # fmt: skip
    assert status == 0
    report = json.loads((out / "grid_search.json").read_text())
    assert len(report["results"]) == 4
    assert {r["params"]["seed"] for r in report["results"]} == {3}
    best = report["best"]["params"]
    printed = capsys.readouterr()
    assert f"* factors={best['factors']} alpha={best['alpha']} iterations=3" in printed.out
    assert printed.err == ""
    assert (out / "grid_search.png").is_file()


def test_a_bad_grid_is_refused(history: Path, stream: list[events.Event]) -> None:
    assert parse_grid(["factors=8,16", "regularization=0.01"]) == {
        "factors": [8, 16],
        "regularization": [0.01],
    }
    for specs, problem in (
        (["colour=red"], "a name among"),
        (["factors"], "a name among"),
        (["factors=8", "factors=16"], "given twice"),
        (["factors=8.5"], "takes int values"),
    ):
        with pytest.raises(ValueError, match=problem):
            parse_grid(specs)
    with pytest.raises(ValueError, match="each with values"):
        grid_search(stream, {"factors": []})
    with pytest.raises(SystemExit):
        main(["evaluate", "--events", str(history), "--grid", "depth=3"])
