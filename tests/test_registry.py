"""The registry: discovery through real entry points, lookups, conflicts, broken plugins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types

import pytest

from zoo import DatasetSpec, LossSpec, ModelSpec, Param, hookimpl
from zoo.errors import PluginLoadError, UsageError
from zoo.registry import Registry, get_registry

from helpers import install_plugin, site_env

EXTRA = '''
from zoo import ModelSpec, Param, RecipeSpec, hookimpl

@hookimpl
def zoo_models():
    return [ModelSpec(name="wide", summary="A one-hidden-layer net from a third party.",
                      tasks=("regression", "binary", "multiclass"), impl="extra_impl:wide",
                      params={"width": Param("int", 128, "hidden width", min=1)})]

@hookimpl
def zoo_recipes():
    return [RecipeSpec(name="moons-wide", summary="Moons with the third-party net.", dataset="moons",
                       model="wide", loss="cross-entropy", model_params={"width": 16},
                       dataset_params={"n_samples": 300}, train={"epochs": 2})]
'''

EXTRA_IMPL = '''
import math
from torch import nn

def wide(input_shape, out_features, *, width):
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), width), nn.ReLU(),
                         nn.Linear(width, out_features))
'''

CLASH = '''
from zoo import ModelSpec, hookimpl

@hookimpl
def zoo_models():
    return [ModelSpec(name="mlp", summary="Another mlp.", tasks=("binary",), impl="extra_impl:wide",
                      params={})]
'''

BROKEN = '''
import this_module_does_not_exist
'''

LAZY_BROKEN = '''
from zoo import ModelSpec, hookimpl

@hookimpl
def zoo_models():
    return [ModelSpec(name="ghost", summary="Its implementation cannot be imported.",
                      tasks=("binary",), impl="ghost_impl_missing:build")]
'''


def test_builtin_plugins_come_from_entry_points_of_the_installed_distribution():
    reg = get_registry()
    assert {"tabular", "vision", "losses"} <= set(reg.plugins)
    for name in ("tabular", "vision", "losses"):
        p = reg.plugins[name]
        assert p.dist == "zoo" and p.error is None and p.version
    assert reg.get("model", "mlp").plugin.name == "tabular"
    assert reg.get("dataset", "digits").plugin.name == "vision"
    assert set(reg.names("loss")) >= {"mse", "l1", "huber", "cross-entropy", "bce-with-logits"}
    assert set(reg.names("recipe")) >= {"regression-mlp", "moons-mlp", "blobs-mlp", "digits-cnn"}
    assert reg.problems() == []
    assert reg.verify() == []  # every implementation imports and accepts its declared parameters


def test_discovery_happens_once_per_process():
    assert get_registry() is get_registry()


def test_unknown_names_suggest_close_matches():
    reg = get_registry()
    with pytest.raises(UsageError, match=r"unknown model 'mpl'; did you mean 'mlp'\?"):
        reg.get("model", "mpl")
    with pytest.raises(UsageError, match=r"unknown loss 'cross-entropi'; did you mean 'cross-entropy'\?"):
        reg.get("loss", "cross-entropi")
    with pytest.raises(UsageError, match=r"unknown dataset 'mlp'.*'mlp' is a model"):
        reg.get("dataset", "mlp")


def _module(name: str, **hooks) -> types.ModuleType:
    mod = types.ModuleType(name)
    for hook, specs in hooks.items():
        setattr(mod, hook, hookimpl(lambda specs=specs: specs))
    return mod


def test_two_plugins_with_one_name_are_refused_and_can_be_chosen_explicitly():
    spec = lambda summary: ModelSpec(name="net", summary=summary, tasks=("binary",), impl="x:y")  # noqa: E731
    reg = Registry.from_modules({"a": _module("a", zoo_models=[spec("A")]), "b": _module("b", zoo_models=[spec("B")])})
    with pytest.raises(UsageError, match=r"model 'net' is contributed by both plugin 'a'.*plugin 'b'.*'a:net' or 'b:net'"):
        reg.get("model", "net")
    assert reg.get("model", "b:net").spec.summary == "B"
    assert any("contributed by both" in p for p in reg.problems())
    with pytest.raises(UsageError, match="unknown plugin 'c'"):
        reg.get("model", "c:net")


def test_invalid_declarations_are_reported_not_registered():
    bad = [
        ModelSpec(name="Bad Name", summary="x", tasks=("binary",), impl="m:f"),
        ModelSpec(name="ok", summary="", tasks=("telepathy",), impl="nocolon"),
    ]
    reg = Registry.from_modules({"p": _module("p", zoo_models=bad)})
    assert reg.names("model") == []
    err = reg.plugins["p"].error
    assert "must be lower-case" in err and "summary" in err and "unknown task 'telepathy'" in err and "impl" in err


def test_strict_switch_makes_plugin_problems_fatal(monkeypatch):
    monkeypatch.setenv("ZOO_STRICT_PLUGINS", "1")
    bad = [ModelSpec(name="ok", summary="fine", tasks=("nope",), impl="m:f")]
    with pytest.raises(PluginLoadError, match="unknown task 'nope'"):
        Registry.from_modules({"p": _module("p", zoo_models=bad)})


def test_strict_switch_also_reports_hook_functions_zoo_never_calls(monkeypatch):
    def zoo_models():  # not marked @hookimpl
        return [ModelSpec(name="lost", summary="Never listed.", tasks=("binary",), impl="m:f")]

    mod = types.ModuleType("unmarked")
    mod.zoo_models = zoo_models
    reg = Registry.from_modules({"p": mod})
    assert reg.problems() == [] and reg.names("model") == []
    assert reg.verify() == ["plugin 'p' ((local) 0): zoo_models() is not marked @hookimpl, so zoo never calls it: "
                            "lost is invisible to `zoo list` (decorate it with @zoo.hookimpl)"]
    monkeypatch.setenv("ZOO_STRICT_PLUGINS", "1")
    with pytest.raises(PluginLoadError, match=r"zoo_models\(\) is not marked @hookimpl"):
        Registry.from_modules({"p": mod})


def test_hyperparameters_are_validated_with_types_defaults_and_choices():
    spec = DatasetSpec(name="d", summary="s", tasks=("binary",), impl="m:f", params={
        "n": Param("int", 10, min=1), "sizes": Param("int-list", (3, 4)), "act": Param("str", "relu", choices=("relu", "tanh")),
        "flag": Param("bool", False), "rate": Param("float", 0.5),
    })
    assert spec.resolve_params() == {"n": 10, "sizes": (3, 4), "act": "relu", "flag": False, "rate": 0.5}
    got = spec.resolve_params({"n": "7", "sizes": "8,9", "act": "tanh", "flag": "yes", "rate": "1e-3"})
    assert got == {"n": 7, "sizes": (8, 9), "act": "tanh", "flag": True, "rate": 0.001}
    for bad, msg in [({"n": "x"}, "not a valid int"), ({"n": 0}, ">= 1"), ({"act": "tahn"}, "did you mean 'tanh'"),
                     ({"flag": "maybe"}, "not a valid bool"), ({"sizes": "a"}, "not a valid int-list"),
                     ({"nn": 1}, "has no parameter 'nn'; did you mean 'n'")]:
        with pytest.raises(UsageError, match=msg):
            spec.resolve_params(bad)


# --- real installed third-party distributions, discovered in a subprocess ---------------


def test_third_party_distribution_adds_components_with_one_entry_point(tmp_path, zoo_cli):
    site = install_plugin(tmp_path / "site", "zoo-extra", {"extra": EXTRA, "extra_impl": EXTRA_IMPL},
                          {"extra": "extra"}, version="2.5")
    env = site_env(site)
    out = zoo_cli("list", "--json", env=env)
    assert out.returncode == 0, out.stderr
    items = {(i["kind"], i["name"]): i for i in json.loads(out.stdout)["items"]}
    assert items[("model", "wide")]["distribution"] == "zoo-extra"
    assert items[("model", "mlp")]["plugin"] == "tabular"  # built-ins still there
    info = zoo_cli("info", "wide", env=env)
    assert "extra (zoo-extra 2.5)" in info.stdout and "width" in info.stdout and "128" in info.stdout
    run = zoo_cli("train", "moons-wide", "--quiet", "--out", "r", env=env)
    assert run.returncode == 0, run.stderr
    assert "accuracy" in run.stdout


def test_name_clash_between_distributions_names_both(tmp_path, zoo_cli):
    site = install_plugin(tmp_path / "site", "zoo-clash", {"clash": CLASH, "extra_impl": EXTRA_IMPL},
                          {"clash": "clash"})
    env = site_env(site)
    listed = zoo_cli("list", "models", env=env)
    assert listed.returncode == 0
    assert "zoo-clash" in listed.stderr and "(zoo)" in listed.stderr
    bad = zoo_cli("train", "--dataset", "moons", "--model", "mlp", "--loss", "cross-entropy", env=env)
    assert bad.returncode == 2
    assert "contributed by both plugin 'clash' (zoo-clash) and plugin 'tabular' (zoo)" in bad.stderr
    assert "Traceback" not in bad.stderr
    strict = zoo_cli("list", env={**env, "ZOO_STRICT_PLUGINS": "1"})
    assert strict.returncode != 0 and "contributed by both" in strict.stderr


def test_a_plugin_that_fails_to_import_does_not_break_the_others(tmp_path, zoo_cli):
    site = install_plugin(tmp_path / "site", "zoo-broken", {"broken_plugin": BROKEN}, {"broken": "broken_plugin"})
    env = site_env(site)
    listed = zoo_cli("list", env=env)
    assert listed.returncode == 0
    assert "regression-mlp" in listed.stdout and "digits" in listed.stdout
    assert "plugin 'broken' (zoo-broken 1.0, entry point 'broken = broken_plugin') failed" in listed.stderr
    assert "ModuleNotFoundError" in listed.stderr and "this_module_does_not_exist" in listed.stderr
    data = json.loads(zoo_cli("list", "--json", env=env).stdout)
    assert any("zoo-broken" in p for p in data["problems"])
    used = zoo_cli("train", "--dataset", "moons", "--model", "wide", "--loss", "cross-entropy", env=env)
    assert used.returncode == 2 and "failed to load" in used.stderr and "zoo-broken" in used.stderr
    strict = zoo_cli("list", env={**env, "ZOO_STRICT_PLUGINS": "1"})
    assert strict.returncode == 1
    assert strict.stderr.count("\n") == 1 and "Traceback" not in strict.stderr and "zoo-broken" in strict.stderr


def test_a_component_whose_implementation_fails_to_import_errors_clearly(tmp_path, zoo_cli):
    site = install_plugin(tmp_path / "site", "zoo-ghost", {"ghost": LAZY_BROKEN}, {"ghost": "ghost"})
    env = site_env(site)
    assert "ghost" in zoo_cli("list", "models", env=env).stdout  # declared, so listed
    used = zoo_cli("train", "--dataset", "moons", "--model", "ghost", "--loss", "cross-entropy", env=env)
    assert used.returncode == 1
    assert used.stderr.startswith("error: model 'ghost' from plugin 'ghost' (zoo-ghost 1.0) could not be imported")
    assert "Traceback" not in used.stderr


def test_plugin_selection_by_environment(tmp_path, zoo_cli):
    only = json.loads(zoo_cli("list", "--json", env={"ZOO_PLUGINS": "losses"}).stdout)
    assert {i["plugin"] for i in only["items"]} == {"losses"}
    skip = json.loads(zoo_cli("list", "--json", env={"ZOO_DISABLE_PLUGINS": "vision"}).stdout)
    assert "digits" not in {i["name"] for i in skip["items"]} and "mlp" in {i["name"] for i in skip["items"]}


def test_plugins_command_shows_each_distribution_and_a_broken_one(tmp_path, zoo_cli):
    site = install_plugin(tmp_path / "site", "zoo-broken", {"broken_plugin": BROKEN}, {"broken": "broken_plugin"})
    out = zoo_cli("plugins", env=site_env(site))
    assert out.returncode == 0
    assert "tabular  zoo " in out.stdout and "entry point: tabular = zoo_tabular" in out.stdout
    assert "models:      linear, mlp" in out.stdout and "contract:    1" in out.stdout
    assert "broken  zoo-broken 1.0  [failed]" in out.stdout and "ModuleNotFoundError" in out.stdout
    data = json.loads(zoo_cli("plugins", "--json", env=site_env(site)).stdout)
    by_name = {p["name"]: p for p in data["plugins"]}
    assert by_name["broken"]["error"].startswith("ModuleNotFoundError")
    vision = by_name["vision"]["contributes"]
    assert "digits" in vision["dataset"] and "cnn" in vision["model"] and "digits-cnn" in vision["recipe"]


TYPOS = """
from zoo import ModelSpec, Param, hookimpl

