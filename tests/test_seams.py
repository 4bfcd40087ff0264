"""The engine's seams are real: third-party distributions add a callback, an optimizer, a metric and a
training procedure, and zoo trains with them from the command line with no change to the core.

Each plugin is a real installed distribution (a dist-info with an entry point, found through
``importlib.metadata``), run by the real ``zoo`` command in a subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers import install_plugin, run_zoo, site_env

EXTRAS = '''
from zoo import CallbackSpec, MetricSpec, OptimizerSpec, Param, hookimpl

ZOO_CONTRACT = "1"


@hookimpl
def zoo_callbacks():
    return [CallbackSpec(name="jsonl-log", summary="Append every epoch to a JSON-lines file in the run.",
                         impl="extras_impl:JsonlLog",
                         params={"file": Param("str", "epochs.jsonl", "file name inside the run directory")})]


@hookimpl
def zoo_optimizers():
    return [OptimizerSpec(name="lion", summary="Lion: the sign of an interpolated momentum.",
                          impl="extras_impl:lion",
                          params={"beta1": Param("float", 0.9, "interpolation", min=0.0, max=1.0),
                                  "beta2": Param("float", 0.99, "momentum decay", min=0.0, max=1.0),
                                  "weight_decay": Param("float", 0.0, "decoupled weight decay", min=0.0)})]


@hookimpl
def zoo_metrics():
    return [MetricSpec(name="max_error", summary="The largest absolute error.", tasks=("regression",),
                       higher_is_better=False, impl="extras_impl:max_error", fast="extras_impl:fast_max_error")]
'''

EXTRAS_IMPL = '''
import json

import torch

from zoo import Callback


class JsonlLog(Callback):
    """One JSON line per epoch; ``seq`` counts the lines this run ever wrote and ``loss_sum`` adds the
    validation losses (a tensor): both continue after a resume because they travel in the checkpoint."""

    def __init__(self, file="epochs.jsonl"):
        self.file, self.seq, self.loss_sum = file, 0, torch.zeros(())

    def on_epoch_end(self, trainer, row):
        self.seq += 1
        self.loss_sum = self.loss_sum + row["val_loss"]
        with open(trainer.run_dir / self.file, "a") as fh:
            fh.write(json.dumps({"seq": self.seq, "loss_sum": float(self.loss_sum), **row}) + "\\n")

    def on_save_checkpoint(self, trainer):
        return {"seq": self.seq, "loss_sum": self.loss_sum}

    def on_load_checkpoint(self, trainer, state):
        self.seq, self.loss_sum = state["seq"], state["loss_sum"]


class Lion(torch.optim.Optimizer):
    def __init__(self, params, lr, beta1=0.9, beta2=0.99, weight_decay=0.0):
        super().__init__(params, {"lr": lr, "beta1": beta1, "beta2": beta2, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                m = self.state[p].setdefault("exp_avg", torch.zeros_like(p))
                p.mul_(1 - group["lr"] * group["weight_decay"])
                p.add_(torch.sign(m * group["beta1"] + p.grad * (1 - group["beta1"])), alpha=-group["lr"])
                m.mul_(group["beta2"]).add_(p.grad, alpha=1 - group["beta2"])


def lion(params, *, lr, beta1=0.9, beta2=0.99, weight_decay=0.0):
    return Lion(params, lr, beta1, beta2, weight_decay)


def max_error(pred, y, *, target):
    from sklearn.metrics import max_error as sk

    return float(sk(y.double().reshape(-1).numpy(), pred.double().reshape(-1).numpy()))


def fast_max_error(pred, y, *, target):
    return float((pred.double().reshape(-1) - y.double().reshape(-1)).abs().max())
'''

TWIN = '''
from zoo import ProcedureSpec, hookimpl

ZOO_CONTRACT = "1"


@hookimpl
def zoo_procedures():
    return [ProcedureSpec(name="twin", summary="Train the model and a shadow copy that learns to mimic it.",
                          tasks=("regression",), impl="twin_impl:Twin")]
'''

TWIN_IMPL = '''
import copy

import torch

from zoo.evaluation import evaluate_split, split_len, training_targets
from zoo.parts import build_loss
from zoo.procedures import Procedure


class Twin(Procedure):
    """Two models, two optimizers: the run's model learns the data; a shadow network (built by the same
    factory) learns to reproduce the model's outputs. The shadow's weights and optimizer are checkpointed,
    so a resumed run continues both exactly."""

    def __init__(self, ctx):
        super().__init__(ctx)
        self.model, s = ctx.model, ctx.settings
        self.shadow = copy.deepcopy(ctx.model.net)
        for p in self.shadow.parameters():
            torch.nn.init.normal_(p, std=0.1) if p.dim() > 1 else torch.nn.init.zeros_(p)
        self.loss_fn = build_loss(ctx.combo, ctx.cfg, ctx.strategy.device)
        self.build_optimizer(self.model.net.parameters())
        self.build_optimizer(self.shadow.parameters(), name="shadow", lr=s.lr * 2)
        self.steps_per_epoch = -(-split_len(ctx.splits.train) // s.batch_size)
        self.train = None

    def train_epoch(self, epoch, on_batch):
        if self.train is None:
            self.train = self.ctx.strategy.place(self.ctx.splits.train,
                                                 lambda y: training_targets(self.model, y, self.ctx.cfg["target"]))
        opt, shadow_opt = self.optimizers["optimizer"], self.optimizers["shadow"]
        net = self.model.net
        net.train(), self.shadow.train()
        total = shadow_total = 0.0
        n = 0
        for b, (xb, yb) in enumerate(self.ctx.strategy.train_batches(self.train, self.settings.batch_size,
                                                                    self.ctx.generator)):
            out = net(xb)
            loss = self.loss_fn(out, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            mimic = torch.nn.functional.mse_loss(self.shadow(xb), out.detach())
            shadow_opt.zero_grad()
            mimic.backward()
            shadow_opt.step()
            total += float(loss) * len(xb)
            shadow_total += float(mimic) * len(xb)
            n += len(xb)
            if on_batch is not None:
                on_batch(b + 1, loss.detach())
        return {"train_loss": total / n, "train_shadow_loss": shadow_total / n}

    def evaluate(self, split, fast, model=None):
        return evaluate_split(model or self.model, self.loss_fn, self.ctx.splits.split(split), self.model.task,
                              self.ctx.cfg["target"], self.ctx.strategy.device, fast=fast, cfg=self.ctx.cfg,
                              metrics=self.ctx.metrics)

    def state_dict(self):
        return {**super().state_dict(), "shadow": self.shadow.state_dict()}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.shadow.load_state_dict(state["shadow"])
'''

SMALL = ["--set", "n_samples=200", "--set", "model.hidden=8", "--device", "cpu", "-q"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    install_plugin(site, "zoo-extras", {"extras": EXTRAS, "extras_impl": EXTRAS_IMPL}, {"extras": "extras"})
    install_plugin(site, "zoo-twin", {"twin": TWIN, "twin_impl": TWIN_IMPL}, {"twin": "twin"})
    return site


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_plugin_adds_an_optimizer_a_metric_and_a_callback_listed_like_any_component(site, tmp_path):
    env = site_env(site)
    listed = run_zoo("list", "--json", cwd=tmp_path, env=env)
    items = {(i["kind"], i["name"]): i["plugin"] for i in json.loads(listed.stdout)["items"]}
    assert items[("optimizer", "lion")] == items[("metric", "max_error")] == items[("callback", "jsonl-log")] == "extras"
    assert items[("procedure", "twin")] == "twin"
    assert "lion" in run_zoo("list", "optimizers", cwd=tmp_path, env=env).stdout
    info = run_zoo("info", "jsonl-log", cwd=tmp_path, env=env).stdout
    assert "--callback jsonl-log" in info and "file" in info


def test_training_from_the_cli_with_a_plugins_callback_optimizer_and_metric_resumes_the_callbacks_state(
        site, tmp_path):
    env = site_env(site)
    args = ["train", "--dataset", "sine", "--model", "mlp", "--optimizer", "lion", "--set", "optimizer.beta2=0.98",
            "--set", "metrics=max_error", "--callback", "jsonl-log", "--set", "callback.jsonl-log.file=log.jsonl",
            "--lr", "0.003", "--set", "checkpoint_every=0", *SMALL]
    straight = run_zoo(*args, "--epochs", "4", "--out", "straight", cwd=tmp_path, env=env)
    assert straight.returncode == 0, straight.stderr
    cfg = json.loads((tmp_path / "straight" / "config.json").read_text())
    assert cfg["optimizer"] == {"name": "lion", "plugin": "extras", "beta1": 0.9, "beta2": 0.98,
                                "weight_decay": 0.0}
    assert cfg["callbacks"] == [{"name": "jsonl-log", "plugin": "extras", "file": "log.jsonl"}]
    metrics = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    assert metrics["test"]["max_error"] >= metrics["test"]["mae"] > 0
    log = _lines(tmp_path / "straight" / "log.jsonl")
    assert [r["seq"] for r in log] == [1, 2, 3, 4] and all("val_max_error" in r for r in log)

    # the same run stopped after 2 epochs and resumed to 4: the callback continues its count and sum
    first = run_zoo(*args, "--epochs", "2", "--out", "resumed", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    more = run_zoo("train", "--resume", "resumed", "--epochs", "4", "-q", cwd=tmp_path, env=env)
    assert more.returncode == 0, more.stderr
    resumed = _lines(tmp_path / "resumed" / "log.jsonl")
    assert [r["seq"] for r in resumed] == [1, 2, 3, 4]
    assert [r["loss_sum"] for r in resumed] == [r["loss_sum"] for r in log]  # the tensor state came back
    assert [r["val_loss"] for r in resumed] == [r["val_loss"] for r in log]  # and training continued exactly


def test_a_config_file_names_the_plugins_parts_and_callbacks(site, tmp_path):
    env = site_env(site)
    (tmp_path / "exp.toml").write_text(
        'callbacks = [{name = "jsonl-log", file = "e.jsonl"}]\n'
        '[dataset]\nname = "sine"\nn_samples = 200\n'
        '[model]\nname = "mlp"\nhidden = [8]\n'
        '[optimizer]\nname = "lion"\nbeta1 = 0.8\n'
        '[train]\nepochs = 2\nlr = 0.003\nmetrics = ["max_error"]\ndevice = "cpu"\n')
    printed = run_zoo("train", "--config", "exp.toml", "--print-config", "--format", "json", cwd=tmp_path, env=env)
    doc = json.loads(printed.stdout)
    assert doc["optimizer"]["beta1"] == 0.8 and doc["callbacks"][0]["file"] == "e.jsonl"
    assert doc["train"]["metrics"] == ["mse", "mae", "r2", "max_error"]
    out = run_zoo("train", "--config", "exp.toml", "--out", "r", "-q", cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert len(_lines(tmp_path / "r" / "e.jsonl")) == 2
    again = run_zoo("train", "--config", "r/config.json", "--out", "r2", "-q", cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stderr  # a run's config.json repeats the run, callbacks included
    assert [r["val_loss"] for r in _lines(tmp_path / "r2" / "e.jsonl")] == [r["val_loss"] for r in _lines(tmp_path / "r" / "e.jsonl")]


def test_a_plugins_two_model_procedure_trains_from_the_cli(site, tmp_path):
    env = site_env(site)
    out = run_zoo("train", "--dataset", "sine", "--model", "mlp", "--procedure", "twin", "--epochs", "3",
                  "--out", "r", *SMALL, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    header = (tmp_path / "r" / "history.csv").read_text().splitlines()[0].split(",")
    assert header == ["epoch", "train_loss", "train_shadow_loss", "val_loss", "val_mse", "val_mae", "val_r2", "lr",
                      "lr_shadow", "time"]
    assert json.loads((tmp_path / "r" / "config.json").read_text())["procedure"]["name"] == "twin"
    evaluated = run_zoo("eval", "r", "--device", "cpu", cwd=tmp_path, env=env)
    assert evaluated.returncode == 0 and "mse" in evaluated.stdout
    wrong = run_zoo("train", "--dataset", "moons", "--model", "mlp", "--procedure", "twin", *SMALL, cwd=tmp_path,
                    env=env)
    assert wrong.returncode == 2 and "procedure 'twin' cannot train dataset 'moons'" in wrong.stderr


@pytest.mark.parametrize("plugin", ["extras", "twin"])
def test_the_third_party_plugins_pass_the_contract_suite(site, plugin):
    """The contract covers the new kinds: the optimizer steps and restores, the metric scores, the callback
    and the procedure train and resume (the procedure exactly) in real runs."""
    script = ("import sys; from zoo.testing import plugin_checks\n"
              f"checks = plugin_checks({plugin!r})\n"
              "for c in checks: c()\n"
              "print(' '.join(c.id for c in checks))\n")
    env = {**site_env(site)}
    import os

    env = {**{k: v for k, v in os.environ.items() if not k.startswith("ZOO_")}, **env}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    ids = out.stdout.split()
    expected = ({"optimizer:lion:steps-and-restores", "metric:max_error:scores[regression]",
                 "callback:jsonl-log:trains-and-resumes"} if plugin == "extras"
                else {"procedure:twin:trains-and-resumes"})
    assert expected <= set(ids), ids
