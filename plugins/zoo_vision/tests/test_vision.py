"""Tests of the built-in ``vision`` plugin: the digits data set, the CNN and the digits recipe.

(The BatchNorm networks are tested in test_vision_models.py, the image folder in
test_image_folder.py, their recipes in test_vision_recipes.py.)

Everything goes through the real registry (the ``zoo`` entry point named ``vision``)
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
from zoo.errors import UsageError
from zoo.registry import get_registry

PLUGIN = "vision"
MODELS = ("cnn", "resnet", "mobilenet", "vgg", "alexnet", "inception", "densenet", "efficientnet")
COMPONENTS = [("dataset", "digits"), ("dataset", "image-folder"), *(("model", m) for m in MODELS)]
RECIPES = ("digits-cnn", "digits-resnet", "digits-mobilenet", "digits-vgg", "digits-alexnet", "digits-inception",
           "digits-densenet", "digits-efficientnet")


# -- helpers -------------------------------------------------------------------------


def entry(kind: str, name: str):
    return get_registry().get(kind, name)


def load_digits_splits(seed: int = 0, **overrides) -> Splits:
    e = entry("dataset", "digits")
    return e.load()(seed=seed, **e.spec.resolve_params(overrides))


def cnn(input_shape, out_features: int, **overrides) -> nn.Module:
    e = entry("model", "cnn")
    return e.load()(tuple(input_shape), out_features, **e.spec.resolve_params(overrides))


def raw_digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data, d.target


def raw_images(s: Splits, X: torch.Tensor) -> np.ndarray:
    """Undo the recorded standardisation: back to the 0..16 integer pixels, flattened."""
    raw = X.double() * s.preprocess["std"].double() + s.preprocess["mean"].double()
    return np.rint(raw.reshape(len(X), -1).numpy())


def indices(s: Splits, X: torch.Tensor) -> np.ndarray:
    """Where each image of ``X`` sits in scikit-learn's digits (all 1797 images are distinct)."""
    data, _ = raw_digits()
    where = {row.tobytes(): i for i, row in enumerate(data.astype(np.float64))}
    return np.array([where[row.tobytes()] for row in raw_images(s, X)])


# -- discovery and declarations --------------------------------------------------------


def test_plugin_is_discovered_through_its_entry_point_without_problems():
    reg = get_registry()
    plugin = reg.plugins[PLUGIN]
    assert plugin.error is None
    assert plugin.value == "zoo_vision"
    assert plugin.contract == "1"
    assert plugin.contributes == {"dataset": ["digits", "image-folder"], "model": list(MODELS),
                                  "recipe": list(RECIPES)}
    assert not [p for p in reg.problems() if f"'{PLUGIN}'" in p]


@pytest.mark.parametrize("kind,name", COMPONENTS + [("recipe", r) for r in RECIPES])
def test_component_comes_from_the_plugin_and_declares_no_problems(kind, name):
    e = entry(kind, name)
    assert e.plugin.name == PLUGIN
    assert get_registry().get(kind, f"{PLUGIN}:{name}") is e
    assert e.spec.problems() == []
    if kind != "recipe":
        assert e.spec.impl.startswith("zoo_vision.")
        given = {k: "x" for k, p in e.spec.params.items() if p.required}  # a required parameter has no default
        assert e.spec.resolve_params(given) == {k: given.get(k, p.default) for k, p in e.spec.params.items()}


def test_declared_inputs_and_tasks():
    for name in ("digits", "image-folder"):
        ds = entry("dataset", name).spec
        assert ds.input == "image" and ds.tasks == ("multiclass",)
    for name in MODELS:
        model = entry("model", name).spec
        assert model.inputs == ("image",)
        assert set(model.tasks) == {"regression", "binary", "multiclass"}


