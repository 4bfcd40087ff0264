"""zoo.testing catches broken plugins with messages that say what is wrong."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap

import pytest

from zoo.testing import CONTRACT_VERSION, plugin_checks

BROKEN = '''
from zoo import DatasetSpec, LossSpec, ModelSpec, Param, hookimpl

ZOO_CONTRACT = "1"
_T = ("regression", "binary", "multiclass")

@hookimpl
def zoo_models():
    return [
        ModelSpec(name="wrong-shape", summary="Outputs one column too many.", tasks=_T, impl="{impl}:wrong_shape"),
        ModelSpec(name="frozen-layer", summary="A layer no gradient reaches.", tasks=("regression",),
                  impl="{impl}:frozen_layer"),
        ModelSpec(name="leaky-state", summary="Keeps state outside its state dict.", tasks=("regression",),
                  impl="{impl}:leaky_state"),
        ModelSpec(name="bad-params", summary="Declares what it does not take.", tasks=("regression",),
                  impl="{impl}:good", params={{"width": Param("int", 8), "depth": Param("int", 2)}}),
        ModelSpec(name="good", summary="A fine model.", tasks=("regression",), impl="{impl}:good",
                  params={{"width": Param("int", 8)}}),
        ModelSpec(name="flat-only", summary="Declares images but only works on feature vectors.",
                  tasks=("regression",), inputs=("tabular", "image"), impl="{impl}:flat_only"),
        ModelSpec(name="typo-impl", summary="Names an attribute its module does not have.", tasks=("regression",),
                  impl="{impl}:goood"),
    ]

@hookimpl
def zoo_losses():
    return [LossSpec(name="nan-loss", summary="Always NaN.", tasks=("regression",), target="value",
                     impl="{impl}:nan_loss")]

@hookimpl
def zoo_datasets():
    return [DatasetSpec(name="bad-labels", summary="Labels out of range.", tasks=("multiclass",),
                        impl="{impl}:bad_labels")]
'''

IMPL = '''
import math
import torch
from torch import nn
from zoo.data import split_arrays

def wrong_shape(input_shape, out_features):
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), out_features + 1))

class Frozen(nn.Module):
    def __init__(self, d, out):
        super().__init__()
        self.a = nn.Linear(d, 8)
        self.b = nn.Linear(8, out)
    def forward(self, x):
        return self.b(self.a(x).detach())

def frozen_layer(input_shape, out_features):
    return Frozen(math.prod(input_shape), out_features)

class Leaky(nn.Module):
    def __init__(self, d, out):
        super().__init__()
        self.lin = nn.Linear(d, out)
        self.register_buffer("offset", torch.randn(out), persistent=False)
    def forward(self, x):
        return self.lin(x) + self.offset

def leaky_state(input_shape, out_features):
    return Leaky(math.prod(input_shape), out_features)

def good(input_shape, out_features, *, width=8):
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), width), nn.Tanh(),
                         nn.Linear(width, out_features))

def flat_only(input_shape, out_features):
    return nn.Linear(input_shape[0], out_features)  # fine for (d,), wrong for (C, H, W)

def nan_loss():
    return lambda out, target: (out - target).pow(2).mean() * float("nan")

def bad_labels(*, seed):
    import numpy as np
    X = np.random.default_rng(0).normal(size=(60, 3))
    splits = split_arrays(X, np.arange(60) % 3, task="multiclass", seed=seed)
    splits.train[1][0] = 7
    return splits
'''


@pytest.fixture
def broken_plugin(tmp_path, monkeypatch):
    (tmp_path / "brokenzoo_impl.py").write_text(IMPL)
    (tmp_path / "brokenzoo.py").write_text(BROKEN.format(impl="brokenzoo_impl"))
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    yield importlib.import_module("brokenzoo")
    for mod in ("brokenzoo", "brokenzoo_impl"):
        sys.modules.pop(mod, None)


def _outcomes(module, only: str = "") -> dict[str, str | None]:
    """Each check's failure message (None when it passes), for the checks whose id contains ``only``."""
    out = {}
    for check in plugin_checks(module):
        if only not in check.id:
            continue
        try:
            check()
            out[check.id] = None
        except AssertionError as exc:
            out[check.id] = str(exc)
    return out


