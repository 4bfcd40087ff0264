"""A run survives any interruption: kills at every file operation, signals at any moment, a full disk,
processes that race for one run directory. Real processes, real signals, real files."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import zoo
from helpers import install_plugin, run_zoo, site_env

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--set", "n_samples=300", "--set", "model.hidden=8", "--schedule", "none", "--set", "checkpoint_every=0"]


def _env(extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZOO_")}
    env["ZOO_DEBUG"] = "1"
    env.update(extra or {})
    return env


def _weights(path: Path) -> dict:
    from safetensors.torch import load_file

    return {k: v.tolist() for k, v in load_file(str(path)).items()}


def _history(run: Path) -> list[list[str]]:
    rows = [line.split(",") for line in (run / "history.csv").read_text().splitlines()]
    t = rows[0].index("time")
    return [r[:t] + r[t + 1:] for r in rows]


# -- every file operation of a checkpoint, killed before and after, or failing for a full disk -------


def test_a_kill_or_a_full_disk_at_any_file_operation_of_a_checkpoint_resumes_exactly(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "tests" / "faults.py"), str(tmp_path / "work"),
                          str(tmp_path / "result.json")], capture_output=True, text=True, timeout=900, env=_env())
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    trials = result["trials"]
    assert result["operations"] >= 20  # the generation's files, their flushes, the rename, the pointer, the clean-up
    assert {t["mode"] for t in trials} == {"kill-before", "kill-after", "enospc"}
    assert len([t for t in trials if t["mode"] == "kill-before"]) == result["operations"]
    failed = [t for t in trials if t["problems"]]
    assert not failed, json.dumps(failed[:5], indent=1)


# -- run directories are claimed by one process ------------------------------------------------------


def test_processes_started_at_once_with_the_same_out_never_share_it(tmp_path):
    args = [sys.executable, "-m", "zoo", "train", "regression-mlp", *FAST, "--epochs", "2", "--out", "same", "-q"]
    procs = [subprocess.Popen([*args, "--seed", str(i)], cwd=tmp_path, env=_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(4)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    winners = [r for r in results if r[0] == 0]
    assert len(winners) == 1, results
    for code, err in results:
        if code:
            lines = err.strip().splitlines()
            assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
            assert "is in use by process" in lines[0] or "already exists and is not an empty directory" in lines[0]
    run = tmp_path / "same"
    seed = json.loads((run / "config.json").read_text())["train"]["seed"]
    assert zoo.evaluate(run, device="cpu") == json.loads((run / "metrics.json").read_text())["test"]
    assert zoo.evaluate(run, device="cpu") == zoo.train("regression-mlp", params={"n_samples": 300, "model.hidden": 8},
                                                         schedule="none", checkpoint_every=0, epochs=2, seed=seed,
                                                         quiet=True, out=tmp_path / "again").metrics["test"]


def test_a_live_run_cannot_be_resumed_a_killed_one_is_dead_and_resumes(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "zoo", "train", "regression-mlp", *FAST, "--epochs", "400",
                             "--out", "a"], cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        for line in proc.stderr:  # wait until two epochs are checkpointed
            if line.startswith("epoch   3/400"):
                break
        busy = run_zoo("train", "--resume", "a", cwd=tmp_path)
        assert busy.returncode == 2 and f"is in use by process {proc.pid} on host" in busy.stderr
        assert "cannot resume it now" in busy.stderr
        listed = json.loads(run_zoo("runs", "--root", ".", "--json", cwd=tmp_path).stdout)
        assert [r["status"] for r in listed] == ["running"]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    table = run_zoo("runs", "--root", ".", cwd=tmp_path).stdout
    assert " dead " in table.splitlines()[1]
    (tmp_path / "a" / ".history.csv.1234abcd.tmp").write_text("half")  # what a kill mid-write leaves
    (tmp_path / "a" / "checkpoints" / ".epoch-000009-abcdef.tmp").mkdir()
    resumed = run_zoo("train", "--resume", "a", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "removed what an interrupted write left behind" in resumed.stderr
    assert not list((tmp_path / "a").glob(".*.tmp")) and len(list((tmp_path / "a" / "checkpoints").iterdir())) == 1
    assert json.loads(run_zoo("runs", "--root", ".", "--json", cwd=tmp_path).stdout)[0]["status"] == "finished"
    assert not (tmp_path / "a" / "run.lock").exists()


# -- signals for the whole life of a run ------------------------------------------------------------

SIGNALS = '''
from zoo import DatasetSpec, ModelSpec, hookimpl

@hookimpl
def zoo_datasets():
    return [DatasetSpec(name="sig-load", summary="Sends SIGTERM to its own process while loading.",
                        tasks=("regression",), impl="signals_impl:load")]

@hookimpl
def zoo_models():
    return [ModelSpec(name="sig-net", summary="Sends signals to its own process at a chosen forward pass.",
                      tasks=("regression",), impl="signals_impl:net")]
'''
SIGNALS_IMPL = '''
import os
import signal
import time

import numpy as np
import torch
from torch import nn
from zoo.data import split_arrays


def load(*, seed):
    os.kill(os.getpid(), signal.SIGTERM)  # while the data loads: the run must stop before making anything
    time.sleep(0.1)
    x = np.linspace(0, 1, 200).reshape(-1, 1)
    return split_arrays(x, x * 2, task="regression", seed=seed)


class Net(nn.Module):
    """Counts its forward passes in eval and train mode; sends the signals named in the environment."""

    def __init__(self, d, k):
        super().__init__()
        self.lin = nn.Linear(d, k)
        self.calls = {"eval": 0, "train": 0}

    def forward(self, x):
        mode = "train" if self.training else "eval"
        self.calls[mode] += 1
        spec = os.environ.get("SIG_AT", "")  # e.g. "eval:5:SIGTERM" or "train:12:SIGTERM,SIGTERM"
        if spec:
            at_mode, at, names = spec.split(":")
            if at_mode == mode and int(at) == self.calls[mode]:
                for name in names.split(","):
                    os.kill(os.getpid(), getattr(signal, name))
                    time.sleep(0.05)
        return self.lin(x)


def net(input_shape, out_features):
    return Net(input_shape[0], out_features)
'''


@pytest.fixture(scope="module")
def signal_plugin(tmp_path_factory):
    site = install_plugin(tmp_path_factory.mktemp("site"), "zoo-signals", {"signals": SIGNALS,
                                                                          "signals_impl": SIGNALS_IMPL},
                          {"signals": "signals"})
    return site_env(site)


def test_sigterm_while_loading_stops_before_anything_is_made(tmp_path, signal_plugin):
    out = run_zoo("train", "--dataset", "sig-load", "--model", "linear", "--out", "r", cwd=tmp_path, env=signal_plugin)
    assert out.returncode == 143 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1] == "error: SIGTERM received before training started: nothing was saved"
    assert not (tmp_path / "r").exists()


def test_sigterm_while_the_results_are_saved_lets_the_run_finish(tmp_path, signal_plugin):
    # eval-mode passes: 1 probe, 2 validations (2 epochs), then the final metrics: 4 train, 5 val, 6 test
    out = run_zoo("train", "--dataset", "sine", "--model", "sig-net", "--epochs", "2", "--out", "r", cwd=tmp_path,
                  env={**signal_plugin, "SIG_AT": "eval:5:SIGTERM"})
    assert out.returncode == 0, out.stderr
    assert "SIGTERM received while the results were being saved: the run finished first" in out.stderr
    assert json.loads((tmp_path / "r" / "run.json").read_text())["status"] == "finished"
    assert (tmp_path / "r" / "metrics.json").is_file()


def test_a_second_sigterm_stops_at_once_and_keeps_the_last_checkpoint(tmp_path, signal_plugin):
    # sine: 1800 train samples = 57 batches of 32 an epoch; the 70th training pass is in epoch 2
    out = run_zoo("train", "--dataset", "sine", "--model", "sig-net", "--epochs", "5", "--set", "checkpoint_every=0",
                  "--out", "r", cwd=tmp_path, env={**signal_plugin, "SIG_AT": "train:70:SIGTERM,SIGTERM"})
    assert out.returncode == 143 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1] == (
        "error: SIGTERM received twice: stopped at once; the last complete checkpoint (epoch 1) is kept; resume "
        "with 'zoo train --resume r'")
    status = json.loads((tmp_path / "r" / "run.json").read_text())
    assert status["status"] == "interrupted" and status["epochs"] == 1
    resumed = run_zoo("train", "--resume", "r", "-q", cwd=tmp_path, env=signal_plugin)
    assert resumed.returncode == 0, resumed.stderr


def test_a_second_ctrl_c_waits_for_the_file_write_in_progress(tmp_path):
    from zoo.engine import TrainingAborted, _graceful_signals, _StopFlag
    from zoo.files import atomic_path

    path = tmp_path / "state.json"
    with pytest.raises(TrainingAborted, match="SIGINT received twice") as err:
        with _graceful_signals(_StopFlag()):
            with atomic_path(path) as tmp:
                tmp.write_text('{"half": ')
                os.kill(os.getpid(), signal.SIGINT)
                os.kill(os.getpid(), signal.SIGINT)  # handled here, between two statements of the write
                time.sleep(0.01)
                tmp.write_text('{"complete": true}')
    assert err.value.exit_code == 130
    assert json.loads(path.read_text()) == {"complete": True}  # the write completed before the stop
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


# -- a full disk, a read-only place, long and odd names -------------------------------------------------

DISK_FULL = """
set -e
mount -t tmpfs -o size=4m tmpfs "$MNT"
head -c 1900000 /dev/zero > "$MNT/filler"
set +e
"$PY" -m zoo train regression-mlp $ARGS --out "$MNT/run" > "$OUT/first.out" 2> "$OUT/first.err"
echo $? > "$OUT/first.rc"
cp "$MNT/run/run.json" "$OUT/status-after-failure.json"
rm "$MNT/filler"
"$PY" -m zoo train --resume "$MNT/run" -q > "$OUT/resume.out" 2> "$OUT/resume.err"
echo $? > "$OUT/resume.rc"
cp -r "$MNT/run" "$OUT/run"
"""


def test_a_full_disk_is_one_line_and_the_run_resumes_once_space_is_freed(tmp_path):
    if not shutil.which("unshare") or subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode:
        pytest.skip("mounting a small tmpfs is not allowed here (unshare -m); the injected ENOSPC of the "
                    "fault-injection test covers every checkpoint write instead")
    args = "--set n_samples=300 --set model.hidden=256,256 --schedule none --set checkpoint_every=0 --epochs 3 -q"
    (tmp_path / "mnt").mkdir()
    (tmp_path / "out").mkdir()
    env = _env({"MNT": str(tmp_path / "mnt"), "OUT": str(tmp_path / "out"), "PY": sys.executable, "ARGS": args})
    done = subprocess.run(["unshare", "-m", "sh", "-c", DISK_FULL], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out"
    err = (out / "first.err").read_text().strip().splitlines()
    assert (out / "first.rc").read_text().strip() == "1"
    assert len(err) == 1 and err[0].startswith("error: no space left on device while writing "), err
    assert json.loads((out / "status-after-failure.json").read_text())["status"] in ("failed", "running")
    assert (out / "resume.rc").read_text().strip() == "0", (out / "resume.err").read_text()
    reference = zoo.train("regression-mlp", params={"n_samples": 300, "model.hidden": "256,256"}, schedule="none",
                          checkpoint_every=0, epochs=3, quiet=True, out=tmp_path / "reference")
    assert _weights(out / "run" / "model.safetensors") == _weights(reference.dir / "model.safetensors")
    assert _history(out / "run") == _history(reference.dir)


def test_full_disk_read_only_and_odd_names_are_one_line_each(tmp_path, zoo_cli):
    run = zoo.train("blobs-mlp", epochs=1, quiet=True, out=tmp_path / "run")
    (tmp_path / "in.csv").write_text("x0,x1\n0.1,0.2\n")
    inject = ("import errno, os, runpy, sys\n"
              "real = os.replace\n"
              "def full(src, dst, *a, **k):\n"
              "    raise OSError(errno.%s, os.strerror(errno.%s))\n"
              "os.replace = full\n"
              "sys.argv = ['zoo'] + sys.argv[1:]\n"
              "runpy.run_module('zoo', run_name='__main__')\n")
    for code, message in (("ENOSPC", "no space left on device while writing"),
                          ("EROFS", "the file system is read-only")):
        out = subprocess.run([sys.executable, "-c", inject % (code, code), "predict", str(run.dir), "--input",
                              "in.csv", "--output", "pred.csv"], cwd=tmp_path, env=_env(), capture_output=True,
                             text=True, timeout=120)
        lines = out.stderr.strip().splitlines()
        assert out.returncode == 1 and len(lines) == 1 and message in lines[0] and "pred.csv" in lines[0], out.stderr
        assert not list(tmp_path.glob("*pred.csv*"))  # no partial file, no temporary file
    long = zoo_cli("train", "blobs-mlp", "--epochs", "1", "--out", "x" * 300)
    assert long.returncode == 2 and "the name is too long for the file system (300 characters)" in long.stderr
    assert len(long.stderr.strip().splitlines()) == 1 and len(long.stderr) < 300
    newline = zoo_cli("train", "blobs-mlp", "--epochs", "1", "--out", "a\nb")
    assert newline.returncode == 2 and "holds a control character" in newline.stderr
    denied = zoo_cli("train", "blobs-mlp", "--epochs", "1", "--out", "/sys/zoo-run")
    assert denied.returncode == 2 and len(denied.stderr.strip().splitlines()) == 1 and "/sys/zoo-run" in denied.stderr
    odd = tmp_path / "runs" / "odd\nname"
    shutil.copytree(run.dir, odd)
    table = zoo_cli("runs", "--root", str(tmp_path / "runs")).stdout.splitlines()
    assert len(table) == 2 and "odd name" in table[1]


def test_an_unexpected_error_is_one_line_unless_debugging(tmp_path):
    from zoo.cli import main

    from click.testing import CliRunner

    import zoo.cli as cli

    def broken(*args, **kwargs):
        raise RuntimeError("a bug\nspread over lines")

    runner = CliRunner()
    original = cli._print_settings
    cli._print_settings = broken
    try:
        res = runner.invoke(main, ["info", "train"], env={"ZOO_DEBUG": ""})
        assert res.exit_code == 1
        assert res.output.strip().splitlines() == [
            "error: unexpected RuntimeError: a bug spread over lines (at test_crash_safety.py:"
            + res.output.split("test_crash_safety.py:")[1].split(")")[0]
            + "); this is a bug in zoo or in a plugin: run again with ZOO_DEBUG=1 for the traceback, and please "
              "report it"]
        res = runner.invoke(main, ["info", "train"], env={"ZOO_DEBUG": "1"})
        assert isinstance(res.exception, RuntimeError)  # the traceback, for whoever debugs it
    finally:
        cli._print_settings = original