@pytest.mark.parametrize("kind,name", COMPONENTS)
def test_implementation_parameters_match_the_declaration(kind, name):
    e = entry(kind, name)
    params = list(inspect.signature(e.load()).parameters.values())
    assert not [p for p in params if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)], "no *args/**kwargs"
    if kind == "model":
        assert [p.name for p in params[:2]] == ["input_shape", "out_features"]
        assert all(p.kind == p.POSITIONAL_OR_KEYWORD for p in params[:2])
        params, expected = params[2:], set(e.spec.params)
    else:
        expected = set(e.spec.params) | {"seed"}
    assert all(p.kind == p.KEYWORD_ONLY for p in params)
    assert {p.name for p in params} == expected
    for p in params:
        if p.default is not p.empty and p.name in e.spec.params:
            default = tuple(p.default) if isinstance(p.default, list) else p.default
            assert default == e.spec.params[p.name].default, p.name


def test_bad_hyperparameters_are_usage_errors():
    spec = entry("model", "cnn").spec
    with pytest.raises(UsageError):
        spec.resolve_params({"pool": "min"})
    with pytest.raises(UsageError):
        spec.resolve_params({"channels": "8,0"})
    with pytest.raises(UsageError):
        spec.resolve_params({"kernel_size": 0})
    with pytest.raises(UsageError, match="channel"):
        spec.resolve_params({"channel": "8,8"})
    assert spec.resolve_params({"channels": "8, 16", "kernel_size": "5"}) == {
        "channels": (8, 16), "kernel_size": 5, "pool": "max", "dropout": 0.25}


def test_the_cnn_cannot_be_combined_with_tabular_data():
    with pytest.raises(UsageError, match="image"):
        resolve(dataset="moons", model="cnn", loss="cross-entropy")


# -- the digits data set -----------------------------------------------------------------


def test_digits_layout_and_meta():
    s = load_digits_splits()
    data, target = raw_digits()
    assert isinstance(s, Splits)
    sizes = [len(s.train[0]), len(s.val[0]), len(s.test[0])]
    assert all(k > 0 for k in sizes) and sum(sizes) == len(data) == 1797
    assert abs(sizes[2] - 0.2 * 1797) <= 1 and abs(sizes[1] - 0.15 * 1797) <= 1
    for X, y in (s.train, s.val, s.test):
        assert X.dtype == torch.float32 and X.shape[1:] == (1, 8, 8)
        assert y.dtype == torch.int64 and y.shape == (len(X),)
        assert int(y.min()) >= 0 and int(y.max()) <= 9
    m = s.meta
    assert (m.task, m.input_shape, m.num_classes) == ("multiclass", (1, 8, 8), 10)
    assert m.class_names == tuple(str(i) for i in range(10))
    assert set(s.train[1].tolist()) == set(range(10))


def test_digits_same_seed_same_splits_other_seed_other_split():
    a, b, c = load_digits_splits(7), load_digits_splits(7), load_digits_splits(8)
    for part in ("train", "val", "test"):
        for ta, tb in zip(a.split(part), b.split(part)):
            assert torch.equal(ta, tb)
    assert torch.equal(a.preprocess["mean"], b.preprocess["mean"])
    assert not torch.equal(a.train[0], c.train[0])
    assert not torch.equal(a.test[1], c.test[1]) or not torch.equal(a.test[0], c.test[0])


def test_digits_images_and_labels_are_scikit_learns_each_in_exactly_one_split():
    s = load_digits_splits(seed=1)
    data, target = raw_digits()
    parts = [indices(s, s.split(p)[0]) for p in ("train", "val", "test")]
    union = np.concatenate(parts)
    assert len(union) == len(set(union.tolist())) == len(data)  # no image twice, none missing
    for ix, part in zip(parts, ("train", "val", "test")):
        X, y = s.split(part)
        np.testing.assert_array_equal(y.numpy(), target[ix])  # labels stay with their images
        np.testing.assert_array_equal(raw_images(s, X), data[ix])  # pixels reshape row-major to 8x8
    # an image is shaped like the picture: row 0 of the tensor is the top row of the digit
    np.testing.assert_array_equal(raw_images(s, s.train[0][:1]).reshape(8, 8),
                                  data[parts[0][0]].reshape(8, 8))


