"""Figures 8 (zoo vs Lightning and skorch) and 9 (time to a test score vs scikit-learn) run end to end and
report what they measured; no timing is asserted here."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ("regression-mlp", "moons-mlp", "digits-cnn")
QUALITY_RECIPES = ("regression-mlp", "moons-mlp")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # no timing is checked: one thread keeps a busy machine usable

pytest.importorskip("lightning")
pytest.importorskip("skorch")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench-peers")
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick", "--epochs", "1", "--repeats", "1",
                           "--only", "peers,quality-time", "--out", str(out)], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads((out / "latest.json").read_text()), proc.stdout


def _finite_positive(x) -> bool:
    return isinstance(x, float) and math.isfinite(x) and x > 0


def test_peers_rows_for_every_recipe_and_peer(report):
    data, stdout = report
    assert not data["errors"]
    rows = [r for r in data["rows"] if r["key"] == "peers"]
    assert {(r["workload"], r["peer"]) for r in rows} == {(w, p) for w in RECIPES for p in ("lightning", "skorch")}
    for r in rows:
        assert r["figure"] == 8 and _finite_positive(r["ratio"]), r["label"]
        assert isinstance(r["target_met"], bool) and r["target"]["op"] == ">="
        assert r["target"]["value"] == (1.0 if r["workload"] == "digits-cnn" else
                                        3.0 if r["peer"] == "lightning" else 2.0)
        for side in ("zoo", "other"):
            assert _finite_positive(r[side]["value"]) and r[side]["unit"] == "s"
            score = r[side]["score"]
            assert score["metric"] == ("mse" if r["workload"] == "regression-mlp" else "accuracy")
            assert math.isfinite(score["value"])
            assert r[side]["threads"] >= 1
        notes = " ".join(r["notes"])
        assert r["zoo"]["optimizer"] in notes  # zoo's optimizer, as the engine built it
        assert "torch.optim.adam.Adam" in notes and r["other"]["optimizer"].startswith("torch.optim.adam.Adam")
        assert "best epoch" in notes and "last epoch" in notes and "thread" in notes and "batch" in notes
        assert r["epochs"] == 1 and r["other"]["epochs_run"] == 1
    assert "engine vs PyTorch Lightning" in stdout and "engine vs skorch" in stdout


def test_quality_time_rows_report_epochs_to_target(report):
    data, _ = report
    rows = [r for r in data["rows"] if r["key"] == "quality-time"]
    assert {r["workload"] for r in rows} == set(QUALITY_RECIPES)
    assert len(rows) == 2 * len(QUALITY_RECIPES)  # scikit-learn's defaults and the recipe's lr and batch
    for r in rows:
        assert r["figure"] == 9 and _finite_positive(r["ratio"]), r["label"]
        assert r["budget"]["epochs"] == 1  # --epochs caps the budget
        for side in ("zoo", "other"):
            assert _finite_positive(r[side]["value"])
            assert r[side]["score"]["metric"] in ("mse", "accuracy")
            assert isinstance(r[side]["reached"], bool)
            assert all(isinstance(e, int) and 1 <= e <= 1 for e in r[side]["epochs"])
        if not r["zoo_reached"]:
            assert not r["target_met"]


def test_peer_not_installed_is_skipped_with_a_message():
    code = textwrap.dedent("""
        import json, sys
        sys.modules["lightning"] = None  # as if it were not installed
        from bench import figures, peers

        lines = []
        settings = figures.Settings(repeats=1, epochs=1, only=("peers",), quick=True)
        missing = peers.available()
        rows = peers.peers(settings, lines.append, recipes=("regression-mlp",))
        sys.modules["skorch"] = None
        none_rows = peers.peers(settings, lines.append, recipes=("regression-mlp",))
        print(json.dumps({"missing": missing, "rows": rows, "none_rows": none_rows, "lines": lines}, default=str))
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["missing"]["skorch"] is None
    assert got["missing"]["lightning"] == "lightning is not installed: pip install 'zoo[bench]'"
    assert any("lightning is not installed: pip install 'zoo[bench]'" in line for line in got["lines"])
    assert [r["peer"] for r in got["rows"]] == ["skorch"]
    assert any("not measured: lightning is not installed" in n for n in got["rows"][0]["notes"])
    assert got["none_rows"] == []
    assert any("neither PyTorch Lightning nor skorch is installed" in line for line in got["lines"])


def test_quality_time_reached_and_never_reached():
    from bench import figures, quality_time

    settings = figures.Settings(repeats=1, epochs=None, only=("quality-time",), quick=True)
    lines: list[str] = []
    easy = quality_time.quality_time(settings, lines.append, targets={"moons-mlp": ("accuracy", ">=", 0.5)},
                                     max_epochs=3)
    assert len(easy) == 2
    for r in easy:
        assert r["zoo_reached"] and r["other_reached"] and r["zoo"]["reached"]
        assert 1 <= r["zoo"]["epochs"][0] <= 3 and 1 <= r["other"]["epochs"][0] <= 3
        assert r["zoo"]["score"]["value"] >= 0.5 and r["other"]["score"]["value"] >= 0.5
        assert any("zoo reached it after" in n for n in r["notes"])
    never = quality_time.quality_time(settings, lines.append, targets={"moons-mlp": ("accuracy", ">=", 1.01)},
                                      max_epochs=2)
    for r in never:
        assert not r["zoo_reached"] and not r["other_reached"] and r["target_met"] is False
        assert r["zoo"]["epochs"] == [2] and r["other"]["epochs"] == [2]
        notes = " ".join(r["notes"])
        assert "zoo never reached accuracy >= 1.01 within 2 epochs" in notes
        assert "never reached accuracy >= 1.01 within 2 epochs" in notes.split("scikit-learn (", 1)[1]
        assert math.isfinite(r["ratio"]) and r["ratio"] > 0
