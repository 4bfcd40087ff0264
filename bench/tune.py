"""``python -m bench tune``: choose a recipe's settings on validation scores, never on test.

``python -m bench tune RECIPE --grid KEY=V1,V2 [--grid ...] [--seeds N] [--out DIR]``
trains ``RECIPE`` for every combination of the grid over seeds 0..N-1 (default 5) with
``zoo.train(recipe, seed=s, params=..., quiet=True, out=<tmp>, **settings)``. Keys are
those ``zoo train --set`` takes: training settings (``lr``, ``epochs``, ``weight_decay``,
``patience``, ... or ``train.KEY``) go to ``zoo.train`` as keyword arguments, component
hyperparameters (``model.hidden``, ``dropout``, ...) as ``params``. Values are separated
by commas, or by semicolons where a value holds commas itself:
``--grid 'model.hidden=16;32;32,32'``.

The recipe's current default is always a candidate (added when the grid does not hold it).
The candidates are ranked by their mean validation score over the seeds (the recipe's
headline metric, as ``python -m bench quality`` picks it: accuracy, R² or MSE; the
validation split is the one each run also uses to pick its best epoch). Exact ties go to
the current default, then to the lower mean validation loss. Each candidate's gain over
the default is also given seed by seed (paired): its mean, its standard error and on how
many seeds it is better or worse. "change" is recommended only when the best candidate is
not the default and its mean gain exceeds twice that standard error.

Test scores are reported for two candidates only, the chosen one (best validation) and the
current default, and are labelled as such; the other candidates' test scores are neither
printed nor kept, and nothing is ranked or chosen on them. Because the tuning seeds are
seeds of the quality table too, they reach it only through validation scores.

It prints the ranking and writes ``tune-<recipe>.json`` (default ``bench/results``;
``--tag T`` names it ``tune-<recipe>-T.json``, for a second grid).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from . import quality, report

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
DEFAULT_SEEDS = 5
#: A candidate replaces the default only when its mean paired validation gain is above this
#: many standard errors of that gain.
MIN_GAIN_SE = 2.0


# -- the grid ------------------------------------------------------------------------------


def parse_grid(items: list[str]) -> dict[str, list[str]]:
    """``["lr=0.01,0.003", "model.hidden=16;32,32"]`` -> ``{"lr": ["0.01", "0.003"],
    "model.hidden": ["16", "32,32"]}``."""
    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--grid expects KEY=V1,V2,..., got '{item}'")
        if key in grid:
            raise ValueError(f"--grid {key} is given twice; put all its values in one --grid")
        parts = [v.strip() for v in values.split(";" if ";" in values else ",")]
        if not all(parts):
            raise ValueError(f"--grid {key}: an empty value in '{values}'")
        if len(set(parts)) != len(parts):
            raise ValueError(f"--grid {key}: a value is repeated in '{values}'")
        grid[key] = parts
    return grid


def combinations(grid: dict[str, list[str]]) -> list[dict[str, str]]:
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def split_settings(combo: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Training settings (keyword arguments of ``zoo.train``) and component params (``params``)."""
    from zoo.settings import TRAIN_PARAMS

    settings, params = {}, {}
    for key, value in combo.items():
        name = key.removeprefix("train.")
        if name in TRAIN_PARAMS and (key.startswith("train.") or "." not in key):
            if name == "seed":
                raise ValueError("--grid seed: the seeds are --seeds")
            settings[name] = TRAIN_PARAMS[name].check(name, value)
        else:
            params[key] = value
    return settings, params


def current_value(cfg: dict[str, Any], key: str) -> Any:
    """The value ``key`` (as ``--set`` names it) has in a resolved config."""
    comp, dot, name = key.partition(".")
    if dot and comp == "train":
        return cfg[name]
    if dot:
        return cfg[f"{comp}_params"].get(name)
    if key in cfg:
        return cfg[key]
    from zoo.kinds import PARTS

    for comp in PARTS:
        if key in (cfg.get(f"{comp}_params") or {}):
            return cfg[f"{comp}_params"][key]
    return None


