"""``python -m bench rl [--recipes cartpole-dqn,acrobot-dqn] [--seeds 0,1,2] [--threads 1] [--out DIR]``: train
each deep-Q recipe once per seed (``zoo.train(recipe, seed=s)``) and tabulate the greedy policy's mean return
over the test split's 100 fixed-seed episodes (the best epoch's weights, as ``metrics.json`` holds them), the
environment steps trained, the best epoch and the wall time of each whole run (environment, training, the
validation episodes after every epoch, the final episodes, saving, the reload check). Writes ``rl.json`` and
``rl.md`` into ``--out`` (default ``bench/results``); exits 3 when a target is missed.

The targets are the environments' own ``reward_threshold`` in gymnasium: CartPole-v1 475 (the pole balanced
for most of its 500 steps), Acrobot-v1 -100 (the arm swung up in under about 100 steps).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
RECIPES = ("cartpole-dqn", "acrobot-dqn")
TARGETS = {"cartpole-dqn": 475.0, "acrobot-dqn": -100.0}


def run_seed(recipe: str, seed: int, threads: int) -> dict:
    import zoo

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run = zoo.train(recipe, seed=seed, out=Path(tmp) / "run", quiet=True, threads=threads)
        wall = time.perf_counter() - t0
        saved = json.loads((run.dir / "metrics.json").read_text())
    cfg = run.config
    return {"recipe": recipe, "env": cfg["dataset_params"]["env"], "seed": seed, "epochs": len(run.history),
            "best_epoch": run.best_epoch, "env_steps": int(run.history[-1]["env_steps"]),
            "episodes": int(run.history[-1]["episodes"]), "test_episodes": cfg["procedure_params"]["test_episodes"],
            "wall_s": round(wall, 1), "test": saved["test"], "val": saved["val"]}


def table(rows: list[dict]) -> str:
    head = ["recipe", "environment", "seed", "test mean return", "target", "met", "best epoch", "env steps",
            "wall s (CPU)"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        target = TARGETS.get(r["recipe"])
        value = r["test"]["mean_return"]
        met = "n/a" if target is None else ("yes" if value >= target else "NO")
        lines.append("| " + " | ".join([r["recipe"], r["env"], str(r["seed"]), f"{value:.2f}",
                                        "" if target is None else f">= {target:g}", met,
                                        f"{r['best_epoch']} of {r['epochs']}", f"{r['env_steps']:,}",
                                        f"{r['wall_s']:.1f}"]) + " |")
    n = rows[0]["test_episodes"] if rows else 100
    return ("\n".join(lines) + f"\n\nTest: the greedy policy of the best epoch's weights (monitor: the validation "
            f"episodes' mean return) over {n} episodes with fixed seeds; env steps: the whole run's.\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench rl", description=__doc__.split("\n\n")[0])
    p.add_argument("--recipes", default=",".join(RECIPES), help="comma-separated recipes")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    p.add_argument("--threads", type=int, default=1, help="torch threads of each run (default 1)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    rows = []
    for recipe in [r.strip() for r in args.recipes.split(",") if r.strip()]:
        for seed in seeds:
            row = run_seed(recipe, seed, args.threads)
            print(f"{recipe} seed {seed}: test mean return {row['test']['mean_return']:.2f} in {row['wall_s']} s",
                  file=sys.stderr, flush=True)
            rows.append(row)
    text = table(rows)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    info = {"rows": rows, "command": " ".join(["python -m bench rl", *(argv or [])]),
            "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
            "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    (args.out / "rl.json").write_text(json.dumps(info, indent=2) + "\n")
    (args.out / "rl.md").write_text(text)
    return 3 if any(r["test"]["mean_return"] < TARGETS.get(r["recipe"], float("-inf")) for r in rows) else 0