@hookimpl
def zoo_models():
    return [
        ModelSpec(name="fine", summary="Imports and accepts its parameters.", tasks=("regression",),
                  impl="typos_impl:net", params={"width": Param("int", 8)}),
        ModelSpec(name="typo", summary="Something about it is misspelled.", tasks=("regression",),
                  impl=IMPL, params=PARAMS),
    ]
"""

TYPOS_IMPL = """
def net(input_shape, out_features, *, width=8):
    raise RuntimeError("verification never calls an implementation")
"""


@pytest.mark.parametrize("impl, params, problem", [
    ("typos_imp:net", '{"width": Param("int", 8)}',
     "implementation 'typos_imp:net' cannot be imported: ModuleNotFoundError: No module named 'typos_imp'; "
     "did you mean 'typos_impl' or 'typos'?"),
    ("typos_impl:nett", '{"width": Param("int", 8)}',
     "implementation 'typos_impl:nett' cannot be imported: AttributeError: module 'typos_impl' has no attribute "
     "'nett'; did you mean 'net'?"),
    ("typos_impl:net", '{"width": Param("int", 8), "widht": Param("int", 8)}',
     "parameters declared but not accepted by the implementation: widht"),
], ids=["misspelled-module", "misspelled-attribute", "undeclared-parameter"])
def test_strict_mode_and_plugins_check_verify_each_implementation(tmp_path, zoo_cli, impl, params, problem):
    plugin = TYPOS.replace("IMPL", repr(impl)).replace("PARAMS", params)
    site = install_plugin(tmp_path / "site", "zoo-typos", {"typos": plugin, "typos_impl": TYPOS_IMPL},
                          {"typos": "typos"})
    env = site_env(site)
    line = f"model 'typo' from plugin 'typos' (zoo-typos 1.0): {problem}"
    plain = zoo_cli("list", "models", env=env)  # imports no implementation, so sees nothing wrong
    assert plain.returncode == 0 and plain.stderr == "", plain.stderr
    assert "  typo " in plain.stdout and "  fine " in plain.stdout and "  mlp " in plain.stdout
    only = {**env, "ZOO_PLUGINS": "typos"}  # verify this plugin alone (the built-ins would import torch)
    strict = zoo_cli("list", env={**only, "ZOO_STRICT_PLUGINS": "1"})
    assert strict.returncode == 1 and strict.stdout == ""
    assert strict.stderr == f"error: ZOO_STRICT_PLUGINS is set and plugins have problems: {line}\n"
    check = zoo_cli("plugins", "--check", env=only)
    assert check.returncode == 1
    assert f"problem: {line}\n" in check.stdout and check.stdout.endswith("1 problem found\n")


def test_plugins_check_passes_sound_plugins_and_speaks_json(tmp_path, zoo_cli):
    plugin = TYPOS.replace("IMPL", repr("typos_impl:net")).replace("PARAMS", "{}").replace(
        '"typo"', '"typo", inputs=("tabular",)')
    site = install_plugin(tmp_path / "site", "zoo-typos", {"typos": plugin, "typos_impl": TYPOS_IMPL},
                          {"typos": "typos"})
    only = {**site_env(site), "ZOO_PLUGINS": "typos"}
    ok = zoo_cli("plugins", "--check", env=only)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.endswith("all 1 plugin verified: 2 implementations checked (each imports and accepts its "
                              "declared parameters)\n")
    assert json.loads(zoo_cli("plugins", "--check", "--json", env=only).stdout)["verified"] is True
    (site / "typos_impl.py").write_text("")  # now neither implementation exists
    bad = zoo_cli("plugins", "--check", "--json", env=only)
    data = json.loads(bad.stdout)
    assert bad.returncode == 1 and data["verified"] is False
    assert [p.split(":")[0] for p in data["problems"]] == ["model 'fine' from plugin 'typos' (zoo-typos 1.0)",
                                                           "model 'typo' from plugin 'typos' (zoo-typos 1.0)"]


LOUD = """
from zoo import ModelSpec, hookimpl

