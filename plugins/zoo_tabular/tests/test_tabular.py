"""Tests of the built-in ``tabular`` plugin: its declarations, datasets, models and recipes.

Everything goes through the real registry (the ``zoo`` entry point named ``tabular``)
and the real implementations; nothing is mocked.
"""

from __future__ import annotations

import csv
import inspect
import json
import math

import numpy as np
import pytest
import torch
from torch import nn

import zoo
from zoo import rundir as runs
from zoo.config import resolve
from zoo.data import Splits
from zoo.errors import UsageError, ZooError
from zoo.registry import get_registry

PLUGIN = "tabular"
#: The generated toy datasets (the tests below regenerate their data); the bundled real data
#: sets and the CSV datasets have their own test files.
DATASETS = ("sine", "moons", "blobs")
REAL_DATASETS = ("iris", "wine", "breast-cancer", "diabetes")
CSV_DATASETS = ("csv", "csv-binary", "csv-regression")
ALL_DATASETS = DATASETS + REAL_DATASETS + CSV_DATASETS + ("arrays",)
MODELS = ("linear", "mlp")
ALL_MODELS = MODELS + ("resmlp",)
#: The guides' recipes (trained for one epoch below); the real-data recipes are in test_real_data.py.
RECIPES = ("regression-mlp", "moons-mlp", "blobs-mlp")
ALL_RECIPES = RECIPES + ("iris-mlp", "wine-mlp", "breast-cancer-linear", "diabetes-mlp")
COMPONENTS = [("dataset", n) for n in DATASETS] + [("model", n) for n in MODELS]
ALL_COMPONENTS = [("dataset", n) for n in ALL_DATASETS] + [("model", n) for n in ALL_MODELS]
CLASSIFICATION = ("moons", "blobs")

ACTIVATION_MODULES = {
    "relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU,
    "elu": nn.ELU, "leaky_relu": nn.LeakyReLU, "silu": nn.SiLU,
}


# -- helpers -------------------------------------------------------------------------


def entry(kind: str, name: str):
    return get_registry().get(kind, name)


def load(name: str, seed: int = 0, **overrides) -> Splits:
    e = entry("dataset", name)
    return e.load()(seed=seed, **e.spec.resolve_params(overrides))


def build(name: str, input_shape, out_features: int, **overrides) -> nn.Module:
    e = entry("model", name)
    return e.load()(tuple(input_shape), out_features, **e.spec.resolve_params(overrides))


def _default(value):
    return tuple(value) if isinstance(value, list) else value


def raw_data(name: str, **overrides):
    """The un-split data set exactly as the plugin generates it, recomputed independently."""
    p = entry("dataset", name).spec.resolve_params(overrides)
    if name == "sine":
        x = np.linspace(0.0, p["x_max"], p["n_samples"])
        return x.reshape(-1, 1), None
    if name == "moons":
        from sklearn.datasets import make_moons

        return make_moons(n_samples=p["n_samples"], noise=p["noise"], random_state=p["data_seed"])
    from sklearn.datasets import make_blobs

    return make_blobs(n_samples=p["n_samples"], centers=2, n_features=p["n_features"],
                      cluster_std=p["cluster_std"], random_state=p["data_seed"])