def test_broken_components_fail_the_matching_checks_with_clear_messages(broken_plugin):
    res = _outcomes(broken_plugin)
    assert "output shape (48, 2) for input (48, 4); expected (48, 1)" in res["model:wrong-shape:forward-shape[regression]"]
    assert "output shape (48, 4) for input (48, 4); expected (48, 3)" in res[
        "model:wrong-shape:forward-shape[multiclass]"]
    assert "output shape" in res["model:wrong-shape:gradients[binary]"]
    assert "no gradient reaches a.weight, a.bias" in res["model:frozen-layer:gradients[regression]"]
    assert "predicts differently" in res["model:leaky-state:state-dict-roundtrip"]
    assert "declared but not accepted by the implementation: depth" in res["model:bad-params:declaration"]
    assert "value nan" in res["loss:nan-loss:finite-differentiable[regression]"]
    assert "class indices outside [0, 3)" in res["dataset:bad-labels:splits"]
    assert ("implementation 'brokenzoo_impl:goood' cannot be imported: AttributeError: module 'brokenzoo_impl' "
            "has no attribute 'goood'; did you mean 'good'?") in res["model:typo-impl:declaration"]
    # everything that is fine passes
    for cid in ("model:good:declaration", "model:good:forward-shape[regression]", "model:good:gradients[regression]",
                "model:good:learns[regression]", "model:good:train-eval-modes", "model:good:state-dict-roundtrip",
                "model:good:accepts-input[tabular]", "model:frozen-layer:forward-shape[regression]",
                "dataset:bad-labels:reproducible", "plugin:brokenzoo:contract-version", "plugin:brokenzoo:hooks"):
        assert res[cid] is None, (cid, res[cid])


def test_a_model_that_breaks_on_a_declared_input_kind_fails_accepts_input(broken_plugin):
    res = _outcomes(broken_plugin, only=":flat-only:")
    # the tabular checks cannot see it: they feed (4,) vectors, which it handles
    for cid in ("model:flat-only:forward-shape[regression]", "model:flat-only:learns[regression]",
                "model:flat-only:accepts-input[tabular]"):
        assert res[cid] is None, (cid, res[cid])
    msg = res["model:flat-only:accepts-input[image]"]
    assert msg.startswith("model 'flat-only' declares image input but fails on shape (1, 8, 8): the train-mode "
                          "forward pass of a batch (4, 1, 8, 8) raised RuntimeError: mat1 and mat2 shapes cannot be "
                          "multiplied")
    assert "; on shape (3, 32, 32): the train-mode forward pass of a batch (4, 3, 32, 32) raised RuntimeError" in msg
    assert "; on shape (1, 28, 28): " in msg
    assert "\n" not in msg
    # one case per declared input kind, none for kinds it does not declare
    ids = [c.id for c in plugin_checks(broken_plugin) if ":accepts-input[" in c.id]
    assert [i for i in ids if ":good:" in i or ":flat-only:" in i] == [
        "model:good:accepts-input[tabular]", "model:flat-only:accepts-input[tabular]",
        "model:flat-only:accepts-input[image]"]


def test_contract_version_mismatch_is_reported(broken_plugin, monkeypatch):
    monkeypatch.setattr(broken_plugin, "ZOO_CONTRACT", "0")
    res = _outcomes(broken_plugin)
    assert f"checks contract {CONTRACT_VERSION}" in res["plugin:brokenzoo:contract-version"]


def test_expected_failures_are_strict_in_a_real_pytest_run(tmp_path):
    (tmp_path / "brokenzoo_impl.py").write_text(IMPL)
    (tmp_path / "brokenzoo.py").write_text(BROKEN.format(impl="brokenzoo_impl"))
    (tmp_path / "test_plugin.py").write_text(textwrap.dedent('''
        from zoo.testing import parametrize_plugin_checks

        @parametrize_plugin_checks("brokenzoo", expected_failures={
            "loss:nan-loss:finite-differentiable[regression]": "known: returns NaN",
            "model:good:learns[regression]": "a stale mark: this check passes",
        })
        def test_contract(check):
            check()
    '''))
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rxX",
                          "-k", "nan-loss or good", "test_plugin.py"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "PYTHONPATH": str(tmp_path)})
    text = out.stdout
    assert "1 xfailed" in text and "known: returns NaN" in text
    assert "[XPASS(strict)] a stale mark: this check passes" in text
    assert out.returncode == 1


