"""Fault injection over every file operation of a checkpoint, with real processes and real SIGKILLs.

    python tests/faults.py WORKDIR RESULT.json

The script imports zoo (and torch) once, then forks a child per trial, so each trial is a
real process that dies by a real SIGKILL (or fails on an injected ``OSError(ENOSPC)``)
without paying for the imports again. In a child, the file-system functions zoo uses
(``os.open`` with ``O_CREAT``, ``os.replace``, ``os.rename``, ``os.mkdir``, ``os.unlink``,
``os.rmdir``, ``os.fsync``, ``shutil.rmtree``, safetensors' ``save_file`` and
``Path.write_text``) are wrapped to count the operations made while the run writes its
second checkpoint, and trial N acts at operation N:

- ``kill-before``: SIGKILL just before the operation;
- ``kill-after``: SIGKILL just after it;
- ``enospc``: the operation (a write: creating, writing, renaming or flushing a file) fails
  with ``OSError(ENOSPC)``; the process must exit 1 with one ``error:`` line.

After each trial, ``zoo train --resume`` runs in a fresh child, and the finished run must
equal a run that was never interrupted: the same saved weights (bit for bit), last
weights, history (times aside) and metrics. The parent never runs torch code itself, so
forking stays safe. The result file lists every trial and what went wrong, if anything.
"""

from __future__ import annotations

import errno
import json
import os
import pathlib
import shutil
import signal
import stat
import sys
from pathlib import Path

import zoo.checkpoint
import zoo.engine  # noqa: F401 - imports torch once, before any fork
import zoo_losses.losses  # noqa: F401 - and everything a run of the recipe imports, so children start warm
import zoo_tabular.datasets  # noqa: F401
import zoo_tabular.models  # noqa: F401
import zoo_training.metrics  # noqa: F401
import zoo_training.optimizers  # noqa: F401
import zoo_training.schedules  # noqa: F401
import zoo_training.strategies  # noqa: F401
import zoo_training.supervised  # noqa: F401
import sklearn.metrics  # noqa: F401
import sklearn.model_selection  # noqa: F401
from zoo import configfile, inference, locks, resumable, runlist  # noqa: F401
from zoo.cli import main
from zoo.registry import get_registry

get_registry()  # plugins discovered once, in the parent

ARGS = ["train", "regression-mlp", "--set", "n_samples=120", "--set", "model.hidden=8", "--epochs", "3",
        "--schedule", "none", "--set", "checkpoint_every=0", "--device", "cpu", "-q"]
TARGET_CHECKPOINT = 2  # the second checkpoint: it has a previous generation to replace and remove
WRITES = {"open", "save_file", "write_text", "mkdir", "replace", "rename", "fsync"}
PARALLEL = 2  # trials at a time (each is its own process tree)


def run_cli(args: list[str]) -> int:
    try:
        main(args, standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0


def in_child(fn, stderr_path: Path) -> int:
    """Run ``fn`` in a forked child with stderr in a file (stdout discarded); return its wait status."""
    pid = os.fork()
    if pid == 0:  # the child
        fd = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 2)
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        try:
            code = fn()
        except BaseException:  # noqa: BLE001
            import traceback

            traceback.print_exc()
            code = 99
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return status


def instrument(mode: str, target: int, counter_path: Path | None = None) -> None:
    """Wrap the file operations (in this child only); act at operation ``target`` of the chosen checkpoint."""
    state = {"checkpoint": 0, "ops": 0, "kinds": []}
    trainer = zoo.engine.Trainer
    original_save = trainer.save_checkpoint

    def save_checkpoint(self):
        state["checkpoint"] += 1
        try:
            return original_save(self)
        finally:
            if state["checkpoint"] == TARGET_CHECKPOINT and counter_path is not None:
                counter_path.write_text(" ".join([str(state["ops"]), *state["kinds"]]))

    trainer.save_checkpoint = save_checkpoint

    def wrap(owner, attr: str, name: str):
        real = getattr(owner, attr)

        def wrapper(*args, **kwargs):
            if name == "open" and not (len(args) > 1 and args[1] & os.O_CREAT):
                return real(*args, **kwargs)
            counting = state["checkpoint"] == TARGET_CHECKPOINT and counter_path is None
            mine = state["ops"] + 1  # this operation's number (operations inside it, rmtree's, come after)
            if counting:
                state["ops"] += 1
                if state["ops"] == target:
                    if mode == "kill-before":
                        os.kill(os.getpid(), signal.SIGKILL)
                    if mode == "enospc" and name == "save_file":  # as safetensors reports a full disk
                        from safetensors import SafetensorError

                        raise SafetensorError("Error while serializing: I/O error: No space left on device "
                                              "(os error 28)")
                    if mode == "enospc" and name in WRITES:
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            elif counter_path is not None and state["checkpoint"] == TARGET_CHECKPOINT:
                state["ops"] += 1
                state["kinds"].append(kind(name, args))
            try:
                return real(*args, **kwargs)
            finally:  # after the operation, whether it succeeded or raised (mkdir of an existing directory)
                if counting and mine == target and mode == "kill-after":
                    os.kill(os.getpid(), signal.SIGKILL)

        setattr(owner, attr, wrapper)

    for attr in ("open", "replace", "rename", "mkdir", "unlink", "rmdir", "fsync"):
        wrap(os, attr, attr)
    wrap(shutil, "rmtree", "rmtree")
    wrap(zoo.checkpoint, "save_file", "save_file")
    wrap(pathlib.Path, "write_text", "write_text")


