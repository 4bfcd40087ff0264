"""``python -m bench [--quick] [--repeats N] [--epochs N] [--only NAME] [--out DIR] [--strict]``;
``python -m bench quality ...``, ``python -m bench tune ...``, ``python -m bench gan ...``,
``python -m bench finetune ...`` and ``python -m bench rl ...`` are their own commands."""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path

from . import FIGURES

DEFAULT_OUT = Path(__file__).resolve().parent / "results"


def parse_only(values: list[str] | None) -> tuple[str, ...]:
    if not values:
        return FIGURES
    chosen = set()
    for value in values:
        for name in filter(None, (v.strip().lower() for v in value.split(","))):
            if name.isdigit() and 1 <= int(name) <= len(FIGURES):
                name = FIGURES[int(name) - 1]
            if name not in FIGURES:
                raise argparse.ArgumentTypeError(f"--only: unknown figure '{name}'; choose from "
                                                 f"{', '.join(FIGURES)} (or 1-{len(FIGURES)})")
            chosen.add(name)
    return tuple(f for f in FIGURES if f in chosen)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="zoo's benchmark suite: the engine vs a tight loop, the DataLoader loop and scikit-learn, "
                    "start-up, the reload check, peak memory, distributed scaling, PyTorch Lightning and skorch "
                    "(the 'bench' extra), time to a test score vs scikit-learn, and the commands' latency beyond "
                    "import torch, each as a ratio (or seconds) with both sides' test scores.",
        epilog="python -m bench quality [--recipes a,b] [--seeds N] [--quick]: every recipe's test score "
               "against scikit-learn peers (see bench/quality.py). python -m bench tune RECIPE --grid KEY=V1,V2 "
               "[--grid ...] [--seeds N]: rank a recipe's settings by mean validation score (see bench/tune.py).",
    )
    p.add_argument("--quick", action="store_true",
                   help="few epochs and repeats: a smoke run (a few minutes), not figures to quote")
    p.add_argument("--repeats", type=int, help="timed runs per side (default 5; 2 with --quick)")
    p.add_argument("--epochs", type=int, help="epochs of every training figure (default: each recipe's own; "
                   "2 with --quick)")
    p.add_argument("--only", action="append", metavar="NAME",
                   help=f"run only these figures: {', '.join(FIGURES)} or their numbers; repeat or comma-separate")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where latest.json and latest.md go "
                   "(default: bench/results)")
    p.add_argument("--seed", type=int, default=0, help="seed of every training run (default 0)")
    p.add_argument("--strict", action="store_true", help="exit 3 when a target is missed")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["quality"]:  # the quality table: its own command and options
        from . import quality

        return quality.main(argv[1:])
    if argv[:1] == ["tune"]:  # choosing a recipe's settings on validation scores
        from . import tune

        return tune.main(argv[1:])
    if argv[:1] == ["gan"]:  # the GAN recipes' table over seeds
        from . import gan

        return gan.main(argv[1:])
    if argv[:1] == ["tune-search"]:  # zoo tune against the recipes' defaults, with and without pruning
        from . import search

        return search.main(argv[1:])
    if argv[:1] == ["finetune"]:  # zoo train --init: pretrained on digits 0-4, fine-tuned on 5-9, vs scratch
        from . import finetune

        return finetune.main(argv[1:])
    if argv[:1] == ["rl"]:  # the deep-Q recipes' table over seeds
        from . import rl

        return rl.main(argv[1:])
    args = parser.parse_args(argv)
    try:
        only = parse_only(args.only)
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    for name in ("repeats", "epochs"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name} must be >= 1")

    import torch

    from . import figures, report

    repeats = args.repeats or (2 if args.quick else 5)
    devices = ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",)
    settings = figures.Settings(
        repeats=repeats, epochs=args.epochs, only=only, quick=args.quick,
        startup_repeats=args.repeats or (3 if args.quick else 7),
        memory_repeats=min(repeats, 1 if args.quick else 3), devices=devices, seed=args.seed,
    )
    load_before = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:6.1f} s] {msg}", file=sys.stderr, flush=True)

    if "cuda" not in devices:
        log("no GPU available: figures 1-2 run on the CPU only")
    rows, parity, errors = [], [], {}
    if any(f in only for f in figures.TRAINING_FIGURES):  # figures 1-3 share their engine runs
        got, checks = figures.training(settings, log, errors)
        rows += got
        parity += checks
    from .scaling import scaling

    def later(module: str, attr: str):  # imported only when its figure runs
        def fn(settings, log):
            import importlib

            return getattr(importlib.import_module(f"bench.{module}"), attr)(settings, log)
        return fn

    for name, fn in (("startup", figures.startup), ("reload", figures.reload_share), ("memory", figures.memory),
                     ("scaling", scaling), ("peers", later("peers", "peers")),
                     ("quality-time", later("quality_time", "quality_time")),
                     ("latency", later("latency", "latency"))):
        if name not in only:
            continue
        try:
            rows += fn(settings, log)
        except Exception as exc:  # noqa: BLE001 - one broken figure must not hide the others
            errors[name] = f"{type(exc).__name__}: {exc}"
            log(f"{name} failed:\n{traceback.format_exc()}")
    rows.sort(key=lambda r: r["figure"])
    skipped = {}
    if "peers" in only:  # an optional peer that is not installed is said, not silently left out
        from .peers import available

        skipped = {f"peers: {peer}": hint for peer, hint in available().items() if hint}

    info = report.machine_info()
    info["load_average_before"] = load_before
    result = {
        "settings": {
            "command": " ".join(["python -m bench", *argv]), "quick": args.quick, "repeats": repeats,
            "epochs": args.epochs or (figures.QUICK_EPOCHS if args.quick else None), "only": list(only),
            "seed": args.seed, "devices": list(devices), "startup_repeats": settings.startup_repeats,
            "memory_repeats": settings.memory_repeats,
        },
        "machine": info,
        "rows": rows,
        "parity": parity,
        "errors": errors,
        "not_measured": skipped,
        "targets_met": all(r["target_met"] for r in rows),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    report.echo(report.text_report(result))
    js, md = report.write(result, args.out)
    report.echo(f"\nwrote {js} and {md} ({result['seconds']} s)")
    if errors:
        return 1
    if args.strict and not result["targets_met"]:
        return 3
    return 0