def show(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


def comparable(cfg: dict[str, Any]) -> dict[str, Any]:
    """A resolved config without what may differ between two resolutions of the same run."""
    return {k: v for k, v in cfg.items() if k not in ("seed", "device")}


# -- training ------------------------------------------------------------------------------


def train_candidate(recipe: str, cand: dict, seeds: list[int], metric_of: Callable[[dict], str],
                    log: Callable[[str], None]) -> dict:
    """Train one candidate over the seeds; its validation figures, and its test scores kept apart."""
    import zoo

    val, val_loss, test, seconds, best_epochs = [], [], [], [], []
    metric = None
    for seed in seeds:
        workdir = Path(tempfile.mkdtemp(prefix="zoo-tune-"))
        try:
            t0 = time.perf_counter()
            run = zoo.train(recipe, seed=seed, params=cand["params"] or None, quiet=True, out=workdir / "run",
                            **cand["settings"])
            seconds.append(time.perf_counter() - t0)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        metric = metric_of(run.config)
        val.append(float(run.metrics["val"][metric]))
        val_loss.append(float(run.metrics["val"]["loss"]))
        test.append(float(run.metrics["test"][metric]))
        best_epochs.append(run.best_epoch)
        log(f"{cand['label']} seed {seed}: validation {metric} {val[-1]:.4f} in {seconds[-1]:.1f} s")
    return {"metric": metric, "val": quality.summary(val), "val_loss": quality.summary(val_loss),
            "seconds_mean": statistics.fmean(seconds), "seconds": seconds, "best_epochs": best_epochs,
            "_test": test}


def paired_gain(values: list[float], default: list[float], lower: bool) -> dict[str, Any]:
    """Seed-by-seed gain over the default (+ is better), its mean, standard error and counts."""
    diffs = [(d - v) if lower else (v - d) for v, d in zip(values, default)]
    n = len(diffs)
    se = statistics.stdev(diffs) / math.sqrt(n) if n > 1 else 0.0
    return {"mean": statistics.fmean(diffs), "se": se, "values": diffs,
            "better": sum(x > 1e-12 for x in diffs), "worse": sum(x < -1e-12 for x in diffs)}


def rank(cands: list[dict], lower: bool) -> list[dict]:
    """Best mean validation score first; exact ties to the default, then to the lower validation loss."""
    sign = 1 if lower else -1
    return sorted(cands, key=lambda c: (round(sign * c["val"]["mean"], 12), not c["is_default"],
                                        c["val_loss"]["mean"]))


# -- the report ----------------------------------------------------------------------------


def fmt_summary(s: dict) -> str:
    return f"{s['mean']:.4f} ± {s['std']:.4f}"


def fmt_gain(g: dict | None) -> str:
    if g is None:
        return "-"
    return f"{g['mean']:+.4f} ± {g['se']:.4f} ({g['better']}+/{g['worse']}-)"


RANK_COLUMNS = ("#", "settings", "validation (mean ± std)", "validation (min–max)", "gain vs default (± s.e.)",
                "val loss", "s/run", "best epoch")


def rank_rows(result: dict) -> list[tuple[str, ...]]:
    out = []
    for i, c in enumerate(result["candidates"], 1):
        label = c["label"] + (" (default)" if c["is_default"] else "") + (" [chosen]" if c["chosen"] else "")
        out.append((str(i), label, fmt_summary(c["val"]),
                    f"{c['val']['min']:.4f}–{c['val']['max']:.4f}", fmt_gain(c["gain_vs_default"]),
                    f"{c['val_loss']['mean']:.4g}", quality.fmt_seconds(c["seconds_mean"]),
                    f"{statistics.fmean(c['best_epochs']):.1f}"))
    return out


def text_report(result: dict) -> str:
    m = result["metric"]
    name = {"mse": "MSE (lower is better)", "r2": "R²"}.get(m, m)
    chosen = next(c for c in result["candidates"] if c["chosen"])
    default = next(c for c in result["candidates"] if c["is_default"])
    parts = [f"{result['recipe']}: {len(result['candidates'])} candidates over seeds "
             f"{', '.join(map(str, result['seeds']))}, ranked by mean validation {name}", "",
             quality.text_table(RANK_COLUMNS, rank_rows(result)), "",
             "gain vs default: the candidate's validation score less the default's, seed by seed (+ is better); "
             "mean ± standard error, (seeds better+/worse-).", "",
             f"best on validation (chosen): {chosen['label']}"
             + (" (the current default)" if chosen["is_default"] else ""),
             f"recommendation: {result['recommendation']} the default ({result['reason']})", "",
             "Test scores, reported for these two only (not used to choose):"]
    for label, key in (("best on validation", "chosen"), ("current default", "default")):
        t = result["test"][key]
        parts.append(f"  {label}: {t['label']}: test {name} {fmt_summary(t)} (min–max {t['min']:.4f}–"
                     f"{t['max']:.4f})")
    if chosen is default:
        parts.append("  (the chosen candidate is the current default)")
    parts += ["", *report.machine_lines(result["machine"]), f"total: {result['seconds']:.0f} s"]
    return "\n".join(parts)


# -- the command ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench tune",
        description="Rank a recipe's settings by their mean validation score over seeds (never by test); report "
                    "the test score of the chosen settings and of the current default only.")
    p.add_argument("recipe", help="the recipe to tune")
    p.add_argument("--grid", action="append", required=True, metavar="KEY=V1,V2",
                   help="a setting and its values, as --set names it (lr, epochs, weight_decay, patience, "
                        "model.hidden, ...); repeat for a grid. Separate values with ';' where a value holds "
                        "commas: 'model.hidden=16;32,32'")
    p.add_argument("--seeds", type=int, default=DEFAULT_SEEDS, help=f"seeds 0..N-1 (default {DEFAULT_SEEDS})")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where tune-RECIPE.json goes "
                   "(default: bench/results)")
    p.add_argument("--tag", help="write tune-RECIPE-TAG.json instead (a second grid for the same recipe)")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be >= 1")
    if args.tag is not None and not re.fullmatch(r"[A-Za-z0-9_.-]+", args.tag):
        parser.error("--tag: letters, digits, '.', '_' and '-' only")

    from zoo.config import resolve
    from zoo.errors import UsageError
    from zoo.registry import get_registry

    known = [e.name for e in get_registry().entries("recipe")]
    if args.recipe not in known:
        parser.error(f"unknown recipe '{args.recipe}'; choose from {', '.join(sorted(known))}")
    try:
        grid = parse_grid(args.grid)
        default_cfg = resolve(args.recipe, seed=0)
        cands = []
        for combo in combinations(grid):
            settings, params = split_settings(combo)
            cfg = resolve(args.recipe, sets=params or None, seed=0, **settings)
            cands.append({"label": " ".join(f"{k}={v}" for k, v in combo.items()), "grid": combo,
                          "settings": settings, "params": params,
                          "is_default": comparable(cfg) == comparable(default_cfg)})
    except (ValueError, UsageError) as exc:
        parser.error(str(exc))
    default_values = {k: show(current_value(default_cfg, k)) for k in grid}
    if not any(c["is_default"] for c in cands):
        cands.append({"label": " ".join(f"{k}={v}" for k, v in default_values.items()), "grid": default_values,
                      "settings": {}, "params": {}, "is_default": True})
    seeds = list(range(args.seeds))

    import os

    load_before = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:6.1f} s] {msg}", file=sys.stderr, flush=True)

    def metric_of(cfg: dict) -> str:
        return quality.metric_for(cfg, cfg["meta"]["task"])

    quality.warm_up(args.recipe, log)
    for c in cands:
        c.update(train_candidate(args.recipe, c, seeds, metric_of, log))
    metric = cands[0]["metric"]
    lower = metric in quality.LOWER_IS_BETTER
    default = next(c for c in cands if c["is_default"])
    for c in cands:
        c["gain_vs_default"] = None if c is default else paired_gain(c["val"]["values"], default["val"]["values"],
                                                                     lower)
    ranked = rank(cands, lower)
    chosen = ranked[0]
    for c in ranked:
        c["chosen"] = c is chosen
    if chosen is default:
        recommendation, reason = "keep", "the default has the best mean validation score"
    else:
        g = chosen["gain_vs_default"]
        if g["mean"] > MIN_GAIN_SE * g["se"] and g["mean"] > 0:
            recommendation = "change"
            reason = (f"mean validation gain {g['mean']:+.4f} is above {MIN_GAIN_SE:g} standard errors "
                      f"({g['se']:.4f}); better on {g['better']} of {len(seeds)} seeds")
        else:
            recommendation = "keep"
            reason = (f"the best candidate's mean validation gain {g['mean']:+.4f} is within {MIN_GAIN_SE:g} "
                      f"standard errors ({g['se']:.4f}) of the default; better on {g['better']}, worse on "
                      f"{g['worse']} of {len(seeds)} seeds")
    test = {"chosen": {"label": chosen["label"], **quality.summary(chosen["_test"])},
            "default": {"label": default["label"], **quality.summary(default["_test"])}}
    for c in cands:
        del c["_test"]  # the other candidates' test scores are not kept
    result = {
        "settings": {"command": " ".join(["python -m bench tune", *argv]), "recipe": args.recipe, "grid": grid,
                     "seeds": seeds, "default": default_values, "min_gain_se": MIN_GAIN_SE},
        "recipe": args.recipe, "metric": metric, "lower_is_better": lower, "seeds": seeds,
        "selection": "mean validation score over the seeds; ties to the default, then lower validation loss",
        "candidates": [{k: v for k, v in c.items() if k not in ("settings", "params", "metric")} for c in ranked],
        "chosen": chosen["label"], "default": default["label"],
        "recommendation": recommendation, "reason": reason,
        "test": test,
        "test_note": "test scores of the chosen candidate and of the current default only; not used to choose",
        "machine": {**report.machine_info(), "load_average_before": load_before},
        "seconds": round(time.perf_counter() - t0, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)  # written first: a closed stdout must not lose the results
    path = args.out / f"tune-{args.recipe}{'-' + args.tag if args.tag else ''}.json"
    path.write_text(json.dumps(result, indent=2, default=report._jsonable) + "\n")
    report.echo(text_report(result))
    report.echo(f"\nwrote {path} ({result['seconds']} s)")
    return 0