def rows(X: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """(X, y) as one sorted array of rows, for comparing sets of samples."""
    a = np.concatenate([X.reshape(len(X), -1).double().numpy(), y.reshape(len(y), -1).double().numpy()], axis=1)
    return a[np.lexsort(a.T[::-1])]


def all_samples(s: Splits) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.cat([s.train[0], s.val[0], s.test[0]]), torch.cat([s.train[1], s.val[1], s.test[1]])


# -- discovery and declarations --------------------------------------------------------


def test_plugin_is_discovered_through_its_entry_point_without_problems():
    reg = get_registry()
    plugin = reg.plugins[PLUGIN]
    assert plugin.error is None
    assert plugin.value == "zoo_tabular"
    assert plugin.contract == "1"
    assert sorted(plugin.contributes["dataset"]) == sorted(ALL_DATASETS)
    assert sorted(plugin.contributes["model"]) == sorted(ALL_MODELS)
    assert sorted(plugin.contributes["recipe"]) == sorted(ALL_RECIPES)
    assert "loss" not in plugin.contributes
    assert not [p for p in reg.problems() if f"'{PLUGIN}'" in p]


@pytest.mark.parametrize("kind,name", ALL_COMPONENTS + [("recipe", r) for r in ALL_RECIPES])
def test_component_comes_from_the_plugin_and_declares_no_problems(kind, name):
    e = entry(kind, name)
    assert e.plugin.name == PLUGIN
    assert e.qualified == f"{PLUGIN}:{name}"
    assert get_registry().get(kind, f"{PLUGIN}:{name}") is e
    assert e.spec.problems() == []
    if kind != "recipe":
        assert e.spec.impl.startswith("zoo_tabular.")
        # every declared default is valid for its own declaration
        given = {k: "x" for k, p in e.spec.params.items() if p.required}  # a required parameter has no default
        assert e.spec.resolve_params(given) == {k: given.get(k, p.default) for k, p in e.spec.params.items()}


@pytest.mark.parametrize("kind,name", ALL_COMPONENTS)
def test_implementation_parameters_match_the_declaration(kind, name):
    e = entry(kind, name)
    sig = inspect.signature(e.load())
    params = list(sig.parameters.values())
    assert not [p for p in params if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)], "no *args/**kwargs"
    if kind == "model":
        assert [p.name for p in params[:2]] == ["input_shape", "out_features"]
        assert all(p.kind == p.POSITIONAL_OR_KEYWORD for p in params[:2])
        params = params[2:]
        expected = set(e.spec.params)
    else:
        expected = set(e.spec.params) | {"seed"}
    assert all(p.kind == p.KEYWORD_ONLY for p in params)
    assert {p.name for p in params} == expected
    # where the factory has its own default, it is the declared one
    for p in params:
        if p.default is not p.empty and p.name in e.spec.params:
            assert _default(p.default) == e.spec.params[p.name].default, p.name


def test_recipes_name_components_that_exist_and_their_params_are_valid():
    reg = get_registry()
    for name in ALL_RECIPES:
        rec = entry("recipe", name).spec
        for comp, given in (("dataset", rec.dataset_params), ("model", rec.model_params),
                            ("loss", rec.loss_params)):
            target = reg.get(comp, getattr(rec, comp))
            target.spec.resolve_params(given)  # raises on an unknown or bad value
        cfg = resolve(name)
        assert cfg["recipe"] == name
        assert cfg["dataset"] == rec.dataset and cfg["model"] == rec.model and cfg["loss"] == rec.loss
        for key, value in rec.train.items():  # a setting, a part's name, or a hyperparameter of that part
            found = cfg[key] if key in cfg else {**cfg["optimizer_params"], **cfg["schedule_params"]}[key]
            assert found == value, (name, key)


def test_bad_hyperparameters_are_usage_errors():
    with pytest.raises(UsageError, match="n_sample"):
        entry("dataset", "sine").spec.resolve_params({"n_sample": 10})
    with pytest.raises(UsageError):
        entry("dataset", "moons").spec.resolve_params({"n_samples": 5})  # below min=10
    with pytest.raises(UsageError):
        entry("model", "mlp").spec.resolve_params({"activation": "relux"})
    with pytest.raises(UsageError):
        entry("model", "mlp").spec.resolve_params({"hidden": "64,0"})
    # strings as given on the command line are coerced
    assert entry("model", "mlp").spec.resolve_params({"hidden": "32, 16", "dropout": "0.5"})["hidden"] == (32, 16)
    assert entry("dataset", "blobs").spec.resolve_params({"standardize": "no"})["standardize"] is False


# -- datasets ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", DATASETS)
def test_dataset_returns_splits_with_the_documented_layout(name):
    s = load(name)
    n = entry("dataset", name).spec.resolve_params()["n_samples"]
    assert isinstance(s, Splits)
    sizes = [len(s.train[0]), len(s.val[0]), len(s.test[0])]
    assert all(k > 0 for k in sizes)
    assert sum(sizes) == n
    # default shares: 60 / 20 / 20
    assert abs(len(s.test[0]) - 0.2 * n) <= 1 and abs(len(s.val[0]) - 0.2 * n) <= 1
    for X, y in (s.train, s.val, s.test):
        assert X.dtype == torch.float32
        assert tuple(X.shape[1:]) == s.meta.input_shape
        assert len(y) == len(X)
        assert torch.isfinite(X).all()
        if name in CLASSIFICATION:
            assert y.dtype == torch.int64 and y.shape == (len(X),)
            assert set(y.unique().tolist()) <= {0, 1}
        else:
            assert y.dtype == torch.float32 and y.shape == (len(X), 1)
            assert torch.isfinite(y).all()


def test_dataset_meta():
    sine = load("sine").meta
    assert (sine.task, sine.input_shape, sine.num_classes, sine.num_targets) == ("regression", (1,), None, 1)
    for name in CLASSIFICATION:
        m = load(name).meta
        assert m.task == "binary" == entry("dataset", name).spec.tasks[0]
        assert m.input_shape == (2,)
        assert m.num_classes == 2
        assert m.class_names == ("0", "1")
    assert load("blobs", n_features=5).meta.input_shape == (5,)
    assert load("blobs", n_features=5).train[0].shape[1:] == (5,)
    assert entry("dataset", "sine").spec.tasks == ("regression",)


