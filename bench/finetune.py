"""``python -m bench.finetune [--seeds 0,1,2] [--pretrain-epochs 30] [--out DIR]`` (also ``python -m bench
finetune``): does starting from another run's weights (``zoo train --init RUN``) pay on a small budget?

Per seed, ``digits-resnet`` is pretrained on digits 0-4 (``--set classes=0,1,2,3,4``, the recipe's settings,
``--pretrain-epochs`` epochs), then four runs learn digits 5-9 under the same small budget and the recipe's
optimizer, schedule and learning rate:

- ``scratch``: a fresh initialisation;
- ``init``: ``--init PRETRAINED --init-head reset`` (every weight from the pretrained run but the output
  layer, which is re-created for the new classes);
- ``init, freeze stem``: the same with ``--freeze net.0.*`` (the first convolution and its batch norm stay);
- ``init, freeze features``: ``--freeze net.0.*,net.1.*`` (only the output layer trains: a linear probe on
  the pretrained features).

Three budgets: ``full`` (the whole training split of 5-9, about 580 images, 1 epoch), ``10%`` (``val_size=0.7``:
about 90 training images, 18 per digit, 5 epochs) and ``5%`` (``val_size=0.75``: about 45 images, 10 epochs).
The test split (``test_size=0.2`` of digits 5-9, fixed by the seed) is the same in every arm and budget. The
figure is the test accuracy of each run's best epoch (by validation loss), as ``metrics.json`` holds it.
Writes ``finetune.json`` and ``finetune.md`` into ``--out`` (default ``bench/results``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
#: The fine-tuning budgets: (epochs, the digits dataset's val_size; test_size stays 0.2, so the test split is one).
BUDGETS = {"full": (1, 0.15), "10%": (5, 0.7), "5%": (10, 0.75)}
RECIPE = "digits-resnet"
PRETRAIN = [0, 1, 2, 3, 4]
TARGET = [5, 6, 7, 8, 9]
#: What each arm adds to ``--init PRETRAINED --init-head reset`` (None: trained from scratch).
#: The recipe's batch size (the optimizer steps of a budget follow from it).
BATCH = 64
ARMS = {"scratch": None, "init": {}, "init, freeze stem": {"freeze": "net.0.*"},
        "init, freeze features": {"freeze": "net.0.*,net.1.*"}}


def _train(out: Path, seed: int, threads: int, params: dict, **settings):
    import zoo

    t0 = time.perf_counter()
    run = zoo.train(RECIPE, params=params, seed=seed, out=out, quiet=True, threads=threads, **settings)
    return run, round(time.perf_counter() - t0, 2)


def run_seed(seed: int, pretrain_epochs: int, budgets: dict[str, tuple[int, float]], threads: int) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src, wall = _train(tmp / "pretrain", seed, threads, {"dataset.classes": PRETRAIN}, epochs=pretrain_epochs)
        rows.append({"seed": seed, "arm": "pretrain 0-4", "budget": f"{pretrain_epochs} epochs", "train": None,
                     "test_accuracy": src.metrics["test"]["accuracy"], "wall_s": wall})
        print(f"seed {seed}: pretrained on 0-4: test accuracy {src.metrics['test']['accuracy']:.4f} in {wall} s",
              file=sys.stderr, flush=True)
        for budget, (epochs, val_size) in budgets.items():
            for arm in ARMS:
                extra = ARMS[arm]
                settings = {} if extra is None else {"init": str(src.dir), "init_head": "reset", **extra}
                run, wall = _train(tmp / f"{budget}-{arm}", seed, threads,
                                   {"dataset.classes": TARGET, "dataset.val_size": val_size}, epochs=epochs,
                                   **settings)
                row = {"seed": seed, "arm": arm, "budget": budget, "epochs": epochs, "val_size": val_size,
                       "train": _n_train(run), "test_accuracy": run.metrics["test"]["accuracy"],
                       "test_loss": run.metrics["test"]["loss"], "best_epoch": run.best_epoch, "wall_s": wall}
                rows.append(row)
                print(f"seed {seed}: {budget} {arm}: test accuracy {row['test_accuracy']:.4f} in {wall} s",
                      file=sys.stderr, flush=True)
    return rows


def _n_train(run) -> int:
    from zoo.parts import load_data
    from zoo.config import entries_for

    return len(load_data(entries_for(run.config), run.config).train[1])


def table(rows: list[dict], seeds: list[int], budgets: dict[str, tuple[int, float]], pretrain_epochs: int) -> str:
    lines = [f"# Fine-tuning: {RECIPE}, pretrained on digits 0-4, learning digits 5-9", "",
             f"Test accuracy on digits 5-9 (best epoch by validation loss), seeds {', '.join(map(str, seeds))}; "
             f"pretraining: {pretrain_epochs} epochs on 0-4. `init`: `--init PRETRAINED --init-head reset`; "
             "`freeze stem`: also `--freeze net.0.*`; `freeze features`: also `--freeze net.0.*,net.1.*` (only the "
             "output layer trains). Every arm: the recipe's optimizer (AdamW, lr 0.003, weight decay 0.01), "
             "cosine schedule and batch size 64.", "",
             "| budget | training images | epochs | optimizer steps | arm | " + " | ".join(f"seed {s}" for s in seeds)
             + " | mean |", "|---|---:|---:|---:|---|" + "---:|" * (len(seeds) + 1)]
    for budget, (epochs, _) in budgets.items():
        for arm in ARMS:
            cells = [r for r in rows if r["budget"] == budget and r["arm"] == arm]
            accs = [r["test_accuracy"] for r in cells]
            steps = -(-cells[0]["train"] // BATCH) * epochs
            lines.append(f"| {budget} | {cells[0]['train']} | {epochs} | {steps} | {arm} | "
                         + " | ".join(f"{a:.4f}" for a in accs) + f" | **{statistics.mean(accs):.4f}** |")
    pre = [r["test_accuracy"] for r in rows if r["arm"] == "pretrain 0-4"]
    lines += ["", "Pretrained runs (digits 0-4, test accuracy): " + ", ".join(f"{a:.4f}" for a in pre) + ".", "",
              "`freeze features` trains a freshly initialised output layer alone, for the same few optimizer steps: "
              "too few for a linear probe from scratch, and features learnt on 0-4 separate 5-9 only in part."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.finetune", description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    p.add_argument("--pretrain-epochs", type=int, default=30, help="epochs of the pretraining on 0-4 (default 30)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads of every run (default 1)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    budgets = BUDGETS
    t0 = time.perf_counter()
    rows = [row for seed in seeds for row in run_seed(seed, args.pretrain_epochs, budgets, args.threads)]
    text = table(rows, seeds, budgets, args.pretrain_epochs)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    info = {"recipe": RECIPE, "pretrain_classes": PRETRAIN, "target_classes": TARGET, "arms": ARMS,
            "budgets": {k: {"epochs": e, "val_size": v} for k, (e, v) in budgets.items()}, "rows": rows,
            "command": " ".join(["python -m bench.finetune", *(argv if argv is not None else sys.argv[1:])]),
            "wall_s": round(time.perf_counter() - t0, 1),
            "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
            "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    (args.out / "finetune.json").write_text(json.dumps(info, indent=2) + "\n")
    (args.out / "finetune.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