def trial(work: Path, mode: str, n: int, expected: dict) -> dict:
    """One trial: the run interrupted at operation ``n``, resumed, compared with the uninterrupted run."""
    run, log = work / f"{mode}-{n}", work / f"{mode}-{n}.stderr"
    status = in_child(lambda: (instrument(mode, n), run_cli([*ARGS, "--out", str(run)]))[1], log)
    first_err = log.read_text()
    result = {"mode": mode, "op": n, "problems": []}
    if mode == "enospc":
        lines = first_err.strip().splitlines()
        if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 1:
            result["problems"].append(f"exit status {status} (expected exit 1): {first_err[-300:]}")
        elif len(lines) != 1 or "error: no space left on device while writing" not in lines[0]:
            result["problems"].append(f"stderr is not one line about the full disk: {first_err[-300:]}")
    elif not (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL):
        result["problems"].append(f"the process was not killed (status {status}): {first_err[-300:]}")
    resumed = in_child(lambda: run_cli(["train", "--resume", str(run), "-q"]), log)
    if resumed != 0:
        result["problems"].append(f"resume failed (status {resumed}): {log.read_text()[-400:]}")
    else:
        got = snapshot(run)
        for key in expected:
            if got[key] != expected[key]:
                result["problems"].append(f"{key} differs from the uninterrupted run: {str(got[key])[:200]}")
    shutil.rmtree(run, ignore_errors=True)
    return result


def kind(name: str, args: tuple) -> str:
    """The operation's name; ``fsync-dir`` and ``mkdir-existing`` for the two whose failure zoo tolerates by design
    (not every file system can flush a directory; making a directory that exists is no change)."""
    try:
        if name == "fsync" and stat.S_ISDIR(os.fstat(args[0]).st_mode):
            return "fsync-dir"
        if name == "mkdir" and os.path.isdir(args[0]):
            return "mkdir-existing"
    except (OSError, IndexError, TypeError):
        pass
    return name


def snapshot(run: Path) -> dict:
    """What must equal an uninterrupted run: weights (as bytes), history without times, metrics, status."""
    from safetensors import safe_open

    def tensors(path: Path) -> dict:
        with safe_open(str(path), framework="numpy") as fh:
            return {k: fh.get_tensor(k).tobytes().hex() for k in fh.keys()}

    pointer = json.loads((run / "checkpoint.json").read_text())
    rows = [line.split(",") for line in (run / "history.csv").read_text().splitlines()]
    t = rows[0].index("time")
    return {
        "model": tensors(run / "model.safetensors"),
        "last": tensors(run / "checkpoints" / pointer["generation"] / "last.safetensors"),
        "history": [r[:t] + r[t + 1:] for r in rows],
        "metrics": json.loads((run / "metrics.json").read_text()),
        "status": json.loads((run / "run.json").read_text())["status"],
        "leftovers": sorted(p.name for p in run.rglob("*") if p.name.endswith(".tmp")),
        "generations": len(list((run / "checkpoints").iterdir())),
    }


def main_() -> None:
    work, result_path = Path(sys.argv[1]), Path(sys.argv[2])
    work.mkdir(parents=True, exist_ok=True)
    log = work / "stderr.txt"
    reference = work / "reference"
    assert in_child(lambda: run_cli([*ARGS, "--out", str(reference)]), log) == 0, log.read_text()
    expected = snapshot(reference)
    counter = work / "count.txt"
    assert in_child(lambda: (instrument("count", 0, counter), run_cli([*ARGS, "--out", str(work / "count")]))[1],
                    log) == 0, log.read_text()
    total, kinds = int(counter.read_text().split()[0]), counter.read_text().split()[1:]
    plan = [(mode, n) for mode in ("kill-before", "kill-after", "enospc") for n in range(1, total + 1)
            if mode != "enospc" or kinds[n - 1] in WRITES]
    running: dict[int, Path] = {}
    trials = []
    for i, (mode, n) in enumerate(plan):
        if len(running) >= PARALLEL:
            pid, _ = os.wait()
            trials.append(json.loads(running.pop(pid).read_text()))
        out = work / f"trial-{i}.json"
        pid = os.fork()
        if pid == 0:
            try:
                out.write_text(json.dumps(trial(work, mode, n, expected)))
            finally:
                os._exit(0)
        running[pid] = out
    while running:
        pid, _ = os.wait()
        trials.append(json.loads(running.pop(pid).read_text()))
    result_path.write_text(json.dumps({"operations": total, "trials": trials}, indent=1))


if __name__ == "__main__":
    main_()
