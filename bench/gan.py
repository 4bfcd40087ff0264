"""``python -m bench gan [--recipe ring-gan] [--seeds 0,1,2] [--epochs N] [--split test] [--out DIR]``: train a
GAN recipe once per seed (``zoo.train(recipe, seed=s)``) and tabulate its final metrics (the best epoch's
weights, as ``metrics.json`` holds them), the epochs and optimizer steps it trained and the wall time of each
whole run (data, training, final metrics, saving, reload check). Writes ``gan-RECIPE.json`` and
``gan-RECIPE.md`` into ``--out`` (default ``bench/results``).

The ring's targets: every seed covers 8/8 modes with at least 90% of the samples of high quality.
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
TARGETS = {"ring-gan": {"ring_modes": 8.0, "ring_quality": 0.90}}


def run_seed(recipe: str, seed: int, epochs: int | None, split: str) -> dict:
    import zoo

    settings = {"epochs": epochs} if epochs else {}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run = zoo.train(recipe, seed=seed, out=Path(tmp) / "run", quiet=True, **settings)
        wall = time.perf_counter() - t0
        saved = json.loads((run.dir / "metrics.json").read_text())
        cfg = run.config
    epochs_done = len(run.history)
    n_train = round(cfg["dataset_params"].get("n_samples", 0) * 0.6) if "n_samples" in cfg["dataset_params"] else None
    batches = -(-n_train // cfg["batch_size"]) if n_train else None
    d_steps = (cfg.get("procedure_params") or {}).get("d_steps", 1)
    return {"seed": seed, "epochs": epochs_done, "best_epoch": run.best_epoch,
            "discriminator_steps": batches * epochs_done if batches else None,
            "generator_steps": (batches * epochs_done) // d_steps if batches else None,
            "wall_s": round(wall, 1), "metrics": saved[split], "val": saved["val"]}


def table(recipe: str, rows: list[dict], split: str) -> str:
    target = TARGETS.get(recipe, {})
    names = [k for k in rows[0]["metrics"] if k != "loss"]
    head = ["seed", *names, "met", "epochs (best)", "D / G steps", "wall s (CPU)"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        met = all(r["metrics"].get(k, float("-inf")) >= v for k, v in target.items()) if target else None
        vals = [f"{r['metrics'][k]:.0f}/8" if k == "ring_modes" else f"{r['metrics'][k]:.3f}" for k in names]
        lines.append("| " + " | ".join([str(r["seed"]), *vals, "n/a" if met is None else ("yes" if met else "NO"),
                                        f"{r['epochs']} ({r['best_epoch']})",
                                        f"{r['discriminator_steps']} / {r['generator_steps']}",
                                        f"{r['wall_s']:.1f}"]) + " |")
    return "\n".join(lines) + f"\n\n{split} split; metrics of the best epoch's weights (monitor: the recipe's).\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench gan", description=__doc__.split("\n\n")[0])
    p.add_argument("--recipe", default="ring-gan")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    p.add_argument("--epochs", type=int, help="override the recipe's epochs")
    p.add_argument("--split", default="test", choices=("test", "val", "train"))
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    rows = []
    for seed in seeds:
        row = run_seed(args.recipe, seed, args.epochs, args.split)
        print(f"seed {seed}: {row['metrics']} in {row['wall_s']} s", file=sys.stderr, flush=True)
        rows.append(row)
    text = table(args.recipe, rows, args.split)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    info = {"recipe": args.recipe, "split": args.split, "rows": rows, "command": " ".join(["python -m bench gan",
                                                                                             *(argv or [])]),
            "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
            "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    (args.out / f"gan-{args.recipe}.json").write_text(json.dumps(info, indent=2) + "\n")
    (args.out / f"gan-{args.recipe}.md").write_text(text)
    target = TARGETS.get(args.recipe)
    if target and not all(all(r["metrics"][k] >= v for k, v in target.items()) for r in rows):
        return 3
    return 0
