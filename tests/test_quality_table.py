"""``python -m bench quality`` runs end to end and writes a complete table; no score or timing is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ("blobs-mlp", "iris-mlp")
COLUMNS = ("recipe", "metric", "zoo (mean ± std)", "best peer", "peer (mean ± std)", "zoo s/run", "peer s/fit",
           "matches", "reference")
CLASSIFICATION_PEERS = {"SVC", "LogisticRegression", "HistGradientBoosting", "kNN (5)"}


@pytest.fixture(scope="module")
def quality(tmp_path_factory):
    out = tmp_path_factory.mktemp("quality")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "bench", "quality", "--quick", "--recipes", ",".join(RECIPES),
                           "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads((out / "quality.json").read_text()), (out / "quality.md").read_text(), proc.stdout


def test_json_has_one_row_per_recipe_with_zoo_and_peers(quality):
    data, _, _ = quality
    assert not data["errors"]
    assert data["settings"]["quick"] is True and data["settings"]["seeds"] == [0]
    assert [r["recipe"] for r in data["rows"]] == list(RECIPES)
    for r in data["rows"]:
        assert r["metric"] == "accuracy" and r["lower_is_better"] is False
        assert set(r["zoo"]) >= {"mean", "std", "values", "seconds_mean", "seconds"}
        assert len(r["zoo"]["values"]) == len(r["zoo"]["seconds"]) == 1
        names = {p["name"] for p in r["peers"]}
        assert names >= CLASSIFICATION_PEERS and any(n.startswith("MLP (") for n in names)
        for p in r["peers"]:
            assert set(p) >= {"name", "mean", "std", "values", "seconds_mean", "params"}
        assert r["best_peer"] in names
        assert isinstance(r["matches"], bool)
    iris = next(r for r in data["rows"] if r["recipe"] == "iris-mlp")
    assert iris["reference"] == {"value": 0.989, "peer": "SVC"}
    assert data["machine"]["cpu"] and data["machine"]["sklearn"]


def test_markdown_and_stdout_hold_the_table(quality):
    data, md, stdout = quality
    lines = md.splitlines()
    header = next(line for line in lines if line.startswith("| recipe | metric |"))
    assert [c.strip() for c in header.strip("|").split("|")] == list(COLUMNS)
    main = lines[lines.index(header) + 2:]
    main = main[:next(i for i, line in enumerate(main) if not line.startswith("|"))]
    assert [row.split("|")[1].strip() for row in main] == list(RECIPES)
    for row in main:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == len(COLUMNS) and cells[7] in ("yes", "no") and "±" in cells[2] and "±" in cells[4]
    assert "## All peers" in md and "## Machine" in md
    for r in data["rows"]:
        for p in r["peers"]:
            assert f"| {r['recipe']} | {p['name']} |" in md
    for column in ("zoo (mean ± std)", "best peer", "matches", "reference"):
        assert column in stdout