@pytest.mark.parametrize("name", DATASETS)
def test_same_seed_same_splits_other_seed_other_split_of_the_same_data(name):
    a, b, c = load(name, seed=3), load(name, seed=3), load(name, seed=4)
    for part in ("train", "val", "test"):
        for ta, tb in zip(a.split(part), b.split(part)):
            assert torch.equal(ta, tb)
    assert a.meta == b.meta
    for k in a.preprocess:
        assert torch.equal(a.preprocess[k], b.preprocess[k])
    assert a.train[0].shape == c.train[0].shape
    assert not torch.equal(a.train[0], c.train[0])
    assert not torch.equal(a.test[0], c.test[0])
    # the run's seed only re-splits: the raw data (from data_seed) is the same
    ra, rc = load(name, seed=3, standardize=False), load(name, seed=4, standardize=False)
    np.testing.assert_array_equal(rows(*all_samples(ra)), rows(*all_samples(rc)))


@pytest.mark.parametrize("name", DATASETS)
def test_data_seed_changes_the_data(name):
    base = entry("dataset", name).spec.resolve_params()["data_seed"]
    a = load(name, standardize=False)
    b = load(name, standardize=False, data_seed=base + 1)
    assert not np.array_equal(rows(*all_samples(a)), rows(*all_samples(b)))


@pytest.mark.parametrize("name", DATASETS)
def test_every_sample_is_in_exactly_one_split(name):
    s = load(name, seed=1, standardize=False)
    X, y = raw_data(name)
    got = all_samples(s)
    if name == "sine":
        # the x grid is recomputed; every grid point appears once across the splits
        np.testing.assert_array_equal(np.sort(got[0].numpy().ravel()), np.sort(X.ravel().astype(np.float32)))
    else:
        want = rows(torch.from_numpy(X.astype(np.float32)), torch.from_numpy(y))
        np.testing.assert_array_equal(rows(*got), want)
    seen = [set(map(tuple, part[0].reshape(len(part[0]), -1).tolist())) for part in (s.train, s.val, s.test)]
    assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])


