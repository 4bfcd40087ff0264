"""``python -m bench.export_parity [--recipes a,b] [--epochs 1] [--threads 1] [--out DIR]``: the export parity table.

Trains every built-in recipe briefly (``--epochs``, default 1; the deep-Q and GAN recipes with smaller epochs,
see :data:`SHORT`: parity does not depend on how well a model is trained), then exports each run with
``zoo.export`` to ONNX and to a ``torch.export`` program. Each export runs its export check (the exported file
on the run's test split, at most 2048 samples in raw units, against the run's model) with tolerance 0 here, so
that the figure recorded is the real largest absolute difference whatever it is; whether it passes the
default tolerance (1e-4 * (1 + |expected|) for ONNX, 1e-6 * (1 + |expected|) for pt2) is recorded beside it.
A model that cannot be exported is recorded with the one-line reason. Writes ``export.json`` and ``export.md``
into ``--out`` (default ``bench/results``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
#: Smaller settings for the recipes whose epoch is long (what is measured is parity, not quality).
SHORT: dict[str, dict] = {
    "cartpole-dqn": {"params": {"env_steps": 1500, "learning_starts": 500, "val_episodes": 1, "test_episodes": 2}},
    "acrobot-dqn": {"params": {"env_steps": 1500, "learning_starts": 500, "val_episodes": 1, "test_episodes": 2}},
}
#: Variants beside the recipes: a PacGAN discriminator (``pack=2``) pads a batch that is not a multiple of the
#: pack, so its forward depends on the batch size: it cannot be exported with a dynamic batch.
VARIANTS: dict[str, tuple[str, dict]] = {"ring-gan pack=2": ("ring-gan", {"pack": 2})}
DIFF = re.compile(r"differs from the run's model by up to (\S+) \(test sample (\d+), output column '([^']*)'\)")


def export_one(run_dir: Path, fmt: str) -> dict:
    """One export with tolerance 0: the largest difference, or why it failed."""
    import zoo
    from zoo.exporting import DEFAULT_TOLERANCE

    out = run_dir / f"parity.{fmt}"
    t0 = time.perf_counter()
    try:
        res = zoo.export(run_dir, fmt, out, tolerance=0.0)
        diff, sample, column = res.max_abs_diff, res.worst_sample, res.worst_column
    except zoo.ZooError as exc:
        match = DIFF.search(str(exc))
        if not match:  # not a parity failure: the model does not export
            return {"exported": False, "reason": str(exc), "seconds": round(time.perf_counter() - t0, 1)}
        diff, sample, column = float(match.group(1)), int(match.group(2)), match.group(3)
    finally:
        out.unlink(missing_ok=True)
    # the figure is printed with 3 significant digits in the error line: pass/fail at the default tolerance
    # is decided again by a real export with the default (it keeps no file either)
    try:
        zoo.export(run_dir, fmt, out)
        passes, why = True, ""
    except zoo.ZooError as exc:
        passes, why = False, str(exc)
    finally:
        out.unlink(missing_ok=True)
    return {"exported": True, "max_abs_diff": diff, "sample": sample, "column": column,
            "default_tolerance": DEFAULT_TOLERANCE[fmt], "passes_default": passes, "reason": why,
            "seconds": round(time.perf_counter() - t0, 1)}


def run_recipe(recipe: str, epochs: int, threads: int, tmp: Path) -> dict:
    import zoo

    base, params = VARIANTS.get(recipe, (recipe, {}))
    params = {**SHORT.get(base, {}).get("params", {}), **params}
    t0 = time.perf_counter()
    try:
        run = zoo.train(base, epochs=epochs, out=tmp / recipe.replace(" ", "-").replace("=", "-"), quiet=True,
                        threads=threads, device="cpu", params=params or None)
    except zoo.ZooError as exc:
        return {"recipe": recipe, "trained": False, "reason": str(exc)}
    row = {"recipe": recipe, "trained": True, "task": run.config["meta"]["task"], "model": run.config["model"],
           "train_s": round(time.perf_counter() - t0, 1)}
    for fmt in ("onnx", "pt2"):
        row[fmt] = export_one(run.dir, fmt)
        for key in ("reason",):  # the run lives in a temporary directory: name it as the command line would
            row[fmt][key] = row[fmt].get(key, "").replace(str(run.dir), "RUN_DIR")
        print(f"{recipe:24s} {fmt:4s} " + (f"max abs diff {row[fmt]['max_abs_diff']:.3g}"
                                            f"{'' if row[fmt]['passes_default'] else ' (FAILS default)'}"
                                            if row[fmt]["exported"] else f"not exported: {row[fmt]['reason']}"),
              file=sys.stderr, flush=True)
    return row


def _cell(r: dict) -> str:
    if not r.get("exported"):
        return "no: " + r.get("reason", "").removeprefix("error: ").replace("|", "\\|")
    text = f"{r['max_abs_diff']:.3g}"
    return text if r["passes_default"] else f"{text} (fails the default tolerance)"


def write_report(rows: list[dict], out: Path, args) -> None:
    import onnxruntime
    import torch

    import zoo

    env = {"zoo": zoo.__version__, "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
           "python": platform.python_version(), "machine": platform.machine(), "threads": args.threads,
           "epochs": args.epochs}
    out.mkdir(parents=True, exist_ok=True)
    (out / "export.json").write_text(json.dumps({"environment": env, "rows": rows}, indent=2) + "\n")
    lines = ["# Export parity", "",
             "`python -m bench.export_parity`: every built-in recipe trained for "
             f"{args.epochs} epoch(s) (the deep-Q recipes with 1500 environment steps), exported with `zoo export` "
             "to ONNX (torch's dynamo-based exporter, opset 20, run by onnxruntime on the CPU) and to a "
             "`torch.export` program (`torch.export.load(...).module()`), each compared with the run's model on "
             "the run's test split (at most 2048 samples, raw units, batches of 1 and 256). The figure is the "
             "largest absolute difference over every output; the default tolerances are 1e-4 * (1 + |expected|) "
             "(ONNX) and 1e-6 * (1 + |expected|) (pt2).", "",
             f"torch {env['torch']}, onnxruntime {env['onnxruntime']}, Python {env['python']}, {env['machine']}, "
             f"{env['threads']} thread(s).", "",
             "| recipe | task | output | ONNX max abs diff | pt2 max abs diff |", "| --- | --- | --- | --- | --- |"]
    names = {  # the output names zoo.exporting.output_spec gives each task
             "binary": "logits", "multiclass": "logits", "regression": "prediction",
             "reconstruction": "reconstruction", "generation": "score (discriminator)",
             "control": "action_values"}
    for r in rows:
        if not r["trained"]:
            lines.append(f"| `{r['recipe']}` | | | not trained: {r['reason']} | |")
            continue
        if r["recipe"] in VARIANTS:  # the same recipe with other parameters: say which
            lines.append(f"| `{VARIANTS[r['recipe']][0]}` with `--set "
                         + " ".join(f"{k}={v}" for k, v in VARIANTS[r["recipe"]][1].items())
                         + f"` | {r['task']} | {names.get(r['task'], 'output')} | {_cell(r['onnx'])} | "
                         f"{_cell(r['pt2'])} |")
            continue
        lines.append(f"| `{r['recipe']}` | {r['task']} | {names.get(r['task'], 'output')} | {_cell(r['onnx'])} | "
                     f"{_cell(r['pt2'])} |")
    (out / "export.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.export_parity", description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", default=None, help="comma-separated recipes (default: every built-in one)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    from zoo.registry import get_registry

    recipes = args.recipes.split(",") if args.recipes else sorted(get_registry().names("recipe")) + list(VARIANTS)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for recipe in recipes:
            rows.append(run_recipe(recipe, args.epochs, args.threads, Path(tmp)))
    write_report(rows, args.out, args)
    print(f"wrote {args.out / 'export.md'} and {args.out / 'export.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
