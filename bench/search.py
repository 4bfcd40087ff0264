"""``python -m bench tune-search``: does ``zoo tune`` find better settings than a recipe's default, and
how many epochs does pruning save?

``python -m bench tune-search [--recipes moons-mlp,diabetes-mlp] [--seeds 0,1,2] [--trials 30]
[--pruner hyperband|median] [--objective metric|monitor] [--tag T] [--out DIR] [--quick]``

For each recipe and seed ``s``:

- the default: ``zoo.train(recipe, seed=s)``, its validation and test score (the recipe's headline
  metric, as ``python -m bench quality`` picks it: accuracy, R² or MSE);
- a search with pruning: ``zoo.tune(recipe, trials=N, seed=s, pruner=...)`` over the default space
  (``zoo tune RECIPE --print-space``), every trial trained with seed ``s`` (the default's split) and
  monitoring the validation headline metric (``monitor=val_<metric>``: the objective is the figure
  compared), TPE seeded with ``s``;
- the same search without pruning (``pruner="none"``, same sampler seed and space).

The best trial of each search (chosen on validation only) is then re-evaluated on the test split from
its saved weights (``zoo.evaluate(run_dir, split="test")``); no other trial's test score is read.
Epochs are the epochs every trial of a search actually trained (a pruned trial stops early).

It prints a table and writes ``search.json`` and ``search.md`` (default ``bench/results``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from . import quality, report

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
DEFAULT_RECIPES = ("moons-mlp", "diabetes-mlp")


def _search(recipe: str, seed: int, trials: int, pruner: str, metric: str, workdir: Path, quick: bool,
            log: Callable[[str], None], objective: str = "metric") -> dict[str, Any]:
    import zoo

    t0 = time.perf_counter()
    fixed: dict[str, Any] = {"threads": 1}
    if objective == "metric":
        fixed["monitor"] = f"val_{metric}"
    if quick:
        fixed["epochs"] = 2
    summary = zoo.tune(recipe, trials=trials, seed=seed, pruner=pruner, params=fixed, dir=workdir / pruner,
                       study=f"{recipe}-{seed}-{pruner}", plots=False, quiet=True)
    best = summary.best
    run_dir = Path(best.run_dir)
    saved = json.loads((run_dir / "metrics.json").read_text())
    test = zoo.evaluate(run_dir, split="test", device="cpu")
    out = {"pruner": pruner, "best_trial": best.number, "best_params": best.params,
           "val": float(saved["val"][metric]), "test": float(test[metric]),
           "test_saved": float(saved["test"][metric]), "epochs": summary.epochs_trained,
           "epochs_planned": summary.epochs_planned, "counts": summary.counts,
           "seconds": round(time.perf_counter() - t0, 1)}
    log(f"{recipe} seed {seed} search ({pruner}): best trial {best.number} val {metric} {out['val']:.4f} test "
        f"{out['test']:.4f}; {out['epochs']} epochs of {out['epochs_planned']} ({out['seconds']} s)")
    return out


def measure(recipe: str, seed: int, trials: int, pruner: str, quick: bool, log: Callable[[str], None],
            objective: str = "metric") -> dict:
    import zoo

    workdir = Path(tempfile.mkdtemp(prefix="zoo-search-"))
    try:
        t0 = time.perf_counter()
        settings: dict[str, Any] = {"threads": 1}
        if quick:
            settings["epochs"] = 2
        run = zoo.train(recipe, seed=seed, quiet=True, out=workdir / "default", **settings)
        metric = quality.metric_for(run.config, run.config["task"])
        default = {"val": float(run.metrics["val"][metric]), "test": float(run.metrics["test"][metric]),
                   "epochs": len(run.history), "seconds": round(time.perf_counter() - t0, 1)}
        log(f"{recipe} seed {seed} default: val {metric} {default['val']:.4f} test {default['test']:.4f}")
        pruned = _search(recipe, seed, trials, pruner, metric, workdir, quick, log, objective)
        full = _search(recipe, seed, trials, "none", metric, workdir, quick, log, objective)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {"recipe": recipe, "seed": seed, "metric": metric, "default": default, "pruned": pruned, "full": full,
            "epochs_saved": 1 - pruned["epochs"] / full["epochs"]}


def _better(metric: str, a: float, b: float) -> float:
    """How much better ``a`` is than ``b`` (+ is better)."""
    return b - a if metric in quality.LOWER_IS_BETTER else a - b


def aggregate(rows: list[dict]) -> list[dict]:
    out = []
    for recipe in dict.fromkeys(r["recipe"] for r in rows):
        rs = [r for r in rows if r["recipe"] == recipe]
        metric = rs[0]["metric"]
        mean = lambda f: statistics.fmean(f(r) for r in rs)  # noqa: E731
        out.append({
            "recipe": recipe, "metric": metric, "seeds": [r["seed"] for r in rs],
            "default_val": mean(lambda r: r["default"]["val"]), "default_test": mean(lambda r: r["default"]["test"]),
            "pruned_val": mean(lambda r: r["pruned"]["val"]), "pruned_test": mean(lambda r: r["pruned"]["test"]),
            "full_val": mean(lambda r: r["full"]["val"]), "full_test": mean(lambda r: r["full"]["test"]),
            "val_gain": mean(lambda r: _better(metric, r["pruned"]["val"], r["default"]["val"])),
            "test_gain": mean(lambda r: _better(metric, r["pruned"]["test"], r["default"]["test"])),
            "val_better_seeds": sum(_better(metric, r["pruned"]["val"], r["default"]["val"]) > 0 for r in rs),
            "test_not_worse_seeds": sum(_better(metric, r["pruned"]["test"], r["default"]["test"]) >= 0 for r in rs),
            "epochs_pruned": sum(r["pruned"]["epochs"] for r in rs),
            "epochs_full": sum(r["full"]["epochs"] for r in rs),
            "epochs_saved": 1 - sum(r["pruned"]["epochs"] for r in rs) / sum(r["full"]["epochs"] for r in rs),
        })
    return out


COLUMNS = ("recipe", "seed", "metric", "default val", "default test", "search val (pruned)", "search test (pruned)",
           "search val (no pruning)", "search test (no pruning)", "epochs pruned / not", "saved")


def table_rows(result: dict) -> list[tuple[str, ...]]:
    out = []
    for r in result["rows"]:
        out.append((r["recipe"], str(r["seed"]), r["metric"], f"{r['default']['val']:.4f}",
                    f"{r['default']['test']:.4f}", f"{r['pruned']['val']:.4f}", f"{r['pruned']['test']:.4f}",
                    f"{r['full']['val']:.4f}", f"{r['full']['test']:.4f}",
                    f"{r['pruned']['epochs']} / {r['full']['epochs']}", f"{r['epochs_saved']:.0%}"))
    for a in result["summary"]:
        out.append((f"**{a['recipe']}**", "mean", a["metric"], f"{a['default_val']:.4f}", f"{a['default_test']:.4f}",
                    f"{a['pruned_val']:.4f}", f"{a['pruned_test']:.4f}", f"{a['full_val']:.4f}",
                    f"{a['full_test']:.4f}", f"{a['epochs_pruned']} / {a['epochs_full']}", f"{a['epochs_saved']:.0%}"))
    return out


def verdict_lines(result: dict) -> list[str]:
    lines = []
    n = len(result["settings"]["seeds"])
    for a in result["summary"]:
        lines.append(f"{a['recipe']}: search with pruning vs default, validation {a['metric']} "
                     f"{a['val_gain']:+.4f} (better on {a['val_better_seeds']}/{n} seeds), test {a['test_gain']:+.4f} "
                     f"(not worse on {a['test_not_worse_seeds']}/{n} seeds); pruning saved {a['epochs_saved']:.0%} "
                     f"of the epochs ({a['epochs_pruned']} vs {a['epochs_full']})")
    return lines


def markdown(result: dict) -> str:
    head = "| " + " | ".join(COLUMNS) + " |\n| " + " | ".join("---" for _ in COLUMNS) + " |\n"
    body = "".join("| " + " | ".join(r) + " |\n" for r in table_rows(result))
    s = result["settings"]
    return (f"# zoo tune: search vs default\n\n`{s['command']}` ({s['trials']} trials, pruner {s['pruner']}, "
            f"seeds {', '.join(map(str, s['seeds']))}; objective: {s['objective']}; {result['seconds']:.0f} s)"
            f"\n\n{head}{body}\n"
            + "\n".join(f"- {line}" for line in verdict_lines(result)) + "\n\n"
            + "\n".join(report.machine_lines(result["machine"])) + "\n")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench tune-search",
                                description="zoo tune (with and without pruning) against each recipe's default, "
                                            "chosen on validation, re-evaluated on test; epochs saved by pruning.")
    p.add_argument("--recipes", default=",".join(DEFAULT_RECIPES), help="comma-separated recipes")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    p.add_argument("--trials", type=int, default=30, help="trials per search (default 30)")
    p.add_argument("--pruner", default="hyperband", choices=("hyperband", "median"),
                   help="the pruned search's pruner (default hyperband, zoo tune's default)")
    p.add_argument("--objective", choices=("metric", "monitor"), default="metric",
                   help="what the searches optimise: the validation headline metric (monitor=val_<metric>, the "
                        "figure compared; default) or the recipe's own monitor (val_loss: zoo tune's default)")
    p.add_argument("--tag", help="write search-TAG.json and search-TAG.md instead")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where search.json and search.md go")
    p.add_argument("--quick", action="store_true", help="2 epochs a run: checks that it runs, figures not to quote")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    recipes = [r.strip() for r in args.recipes.split(",") if r.strip()]
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    import os

    load_before = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:7.1f} s] {msg}", file=sys.stderr, flush=True)

    rows = []
    for recipe in recipes:
        for seed in seeds:
            rows.append(measure(recipe, seed, args.trials, args.pruner, args.quick, log, args.objective))
    result = {
        "settings": {"command": " ".join(["python -m bench tune-search", *argv]), "recipes": recipes, "seeds": seeds,
                     "trials": args.trials, "pruner": args.pruner, "quick": args.quick,
                     "objective": ("the validation headline metric (monitor=val_<metric>) of each trial's run"
                                   if args.objective == "metric" else "the recipe's own monitor (val_loss)"),
                     "space": "zoo tune's default space (zoo tune RECIPE --print-space)"},
        "rows": rows, "summary": aggregate(rows),
        "machine": {**report.machine_info(), "load_average_before": load_before},
        "seconds": round(time.perf_counter() - t0, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"search-{args.tag}" if args.tag else "search"
    js, md = args.out / f"{stem}.json", args.out / f"{stem}.md"
    js.write_text(json.dumps(result, indent=2, default=report._jsonable) + "\n")
    md.write_text(markdown(result))
    report.echo(quality.text_table(COLUMNS, table_rows(result)))
    report.echo("\n" + "\n".join(verdict_lines(result)))
    report.echo(f"\nwrote {js} and {md} ({result['seconds']} s)")
    return 0
