"""zoo.checks: a declaration against its implementation, written once for strict mode and the contract suite."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from zoo import DatasetSpec, LossSpec, ModelSpec, Param
from zoo.checks import implementation_problems, signature_problems

IMPL = '''
def net(input_shape, out_features, *, width=8, act="relu"):
    return None

def needs_depth(input_shape, out_features, *, depth):
    return None

def takes_anything(input_shape, out_features, **params):
    return None

def no_shape(*, width=8):
    return None

def data(*, seed, n=10):
    return None

def data_without_seed(*, n=10):
    return None

def encode(table, state):
    return None

def example():  # should take the directory
    return {}

NOT_CALLABLE = 3
'''


@pytest.fixture
def impl_module(tmp_path, monkeypatch):
    (tmp_path / "checks_impl.py").write_text(IMPL)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    yield importlib.import_module("checks_impl")
    sys.modules.pop("checks_impl", None)


def _model(impl: str, **params) -> ModelSpec:
    return ModelSpec(name="m", summary="A model.", tasks=("regression",), impl=impl, params=params)


def test_signature_problems_compare_declared_and_accepted_parameters(impl_module):
    assert signature_problems(_model("x:y", width=Param("int", 8)), impl_module.net) == []
    assert signature_problems(_model("x:y", width=Param("int", 8), depth=Param("int", 2)), impl_module.net) == [
        "parameters declared but not accepted by the implementation: depth"]
    assert signature_problems(_model("x:y"), impl_module.needs_depth) == [
        "parameters required by the implementation but not declared: depth"]
    assert signature_problems(_model("x:y", width=Param("int", 16)), impl_module.net) == [
        "the default of 'width' is 8 in the implementation but 16 in the declaration"]
    assert signature_problems(_model("x:y", depth=Param("int", 2)), impl_module.takes_anything) == []
    assert signature_problems(_model("x:y", width=Param("int", 8)), impl_module.no_shape) == [
        "the implementation must take (input_shape, out_features, **params)"]
    ds = DatasetSpec(name="d", summary="A dataset.", tasks=("binary",), impl="x:y", params={"n": Param("int", 10)})
    assert signature_problems(ds, impl_module.data) == []
    assert signature_problems(ds, impl_module.data_without_seed) == [
        "the implementation must accept seed= (zoo passes it to every dataset)"]


def test_implementation_problems_import_what_a_declaration_names(impl_module):
    assert implementation_problems(_model("checks_impl:net")) == []
    assert implementation_problems(_model("checks_impl:nett")) == [
        "implementation 'checks_impl:nett' cannot be imported: AttributeError: module 'checks_impl' has no attribute "
        "'nett'; did you mean 'net'?"]
    assert implementation_problems(_model("checks_imp:net")) == [
        "implementation 'checks_imp:net' cannot be imported: ModuleNotFoundError: No module named 'checks_imp'; "
        "did you mean 'checks_impl'?"]
    assert implementation_problems(_model("checks_impl:NOT_CALLABLE")) == [
        "implementation 'checks_impl:NOT_CALLABLE' is not callable (it is int)"]
    loss = LossSpec(name="l", summary="A loss.", tasks=("regression",), impl="checks_impl:net")
    assert "the implementation must take" not in " ".join(implementation_problems(loss))  # losses take keywords only
    ds = DatasetSpec(name="d", summary="A dataset.", tasks=("binary",), impl="checks_impl:data",
                     encode="checks_impl:encod", example="checks_impl:example")
    problems = implementation_problems(ds)
    assert problems[0] == ("encode 'checks_impl:encod' cannot be imported: AttributeError: module 'checks_impl' has "
                           "no attribute 'encod'; did you mean 'encode'?")
    assert problems[1].startswith("example 'checks_impl:example' must take (directory): ")
    assert len(problems) == 2


def test_importing_zoo_checks_stays_light():
    probe = "import sys, zoo.checks; print(','.join(m for m in ('torch', 'numpy', 'sklearn') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "", out.stdout + out.stderr
