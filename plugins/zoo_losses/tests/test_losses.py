"""Tests of the built-in ``losses`` plugin: declarations, known values, target layouts, training.

Everything goes through the real registry (the ``zoo`` entry point named ``losses``)
and the real implementations; nothing is mocked.
"""

from __future__ import annotations

import inspect
import math

import pytest
import torch

import zoo
from zoo import rundir as runs
from zoo.config import resolve
from zoo.parts import adapt_targets, out_features
from zoo.errors import UsageError, ZooError
from zoo.registry import get_registry

PLUGIN = "losses"
LOSSES = ("mse", "l1", "huber", "cross-entropy", "bce-with-logits")
REGRESSION = ("mse", "l1", "huber")
TARGET = {"mse": "value", "l1": "value", "huber": "value", "cross-entropy": "index", "bce-with-logits": "binary"}


def entry(name: str):
    return get_registry().get("loss", name)


def make(name: str, **overrides):
    e = entry(name)
    return e.load()(**e.spec.resolve_params(overrides))


def example(name: str, n: int = 6, classes: int = 3):
    """A model output and dataset-layout targets (as a dataset yields them) fit for ``name``."""
    g = torch.Generator().manual_seed(0)
    if name in REGRESSION:
        return torch.randn(n, 1, generator=g, requires_grad=True), torch.randn(n, 1, generator=g)
    if name == "cross-entropy":
        return torch.randn(n, classes, generator=g, requires_grad=True), torch.randint(0, classes, (n,), generator=g)
    return torch.randn(n, 1, generator=g, requires_grad=True), torch.tensor([0, 1] * (n // 2))


# -- discovery and declarations --------------------------------------------------------


def test_plugin_is_discovered_through_its_entry_point_without_problems():
    reg = get_registry()
    plugin = reg.plugins[PLUGIN]
    assert plugin.error is None
    assert plugin.value == "zoo_losses"
    assert plugin.contract == "1"
    assert plugin.contributes == {"loss": list(LOSSES)}
    assert not [p for p in reg.problems() if f"'{PLUGIN}'" in p]


@pytest.mark.parametrize("name", LOSSES)
def test_loss_comes_from_the_plugin_and_declares_no_problems(name):
    e = entry(name)
    assert e.plugin.name == PLUGIN
    assert get_registry().get("loss", f"{PLUGIN}:{name}") is e
    assert e.spec.problems() == []
    assert e.spec.impl.startswith("zoo_losses.")
    assert e.spec.target == TARGET[name]
    assert e.spec.resolve_params() == {k: p.default for k, p in e.spec.params.items()}


def test_declared_tasks():
    for name in REGRESSION:
        # value losses also fit action values to their bootstrapped targets (control)
        assert entry(name).spec.tasks == ("regression", "reconstruction", "control")
    assert entry("huber").spec.default_for == ("control",)
    assert set(entry("cross-entropy").spec.tasks) == {"binary", "multiclass"}
    assert entry("bce-with-logits").spec.tasks == ("binary",)


@pytest.mark.parametrize("name", LOSSES)
def test_implementation_parameters_match_the_declaration(name):
    e = entry(name)
    params = list(inspect.signature(e.load()).parameters.values())
    assert all(p.kind == p.KEYWORD_ONLY for p in params)
    assert {p.name for p in params} == set(e.spec.params)
    for p in params:
        if p.default is not p.empty:
            assert p.default == e.spec.params[p.name].default


def test_bad_hyperparameters_are_usage_errors():
    with pytest.raises(UsageError, match="delta"):
        entry("huber").spec.resolve_params({"delt": 2})
    with pytest.raises(UsageError):
        entry("huber").spec.resolve_params({"delta": -1})
    with pytest.raises(UsageError):
        entry("bce-with-logits").spec.resolve_params({"pos_weight": "heavy"})
    with pytest.raises(UsageError):
        entry("mse").spec.resolve_params({"reduction": "sum"})
    assert entry("huber").spec.resolve_params({"delta": "2"}) == {"delta": 2.0}


def test_a_loss_refuses_a_task_it_does_not_fit():
    with pytest.raises(UsageError, match="regression"):
        resolve(dataset="sine", model="linear", loss="cross-entropy")
    with pytest.raises(UsageError, match="binary"):
        resolve(dataset="moons", model="linear", loss="mse")
    with pytest.raises(UsageError, match="multiclass"):
        resolve(dataset="digits", model="cnn", loss="bce-with-logits")


# -- behaviour ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", LOSSES)
def test_loss_is_a_finite_differentiable_scalar_on_adapted_targets(name):
    loss_fn = make(name)
    out, y = example(name)
    target = adapt_targets(y, entry(name).spec.target)
    loss = loss_fn(out, target)
    assert loss.shape == ()
    assert loss.dtype == torch.float32
    assert torch.isfinite(loss) and loss.detach().item() >= 0
    loss.backward()
    assert out.grad is not None and out.grad.shape == out.shape
    assert torch.isfinite(out.grad).all() and out.grad.abs().sum() > 0


@pytest.mark.parametrize("name", LOSSES)
def test_loss_is_zero_or_minimal_for_a_perfect_prediction(name):
    loss_fn = make(name)
    if name in REGRESSION:
        y = torch.tensor([[0.5], [-2.0], [3.0]])
        assert float(loss_fn(y.clone(), y)) == 0.0
    elif name == "cross-entropy":
        y = torch.tensor([0, 2, 1])
        out = 50.0 * torch.nn.functional.one_hot(y, 3).float()
        assert float(loss_fn(out, adapt_targets(y, "index"))) < 1e-6
    else:
        y = torch.tensor([0, 1, 1])
        out = torch.tensor([[-50.0], [50.0], [50.0]])
        assert float(loss_fn(out, adapt_targets(y, "binary"))) < 1e-6


def test_mse_and_l1_known_values():
    out = torch.tensor([[1.0], [2.0], [-1.0]])
    y = torch.zeros(3, 1)
    assert float(make("mse")(out, y)) == pytest.approx((1 + 4 + 1) / 3)
    assert float(make("l1")(out, y)) == pytest.approx((1 + 2 + 1) / 3)


@pytest.mark.parametrize("delta", [1.0, 2.0, 0.5])
def test_huber_known_values(delta):
    errors = [0.25, -0.75, 3.0, -1.5]
    out = torch.tensor(errors).reshape(-1, 1)
    y = torch.zeros(4, 1)

    def huber(e):
        e = abs(e)
        return 0.5 * e * e if e <= delta else delta * (e - 0.5 * delta)

    want = sum(huber(e) for e in errors) / len(errors)
    assert float(make("huber", delta=delta)(out, y)) == pytest.approx(want, rel=1e-6)
    if delta == 1.0:
        assert float(make("huber")(out, y)) == pytest.approx(want, rel=1e-6)  # the declared default


def test_huber_with_a_large_delta_is_half_the_mse():
    out, y = torch.tensor([[1.0], [-2.0], [0.5]]), torch.zeros(3, 1)
    assert float(make("huber", delta=100.0)(out, y)) == pytest.approx(0.5 * float(make("mse")(out, y)))


def test_cross_entropy_known_values():
    # p = softmax([ln 3, 0]) = [3/4, 1/4]
    out = torch.tensor([[math.log(3.0), 0.0], [math.log(3.0), 0.0]])
    y = torch.tensor([0, 1])
    plain = -(math.log(0.75) + math.log(0.25)) / 2
    assert float(make("cross-entropy")(out, y)) == pytest.approx(plain, rel=1e-6)
    # label smoothing eps over K=2 classes: targets (1 - eps) one-hot + eps / K
    # (both samples of class 0: with one of each the smoothing terms would cancel out)
    eps, y0 = 0.2, torch.tensor([0, 0])
    q_true, q_other = 1 - eps + eps / 2, eps / 2
    smooth = -(q_true * math.log(0.75) + q_other * math.log(0.25))
    assert float(make("cross-entropy")(out, y0)) == pytest.approx(-math.log(0.75), rel=1e-6)
    assert float(make("cross-entropy", label_smoothing=eps)(out, y0)) == pytest.approx(smooth, rel=1e-6)
    # uniform logits give log K whatever the smoothing
    for eps in (0.0, 0.5):
        assert float(make("cross-entropy", label_smoothing=eps)(torch.zeros(3, 4), torch.tensor([0, 1, 3]))) \
            == pytest.approx(math.log(4), rel=1e-6)


def test_cross_entropy_refuses_label_smoothing_of_one_or_more():
    with pytest.raises(UsageError, match="label_smoothing=1.0 must be <= 0.99"):
        make("cross-entropy", label_smoothing=1.0)
    with pytest.raises(ValueError, match="label_smoothing"):
        entry("cross-entropy").load()(label_smoothing=1.0)  # the factory itself refuses too


def test_huber_delta_zero_is_refused_before_training(tmp_path):
    with pytest.raises(ZooError, match="delta"):
        zoo.train(dataset="sine", model="linear", loss="huber", params={"delta": 0.0, "dataset.n_samples": 100},
                  epochs=1, quiet=True, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_bce_with_logits_known_values_and_pos_weight():
    out = torch.tensor([[0.0], [0.0], [math.log(3.0)]])
    y = adapt_targets(torch.tensor([1, 0, 1]), "binary")
    # sigmoid(ln 3) = 3/4
    per = [math.log(2), math.log(2), -math.log(0.75)]
    assert float(make("bce-with-logits")(out, y)) == pytest.approx(sum(per) / 3, rel=1e-6)
    # pos_weight multiplies the positive terms only
    w = 3.0
    weighted = [w * per[0], per[1], w * per[2]]
    assert float(make("bce-with-logits", pos_weight=w)(out, y)) == pytest.approx(sum(weighted) / 3, rel=1e-6)
    assert float(make("bce-with-logits", pos_weight=0.0)(out, y)) == pytest.approx(math.log(2) / 3, rel=1e-6)


def test_bce_pos_weight_follows_the_loss_to_another_dtype_or_device():
    loss_fn = make("bce-with-logits", pos_weight=2.0)
    assert isinstance(loss_fn, torch.nn.Module)
    loss_fn = loss_fn.to(torch.float64)
    out, y = torch.zeros(2, 1, dtype=torch.float64), torch.ones(2, 1, dtype=torch.float64)
    assert float(loss_fn(out, y)) == pytest.approx(2 * math.log(2))


# -- target layouts: what the engine hands each loss -------------------------------------


@pytest.mark.parametrize("name", LOSSES)
def test_engine_adapts_dataset_targets_to_the_declared_layout(name):
    target = entry(name).spec.target
    loss_fn = make(name)
    n = 8
    if name in REGRESSION:
        for y in (torch.randn(n, 1), torch.randn(n), torch.randn(n, 1, dtype=torch.float64)):
            t = adapt_targets(y, target)
            assert t.dtype == torch.float32 and t.shape == (n, 1)
            out = torch.randn(n, 1)
            assert torch.isfinite(loss_fn(out, t))
            # no silent broadcasting: the value is the elementwise mean
            assert float(make("mse")(out, t)) == pytest.approx(float(((out - y.reshape(n, 1).float()) ** 2).mean()))
        return
    y = torch.tensor([0, 1, 1, 0, 1, 0, 0, 1], dtype=torch.int64)  # how a dataset gives class labels
    t = adapt_targets(y, target)
    if name == "cross-entropy":
        assert t.dtype == torch.int64 and t.shape == (n,)
        assert torch.equal(t, y)
        out = torch.randn(n, 2)
    else:
        assert t.dtype == torch.float32 and t.shape == (n, 1)
        assert torch.equal(t.reshape(-1), y.float())
        out = torch.randn(n, 1)
    loss = loss_fn(out, t)
    assert loss.shape == () and torch.isfinite(loss)


def test_the_model_is_built_with_as_many_outputs_as_the_layout_needs():
    from zoo.data import DataMeta

    binary = DataMeta(task="binary", input_shape=(2,), num_classes=2)
    multi = DataMeta(task="multiclass", input_shape=(1, 8, 8), num_classes=10)
    reg = DataMeta(task="regression", input_shape=(1,), num_targets=3)
    assert out_features(binary, entry("cross-entropy").spec.target) == 2
    assert out_features(binary, entry("bce-with-logits").spec.target) == 1
    assert out_features(multi, entry("cross-entropy").spec.target) == 10
    assert out_features(reg, entry("mse").spec.target) == 3


# -- each loss trains through the engine ------------------------------------------------

SMALL = {
    "mse": ("sine", "linear", {"dataset.n_samples": 300}),
    "l1": ("sine", "linear", {"dataset.n_samples": 300}),
    "huber": ("sine", "linear", {"dataset.n_samples": 300, "delta": 0.5}),
    "cross-entropy": ("blobs", "linear", {"label_smoothing": 0.1}),
    "bce-with-logits": ("blobs", "linear", {"pos_weight": 2.0}),
}


@pytest.mark.parametrize("name", LOSSES)
def test_each_loss_trains_a_run_that_evaluates_to_the_same_numbers(name, tmp_path):
    dataset, model, params = SMALL[name]
    run = zoo.train(dataset=dataset, model=model, loss=name, params=params, epochs=1, quiet=True,
                    out=tmp_path / "run")
    for f in ("model.safetensors", "config.json", "metrics.json", "history.csv"):
        assert (run.dir / f).is_file(), f
    cfg = runs.read_config(run.dir)  # config.json, flat
    assert cfg["loss"] == name and cfg["loss_plugin"] == PLUGIN and cfg["target"] == TARGET[name]
    loss_params = {k: v for k, v in params.items() if "." not in k}
    assert cfg["loss_params"] == entry(name).spec.resolve_params(loss_params)
    assert math.isfinite(run.metrics["test"]["loss"])
    assert zoo.evaluate(run.dir) == run.metrics["test"]
