"""The training engine as a practitioner relies on it: stopping, resuming, configs, progress."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import zoo
from zoo.config import resolve
from zoo.errors import UsageError

from helpers import run_zoo

SMALL = {"n_samples": 400}


def _same_weights(a: Path, b: Path) -> bool:
    wa, wb = load_file(str(a)), load_file(str(b))
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def _checkpoint(run_dir: Path) -> Path:
    """The current checkpoint generation of a run (the directory checkpoint.json names)."""
    return run_dir / "checkpoints" / json.loads((run_dir / "checkpoint.json").read_text())["generation"]


def _history(run_dir: Path) -> list[list[str]]:
    rows = [line.split(",") for line in (run_dir / "history.csv").read_text().splitlines()]
    t = rows[0].index("time")
    return [r[:t] + r[t + 1 :] for r in rows]


def test_early_stopping_keeps_the_best_epoch_and_the_last(tmp_path):
    run = zoo.train("moons-mlp", params=SMALL, epochs=200, patience=3, lr=0.05, schedule="none", quiet=True,
                    out=tmp_path / "r")
    assert run.status == "stopped early" and len(run.history) < 200
    losses = [row["val_loss"] for row in run.history]
    best = min(range(len(losses)), key=losses.__getitem__) + 1
    assert run.best_epoch == best and len(run.history) == best + 3
    status = json.loads((run.dir / "run.json").read_text())
    assert status["status"] == "stopped early" and status["best_epoch"] == best
    assert json.loads((run.dir / "metrics.json").read_text())["best_epoch"] == best
    saved, last = load_file(str(run.dir / "model.safetensors")), load_file(str(_checkpoint(run.dir) / "last.safetensors"))
    assert any(not torch.equal(saved[k], last[k]) for k in saved)  # best != last
    model = zoo.load(run.dir)
    assert zoo.evaluate(run.dir, split="val")["loss"] == pytest.approx(losses[best - 1], rel=1e-6)
    assert all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())


def test_monitor_can_be_a_metric_and_is_validated(tmp_path):
    run = zoo.train("moons-mlp", params=SMALL, epochs=4, monitor="val_accuracy", quiet=True, out=tmp_path / "r")
    accs = [row["val_accuracy"] for row in run.history]
    assert run.history[run.best_epoch - 1]["val_accuracy"] == max(accs)
    with pytest.raises(UsageError, match="monitor 'val_acc' is not reported for a binary task; did you mean "
                                         "'val_accuracy'"):
        resolve("moons-mlp", monitor="val_acc")
    with pytest.raises(UsageError, match="val_mse"):
        resolve("digits-cnn", monitor="val_mse")


@pytest.mark.parametrize("settings", [
    {"optimizer": "sgd", "momentum": 0.9, "nesterov": True},
    {"optimizer": "adamw", "weight_decay": 0.01},
    {"optimizer": "rmsprop", "momentum": 0.5},
    {"optimizer": "adagrad", "lr": 0.05},
    {"optimizer": "adam", "l1": 1e-3, "clip_grad": 0.5},
    {"schedule": "step", "step_size": 1, "gamma": 0.5},
    {"schedule": "plateau", "plateau_patience": 1},
    {"schedule": "cosine", "warmup_epochs": 0.5},
], ids=lambda s: "-".join(f"{k}={v}" for k, v in s.items()))
def test_every_optimizer_and_schedule_trains(settings, tmp_path):
    run = zoo.train("blobs-mlp", epochs=3, quiet=True, out=tmp_path / "r", **settings)
    assert run.metrics["test"]["accuracy"] > 0.8
    assert run.config["optimizer"] == settings.get("optimizer", "adam")


def test_l1_penalty_shrinks_weights(tmp_path):
    plain = zoo.train("blobs-mlp", epochs=5, quiet=True, out=tmp_path / "a")
    sparse = zoo.train("blobs-mlp", epochs=5, l1=0.05, quiet=True, out=tmp_path / "b")
    norm = lambda m: sum(p.abs().sum().item() for p in m.parameters() if p.dim() > 1)  # noqa: E731
    assert norm(sparse.model) < 0.8 * norm(plain.model)


def test_nesterov_needs_sgd_with_momentum():
    with pytest.raises(UsageError, match="nesterov=true has no effect with optimizer=adam: only the sgd optimizer uses nesterov"):
        resolve("blobs-mlp", sets={"nesterov": "true"})
    with pytest.raises(UsageError, match=r"nesterov needs momentum > 0"):
        resolve("blobs-mlp", sets={"nesterov": "true"}, optimizer="sgd")


FLAKY_LOSS = """
import torch
from zoo import LossSpec, Param, hookimpl


