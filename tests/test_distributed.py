"""Distributed data-parallel training: real processes started by PyTorch's elastic launcher, gloo on
127.0.0.1, every launch bounded in time (a hung collective fails the test, not the CI).

The runs are small (the sine regression, a few hundred samples, a few epochs) so that the whole
file takes well under a minute or two on 2 cores; ``bench/`` measures throughput.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from helpers import run_zoo

#: Weights of a 2-process run against the 1-process run of the same config: the batches are the same,
#: only the order of the floating-point sums differs (DDP averages two half-batch gradients).
WEIGHT_TOL = 1e-5
#: Metrics of the gathered distributed evaluation against one process scoring the same weights.
METRIC_TOL = 1e-6

# 333 samples: 199 train / 67 val / 67 test, none of them divisible by 2 (so the last global batch and
# the evaluation shards are uneven)
SMALL = ["--dataset", "sine", "--model", "mlp", "--set", "n_samples=333", "--set", "hidden=16,16",
         "--batch-size", "32", "--epochs", "4", "--seed", "3"]
LIMIT = 150  # seconds any one launch may take


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model.safetensors"))


def max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert set(a) == set(b)
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


def train(tmp_path: Path, name: str, *args: str, env: dict | None = None) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path / name
    res = run_zoo("train", *args, "--out", str(out), "--quiet", cwd=tmp_path, env=env, timeout=LIMIT)
    assert res.returncode == 0, res.stderr
    return out, res


def status(run: Path) -> dict:
    return json.loads((run / "run.json").read_text())


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_two_processes_follow_the_one_process_batches(tmp_path, optimizer):
    one, _ = train(tmp_path, "one", *SMALL, "--optimizer", optimizer, "--lr", "0.05")
    two, res = train(tmp_path, "two", *SMALL, "--optimizer", optimizer, "--lr", "0.05", "--nproc", "2")
    diff = max_diff(weights(one), weights(two))
    assert diff < WEIGHT_TOL, f"2 processes moved the weights by {diff} from the 1-process run"
    assert diff > 0 or optimizer == "adam"  # different sums really happened (or Adam's normalisation hid them)
    cfg = json.loads((two / "config.json").read_text())
    record = status(two)["distributed"]
    assert record["world_size"] == 2 and record["backend"] == "gloo" and record["nodes"] == 1
    assert cfg["strategy"]["name"] == "ddp" and cfg["distributed"]["world_size"] == 2
    # rank 0 alone wrote: one run directory, nothing else
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["one", "two"]


@pytest.mark.parametrize("args", [SMALL, ["digits-resnet", "--epochs", "2", "--seed", "1"]], ids=["mlp", "resnet"])
def test_distributed_evaluation_counts_every_sample_once(tmp_path, args):
    """Scores gathered from 2 processes = one process scoring the saved weights on the whole split (digits: 359
    validation samples; the ResNet's batch-norm statistics are the writer's on every process)."""
    two, _ = train(tmp_path, "two", *args, "--nproc", "2")
    saved = json.loads((two / "metrics.json").read_text())
    import zoo

    for split in ("val", "test"):
        again = zoo.evaluate(two, split=split, device="cpu")  # one process, the whole split
        for key, value in again.items():
            assert abs(saved[split][key] - value) <= METRIC_TOL * max(1.0, abs(value)), (split, key)


def test_ddp_at_world_size_one_is_the_single_device_run(tmp_path):
    one, _ = train(tmp_path, "one", *SMALL)
    ddp, _ = train(tmp_path, "ddp", *SMALL, "--strategy", "ddp")
    assert max_diff(weights(one), weights(ddp)) == 0.0


# -- stopping, failing, restarting: a real launcher, a real signal --------------------------------------

PACE = '''
from zoo import CallbackSpec, Param, hookimpl

ZOO_CONTRACT = "1"


@hookimpl
def zoo_callbacks():
    return [CallbackSpec(name="pace", summary="Sleep after each epoch (gives a test time to act).",
                         impl="pace_impl:Pace", params={"seconds": Param("float", 0.3, "sleep", min=0.0)})]
'''

PACE_IMPL = '''
import time

from zoo.callbacks import Callback


class Pace(Callback):
    def __init__(self, seconds=0.3):
        self.seconds = seconds

    def on_epoch_end(self, trainer, row):
        time.sleep(self.seconds)
'''

PACED = [*SMALL[:-4], "--epochs", "6", "--seed", "3", "--set", "checkpoint_every=0", "--callback", "pace"]


@pytest.fixture(scope="module")
def pace_env(tmp_path_factory):
    from helpers import install_plugin, site_env

    site = install_plugin(tmp_path_factory.mktemp("site"), "zoo-pace", {"pace": PACE, "pace_impl": PACE_IMPL},
                          {"pace": "pace"})
    return site_env(site)


def start(tmp_path: Path, env: dict, *args: str) -> subprocess.Popen:
    full = {k: v for k, v in os.environ.items() if not k.startswith("ZOO_")}
    full.update(env, ZOO_DEBUG="1")
    return subprocess.Popen([sys.executable, "-m", "zoo", "train", *args], cwd=tmp_path, env=full,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_checkpoint(run: Path, epoch: int, proc: subprocess.Popen, limit: float = 60) -> None:
    from zoo.resumable import CheckpointStore

    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            if CheckpointStore(run).current()[0] >= epoch:
                return
        except Exception:  # noqa: BLE001 - not written yet
            pass
        time.sleep(0.02)
    raise AssertionError(f"no checkpoint of epoch {epoch} in {limit} s")


def worker_pid(launcher: int, rank: int) -> int:
    """The pid of the launcher's worker process with this rank (from /proc)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            environ = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == launcher and f"RANK={rank}".encode() in environ:
            return int(entry.name)
    raise AssertionError(f"no worker of rank {rank} under pid {launcher}")