def test_digits_standardisation_is_global_with_training_statistics_only():
    s = load_digits_splits(seed=2)
    data, _ = raw_digits()
    train_ix = indices(s, s.train[0])
    mean, std = s.preprocess["mean"], s.preprocess["std"]
    assert mean.shape == std.shape == (1, 8, 8)
    assert mean.dtype == std.dtype == torch.float32
    # one mean and one std for all pixels ...
    assert torch.all(mean == mean.flatten()[0]) and torch.all(std == std.flatten()[0])
    # ... computed on the training images only
    raw_train = data[train_ix]
    assert float(mean.flatten()[0]) == pytest.approx(raw_train.mean(), rel=1e-5)
    assert float(std.flatten()[0]) == pytest.approx(raw_train.std(), rel=1e-5)
    assert abs(raw_train.mean() - data.mean()) > 1e-3  # else this check could not tell them apart
    Xtr = s.train[0].double()
    assert float(Xtr.mean()) == pytest.approx(0.0, abs=1e-5)
    assert float(Xtr.std(unbiased=False)) == pytest.approx(1.0, abs=1e-5)
    for part in ("val", "test"):
        X = s.split(part)[0]
        ix = indices(s, X)
        expect = (torch.from_numpy(data[ix]).float().reshape(-1, 1, 8, 8) - mean) / std
        torch.testing.assert_close(X, expect, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("seed", [0, 3])
def test_digits_splits_are_stratified(seed):
    s = load_digits_splits(seed=seed)
    _, target = raw_digits()
    share = np.bincount(target, minlength=10) / len(target)
    for part in ("train", "val", "test"):
        y = s.split(part)[1].numpy()
        counts = np.bincount(y, minlength=10)
        assert np.abs(counts / len(y) - share).max() < 0.02
        assert np.abs(counts - share * len(y)).max() <= 2.0


def test_digits_split_shares_follow_the_params():
    s = load_digits_splits(val_size=0.1, test_size=0.3)
    assert abs(len(s.test[0]) - 0.3 * 1797) <= 1
    assert abs(len(s.val[0]) - 0.1 * 1797) <= 1
    assert len(s.train[0]) + len(s.val[0]) + len(s.test[0]) == 1797


# -- the CNN ----------------------------------------------------------------------------


@pytest.mark.parametrize("input_shape", [(1, 8, 8), (3, 4, 4), (2, 9, 7), (1, 28, 28), (3, 5, 12)])
@pytest.mark.parametrize("out_features", [1, 2, 10])
@pytest.mark.parametrize("params", [{}, {"kernel_size": 5, "pool": "avg"}, {"channels": (4, 6), "kernel_size": 1}])
def test_cnn_output_shape(input_shape, out_features, params):
    model = cnn(input_shape, out_features, **params)
    model.eval()
    for batch in (1, 3):
        out = model(torch.randn(batch, *input_shape))
        assert out.shape == (batch, out_features)
        assert out.dtype == torch.float32


def test_cnn_honours_channels_kernel_pool_and_dropout():
    model = cnn((3, 8, 8), 5, channels=(4, 6), kernel_size=5, pool="avg", dropout=0.4)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(3, 4), (4, 6)]
    assert all(c.kernel_size == (5, 5) for c in convs)
    assert len([m for m in model.modules() if isinstance(m, nn.AvgPool2d)]) == 2
    assert not [m for m in model.modules() if isinstance(m, nn.MaxPool2d)]
    drops = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert len(drops) == 1 and drops[0].p == 0.4
    default = cnn((1, 8, 8), 10)
    assert len([m for m in default.modules() if isinstance(m, nn.MaxPool2d)]) == 2
    assert [c.out_channels for c in default.modules() if isinstance(c, nn.Conv2d)] == [32, 64]


def test_cnn_dropout_is_active_in_training_and_off_in_eval():
    torch.manual_seed(0)
    model = cnn((1, 8, 8), 10, dropout=0.5)
    x = torch.randn(8, 1, 8, 8)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
    still = cnn((1, 8, 8), 10, dropout=0.0)
    still.train()
    assert torch.equal(still(x), still(x))