@pytest.mark.parametrize("name", DATASETS)
def test_standardisation_uses_training_statistics_only(name):
    seed = 2
    s = load(name, seed=seed)
    raw = load(name, seed=seed, standardize=False)
    # the split does not depend on standardisation
    for part in ("train", "val", "test"):
        assert torch.equal(s.split(part)[1], raw.split(part)[1])
    assert raw.preprocess == {}

    Xtr = s.train[0].double()
    np.testing.assert_allclose(Xtr.mean(0).numpy(), 0.0, atol=1e-4)
    np.testing.assert_allclose(Xtr.std(0, unbiased=False).numpy(), 1.0, atol=1e-4)

    # the recorded transform is the raw training split's mean/std ...
    if name == "sine":
        grid = np.linspace(0.0, 20.0, 3000)
        idx = np.searchsorted(grid.astype(np.float32), raw.train[0].numpy().ravel())
        raw_train = grid[idx].reshape(-1, 1)
        np.testing.assert_array_equal(raw_train.astype(np.float32), raw.train[0].numpy())
    else:
        raw_train = raw.train[0].double().numpy()
    mean, std = s.preprocess["mean"], s.preprocess["std"]
    assert mean.dtype == std.dtype == torch.float32
    assert mean.shape == std.shape == s.meta.input_shape
    np.testing.assert_allclose(mean.numpy(), raw_train.mean(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(std.numpy(), raw_train.std(0), rtol=1e-5, atol=1e-5)
    # ... not the statistics of all the data (the check would be blind if they coincided)
    everything = all_samples(raw)[0].double().numpy()
    assert np.abs(everything.mean(0) - raw_train.mean(0)).max() > 1e-3
    # and the same transform is applied to validation and test
    for part in ("train", "val", "test"):
        expect = (raw.split(part)[0] - mean) / std
        torch.testing.assert_close(s.split(part)[0], expect, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", CLASSIFICATION)
@pytest.mark.parametrize("seed", [0, 5])
def test_classification_splits_are_stratified(name, seed):
    s = load(name, seed=seed)
    y_all = all_samples(s)[1]
    share = torch.bincount(y_all, minlength=2).double() / len(y_all)
    for part in ("train", "val", "test"):
        y = s.split(part)[1]
        counts = torch.bincount(y, minlength=2).double()
        assert (counts / len(y) - share).abs().max() < 0.02
        # stratification keeps each class count within a sample or two of its exact share
        assert (counts - share * len(y)).abs().max() <= 2.0


def test_split_sizes_follow_the_params():
    s = load("moons", n_samples=1000, val_size=0.1, test_size=0.3)
    sizes = (len(s.train[0]), len(s.val[0]), len(s.test[0]))
    assert sum(sizes) == 1000
    # the validation share is taken from the rest, so rounding may move one sample
    assert abs(sizes[0] - 600) <= 1 and abs(sizes[1] - 100) <= 1 and sizes[2] == 300
    s = load("sine", n_samples=200)
    assert sum(len(s.split(p)[0]) for p in ("train", "val", "test")) == 200


@pytest.mark.parametrize("noise", [1.0, 0.3])
def test_sine_noise_has_the_declared_standard_deviation_on_the_raw_scale(noise):
    s = load("sine", noise=noise)
    X, y = all_samples(s)
    x = (X.double() * s.preprocess["std"].double() + s.preprocess["mean"].double()).numpy().ravel()
    assert x.min() > -1e-3 and x.max() < 20.0 + 1e-3  # raw x is back on [0, x_max]
    resid = y.double().numpy().ravel() - (x + 2.0 * np.sin(x))
    assert abs(resid.mean()) < 0.1 * noise
    assert resid.std() == pytest.approx(noise, rel=0.08)


def test_sine_without_noise_lies_on_the_curve_and_x_max_is_honoured():
    s = load("sine", noise=0.0, x_max=5.0, n_samples=500, standardize=False)
    X, y = all_samples(s)
    x = X.double().numpy().ravel()
    assert x.min() == 0.0 and x.max() == pytest.approx(5.0)
    np.testing.assert_allclose(y.double().numpy().ravel(), x + 2.0 * np.sin(x), atol=1e-5)


# -- models ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("input_shape", [(1,), (2,), (7,), (1, 8, 8), (3, 4, 5)])
@pytest.mark.parametrize("out_features", [1, 2, 10])
def test_model_output_shape(name, input_shape, out_features):
    model = build(name, input_shape, out_features)
    assert isinstance(model, nn.Module)
    for batch in (1, 5):
        out = model(torch.randn(batch, *input_shape))
        assert out.shape == (batch, out_features)
        assert out.dtype == torch.float32


def test_linear_bias_param():
    with_bias = build("linear", (3,), 2)
    without = build("linear", (3,), 2, bias=False)
    assert sum(p.numel() for p in with_bias.parameters()) == 3 * 2 + 2
    assert sum(p.numel() for p in without.parameters()) == 3 * 2
    assert torch.equal(without(torch.zeros(4, 3)), torch.zeros(4, 2))
    # linear really is linear
    x1, x2 = torch.randn(4, 3), torch.randn(4, 3)
    torch.testing.assert_close(without(x1 + x2), without(x1) + without(x2))


@pytest.mark.parametrize("hidden", [(16, 8, 4), (5,), ()])
def test_mlp_hidden_sizes(hidden):
    model = build("mlp", (1, 3, 2), 3, hidden=hidden)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    widths = [6, *hidden, 3]
    assert [(lin.in_features, lin.out_features) for lin in linears] == list(zip(widths[:-1], widths[1:]))


@pytest.mark.parametrize("activation", sorted(ACTIVATION_MODULES))
def test_mlp_activation(activation):
    spec = entry("model", "mlp").spec
    assert activation in spec.params["activation"].choices
    model = build("mlp", (4,), 1, hidden=(8, 8, 8), activation=activation)
    acts = [m for m in model.modules() if type(m) in ACTIVATION_MODULES.values()]
    assert len(acts) == 3
    assert all(type(m) is ACTIVATION_MODULES[activation] for m in acts)


def test_mlp_declares_exactly_the_activations_it_builds():
    assert set(entry("model", "mlp").spec.params["activation"].choices) == set(ACTIVATION_MODULES)
    with pytest.raises(ValueError, match="activation"):
        entry("model", "mlp").load()((4,), 1, activation="swishy")


def test_mlp_dropout_is_active_in_training_and_off_in_eval():
    torch.manual_seed(0)
    model = build("mlp", (10,), 4, hidden=(64, 64), dropout=0.5)
    drops = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert len(drops) == 2 and all(d.p == 0.5 for d in drops)
    x = torch.randn(32, 10)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))

    plain = build("mlp", (10,), 4, hidden=(64, 64))
    assert not [m for m in plain.modules() if isinstance(m, nn.Dropout)]
    plain.train()
    assert torch.equal(plain(x), plain(x))


@pytest.mark.parametrize("name,params", [("linear", {}), ("linear", {"bias": False}), ("mlp", {}),
                                         ("mlp", {"hidden": (8, 8), "activation": "gelu", "dropout": 0.2})])
@pytest.mark.parametrize("input_shape", [(3,), (2, 4, 4)])
def test_every_parameter_gets_a_finite_gradient(name, params, input_shape):
    torch.manual_seed(0)
    model = build(name, input_shape, 3, **params)
    model.train()
    out = model(torch.randn(16, *input_shape))
    nn.functional.cross_entropy(out, torch.randint(0, 3, (16,))).backward()
    named = list(model.named_parameters())
    assert named
    for pname, p in named:
        assert p.grad is not None, pname
        assert p.grad.shape == p.shape
        assert torch.isfinite(p.grad).all(), pname
    assert any(p.grad.abs().sum() > 0 for _, p in named)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("task", ["regression", "classification"])
def test_a_few_adam_steps_lower_the_loss(name, task):
    torch.manual_seed(0)
    x = torch.randn(16, 4)
    if task == "regression":
        y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]]) + 0.1
        model, loss_fn = build(name, (4,), 1), nn.MSELoss()
    else:
        y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
        model, loss_fn = build(name, (4,), 3), nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    with torch.no_grad():
        first = loss_fn(model(x), y).item()
    for _ in range(30):
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        last = loss_fn(model(x), y).item()
    assert math.isfinite(last)
    assert last < 0.8 * first