def test_an_expected_failure_naming_no_check_is_an_error(broken_plugin):
    from zoo.testing import parametrize_plugin_checks

    with pytest.raises(ValueError, match="model:nope:learns"):
        parametrize_plugin_checks(broken_plugin, expected_failures={"model:nope:learns": "typo"})


HIDDEN = '''
from zoo import LossSpec, ModelSpec, hookimpl

@hookimpl
def zoo_losses():
    return [LossSpec(name="seen-loss", summary="Registered.", tasks=("regression",), target="value",
                     impl="hiddenzoo_impl:loss")]

def zoo_models():  # @hookimpl forgotten: zoo never calls this
    return [ModelSpec(name="hidden-a", summary="Never listed.", tasks=("regression",), impl="hiddenzoo_impl:net"),
            ModelSpec(name="hidden-b", summary="Never listed.", tasks=("regression",), impl="hiddenzoo_impl:net")]

@hookimpl
def zoo_dataset():  # marked, but zoo has no hook of this name
    return []
'''

INVALID = '''
from zoo import DatasetSpec, ModelSpec, hookimpl

@hookimpl
def zoo_models():
    return [ModelSpec(name="Bad Name", summary="x", tasks=("telepathy",), impl="nocolon")]

@hookimpl
def zoo_datasets():
    return [DatasetSpec(name="two-tasks", summary="Its task is whatever the data says.",
                        tasks=("binary", "multiclass"), impl="invalidzoo_impl:three_classes")]
'''

INVALID_IMPL = '''
import numpy as np
from zoo.data import split_arrays

def three_classes(*, seed):
    X = np.random.default_rng(0).normal(size=(60, 3))
    return split_arrays(X, np.arange(60) % 3, task="multiclass", seed=seed)
'''


@pytest.fixture
def plugin_module(tmp_path, monkeypatch):
    """``plugin_module(name, source, impl=None)`` imports a plugin module (and ``NAME_impl``) from files."""
    names = []

    def make(name: str, source: str, impl: str | None = None):
        (tmp_path / f"{name}.py").write_text(source)
        if impl is not None:
            (tmp_path / f"{name}_impl.py").write_text(impl)
        names.extend([name, f"{name}_impl"])
        importlib.invalidate_caches()
        return importlib.import_module(name)

    monkeypatch.syspath_prepend(str(tmp_path))
    yield make
    for mod in names:
        sys.modules.pop(mod, None)


def test_hook_functions_zoo_never_calls_fail_the_hooks_check(plugin_module):
    module = plugin_module("hiddenzoo", HIDDEN)
    checks = {c.id: c for c in plugin_checks(module)}
    # components are found as zoo finds them: the unmarked hook's models get no checks
    assert "loss:seen-loss:declaration" in checks
    assert not [cid for cid in checks if "hidden-" in cid]
    with pytest.raises(AssertionError) as err:
        checks["plugin:hiddenzoo:hooks"]()
    msg = str(err.value)
    assert ("zoo_models() is not marked @hookimpl, so zoo never calls it: hidden-a, hidden-b are invisible to "
            "`zoo list`") in msg
    assert ("zoo_dataset() is marked @hookimpl but zoo has no hook of that name, so it is never called; "
            "did you mean 'zoo_datasets'?") in msg


def test_declarations_the_registry_skips_are_still_checked_and_reported(plugin_module):
    module = plugin_module("invalidzoo", INVALID, INVALID_IMPL)
    res = _outcomes(module)
    hooks = res["plugin:invalidzoo:hooks"]
    assert hooks.startswith("plugin 'invalidzoo': registering it as zoo does fails: invalid declarations: ")
    assert "model 'Bad Name': name 'Bad Name' must be lower-case" in hooks and "unknown task 'telepathy'" in hooks
    assert "dataset 'two-tasks': a dataset declares exactly one task" in hooks
    decl = res["model:Bad Name:declaration"]
    assert decl.startswith("model 'Bad Name' declaration: ") and "impl 'nocolon' must be 'module:attribute'" in decl
    # a dataset may declare several tasks: its splits need only carry one of them
    assert res["dataset:two-tasks:splits"] is None


