"""The figures: each measures two sides and returns report rows (see :func:`row`).

A row holds both sides' medians and samples, the ratio with what it means, the target
and whether it was met, and the test score each side reached (``None`` where a figure
has no model, as for start-up).
"""

from __future__ import annotations

import gc
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from . import processes
from .processes import ProcessResult

#: Training workloads and the figures that use them. The engine's runs of one workload
#: are shared by its figures: all sides of a workload are interleaved in one schedule.
WORKLOADS = {
    "regression-mlp": ("tight", "dataloader", "sklearn"),
    "digits-cnn": ("tight", "dataloader"),
    "moons-mlp": ("sklearn",),
}
TRAINING_FIGURES = ("tight", "dataloader", "sklearn")
QUICK_EPOCHS = 2
#: A score within this of the other side's counts as equal (MSE: relative; accuracy: absolute).
SCORE_TOLERANCE = {"mse": 0.01, "accuracy": 0.005}

TITLES = {
    "tight": "engine vs tight loop",
    "dataloader": "engine vs DataLoader loop",
    "sklearn": "engine vs scikit-learn",
    "startup": "start-up vs import torch",
    "reload": "reload check share of a run",
    "memory": "peak memory vs by hand",
    "scaling": "distributed data parallel",
    "peers": "engine vs Lightning and skorch",
    "quality-time": "time to quality vs scikit-learn",
    "latency": "whole-process latency",
}
NUMBERS = {key: i + 1 for i, key in enumerate(TITLES)}
SPEEDUP = "other time / zoo time (> 1: zoo faster)"


@dataclass
class Settings:
    repeats: int
    epochs: int | None  # None: each recipe's own
    only: tuple[str, ...]
    quick: bool = False
    startup_repeats: int = 7
    memory_repeats: int = 3
    devices: tuple[str, ...] = ("cpu",)
    seed: int = 0

    def epochs_for(self, recipe: str) -> int | None:
        if self.epochs is not None:
            return self.epochs
        return QUICK_EPOCHS if self.quick else None


Log = Callable[[str], None]


# -- rows ----------------------------------------------------------------------------------


def side(label: str, values: list[float], unit: str, scores: list[dict] | None = None, **extra: Any) -> dict:
    out = {"label": label, "value": statistics.median(values), "unit": unit, "samples": values}
    out["score"] = _score(scores) if scores else None
    out.update(extra)
    return out


def _score(scores: list[dict]) -> dict:
    values = [s["value"] for s in scores]
    out = {"metric": scores[0]["metric"], "value": statistics.median(values)}
    if max(values) != min(values):
        out["range"] = [min(values), max(values)]
    return out


def row(key: str, label: str, zoo: dict, other: dict, ratio: float, ratio_def: str, op: str, bound: float,
        target_text: str, notes: list[str] | None = None, **extra: Any) -> dict:
    met = ratio >= bound if op == ">=" else ratio <= bound if op == "<=" else ratio < bound
    return {"figure": NUMBERS[key], "key": key, "title": TITLES[key], "label": label, "zoo": zoo, "other": other,
            "ratio": ratio, "ratio_def": ratio_def, "target": {"op": op, "value": bound, "text": target_text},
            "target_met": bool(met), "notes": notes or [], **extra}


def score_not_worse(zoo: dict, other: dict) -> bool:
    metric, a, b = zoo["metric"], zoo["value"], other["value"]
    tol = SCORE_TOLERANCE.get(metric, 0.0)
    if metric == "mse":
        return a <= b * (1 + tol)
    return a >= b - tol


