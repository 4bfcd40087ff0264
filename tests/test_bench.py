"""The benchmark suite runs end to end and reports every figure; no timing is asserted here."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ALL_FIGURES = ("tight", "dataloader", "sklearn", "startup", "reload", "memory", "scaling", "peers", "quality-time",
               "latency")
# peers and quality-time (Lightning, skorch, time to a score) have their own tests: test_bench_peers.py
FIGURES = tuple(f for f in ALL_FIGURES if f not in ("peers", "quality-time"))
TRAINING = ("tight", "dataloader", "sklearn")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    # The documented command, as small as it goes: one epoch, one repeat. One intra-op thread: on
    # a busy machine (CI, or pytest running beside other work) spinning torch threads can make
    # the default-threads DataLoader loop a hundred times slower, and no timing is checked here.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick", "--epochs", "1", "--repeats", "1",
                           "--only", ",".join(FIGURES), "--out", str(out)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, proc.stdout


def test_report_files_hold_every_figure_with_ratio_and_scores(report):
    out, stdout = report
    data = json.loads((out / "latest.json").read_text())
    md = (out / "latest.md").read_text()
    assert not data["errors"]
    assert {r["key"] for r in data["rows"]} == set(FIGURES)
    for r in data["rows"]:
        assert isinstance(r["ratio"], float) and math.isfinite(r["ratio"]), r["label"]
        assert r["ratio"] > 0 or r["key"] == "latency", r["label"]  # latency: seconds beyond import torch
        assert r["target"]["text"] and isinstance(r["target_met"], bool)
        for side in ("zoo", "other"):
            assert "score" in r[side] and r[side]["value"] > 0
            if r["key"] in TRAINING + ("reload", "memory", "scaling"):  # a model was trained: its test score is reported
                assert r[side]["score"]["metric"] in ("mse", "accuracy")
                assert math.isfinite(r[side]["score"]["value"])
    workloads = {(r["key"], r.get("workload")) for r in data["rows"]}
    assert {("tight", "regression-mlp"), ("tight", "digits-cnn"), ("dataloader", "regression-mlp"),
            ("dataloader", "digits-cnn"), ("sklearn", "regression-mlp"), ("sklearn", "moons-mlp")} <= workloads
    header = next(line for line in md.splitlines() if line.startswith("| # |"))
    for column in ("ratio", "target", "zoo score", "other score"):
        assert f" {column} " in header
    for n in range(1, len(ALL_FIGURES) + 1):
        if ALL_FIGURES[n - 1] in FIGURES:
            assert f"\n| {n} | " in md
    assert data["machine"]["cpu"] and data["machine"]["torch"]
    assert "ratio" in stdout and "zoo score" in stdout


def test_weight_parity_was_checked(report):
    out, stdout = report
    data = json.loads((out / "latest.json").read_text())
    checked = {p["workload"]: p for p in data["parity"] if p["device"] == "cpu"}
    assert set(checked) == {"regression-mlp", "digits-cnn"}
    for p in checked.values():
        assert p["checked"] is True and isinstance(p["identical"], bool) and p["tensors"] > 0
    assert "## Weight parity" in (out / "latest.md").read_text()
    assert "Weight parity:" in stdout


def test_latency_reports_each_command_beyond_import_torch(report):
    """Figure 10: train, eval, predict and plot as processes, each with the seconds it adds beyond import torch
    and the same work in process, and what it imports beyond torch."""
    out, _ = report
    rows = [r for r in json.loads((out / "latest.json").read_text())["rows"] if r["key"] == "latency"]
    assert sorted(r["command"] for r in rows) == ["eval", "plot", "predict", "train"]
    for r in rows:
        assert r["zoo"]["value"] > r["other"]["import_torch"] > 0 and r["other"]["work"] > 0
        assert r["target"]["text"] in ("<= 0.5 s", "<= 1.0 s")
        assert any(n.startswith("imports beyond torch's: ") and " ms in all" in n for n in r["notes"])
    assert "s  <= 0.5 s" in (out / "latest.md").read_text().replace(" | ", "  ")


def test_only_selects_figures_by_name_or_number():
    sys.path.insert(0, str(ROOT))
    try:
        from bench.cli import parse_only
    finally:
        sys.path.remove(str(ROOT))
    assert parse_only(None) == ALL_FIGURES
    assert parse_only(["memory,1", "startup"]) == ("tight", "startup", "memory")
    with pytest.raises(Exception, match="unknown figure"):
        parse_only(["speed"])