INFERRING = '''
from zoo import DatasetSpec, hookimpl

@hookimpl
def zoo_datasets():
    return [DatasetSpec(name="guesser", summary="Its task comes from infer_task.", tasks=("binary", "multiclass"),
                        impl="inferzoo_impl:three_classes", infer_task="inferzoo_impl:infer")]
'''

INFERRING_IMPL = INVALID_IMPL + '''

def infer(params):
    return "binary", "a wrong guess: the data has three classes"
'''


def test_an_inferred_task_must_match_the_data_the_dataset_loads(plugin_module):
    res = _outcomes(plugin_module("inferzoo", INFERRING, INFERRING_IMPL), "dataset:guesser:splits")
    assert res["dataset:guesser:splits"] == (
        "dataset 'guesser': its infer_task says binary for its example parameters, but the data it loads is a "
        "multiclass task (zoo train would refuse the run)")


GENERATION = '''
from zoo import ModelSpec, ProcedureSpec, hookimpl

@hookimpl
def zoo_models():
    return [ModelSpec(name="no-sampler", summary="Scores samples but cannot draw them.", tasks=("generation",),
                      impl="genzoo_impl:no_sampler"),
            ModelSpec(name="global-rng", summary="Ignores the generator it is given.", tasks=("generation",),
                      impl="genzoo_impl:global_rng")]

@hookimpl
def zoo_procedures():
    return [ProcedureSpec(name="forgetful", summary="Forgets its step count on resume.", tasks=("generation",),
                          impl="genzoo_impl:Forgetful")]
'''

GENERATION_IMPL = '''
import torch
from torch import nn
from zoo.evaluation import evaluate_split
from zoo.parts import build_loss
from zoo.procedures import Procedure

class Scorer(nn.Module):
    def __init__(self, d, out):
        super().__init__()
        self.d = nn.Linear(d, out)
        self.g = nn.Linear(2, d)

    def forward(self, x):
        return self.d(x.reshape(len(x), -1))

def no_sampler(input_shape, out_features):
    return Scorer(input_shape[0], out_features)

class GlobalRng(Scorer):
    def sample(self, n, generator=None):
        return self.g(torch.randn(n, 2))

def global_rng(input_shape, out_features):
    return GlobalRng(input_shape[0], out_features)

class Forgetful(Procedure):
    """Moves the generator by a step that grows with an internal count it does not checkpoint."""

    def __init__(self, ctx):
        super().__init__(ctx)
        self.loss_fn = build_loss(ctx.combo, ctx.cfg)
        self.opt = self.build_optimizer(ctx.model.net.parameters())
        self.count = 0

    def train_epoch(self, epoch, on_batch):
        self.count += 1
        with torch.no_grad():
            for p in self.ctx.model.net.generator.parameters():
                p.add_(0.01 * self.count)
        return {"train_loss": 0.0}

    def evaluate(self, split, fast, model=None):
        model = model or self.ctx.model
        res = evaluate_split(model, self.loss_fn, self.ctx.splits.split(split), "generation", "value",
                             torch.device("cpu"), fast=fast, cfg=self.ctx.cfg, metrics=self.ctx.metrics)
        # a loss that every epoch improves, so that the best weights are the last ones
        return {**res, "loss": -float(sum(p.detach().sum() for p in model.net.generator.parameters()))}
'''


def test_generation_models_must_sample_from_the_generator_given_and_procedures_resume_exactly(plugin_module):
    res = _outcomes(plugin_module("genzoo", GENERATION, GENERATION_IMPL))
    assert "has no sample(n, generator=None) method" in res["model:no-sampler:samples[generation]"]
    assert "gave different samples" in res["model:global-rng:samples[generation]"]
    assert res["model:global-rng:forward-shape[generation]"] is None
    assert "different weights" in res["procedure:forgetful:trains-and-resumes"]