def device_label(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device


# -- figures 1-3: training -----------------------------------------------------------------


def training(settings: Settings, log: Log, errors: dict[str, str]) -> tuple[list[dict], list[dict]]:
    """Figures 1-3 on every workload and device they apply to; returns (rows, parity checks).

    A workload that fails is recorded in ``errors`` and the others still run.
    """
    rows: list[dict] = []
    parity: list[dict] = []
    wanted = [f for f in TRAINING_FIGURES if f in settings.only]
    for device in settings.devices:
        for recipe, figs in WORKLOADS.items():
            figs = [f for f in figs if f in wanted and not (f == "sklearn" and device != "cpu")]
            if not figs:
                continue
            try:
                got, checks = _workload(settings, log, recipe, device, figs)
            except Exception as exc:  # noqa: BLE001 - one broken workload must not hide the others
                errors[f"{'/'.join(figs)} {recipe} {device}"] = f"{type(exc).__name__}: {exc}"
                log(f"{recipe} on {device} failed:\n{traceback.format_exc()}")
                continue
            rows += got
            parity += checks
    return rows, parity


def _workload(settings: Settings, log: Log, recipe: str, device: str, figs: list[str]) -> tuple[list, list]:
    """One workload on one device: all its sides interleaved, then a row per figure and phase."""
    from . import workloads as w

    rows: list[dict] = []
    parity: list[dict] = []
    where = f"{recipe} on {device_label(device)}"
    cfg = w.config(recipe, epochs=settings.epochs_for(recipe), device=device, seed=settings.seed,
                   schedule="none")
    log(f"{where}: {cfg['epochs']} epochs, batch {cfg['batch_size']}, {settings.repeats} repeats "
        f"({', '.join(figs)})")
    engine_opt, threads = w.probe_engine(cfg)
    make_opt, opt_desc = w.same_optimizer(engine_opt, cfg)
    sides: dict[str, Callable[[], w.Result]] = {"engine": lambda: w.run_engine(cfg)}
    if "tight" in figs:
        sides["tight"] = lambda: w.run_tight(cfg, threads=threads, make_optimizer=make_opt)
    if "dataloader" in figs:
        sides["guide"] = lambda: w.run_guide(cfg)
    if "sklearn" in figs:
        sides["sklearn"] = lambda: w.run_sklearn(cfg)
    if not settings.quick:  # one epoch of each side first: imports, kernels, allocator
        warm_cfg = {**cfg, "epochs": 1}
        warm = {"engine": lambda: w.run_engine(warm_cfg), "guide": lambda: w.run_guide(warm_cfg),
                "tight": lambda: w.run_tight(warm_cfg, threads=threads, make_optimizer=make_opt),
                "sklearn": lambda: w.run_sklearn(warm_cfg)}
        for name in sides:
            warm[name]()
    res = interleave(sides, settings.repeats, log, where)
    common = {"workload": recipe, "device": device_label(device), "epochs": cfg["epochs"],
              "batch_size": cfg["batch_size"], "repeats": settings.repeats}
    eng = res["engine"]
    zoo_e2e = side("zoo engine", [r.seconds for r in eng], "s", [r.score for r in eng],
                   threads=threads, optimizer=opt_desc, breakdown=_breakdown(eng),
                   last_epoch_score=_score([r.extra["last_epoch_score"] for r in eng]))
    # the engine's optimizer steps are timed by wrapping Trainer.train_epoch; without it, no "steps" rows
    steps = all(r.train_seconds is not None for r in eng)
    zoo_steps = side("zoo engine", [r.train_seconds for r in eng], "s", [r.score for r in eng]) if steps else None
    if "tight" in figs:
        tight = res["tight"]
        check = parity_check(cfg, eng, tight, make_opt, opt_desc, threads, log, where)
        parity.append(check)
        note = [f"weights {'bit-identical' if check['identical'] else 'DIFFER'} (see parity)",
                f"both: {opt_desc}, {threads} thread(s)"]
        rows.append(row("tight", f"{recipe}, {device_label(device)}: end to end", zoo_e2e,
                        side("tight loop", [r.seconds for r in tight], "s", [r.score for r in tight]),
                        _ratio(tight, eng), SPEEDUP, ">=", 1.0, ">= 1.0x", note, phase="end to end",
                        **common))
        if steps:
            rows.append(row("tight", f"{recipe}, {device_label(device)}: training steps only", zoo_steps,
                            side("tight loop", [r.train_seconds for r in tight], "s", [r.score for r in tight]),
                            _ratio(tight, eng, "train_seconds"), SPEEDUP, ">=", 1.0, ">= 1.0x",
                            ["forward, backward and step of every batch, summed over epochs"],
                            phase="training steps", **common))
    if "dataloader" in figs:
        guide = res["guide"]
        note = [f"guide: {guide[0].extra['optimizer']}, {guide[0].extra['threads']} thread(s)"]
        rows.append(row("dataloader", f"{recipe}, {device_label(device)}: end to end", zoo_e2e,
                        side("DataLoader loop", [r.seconds for r in guide], "s", [r.score for r in guide]),
                        _ratio(guide, eng), SPEEDUP, ">=", 2.0, ">= 2.0x", note, phase="end to end",
                        **common))
        if steps:
            rows.append(row("dataloader", f"{recipe}, {device_label(device)}: training steps only", zoo_steps,
                            side("DataLoader loop", [r.train_seconds for r in guide], "s",
                                 [r.score for r in guide]),
                            _ratio(guide, eng, "train_seconds"), SPEEDUP, ">=", 2.0, ">= 2.0x",
                            phase="training steps", **common))
    if "sklearn" in figs:
        sk = res["sklearn"]
        name = "MLPRegressor" if eng[0].score["metric"] == "mse" else "MLPClassifier"
        sk_side = side(f"scikit-learn {name}", [r.seconds for r in sk], "s", [r.score for r in sk],
                       n_iter=sk[0].extra["n_iter"], dtype=sk[0].extra["dtype"], params=sk[0].extra["params"])
        ratio = _ratio(sk, eng)
        better = score_not_worse(zoo_e2e["score"], sk_side["score"])
        notes = [f"scikit-learn ran {sk[0].extra['n_iter']} epochs in {sk[0].extra['dtype']}",
                 f"zoo score {'equal or better' if better else 'WORSE'} (tolerance "
                 f"{SCORE_TOLERANCE.get(zoo_e2e['score']['metric'])})"]
        if name == "MLPRegressor":
            notes.append("scikit-learn fits targets standardised like the engine's, predictions mapped back")
        r = row("sklearn", f"{recipe}: engine vs {name}", zoo_e2e, sk_side, ratio, SPEEDUP, ">=", 1.0,
                ">= 1.0x with equal or better score", notes, phase="end to end", score_not_worse=better,
                **common)
        r["target_met"] = r["target_met"] and better
        rows.append(r)
    return rows, parity


def interleave(sides: dict[str, Callable], repeats: int, log: Log, where: str) -> dict[str, list]:
    """Run the sides in turn, A B C A B C ..., so machine drift touches each alike."""
    out: dict[str, list] = {name: [] for name in sides}
    for i in range(repeats):
        for name, fn in sides.items():
            out[name].append(fn())
        log(f"{where}: repeat {i + 1}/{repeats}: " + ", ".join(f"{n} {out[n][-1].seconds:.3f} s" for n in sides))
        gc.collect()
    return out


def _ratio(other: list, zoo: list, attr: str = "seconds") -> float:
    return statistics.median(getattr(r, attr) for r in other) / statistics.median(getattr(r, attr) for r in zoo)


def _breakdown(results: list) -> dict[str, float | None]:
    keys = results[0].extra["breakdown"].keys()
    out = {}
    for k in keys:
        vals = [r.extra["breakdown"][k] for r in results]
        out[k] = None if any(v is None for v in vals) else statistics.median(vals)
    return out


# -- weight parity (figure 1) --------------------------------------------------------------


def compare(a: dict, b: dict) -> dict:
    import torch

    differ = [k for k in a if k not in b or a[k].shape != b[k].shape or not torch.equal(a[k], b[k])]
    differ += [k for k in b if k not in a]
    max_diff = max((float((a[k].double() - b[k].double()).abs().max()) for k in differ
                    if k in a and k in b and a[k].shape == b[k].shape and a[k].numel()), default=0.0)
    return {"identical": not differ, "tensors": len(a), "differing": differ, "max_abs_diff": max_diff}


def parity_check(cfg: dict, eng: list, tight: list, make_opt, opt_desc: str, threads: int, log: Log,
                 where: str) -> dict:
    """Are the engine's final (last-epoch) weights bit-identical to the tight loop's?"""
    from . import workloads as w

    main = compare(eng[0].state, tight[0].state)
    check = {"workload": cfg["recipe"], "device": device_label(cfg["device"]), "epochs": cfg["epochs"],
             "seed": cfg["seed"], "optimizer": opt_desc, "threads": threads, "checked": True, **main,
             "engine_repeatable": all(compare(eng[0].state, r.state)["identical"] for r in eng[1:]),
             "tight_repeatable": all(compare(tight[0].state, r.state)["identical"] for r in tight[1:])}
    if not opt_desc.startswith("torch.optim."):
        ref = w.torch_fused_optimizer(cfg)
        if ref is not None:
            other = w.run_tight(cfg, threads=threads, make_optimizer=ref[0])
            check["vs_torch_fused"] = {"optimizer": ref[1], **compare(eng[0].state, other.state)}
    if not main["identical"]:
        check["diagnosis"] = diagnose(cfg, threads, make_opt)
    log(f"{where}: weights {'bit-identical' if main['identical'] else 'differ'} ({opt_desc})")
    return check


def diagnose(cfg: dict, threads: int, make_opt) -> list[str]:
    """Where engine and tight loop part: initial weights, one epoch, a single thread."""
    from zoo import engine

    from . import workloads as w

    found = []
    workdir = Path(tempfile.mkdtemp(prefix="zoo-bench-"))
    try:
        trainer = engine.Trainer(cfg, None, out=workdir / "run")
        init = compare(w.weights(trainer.model.net),
                       w.run_tight(cfg, threads=threads, make_optimizer=make_opt, epochs=0).state)
        found.append("initial weights: " + ("identical" if init["identical"]
                                            else f"differ in {', '.join(init['differing'])} (seeding or model)"))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    def verdict(c: dict) -> str:
        return "identical" if c["identical"] else f"differ (max abs diff {c['max_abs_diff']:.3g})"

    one = {**cfg, "epochs": 1}
    found.append("after 1 epoch: " + verdict(
        compare(w.run_engine(one).state, w.run_tight(one, threads=threads, make_optimizer=make_opt).state)))
    if threads != 1:
        single = {**cfg, "threads": 1}
        found.append("both on 1 thread: " + verdict(
            compare(w.run_engine(single).state, w.run_tight(single, threads=1, make_optimizer=make_opt).state)))
    return found


# -- figure 4: start-up --------------------------------------------------------------------


def startup(settings: Settings, log: Log) -> list[dict]:
    zoo = processes.zoo_command()
    cmds = {"import torch": [sys.executable, "-c", "import torch"], "zoo list": [*zoo, "list"],
            "zoo --help": [*zoo, "--help"]}
    times: dict[str, list[float]] = {name: [] for name in cmds}
    for _ in range(settings.startup_repeats):  # torch and zoo are in the page cache: this process imported them
        for name, cmd in cmds.items():
            res = processes.run_process(cmd, timeout=120)
            if res.returncode != 0:
                raise RuntimeError(f"{name} ({' '.join(cmd)}) exited {res.returncode}: {res.stderr.strip()[-300:]}")
            times[name].append(res.seconds)
    log("start-up: " + ", ".join(f"{n} {statistics.median(t):.3f} s" for n, t in times.items()))
    torch_side = side('python -c "import torch"', times["import torch"], "s")
    rows = []
    for name in ("zoo list", "zoo --help"):
        ratio = statistics.median(times[name]) / torch_side["value"]
        rows.append(row("startup", f"{name} vs import torch", side(name, times[name], "s", command=cmds[name]),
                        torch_side, ratio, "zoo time / import torch time", "<=", 0.2, "<= 0.2x",
                        ["whole processes; no model, so no score"], repeats=settings.startup_repeats))
    return rows


# -- figure 5: the reload check ------------------------------------------------------------


def reload_share(settings: Settings, log: Log) -> list[dict]:
    import torch

    from . import workloads as w

    cfg = w.config("regression-mlp", epochs=settings.epochs_for("regression-mlp"), device="cpu", seed=settings.seed)
    if not settings.quick:
        w.run_engine({**cfg, "epochs": 1})
    totals, checks, finishes, scores = [], [], [], []
    from zoo.evaluation import head_inputs, raw_inputs
    from zoo.saved import RELOAD_CHECK_SAMPLES as n, reload_check
    for _ in range(settings.repeats):
        res = w.run_engine(cfg, keep=True)
        trainer, run = res.objects["trainer"], res.objects["run"]
        threads_before = torch.get_num_threads()
        try:
            X = raw_inputs(run.model, head_inputs(trainer.splits.test, n).to(trainer.strategy.device))
            torch.set_num_threads(trainer.cfg.get("threads") or threads_before)  # as inside the run
            times = []
            for _ in range(3):  # the same call the engine makes after saving, on the finished run
                t = time.perf_counter()
                reload_check(run.model, run.dir, trainer.combo, trainer.cfg, X)
                times.append(time.perf_counter() - t)
        finally:
            torch.set_num_threads(threads_before)
            shutil.rmtree(res.objects["workdir"], ignore_errors=True)
        totals.append(res.seconds)
        checks.append(statistics.median(times))
        finishes.append(res.extra["breakdown"]["finish"])
        scores.append(res.score)
    share = statistics.median(checks) / statistics.median(totals)
    log(f"reload check: {statistics.median(checks) * 1000:.2f} ms of a {statistics.median(totals):.3f} s run")
    note = [f"`zoo train regression-mlp` in process ({cfg['epochs']} epochs, {cfg['schedule']} schedule); "
            f"reload_check on {n} test samples, timed on the finished run with the run's threads"]
    if all(f is not None for f in finishes):
        note.append(f"the whole finish step (final metrics, save, reload check): {statistics.median(finishes):.3f} s")
    return [row("reload", "reload check / zoo train regression-mlp",
                side("reload check", checks, "s", scores), side("whole run", totals, "s", scores),
                share, "reload check time / run time", "<", 0.03, "< 3%", note, epochs=cfg["epochs"],
                repeats=settings.repeats)]


# -- figure 6: memory ----------------------------------------------------------------------

TEST_MSE = re.compile(r"^test\s.*?\bmse ([-+0-9.eE]+|nan|inf)", re.M)


def memory(settings: Settings, log: Log) -> list[dict]:
    from . import handwritten

    epochs = settings.epochs_for("regression-mlp") or 60
    script = Path(handwritten.__file__)
    zoo_rss, hand_rss, zoo_time, hand_time, zoo_scores, hand_scores = [], [], [], [], [], []
    dynamo = None
    workdir = Path(tempfile.mkdtemp(prefix="zoo-bench-"))
    try:
        for i in range(settings.memory_repeats):
            z = processes.run_process([*processes.zoo_command(), "train", "regression-mlp", "--epochs", str(epochs),
                                       "--device", "cpu", "--quiet", "--out", str(workdir / f"zoo-{i}")], memory=True)
            h = processes.run_process([sys.executable, str(script), "--epochs", str(epochs),
                                       "--out", str(workdir / f"hand-{i}")], memory=True)
            for name, res in (("zoo train", z), ("hand-written script", h)):
                if res.returncode != 0:
                    raise RuntimeError(f"{name} exited {res.returncode}: {res.stderr.strip()[-300:]}")
            zoo_rss.append(z.max_rss_bytes / 2**20)
            hand_rss.append(h.max_rss_bytes / 2**20)
            zoo_time.append(z.seconds)
            hand_time.append(h.seconds)
            zoo_scores.append({"metric": "mse", "value": _zoo_test_mse(z)})
            hand_out = json.loads(h.stdout.strip().splitlines()[-1])
            hand_scores.append({"metric": "mse", "value": float(hand_out["test_mse"])})
            dynamo = hand_out.get("imported_torch_dynamo")
            log(f"memory: repeat {i + 1}/{settings.memory_repeats}: zoo {zoo_rss[-1]:.1f} MiB, "
                f"by hand {hand_rss[-1]:.1f} MiB")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    ratio = statistics.median(zoo_rss) / statistics.median(hand_rss)
    notes = [f"child processes started by a small launcher, ru_maxrss of its only child (see "
             f"bench/processes.py); {epochs} epochs, recipe settings, --device cpu"]
    if dynamo:
        notes.append("the hand-written script's torch.optim.Adam imported torch._dynamo (and sympy) on its "
                     "first step, as torch.optim does")
    return [row("memory", "zoo train regression-mlp vs the same by hand (peak RSS)",
                side("zoo train regression-mlp", zoo_rss, "MiB", zoo_scores, wall_seconds=zoo_time),
                side("bench/handwritten.py", hand_rss, "MiB", hand_scores, wall_seconds=hand_time),
                ratio, "zoo peak RSS / hand-written peak RSS", "<=", 1.1, "<= 1.1x", notes,
                epochs=epochs, repeats=settings.memory_repeats)]


def _zoo_test_mse(res: ProcessResult) -> float:
    m = TEST_MSE.search(res.stdout)
    if not m:
        raise RuntimeError(f"no test mse in zoo train's output: {res.stdout.strip()[-300:]}")
    return float(m.group(1))