@hookimpl
def zoo_models():
    return [ModelSpec(name="loud", summary="Its implementation module fails on import.", tasks=("regression",),
                      impl="loud_impl:net")]
"""

LIST_PROBE = """
import runpy, sys
sys.argv = ["zoo", "list"]
try:
    runpy.run_module("zoo", run_name="__main__")
except SystemExit:
    pass
print("IMPORTED:" + ",".join(m for m in ("loud_impl", "torch", "sklearn") if m in sys.modules), file=sys.stderr)
"""


def test_plain_list_imports_no_implementation_but_strict_mode_does(tmp_path, zoo_cli):
    site = install_plugin(tmp_path / "site", "zoo-loud", {"loud": LOUD,
                                                          "loud_impl": "raise RuntimeError('loud_impl was imported')"},
                          {"loud": "loud"})
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZOO_")} | site_env(site)
    out = subprocess.run([sys.executable, "-c", LIST_PROBE], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=60)
    assert "  loud " in out.stdout
    assert [line for line in out.stderr.splitlines() if line.startswith("IMPORTED:")] == ["IMPORTED:"], out.stderr
    strict = zoo_cli("list", env={**site_env(site), "ZOO_PLUGINS": "loud", "ZOO_STRICT_PLUGINS": "1"})
    assert strict.returncode == 1
    assert ("model 'loud' from plugin 'loud' (zoo-loud 1.0): implementation 'loud_impl:net' cannot be imported: "
            "RuntimeError: loud_impl was imported") in strict.stderr