# -- recipes ---------------------------------------------------------------------------

#: Generous floors after a single epoch (the runs are seeded, so these are not flaky).
HEADLINE = {"regression-mlp": ("r2", 0.5), "moons-mlp": ("accuracy", 0.7), "blobs-mlp": ("accuracy", 0.8)}


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_trains_saves_and_evaluates_to_the_same_numbers(recipe, tmp_path):
    run = zoo.train(recipe, epochs=1, quiet=True, out=tmp_path / "run")
    assert run.dir == tmp_path / "run"
    for f in ("model.safetensors", "config.json", "metrics.json", "history.csv"):
        assert (run.dir / f).is_file(), f
        assert (run.dir / f).stat().st_size > 0, f

    cfg = runs.read_config(run.dir)  # config.json, flat
    rec = entry("recipe", recipe).spec
    assert (cfg["recipe"], cfg["dataset"], cfg["model"], cfg["loss"]) == (recipe, rec.dataset, rec.model, rec.loss)
    assert cfg["dataset_plugin"] == cfg["model_plugin"] == PLUGIN
    assert cfg["epochs"] == 1

    with open(run.dir / "history.csv", newline="") as fh:
        history = list(csv.DictReader(fh))
    assert len(history) == 1 and int(history[0]["epoch"]) == 1
    assert math.isfinite(float(history[0]["train_loss"]))

    saved = json.loads((run.dir / "metrics.json").read_text())
    assert all(saved[split] == run.metrics[split] for split in ("train", "val", "test"))
    assert all(math.isfinite(v) for v in run.metrics["test"].values())
    metric, floor = HEADLINE[recipe]
    assert run.metrics["test"][metric] > floor

    again = zoo.evaluate(run.dir)
    assert again == run.metrics["test"]
    assert zoo.evaluate(run.dir, split="val") == run.metrics["val"]


def test_recipe_model_params_reach_the_model(tmp_path):
    run = zoo.train("blobs-mlp", epochs=1, quiet=True, out=tmp_path / "run")
    linears = [m for m in run.model.modules() if isinstance(m, nn.Linear)]
    assert [lin.out_features for lin in linears] == [10, 1]  # hidden (10,), one logit for bce
    assert isinstance(zoo.load(run.dir), nn.Module)


def test_training_failure_is_a_zoo_error_not_a_traceback(tmp_path):
    with pytest.raises(ZooError):
        zoo.train("moons-mlp", epochs=1, quiet=True, out=tmp_path / "run", params={"model.dropout": 1.5})


@pytest.mark.parametrize("sets, message", [
    ({"dataset.val_size": "0"}, "val_size='0' must be >= 0.01"),
    ({"dataset.test_size": "0.95"}, "test_size='0.95' must be <= 0.9"),
    ({"dataset.val_size": "0.5", "dataset.test_size": "0.5"}, "must each be above 0 and add up to less than 1"),
])
def test_impossible_split_shares_are_clear_errors(sets, message, tmp_path):
    from zoo.errors import ZooError

    with pytest.raises(ZooError, match=message):
        zoo.train("moons-mlp", params=sets, epochs=1, quiet=True, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()
