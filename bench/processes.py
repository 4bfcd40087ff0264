"""Whole processes: wall time and peak resident memory of one child (figures 4 and 6)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class ProcessResult:
    seconds: float
    max_rss_bytes: int
    returncode: int
    stdout: str
    stderr: str


def zoo_command() -> list[str]:
    """How to start ``zoo``: the console script installed beside this Python (not a shell shim
    such as pyenv's, whose own start-up would be charged to zoo), else ``python -m zoo``."""
    script = Path(sys.executable).with_name("zoo")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "zoo"]


def child_env() -> dict[str, str]:
    """The environment of a default ``zoo``: no ``ZOO_*`` settings, unbuffered output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZOO_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


#: Started as ``python -S -c LAUNCHER RESULT CMD...``: forks and execs CMD, waits for it and writes
#: its wall time and ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` (its only child) to RESULT as JSON.
LAUNCHER = """
import json, os, sys, time
from resource import RUSAGE_CHILDREN, getrusage
result, cmd = sys.argv[1], sys.argv[2:]
t = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execv(cmd[0], cmd)
    finally:
        os._exit(127)
_, status = os.waitpid(pid, 0)
seconds = time.perf_counter() - t
with open(result, "w") as fh:
    json.dump({"seconds": seconds, "maxrss": getrusage(RUSAGE_CHILDREN).ru_maxrss}, fh)
sys.exit(os.waitstatus_to_exitcode(status) % 256)
"""


def run_process(cmd: list[str], *, cwd: str | os.PathLike | None = None, timeout: float = 600,
                memory: bool = False) -> ProcessResult:
    """Run ``cmd``; return its wall time and, with ``memory``, its own peak RSS.

    A child's ``ru_maxrss`` is not its own: Linux carries the high-water mark of the
    memory a process had before ``exec`` into it, and a child started from this process
    begins as (a view of) this process, which holds torch, scikit-learn and models by
    now: a bare ``python -c pass`` started from a 500 MB parent reports 500 MB. So for
    memory the command is started by a small launcher (``python -S``, a few MB), which
    forks and execs it and reports ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` after
    waiting for it: the launcher's few MB are a floor far below any torch process. Output
    goes to temporary files (no pipe can fill up and stall the child).
    """
    if memory:
        cmd = [str(c) for c in cmd]
        if not os.path.isabs(cmd[0]):
            cmd[0] = shutil.which(cmd[0]) or cmd[0]
    with tempfile.TemporaryDirectory(prefix="zoo-bench-") as tmp, \
            open(Path(tmp) / "out", "w+b") as out, open(Path(tmp) / "err", "w+b") as err:
        result = Path(tmp) / "result.json"
        full = [sys.executable, "-S", "-c", LAUNCHER, str(result), *cmd] if memory else cmd
        t0 = time.perf_counter()
        proc = subprocess.Popen(full, cwd=cwd, env=child_env(), stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()  # the launcher; its child is left to finish on its own
            proc.wait()
            raise RuntimeError(f"{' '.join(cmd)} ran over {timeout} s") from None
        seconds = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
        rss = 0
        if memory and result.is_file():
            measured = json.loads(result.read_text())
            seconds, rss = measured["seconds"], int(measured["maxrss"])
    # ru_maxrss is in KiB on Linux, bytes on macOS
    scale = 1 if sys.platform == "darwin" else 1024
    return ProcessResult(seconds, rss * scale, proc.returncode, stdout, stderr)
