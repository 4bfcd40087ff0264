"""Figure 7: distributed data parallel on this machine's CPUs.

- Scaling: ``zoo train digits-resnet`` on 2 processes (``--nproc 2``, gloo, one intra-op thread
  each) vs 1 process with one thread, as training throughput (samples per second of the training
  loop, per-epoch validation included, from the run's own clock in ``run.json``); the ratio is the
  speed-up, and half of it the scaling efficiency.
- Overhead: the distributed path at world size 1 (``--nproc 1 --strategy ddp``: torchrun, a
  process group of one) vs the plain engine, same thread count, as the ratio of their loop times.

Whole ``zoo train`` processes, interleaved (1, 2, 1, 2, ...); their start-up is not counted.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import tempfile
from pathlib import Path

from . import processes
from .figures import Log, Settings, row, side

RECIPE = "digits-resnet"


def _train_samples() -> int:
    from zoo.config import entries_for
    from zoo.evaluation import split_len
    from zoo.parts import load_data

    from . import workloads as w

    cfg = w.config(RECIPE, epochs=1)
    return split_len(load_data(entries_for(cfg), cfg).train)


def _run(args: list[str], out: Path, threads: int) -> tuple[float, float]:
    """One ``zoo train``: (loop seconds, test accuracy)."""
    env_threads = {"OMP_NUM_THREADS": str(threads)}
    cmd = [*processes.zoo_command(), "train", RECIPE, *args, "--set", f"threads={threads}", "--device", "cpu", "--quiet",
           "--out", str(out)]
    old = {k: os.environ.get(k) for k in env_threads}
    os.environ.update(env_threads)
    try:
        res = processes.run_process(cmd, timeout=1200)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {res.returncode}: {res.stderr.strip()[-400:]}")
    status = json.loads((out / "run.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    return float(status["seconds"]), float(metrics["test"]["accuracy"])


def scaling(settings: Settings, log: Log) -> list[dict]:
    epochs = settings.epochs_for(RECIPE) or 10
    cores = os.cpu_count() or 1
    sides = {
        "1 process": (["--epochs", str(epochs)], 1),
        "2 processes": (["--epochs", str(epochs), "--nproc", "2"], 1),
        "ddp, 1 process": (["--epochs", str(epochs), "--nproc", "1", "--strategy", "ddp"], 1),
    }
    seconds: dict[str, list[float]] = {k: [] for k in sides}
    scores: dict[str, list[dict]] = {k: [] for k in sides}
    n_train = _train_samples()
    workdir = Path(tempfile.mkdtemp(prefix="zoo-bench-scaling-"))
    try:
        for i in range(settings.repeats):
            for name, (args, threads) in sides.items():
                t, acc = _run(args, workdir / f"{name.replace(' ', '_').replace(',', '')}-{i}", threads)
                seconds[name].append(t)
                scores[name].append({"metric": "accuracy", "value": acc})
            log(f"scaling: repeat {i + 1}/{settings.repeats}: " +
                ", ".join(f"{k} {v[-1]:.3f} s" for k, v in seconds.items()))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    def rate(name: str) -> list[float]:
        return [epochs * n_train / s for s in seconds[name]]

    one, two = rate("1 process"), rate("2 processes")
    speedup = statistics.median(two) / statistics.median(one)
    notes = [f"{RECIPE}, {epochs} epochs, global batch 64 (32 per process with 2), gloo on 127.0.0.1, "
             f"1 intra-op thread per process, {cores} cores; samples/s of the training loop (validation included) "
             f"from run.json; scaling efficiency {speedup / 2:.0%}"]
    overhead = statistics.median(seconds["ddp, 1 process"]) / statistics.median(seconds["1 process"])
    return [
        row("scaling", f"{RECIPE}, cpu: 2 processes vs 1 (samples/s)",
            side("2 processes (--nproc 2)", two, "samples/s", scores["2 processes"]),
            side("1 process", one, "samples/s", scores["1 process"]),
            speedup, "2-process samples/s / 1-process samples/s", ">=", 1.0, ">= 1.0x", notes,
            workload=RECIPE, epochs=epochs, repeats=settings.repeats),
        row("scaling", f"{RECIPE}, cpu: ddp at world size 1 vs the plain engine (loop time)",
            side("--nproc 1 --strategy ddp", seconds["ddp, 1 process"], "s", scores["ddp, 1 process"]),
            side("plain engine", seconds["1 process"], "s", scores["1 process"]),
            overhead, "ddp time / plain time", "<=", 1.03, "<= 1.03x",
            ["a process group of one under torchrun: no gradient all-reduce is needed, so the network is not "
             "wrapped; what remains is the group, the per-epoch stop agreement and the sharded evaluation"],
            workload=RECIPE, epochs=epochs, repeats=settings.repeats),
    ]
