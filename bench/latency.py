"""Figure 10: the commands users type most, as whole processes, against ``import torch``.

A user waits for the whole process: the interpreter, ``import torch``, zoo's own imports
and plugins, the work, and the exit. For ``zoo train regression-mlp``, ``zoo eval``,
``zoo predict`` and ``zoo plot`` on one saved run this times

- the command as a process (``zoo ...``, started as ``zoo list`` is in figure 4);
- ``python -c "import torch"``, the floor any PyTorch tool pays;
- the same work in this process, where everything is imported already: ``zoo.train``,
  ``zoo.evaluate``, ``zoo.predict`` (the CSV read and written as the command does) and
  ``zoo.plots.plot_run``;

interleaved, and reports the overhead in seconds: the median over repeats of process time -
import torch - in-process time, each repeat's three timed one after the other. A ``python -X importtime`` run of each command names the modules it imports
beyond torch's and what they cost (self time, summed per top-level package).
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable

from . import processes
from .figures import Log, Settings, row, side

#: Seconds a command may add beyond ``import torch`` and its own work.
TARGETS = {"train": 0.5, "eval": 0.5, "predict": 0.5, "plot": 1.0}
PREDICT_ROWS = 1000
RECIPE = "regression-mlp"


def latency(settings: Settings, log: Log) -> list[dict]:
    import numpy as np

    import zoo

    workdir = Path(tempfile.mkdtemp(prefix="zoo-bench-"))
    try:
        epochs = 2 if settings.quick else None  # the recipe's own (60) unless --quick
        epochs = settings.epochs or epochs
        run_dir = workdir / "run"
        zoo.train(RECIPE, device="cpu", quiet=True, out=str(run_dir), **({"epochs": epochs} if epochs else {}))
        inputs = workdir / "inputs.csv"
        np.savetxt(inputs, np.linspace(0.0, 20.0, PREDICT_ROWS).reshape(-1, 1), delimiter=",", fmt="%.6f")
        zoo_cmd = processes.zoo_command()
        extra = ["--epochs", str(epochs)] if epochs else []
        counter = iter(range(10**6))

        def fresh_out() -> str:
            return str(workdir / f"train-{next(counter)}")

        commands: dict[str, Callable[[], list[str]]] = {
            "import torch": lambda: [sys.executable, "-c", "import torch"],
            "train": lambda: [*zoo_cmd, "train", RECIPE, "-q", "--device", "cpu", *extra, "--out", fresh_out()],
            "eval": lambda: [*zoo_cmd, "eval", str(run_dir), "--device", "cpu"],
            "predict": lambda: [*zoo_cmd, "predict", str(run_dir), "-i", str(inputs), "-o",
                                str(workdir / "predictions.csv"), "--device", "cpu"],
            "plot": lambda: [*zoo_cmd, "plot", str(run_dir)],
        }
        in_process: dict[str, Callable[[], object]] = {
            "train": lambda: zoo.train(RECIPE, device="cpu", quiet=True, out=fresh_out(),
                                       **({"epochs": epochs} if epochs else {})),
            "eval": lambda: zoo.evaluate(str(run_dir), device="cpu"),
            "predict": lambda: _predict_csv(run_dir, inputs, workdir / "predictions-in-process.csv"),
            "plot": lambda: _plot(run_dir),
        }
        repeats = settings.startup_repeats
        for fn in in_process.values():  # warm: every module imported, fonts cached, as for the processes
            fn()
        proc_times: dict[str, list[float]] = defaultdict(list)
        work_times: dict[str, list[float]] = defaultdict(list)
        for i in range(repeats):
            for name, make in commands.items():
                cmd = make()
                res = processes.run_process(cmd, timeout=300)
                if res.returncode != 0:
                    raise RuntimeError(f"{' '.join(cmd)} exited {res.returncode}: {res.stderr.strip()[-300:]}")
                proc_times[name].append(res.seconds)
                if name in in_process:
                    t = time.perf_counter()
                    in_process[name]()
                    work_times[name].append(time.perf_counter() - t)
            log(f"latency: repeat {i + 1}/{repeats}: " + ", ".join(
                f"{n} {proc_times[n][-1]:.3f} s" for n in commands))
        imports = {name: import_costs(commands[name]()) for name in TARGETS}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    torch_s = statistics.median(proc_times["import torch"])
    rows = []
    for name, bound in TARGETS.items():
        proc, work = statistics.median(proc_times[name]), statistics.median(work_times[name])
        # paired: each repeat's process less the import torch and the in-process work timed beside it
        overheads = [p - t - w for p, t, w in zip(proc_times[name], proc_times["import torch"], work_times[name])]
        overhead = statistics.median(overheads)
        label = {"train": f"zoo train {RECIPE} -q", "eval": "zoo eval RUN", "predict": f"zoo predict RUN "
                 f"({PREDICT_ROWS} rows)", "plot": "zoo plot RUN"}[name]
        notes = [f"overhead: the median over repeats of (process - import torch - the same work in process), each "
                 f"timed beside the others; medians: process {proc:.3f} s, import torch {torch_s:.3f} s, work "
                 f"{work:.3f} s", "imports beyond torch's: " + imports[name]]
        rows.append(row("latency", f"{label}: beyond import torch and the work", side(label, proc_times[name], "s"),
                        side('import torch + the work in process',
                             [t + w for t, w in zip(proc_times["import torch"], work_times[name])], "s",
                             import_torch=torch_s, work=work, overheads=overheads),
                        overhead, "process - import torch - in-process work (seconds)", "<=", bound,
                        f"<= {bound:.1f} s", notes, repeats=repeats, command=name))
    return rows


def _predict_csv(run_dir: Path, inputs: Path, out: Path) -> None:
    """What ``zoo predict -i CSV -o CSV`` does, in this process: read the file, predict, write the CSV."""
    from zoo.files import write_text

    import zoo

    write_text(out, zoo.predict(str(run_dir), str(inputs), device="cpu").to_csv())


def _plot(run_dir: Path) -> None:
    from zoo.plots import plot_run

    plot_run(str(run_dir))


def import_costs(cmd: list[str], top: int = 5) -> str:
    """The top-level packages a command imports beyond ``import torch`` and their summed self time, from
    ``python -X importtime`` runs of both."""
    def costs(argv: list[str]) -> dict[str, int]:
        res = processes.run_process([sys.executable, "-X", "importtime", *argv], timeout=300)
        out: dict[str, int] = defaultdict(int)
        for line in res.stderr.splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            self_us, _, name = line[len("import time:"):].split("|")
            out[name.strip()] = int(self_us)
        return out

    script = Path(cmd[0])
    argv = ["-m", "zoo", *cmd[1:]] if script.name == "zoo" else cmd[1:]
    base = costs(["-c", "import torch"])
    mine = costs(argv)
    per_package: dict[str, int] = defaultdict(int)
    for name, us in mine.items():
        if name not in base:
            per_package[name.split(".")[0]] += us
    total = sum(per_package.values())
    ranked = sorted(per_package.items(), key=lambda kv: -kv[1])[:top]
    return f"{total / 1000:.0f} ms in all (" + ", ".join(f"{k} {v / 1000:.0f} ms" for k, v in ranked) + ")"