class NanAfter(torch.nn.Module):
    \"\"\"MSE, but NaN from the given call on (a loss with a bug that shows in epoch 2).\"\"\"

    def __init__(self, after):
        super().__init__()
        self.after, self.calls = after, 0

    def forward(self, output, target):
        self.calls += 1
        loss = torch.nn.functional.mse_loss(output, target)
        return loss * float("nan") if self.calls > self.after else loss


def nan_after(*, after: int = 0):
    return NanAfter(after)


@hookimpl
def zoo_losses():
    return [LossSpec(name="flaky", summary="MSE that turns NaN.", tasks=("regression",), target="value",
                     impl="flakyloss:nan_after", params={"after": Param("int", 0)})]
"""


def test_a_non_finite_loss_stops_at_once_names_the_loss_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    import importlib
    import sys

    from zoo.registry import Registry, get_registry

    (tmp_path / "flakyloss.py").write_text(FLAKY_LOSS)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("flakyloss", None)
    tabular = get_registry().plugins["tabular"].module
    training = get_registry().plugins["training"].module  # optimizers, schedules, metrics, the procedure
    reg = Registry.from_modules({"tabular": tabular, "training": training,
                                 "flaky": importlib.import_module("flakyloss")})
    # 400 samples: 240 train = 8 batches of 32 an epoch, then one validation call; the 11th call is NaN
    with pytest.raises(zoo.ZooError) as err:
        zoo.train(dataset="sine", model="mlp", loss="flaky", params={"n_samples": 400, "loss.after": 10},
                  epochs=5, checkpoint_every=0, quiet=True, out=tmp_path / "r", registry=reg)
    msg = str(err.value)
    assert "loss 'flaky' from plugin 'flaky' returned nan in epoch 2, batch 2 on finite model outputs" in msg
    assert "last good checkpoint (epoch 1)" in msg and "learning rate" not in msg
    state = json.loads((_checkpoint(tmp_path / "r") / "trainer.json").read_text())
    assert state["epoch"] == 1
    assert json.loads((tmp_path / "r" / "run.json").read_text())["status"] == "failed"
    last = load_file(str(_checkpoint(tmp_path / "r") / "last.safetensors"))
    assert all(torch.isfinite(v).all() for v in last.values())


def test_resume_after_three_epochs_equals_six_in_one_go(tmp_path):
    common = ["train", "regression-mlp", "--set", "n_samples=600", "--schedule", "none", "-q"]
    assert run_zoo(*common, "--epochs", "3", "--out", "a", cwd=tmp_path).returncode == 0
    resumed = run_zoo("train", "--resume", "a", "--epochs", "6", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "epochs 4-6" in resumed.stderr
    assert run_zoo(*common, "--epochs", "6", "--out", "b", cwd=tmp_path).returncode == 0
    assert _same_weights(_checkpoint(tmp_path / "a") / "last.safetensors", _checkpoint(tmp_path / "b") / "last.safetensors")
    assert _same_weights(tmp_path / "a" / "model.safetensors", tmp_path / "b" / "model.safetensors")
    assert _history(tmp_path / "a") == _history(tmp_path / "b")
    assert json.loads((tmp_path / "a" / "config.json").read_text())["train"]["epochs"] == 6


def test_resume_refuses_other_settings_and_shorter_totals(tmp_path):
    assert run_zoo("train", "blobs-mlp", "--epochs", "2", "--out", "a", "-q", cwd=tmp_path).returncode == 0
    out = run_zoo("train", "--resume", "a", "--lr", "0.1", cwd=tmp_path)
    assert out.returncode == 2 and "only --epochs (the total) and --device may be given, not --lr" in out.stderr
    out = run_zoo("train", "--resume", "a", "--epochs", "1", cwd=tmp_path)
    assert out.returncode == 2 and "already trained 2 epochs" in out.stderr
    (tmp_path / "empty").mkdir()
    out = run_zoo("train", "--resume", "empty", cwd=tmp_path)
    assert out.returncode == 2 and "not a zoo run directory" in out.stderr


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_a_signal_ends_the_epoch_cleanly_and_the_run_resumes_exactly(tmp_path, sig, code):
    args = [sys.executable, "-m", "zoo", "train", "regression-mlp", "--set", "n_samples=1500", "--schedule", "cosine",
            "--epochs", "40"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZOO_")}
    proc = subprocess.Popen([*args, "--out", "a"], cwd=tmp_path, stderr=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env=env)
    lines = []
    for line in proc.stderr:  # wait until training is under way
        lines.append(line)
        if line.startswith("epoch  2/40"):
            break
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    name = signal.Signals(sig).name
    assert f"error: {name} received: stopped cleanly after epoch" in err and "zoo train --resume a" in err
    status = json.loads((tmp_path / "a" / "run.json").read_text())
    stopped = json.loads((_checkpoint(tmp_path / "a") / "trainer.json").read_text())["epoch"]
    assert status["status"] == "interrupted" and status["epochs"] == stopped and 2 <= stopped < 40
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.startswith(".")]
    assert run_zoo("train", "--resume", "a", "-q", cwd=tmp_path).returncode == 0
    assert subprocess.run([*args, "--out", "b", "-q"], cwd=tmp_path, env=env, capture_output=True).returncode == 0
    assert _same_weights(_checkpoint(tmp_path / "a") / "last.safetensors", _checkpoint(tmp_path / "b") / "last.safetensors")
    assert _history(tmp_path / "a") == _history(tmp_path / "b")
    assert json.loads((tmp_path / "a" / "run.json").read_text())["status"] == "finished"


def test_config_files_flags_override_and_typos_name_the_key(tmp_path):
    (tmp_path / "exp.toml").write_text(
        'recipe = "blobs-mlp"\nepochs = 2\nlr = 0.02\n[model_params]\nhidden = [6, 6]\n[dataset_params]\nn_samples = 300\n')
    shown = run_zoo("train", "--config", "exp.toml", "--epochs", "3", "--set", "dropout=0.1", "--print-config",
                    "--format", "json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    cfg = json.loads(shown.stdout)
    assert cfg["train"]["epochs"] == 3 and cfg["train"]["lr"] == 0.02
    assert cfg["model"] == {"name": "mlp", "plugin": "tabular", "hidden": [6, 6], "activation": "relu", "dropout": 0.1}
    assert cfg["dataset"]["n_samples"] == 300 and not list(tmp_path.glob("runs"))  # printing trains nothing
    (tmp_path / "exp.yaml").write_text("recipe: blobs-mlp\nepochs: 2\nmodel_params:\n  hidden: [4]\n")
    assert json.loads(run_zoo("train", "--config", "exp.yaml", "--print-config", "--format", "json",
                              cwd=tmp_path).stdout)["model"]["hidden"] == [4]
    for text, message in [
        ('recipe = "blobs-mlp"\nepoch = 2\n', "unknown key 'epoch'; did you mean 'epochs'?"),
        ('recipe = "blobs-mlp"\nepochs = "two"\n', "epochs='two' is not a valid int"),
        ('recipe = "blobs-mlp"\n[model_params]\nhiden = [3]\n', "model 'mlp' has no parameter 'hiden'; did you mean"),
        ('recipe = "blobs-mlp"\nmodel_params = 3\n', "'model_params' must be a table"),
        ('recipe = "blobs-mlp\n', "cannot be parsed"),
    ]:
        (tmp_path / "bad.toml").write_text(text)
        out = run_zoo("train", "--config", "bad.toml", cwd=tmp_path)
        assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr, (text, out.stderr)


def test_a_runs_config_json_repeats_the_run(tmp_path):
    first = zoo.train("moons-mlp", params=SMALL, epochs=2, quiet=True, out=tmp_path / "a")
    out = run_zoo("train", "--config", str(first.dir / "config.json"), "--out", "b", "-q", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert _same_weights(first.dir / "model.safetensors", tmp_path / "b" / "model.safetensors")
    assert _history(first.dir) == _history(tmp_path / "b")


def test_progress_is_plain_lines_off_a_terminal_and_silent_when_quiet(tmp_path):
    out = run_zoo("train", "blobs-mlp", "--epochs", "2", cwd=tmp_path)
    lines = out.stderr.splitlines()
    assert lines[0].startswith("training blobs-mlp-") and lines[1].startswith("epoch 1/2  train_loss ")
    assert "\r" not in out.stderr
    quiet = run_zoo("train", "blobs-mlp", "--epochs", "2", "-q", cwd=tmp_path)
    assert quiet.stderr == "" and "test " in quiet.stdout


def test_progress_bar_on_a_terminal(tmp_path):
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # a 120-column terminal
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZOO_")}
    proc = subprocess.Popen([sys.executable, "-m", "zoo", "train", "moons-mlp", "--epochs", "2"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=120)
    os.close(master)
    text = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0
    # the tqdm bar: epoch, batches done of 94, rate (the loss shows once the bar refreshes mid-epoch)
    assert "epoch 1/2:" in text and "/94 [" in text and "batch/s" in text
    assert "epoch 2/2  train_loss" in text  # and the epoch's summary line


def test_bf16_autocast_trains_and_reloads_exactly(tmp_path):
    run = zoo.train("blobs-mlp", epochs=3, precision="bf16", quiet=True, out=tmp_path / "r")
    assert run.metrics["test"]["accuracy"] > 0.9
    weights = load_file(str(run.dir / "model.safetensors"))
    assert all(t.dtype == torch.float32 for t in weights.values())  # autocast: weights stay float32
    assert zoo.evaluate(run.dir) == pytest.approx(run.metrics["test"], abs=1e-12)


def test_compile_option_trains_the_same_weights_it_saves(tmp_path):
    # the eager backend exercises the wiring (compiled module for training, the plain module
    # for evaluation and saving) without paying for code generation in the test suite
    run = zoo.train("blobs-mlp", epochs=2, compile=True, compile_backend="eager", quiet=True, out=tmp_path / "r")
    plain = zoo.train("blobs-mlp", epochs=2, quiet=True, out=tmp_path / "p")
    assert _same_weights(run.dir / "model.safetensors", plain.dir / "model.safetensors")
    assert not any(k.startswith("_orig_mod") for k in load_file(str(run.dir / "model.safetensors")))


def test_the_fast_backward_gives_the_public_paths_gradients():
    """zoo.procedures.backward skips Tensor.backward's Python for a plain scalar loss: the gradients must
    be the same bits, and anything else (a non-scalar) must take the public path and its error."""
    import torch

    from zoo.procedures import backward

    def grads(call):
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
        x = torch.randn(16, 3)
        call(torch.nn.functional.mse_loss(net(x), torch.ones(16, 1)))
        call(net(x).pow(2).mean())  # accumulates into the existing gradients
        return [p.grad.clone() for p in net.parameters()]

    ours, public = grads(backward), grads(lambda loss: loss.backward())
    assert all(torch.equal(a, b) for a, b in zip(ours, public))
    with pytest.raises(RuntimeError, match="scalar outputs"):
        backward(torch.ones(3, requires_grad=True) * 2)
