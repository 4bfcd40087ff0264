"""Running on several processes: the launcher's environment, and starting PyTorch's elastic launcher.

zoo never starts its own workers. ``zoo train --nproc N`` calls ``torch.distributed.run`` (what
``torchrun`` runs) with ``--standalone``; ``torchrun ... -m zoo train ...`` on one or several
machines is the same from the workers' side. Each worker is an ordinary ``zoo train`` that finds
the launcher's variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ...) in its environment;
the distributed strategy reads them. Light: torch is imported only to launch.
"""

from __future__ import annotations

import json
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError, ZooError

#: The strategy a run gets when a launcher started it and nothing chose one.
DISTRIBUTED_DEFAULT = "ddp"
#: Set by ``zoo train --nproc`` for its workers: a file where the writer notes the run directory, so that
#: the launching command can report a failure of the workers in one line about the run.
RECORD_ENV = "ZOO_LAUNCH_RECORD"


def note_run_dir(path: os.PathLike | str) -> None:
    """Tell the ``zoo train --nproc`` that started this process which run directory it trains (if one did)."""
    record = os.environ.get(RECORD_ENV)
    if record:
        try:
            Path(record).write_text(str(path), encoding="utf-8")
        except OSError:
            pass  # only the failure message loses the run's name


@dataclass(frozen=True)
class LaunchEnv:
    """What the elastic launcher tells a worker."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    node_rank: int
    run_id: str
    restart: int
    max_restarts: int


def launch_env() -> LaunchEnv | None:
    """The launcher's variables of this process, or None when no launcher started it."""
    e = os.environ
    if not all(k in e for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK")):
        return None
    try:
        return LaunchEnv(rank=int(e["RANK"]), world_size=int(e["WORLD_SIZE"]), local_rank=int(e["LOCAL_RANK"]),
                         local_world_size=int(e.get("LOCAL_WORLD_SIZE", e["WORLD_SIZE"])),
                         node_rank=int(e.get("GROUP_RANK", "0")), run_id=e.get("TORCHELASTIC_RUN_ID", ""),
                         restart=int(e.get("TORCHELASTIC_RESTART_COUNT", "0")),
                         max_restarts=int(e.get("TORCHELASTIC_MAX_RESTARTS", "0")))
    except ValueError as exc:
        raise UsageError(f"the launcher's environment is malformed ({exc}): RANK, WORLD_SIZE and LOCAL_RANK must be "
                         "integers") from None


def is_writer() -> bool:
    """Whether this process writes the run's files and reports (the first process, or the only one)."""
    env = launch_env()
    return env is None or env.rank == 0


# -- starting the launcher --------------------------------------------------------------------


def run_torchrun(worker_args: list[str], nproc: int, max_restarts: int = 0) -> int:
    """``torchrun --standalone --nproc-per-node NPROC -m zoo WORKER_ARGS`` in this process (PyTorch's own
    launcher, on 127.0.0.1); returns the exit code. A worker that failed is one line naming its rank and how it
    ended; a worker that reported its own error has already said why."""
    import logging

    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    for name in ("torch.distributed.elastic", "torch.distributed.run", "torch.distributed.launcher"):
        logging.getLogger(name).setLevel(logging.CRITICAL)  # zoo reports failures in one line below
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    import tempfile

    fd, record = tempfile.mkstemp(prefix="zoo-launch-", suffix=".txt")
    os.close(fd)
    os.environ[RECORD_ENV] = record
    args = torchrun.get_args_parser().parse_args(
        ["--standalone", "--local-addr=127.0.0.1", f"--nproc-per-node={nproc}", f"--max-restarts={max_restarts}",
         "--monitor-interval=0.1", "-m", "zoo", *worker_args])
    try:
        torchrun.run(args)
    except ChildFailedError as exc:
        if any(f.exitcode is None or f.exitcode < 0 for f in exc.failures.values()):
            err = ZooError(failure_line(exc.failures, _noted_run(record)))
            err.exit_code = _exit_code(exc.failures)
            raise err from None
        return _exit_code(exc.failures)  # each worker has said why it stopped
    except SignalException as exc:  # SIGINT/SIGTERM: the launcher passed it on; the workers stopped cleanly
        return 128 + int(exc.sigval)
    finally:
        os.environ.pop(RECORD_ENV, None)
        Path(record).unlink(missing_ok=True)
    return 0


def _noted_run(record: str) -> Path | None:
    try:
        text = Path(record).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return Path(text) if text else None


def failure_line(failures: dict, run: Path | None = None) -> str:
    """One line naming the workers that were killed (by a signal, or lost) and what became of the run."""
    killed = {rank: f for rank, f in failures.items() if f.exitcode is None or f.exitcode < 0}
    parts = [f"process {rank} (pid {f.pid}) was " + (f"killed by {_signal_name(-f.exitcode)}" if f.exitcode else "lost")
             for rank, f in sorted(killed.items())]
    what = " and ".join(parts)
    if run is None:
        return f"{what}, so every process stopped before the run directory was made"
    try:
        status = json.loads((Path(run) / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        status = {}
    saved = status.get("epochs") or 0
    kept = (f"its last checkpoint (epoch {saved}) is kept: zoo train --resume {run}" if saved else
            "no epoch was saved")
    return f"{what}, so every process stopped; the run {run} is marked {status.get('status', 'failed')}, {kept}"


def _exit_code(failures: dict) -> int:
    first = failures[min(failures)]
    code = first.exitcode if first.exitcode is not None else 1
    return 128 - code if code < 0 else max(code, 1)


def _signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"
