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


def _outcomes(module) -> dict[str, str | None]:
    out = {}
    for check in plugin_checks(module):
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
    # everything that is fine passes
    for cid in ("model:good:declaration", "model:good:forward-shape[regression]", "model:good:gradients[regression]",
                "model:good:learns[regression]", "model:good:train-eval-modes", "model:good:state-dict-roundtrip",
                "model:frozen-layer:forward-shape[regression]", "dataset:bad-labels:reproducible",
                "plugin:brokenzoo:contract-version"):
        assert res[cid] is None, (cid, res[cid])


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
