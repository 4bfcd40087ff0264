"""``python -m bench quality`` and ``python -m bench tune`` run end to end and write complete
reports; no score or timing is asserted, only their shape and their internal consistency."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ("blobs-mlp", "iris-mlp")
SEEDS = 2
COLUMNS = ("recipe", "metric", "zoo (mean ± std)", "zoo (min–max)", "best peer", "peer (mean ± std)",
           "peer (min–max)", "gap", "seeds zoo ≥ peer", "matches", "zoo s/run", "peer s/fit", "reference")
CLASSIFICATION_PEERS = {"SVC", "LogisticRegression", "HistGradientBoosting", "kNN (5)"}
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def bench(*args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def quality(tmp_path_factory):
    out = tmp_path_factory.mktemp("quality")
    proc = bench("quality", "--quick", "--seeds", str(SEEDS), "--recipes", ",".join(RECIPES), "--out", str(out))
    return json.loads((out / "quality.json").read_text()), (out / "quality.md").read_text(), proc.stdout


def check_summary(side: dict, n: int) -> None:
    values = side["values"]
    assert len(values) == n
    assert side["mean"] == pytest.approx(statistics.fmean(values))
    assert side["std"] == pytest.approx(statistics.stdev(values))
    assert (side["min"], side["max"]) == (min(values), max(values))


def test_json_has_every_seed_of_zoo_and_peers_test_and_validation(quality):
    data, _, _ = quality
    assert not data["errors"]
    assert data["settings"]["quick"] is True and data["settings"]["seeds"] == list(range(SEEDS))
    assert [r["recipe"] for r in data["rows"]] == list(RECIPES)
    for r in data["rows"]:
        assert r["metric"] == "accuracy" and r["lower_is_better"] is False
        check_summary(r["zoo"], SEEDS)
        check_summary(r["zoo"]["val"], SEEDS)
        assert len(r["zoo"]["seconds"]) == SEEDS
        names = {p["name"] for p in r["peers"]}
        assert names >= CLASSIFICATION_PEERS and any(n.startswith("MLP (") for n in names)
        for p in r["peers"]:
            assert set(p) >= {"name", "mean", "std", "values", "val", "seconds_mean", "params"}
            check_summary(p, SEEDS)
            check_summary(p["val"], SEEDS)
        best = next(p for p in r["peers"] if p["name"] == r["best_peer"])
        assert best["mean"] == max(p["mean"] for p in r["peers"])  # the best mean test score
        # "matches" compares the means with no tolerance; the seed count compares seed by seed
        assert r["matches"] is (r["zoo"]["mean"] >= best["mean"] - 1e-9)
        assert r["gap"] == pytest.approx(r["zoo"]["mean"] - best["mean"])
        assert r["seeds_at_least_peer"] == sum(z >= b - 1e-9 for z, b in zip(r["zoo"]["values"], best["values"]))
    iris = next(r for r in data["rows"] if r["recipe"] == "iris-mlp")
    assert iris["reference"] == {"value": 0.989, "peer": "SVC"}
    assert data["machine"]["cpu"] and data["machine"]["sklearn"]


def table(md: str, header_start: str) -> tuple[list[str], list[list[str]]]:
    lines = md.splitlines()
    header = next(line for line in lines if line.startswith(header_start))
    body = lines[lines.index(header) + 2:]
    body = body[:next((i for i, line in enumerate(body) if not line.startswith("|")), len(body))]
    split = lambda line: [c.strip() for c in line.strip().strip("|").split(" | ")]  # noqa: E731
    return split(header), [split(row) for row in body]


def test_markdown_and_stdout_hold_the_table(quality):
    data, md, stdout = quality
    header, rows = table(md, "| recipe | metric |")
    assert header == list(COLUMNS)
    assert [row[0] for row in rows] == list(RECIPES)
    for row, r in zip(rows, data["rows"]):
        cells = dict(zip(COLUMNS, row))
        assert len(row) == len(COLUMNS)
        assert "±" in cells["zoo (mean ± std)"] and "±" in cells["peer (mean ± std)"]
        assert "–" in cells["zoo (min–max)"] and "–" in cells["peer (min–max)"]
        assert cells["seeds zoo ≥ peer"] == f"{r['seeds_at_least_peer']}/{SEEDS}"
        assert cells["matches"] == ("yes" if r["matches"] else "no")
    for section in ("## The zoo and every peer", "## Every seed", "## Machine",
                    "## Where the zoo's mean does not match its best peer's"):
        assert section in md
    for r in data["rows"]:
        for p in r["peers"]:
            assert f"| {r['recipe']} | {p['name']} |" in md
    # every seed of every side, test and validation
    header, seeds = table(md, "| recipe | side | split |")
    assert header[3:] == [f"seed {s}" for s in range(SEEDS)]
    for r in data["rows"]:
        for name, side in (("zoo", r["zoo"]), *((p["name"], p) for p in r["peers"])):
            for split, values in (("test", side["values"]), ("validation", side["val"]["values"])):
                row = next(row for row in seeds if row[:3] == [r["recipe"], name, split])
                assert [float(c) for c in row[3:]] == pytest.approx(values, abs=5e-5)
    for column in ("zoo (mean ± std)", "best peer", "seeds zoo ≥ peer", "matches", "reference"):
        assert column in stdout


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    out = tmp_path_factory.mktemp("tune")
    proc = bench("tune", "blobs-mlp", "--grid", "epochs=1,3", "--grid", "model.hidden=4;8,8", "--seeds", "2",
                 "--out", str(out))
    return json.loads((out / "tune-blobs-mlp.json").read_text()), proc.stdout


def test_tune_ranks_on_validation_and_reports_test_for_two_only(tuned):
    data, stdout = tuned
    cands = data["candidates"]
    # the grid's 4 combinations plus the current default (30 epochs, 10 hidden units), not in the grid
    assert len(cands) == 5 and sum(c["is_default"] for c in cands) == 1
    default = next(c for c in cands if c["is_default"])
    assert default["grid"] == {"epochs": "30", "model.hidden": "10"}
    assert {tuple(c["grid"].values()) for c in cands if not c["is_default"]} == {
        ("1", "4"), ("1", "8,8"), ("3", "4"), ("3", "8,8")}
    means = [c["val"]["mean"] for c in cands]
    assert means == sorted(means, reverse=True)  # accuracy: best validation first
    assert cands[0]["chosen"] and data["chosen"] == cands[0]["label"]
    assert data["recommendation"] in ("keep", "change")
    for c in cands:
        check_summary(c["val"], 2)
        assert "test" not in c and "_test" not in c  # no candidate carries a test score
    assert set(data["test"]) == {"chosen", "default"}
    assert data["test"]["chosen"]["label"] == data["chosen"]
    assert data["test"]["default"]["label"] == default["label"]
    assert "Test scores, reported for these two only" in stdout


def test_tune_grid_parsing():
    sys.path.insert(0, str(ROOT))
    try:
        from bench.tune import combinations, parse_grid, split_settings
    finally:
        sys.path.remove(str(ROOT))
    grid = parse_grid(["lr=0.01,0.003", "model.hidden=16;32,32"])
    assert grid == {"lr": ["0.01", "0.003"], "model.hidden": ["16", "32,32"]}
    assert len(combinations(grid)) == 4
    settings, params = split_settings({"lr": "0.01", "train.epochs": "5", "model.hidden": "32,32"})
    assert settings == {"lr": 0.01, "epochs": 5} and params == {"model.hidden": "32,32"}
    for bad in (["lr"], ["lr=0.1", "lr=0.2"], ["lr=0.1,,0.2"], ["lr=0.1,0.1"]):
        with pytest.raises(ValueError):
            parse_grid(bad)