def test_sigterm_stops_every_process_and_the_run_resumes_with_two_or_one(tmp_path, pace_env):
    straight, _ = train(tmp_path, "straight", *PACED, "--set", "callback.pace.seconds=0", "--nproc", "2",
                        env=pace_env)
    for again in (["--nproc", "2"], []):
        run = tmp_path / f"stopped{len(again)}"
        proc = start(tmp_path, pace_env, *PACED, "--nproc", "2", "--out", str(run))
        wait_for_checkpoint(run, 2, proc)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=LIMIT)
        assert proc.returncode == 128 + signal.SIGTERM, err
        assert status(run)["status"] == "interrupted"
        assert "Traceback" not in err and "resume with 'zoo train --resume" in err
        res = run_zoo("train", "--resume", str(run), *again, "--quiet", cwd=tmp_path, env=pace_env, timeout=LIMIT)
        assert res.returncode == 0, res.stderr
        assert status(run)["status"] == "finished" and status(run)["epochs"] == 6
        diff = max_diff(weights(straight), weights(run))
        assert diff < WEIGHT_TOL, f"resumed with {again or '1 process'}: {diff}"


def test_a_killed_worker_stops_the_run_with_one_line_naming_it(tmp_path, pace_env):
    run = tmp_path / "run"
    proc = start(tmp_path, pace_env, *PACED, "--nproc", "2", "--out", str(run), "--set", "strategy.timeout=20")
    wait_for_checkpoint(run, 1, proc)
    os.kill(worker_pid(proc.pid, 1), signal.SIGKILL)
    t0 = time.monotonic()
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - t0 < 45
    assert proc.returncode != 0
    assert "process 1" in err and "SIGKILL" in err and "Traceback" not in err, err
    record = status(run)
    assert record["status"] == "failed" and "process 1" in record["error"], record
    saved = record["epochs"]
    assert saved >= 1
    res = run_zoo("train", "--resume", str(run), "--quiet", cwd=tmp_path, env=pace_env, timeout=LIMIT)
    assert res.returncode == 0, res.stderr  # the last checkpoint was intact


def test_with_max_restarts_the_launcher_restarts_the_workers_and_they_resume(tmp_path, pace_env):
    straight, _ = train(tmp_path, "straight", *PACED, "--set", "callback.pace.seconds=0", "--nproc", "2",
                        env=pace_env)
    run = tmp_path / "run"
    proc = start(tmp_path, pace_env, *PACED, "--nproc", "2", "--max-restarts", "1", "--out", str(run))
    wait_for_checkpoint(run, 2, proc)
    os.kill(worker_pid(proc.pid, 1), signal.SIGKILL)
    _, err = proc.communicate(timeout=LIMIT)
    assert proc.returncode == 0, err
    record = status(run)
    assert record["status"] == "finished" and record["epochs"] == 6
    assert max_diff(weights(straight), weights(run)) < WEIGHT_TOL
    assert len([p for p in tmp_path.iterdir() if p.is_dir() and (p / "run.json").exists()]) == 2  # no new run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_launcher_agents_as_two_nodes_train_one_run(tmp_path):
    port = free_port()
    full = {k: v for k, v in os.environ.items() if not k.startswith("ZOO_")}
    full["ZOO_DEBUG"] = "1"
    agents = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node-rank", str(node),
         "--nproc-per-node", "1", "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}",
         "--rdzv-id", f"zoo-test-{port}", "--local-addr", "127.0.0.1", "-m", "zoo", "train", *SMALL, "--quiet",
         "--out", str(tmp_path / "run")],
        cwd=tmp_path, env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for node in (0, 1)]
    try:
        outs = [a.communicate(timeout=LIMIT) for a in agents]
    finally:
        for a in agents:
            a.kill()
    assert [a.returncode for a in agents] == [0, 0], outs
    record = status(tmp_path / "run")["distributed"]
    assert record["world_size"] == 2 and record["nodes"] == 2
    one, _ = train(tmp_path, "one", *SMALL)
    assert max_diff(weights(one), weights(tmp_path / "run")) < WEIGHT_TOL