@pytest.mark.parametrize("input_shape,match", [
    ((64,), "channels, height, width"),
    ((8, 8), "channels, height, width"),
    ((1, 1, 8, 8), "channels, height, width"),
    ((1, 3, 8), "4x4"),
    ((1, 8, 3), "4x4"),
    ((2, 2, 2), "4x4"),
])
def test_cnn_rejects_non_image_or_too_small_input_clearly(input_shape, match):
    with pytest.raises(ValueError, match=match) as info:
        cnn(input_shape, 3)
    # the message names what it got
    got = f"{input_shape[1]}x{input_shape[2]}" if match == "4x4" else str(tuple(input_shape))
    assert got in str(info.value)


def test_cnn_rejects_a_wrong_number_of_channel_counts():
    with pytest.raises(ValueError, match="two"):
        cnn((1, 8, 8), 3, channels=(8, 8, 8))


@pytest.mark.parametrize("kernel_size,size", [(2, 6), (4, 6), (2, 5)])
def test_cnn_with_an_even_kernel_works(kernel_size, size):
    model = cnn((1, size, size), 3, kernel_size=kernel_size)
    assert model(torch.randn(2, 1, size, size)).shape == (2, 3)


@pytest.mark.parametrize("params", [{}, {"pool": "avg", "kernel_size": 5}])
def test_every_cnn_parameter_gets_a_finite_gradient(params):
    torch.manual_seed(0)
    model = cnn((1, 8, 8), 10, **params)
    model.train()
    out = model(torch.randn(16, 1, 8, 8))
    nn.functional.cross_entropy(out, torch.randint(0, 10, (16,))).backward()
    named = list(model.named_parameters())
    assert len(named) == 6  # two convs and the head, weights and biases
    for pname, p in named:
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


def test_a_few_adam_steps_lower_the_cnn_loss():
    torch.manual_seed(0)
    s = load_digits_splits()
    x, y = s.train[0][:32], s.train[1][:32]
    model = cnn((1, 8, 8), 10, channels=(8, 16), dropout=0.0)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    with torch.no_grad():
        first = nn.functional.cross_entropy(model(x), y).item()
    for _ in range(15):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        last = nn.functional.cross_entropy(model(x), y).item()
    assert math.isfinite(last) and last < 0.5 * first


# -- recipes ---------------------------------------------------------------------------


@pytest.mark.parametrize("recipe", RECIPES[:1])
def test_recipe_trains_saves_and_evaluates_to_the_same_numbers(recipe, tmp_path):
    run = zoo.train(recipe, epochs=1, quiet=True, out=tmp_path / "run")
    assert run.dir == tmp_path / "run"
    for f in ("model.safetensors", "config.json", "metrics.json", "history.csv"):
        assert (run.dir / f).is_file() and (run.dir / f).stat().st_size > 0, f
    cfg = runs.read_config(run.dir)  # config.json, flat
    assert (cfg["recipe"], cfg["dataset"], cfg["model"], cfg["loss"]) == (recipe, "digits", "cnn", "cross-entropy")
    assert cfg["dataset_plugin"] == cfg["model_plugin"] == PLUGIN
    assert cfg["meta"]["input_shape"] == [1, 8, 8] and cfg["out_features"] == 10
    with open(run.dir / "history.csv", newline="") as fh:
        history = list(csv.DictReader(fh))
    assert len(history) == 1 and int(history[0]["epoch"]) == 1
    saved = json.loads((run.dir / "metrics.json").read_text())
    assert all(saved[split] == run.metrics[split] for split in ("train", "val", "test"))
    assert set(run.metrics["test"]) == {"loss", "accuracy", "f1_macro"}
    assert run.metrics["test"]["accuracy"] > 0.3  # ten classes; chance is 0.1
    assert zoo.evaluate(run.dir) == run.metrics["test"]
    model = zoo.load(run.dir)
    assert not model.training
    s = load_digits_splits(seed=cfg["seed"])
    with torch.no_grad():
        torch.testing.assert_close(model(s.test[0][:16]), run.model.eval()(s.test[0][:16]))
