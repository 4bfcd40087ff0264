"""Tests of the built-in ``sequence`` plugin: waveform data, recurrent and 1-D conv models, recipes.

Everything goes through the real registry (the ``zoo`` entry point named ``sequence``)
and the real implementations; nothing is mocked.
"""

from __future__ import annotations

import inspect
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

PLUGIN = "sequence"
DATASETS = ("waveforms", "waveform-forecast")
RECURRENT = ("rnn", "lstm", "gru")
MODELS = (*RECURRENT, "cnn1d")
RECIPES = ("waveforms-lstm", "waveforms-gru", "waveforms-rnn", "waveforms-cnn1d", "waveform-forecast-gru")
SHAPES = ("sine", "square", "sawtooth", "triangle")


# -- helpers -------------------------------------------------------------------------


def entry(kind: str, name: str):
    return get_registry().get(kind, name)


def load(name: str, seed: int = 0, **overrides) -> Splits:
    e = entry("dataset", name)
    return e.load()(seed=seed, **e.spec.resolve_params(overrides))


def build(name: str, input_shape, out_features: int, **overrides) -> nn.Module:
    e = entry("model", name)
    return e.load()(tuple(input_shape), out_features, **e.spec.resolve_params(overrides))


def raw_waveforms(**overrides):
    """The unsplit waveforms exactly as the dataset generates them."""
    from zoo_sequence.datasets import generate_waveforms

    p = entry("dataset", "waveforms").spec.resolve_params(overrides)
    for k in ("val_size", "test_size", "standardize"):
        p.pop(k)
    return generate_waveforms(**p)


def all_samples(s: Splits) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.cat([s.train[0], s.val[0], s.test[0]]), torch.cat([s.train[1], s.val[1], s.test[1]])


def rows(X: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    a = np.concatenate([X.reshape(len(X), -1).double().numpy(), y.reshape(len(y), -1).double().numpy()], axis=1)
    return a[np.lexsort(a.T[::-1])]


# -- discovery and declarations --------------------------------------------------------


def test_plugin_is_discovered_through_its_entry_point_without_problems():
    reg = get_registry()
    plugin = reg.plugins[PLUGIN]
    assert plugin.error is None
    assert plugin.value == "zoo_sequence"
    assert plugin.contract == "1"
    assert sorted(plugin.contributes["dataset"]) == sorted(DATASETS)
    assert sorted(plugin.contributes["model"]) == sorted(MODELS)
    assert sorted(plugin.contributes["recipe"]) == sorted(RECIPES)
    assert not [p for p in reg.problems() if f"'{PLUGIN}'" in p]


@pytest.mark.parametrize("kind,name", [("dataset", n) for n in DATASETS] + [("model", n) for n in MODELS])
def test_implementation_parameters_match_the_declaration(kind, name):
    e = entry(kind, name)
    assert e.plugin.name == PLUGIN and e.spec.problems() == []
    params = list(inspect.signature(e.load()).parameters.values())
    if kind == "model":
        assert [p.name for p in params[:2]] == ["input_shape", "out_features"]
        params, expected = params[2:], set(e.spec.params)
        assert e.spec.inputs == ("sequence",)
        assert set(e.spec.tasks) == {"binary", "multiclass", "regression"}
    else:
        expected = set(e.spec.params) | {"seed"}
        assert e.spec.input == "sequence"
    assert all(p.kind == p.KEYWORD_ONLY for p in params)
    assert {p.name for p in params} == expected
    for p in params:
        if p.default is not p.empty:
            assert (tuple(p.default) if isinstance(p.default, list) else p.default) == e.spec.params[p.name].default


def test_recipes_resolve_to_their_parts():
    for name in RECIPES:
        rec = entry("recipe", name).spec
        cfg = resolve(name)
        assert (cfg["dataset"], cfg["model"], cfg["loss"]) == (rec.dataset, rec.model, rec.loss)
        assert cfg["dataset_plugin"] == cfg["model_plugin"] == PLUGIN
        for key, value in rec.train.items():
            assert cfg[key] == value


def test_non_sequence_data_is_refused_before_loading():
    with pytest.raises(UsageError, match="model 'lstm' cannot take dataset 'moons'.*sequence input"):
        resolve(dataset="moons", model="lstm", loss="cross-entropy")
    with pytest.raises(UsageError, match="model 'cnn' cannot take dataset 'waveforms'.*image input"):
        resolve(dataset="waveforms", model="cnn", loss="cross-entropy")


def test_bad_hyperparameters_are_usage_errors():
    with pytest.raises(UsageError):
        entry("model", "lstm").spec.resolve_params({"hidden": 0})
    with pytest.raises(UsageError):
        entry("model", "gru").spec.resolve_params({"dropout": 1.0})
    with pytest.raises(UsageError):
        entry("dataset", "waveforms").spec.resolve_params({"length": 1})
    assert entry("model", "rnn").spec.resolve_params({"bidirectional": "yes"})["bidirectional"] is True
    assert entry("model", "cnn1d").spec.resolve_params({"channels": "8, 16, 32"})["channels"] == (8, 16, 32)
    with pytest.raises(ValueError, match="min_cycles"):
        load("waveforms", min_cycles=5.0, max_cycles=2.0)


# -- the waveforms dataset -------------------------------------------------------------


def test_waveforms_layout_and_classes():
    s = load("waveforms")
    assert s.meta.task == "multiclass"
    assert s.meta.input_shape == (64, 1)
    assert s.meta.num_classes == 4 and s.meta.class_names == SHAPES
    sizes = [len(s.split(p)[0]) for p in ("train", "val", "test")]
    assert sum(sizes) == 3000 and sizes == [1800, 600, 600]
    for X, y in (s.train, s.val, s.test):
        assert X.dtype == torch.float32 and X.shape[1:] == (64, 1) and torch.isfinite(X).all()
        assert y.dtype == torch.int64 and y.shape == (len(X),)
    # balanced classes, and every split stratified
    y_all = all_samples(s)[1]
    assert torch.bincount(y_all).tolist() == [750] * 4
    for part in ("train", "val", "test"):
        counts = torch.bincount(s.split(part)[1], minlength=4)
        assert (counts - len(s.split(part)[1]) / 4).abs().max() <= 1


@pytest.mark.parametrize("length,channels", [(16, 1), (32, 2), (7, 3)])
def test_waveforms_length_and_channels(length, channels):
    s = load("waveforms", n_samples=80, length=length, channels=channels)
    assert s.meta.input_shape == (length, channels)
    assert all(s.split(p)[0].shape[1:] == (length, channels) for p in ("train", "val", "test"))


def test_waveforms_same_seed_same_splits_other_seed_other_split_of_the_same_data():
    a, b, c = load("waveforms", seed=3), load("waveforms", seed=3), load("waveforms", seed=4)
    for part in ("train", "val", "test"):
        for ta, tb in zip(a.split(part), b.split(part)):
            assert torch.equal(ta, tb)
    assert not torch.equal(a.test[0], c.test[0])
    ra, rc = load("waveforms", seed=3, standardize=False), load("waveforms", seed=4, standardize=False)
    np.testing.assert_array_equal(rows(*all_samples(ra)), rows(*all_samples(rc)))
    # and the splits hold exactly the generated samples, each once
    X, y = raw_waveforms()
    np.testing.assert_array_equal(rows(*all_samples(ra)), rows(torch.from_numpy(X), torch.from_numpy(y)))
    # data_seed changes the data itself
    other = load("waveforms", seed=3, standardize=False, data_seed=1)
    assert not np.array_equal(rows(*all_samples(ra)), rows(*all_samples(other)))


def test_waveforms_standardisation_is_global_with_training_statistics():
    s, raw = load("waveforms", seed=2), load("waveforms", seed=2, standardize=False)
    assert raw.preprocess == {}
    mean, std = s.preprocess["mean"], s.preprocess["std"]
    assert mean.shape == std.shape == (64, 1)
    assert (mean == mean.flatten()[0]).all() and (std == std.flatten()[0]).all()  # one value for everything
    Xtr = raw.train[0].double()
    assert float(mean.flatten()[0]) == pytest.approx(Xtr.mean().item(), abs=1e-5)
    assert float(std.flatten()[0]) == pytest.approx(Xtr.std(unbiased=False).item(), rel=1e-5)
    for part in ("train", "val", "test"):
        torch.testing.assert_close(s.split(part)[0], (raw.split(part)[0] - mean) / std)
        assert torch.equal(s.split(part)[1], raw.split(part)[1])


def test_each_shape_is_what_its_class_says():
    """Without noise and with amplitude 1, each class is its exact waveform."""
    X, y = raw_waveforms(n_samples=200, noise=0.0, min_amplitude=1.0, max_amplitude=1.0)
    x = X[..., 0].astype(np.float64)
    for k, shape in enumerate(SHAPES):
        seqs = x[y == k]
        assert len(seqs) == 50
        assert np.abs(seqs).max() <= 1.0 + 1e-6
        d = np.diff(seqs, axis=1)
        for seq, dseq in zip(seqs, d):
            if shape == "square":
                np.testing.assert_allclose(np.abs(seq), 1.0)
            elif shape == "sawtooth":  # one constant rising slope between the drops
                rising = dseq[dseq > 0]
                np.testing.assert_allclose(rising, rising[0], atol=1e-5)
                assert (dseq[dseq < 0] < -1.0).all()
            elif shape == "triangle":  # a constant slope up or down except at the turning points
                slope = np.median(np.abs(dseq))
                assert np.mean(np.isclose(np.abs(dseq), slope, atol=1e-5)) > 0.75
            else:  # a sampled sine obeys x[t+1] + x[t-1] = 2 cos(w) x[t]
                two_cos = 2.0 * np.cos(np.arccos(np.clip((seq[2] + seq[0]) / (2 * seq[1]), -1, 1)))
                np.testing.assert_allclose(seq[2:] + seq[:-2], two_cos * seq[1:-1], atol=1e-4)


def test_wave_values():
    from zoo_sequence.datasets import wave

    u = np.array([0.0, 0.25, 0.5, 0.75])
    np.testing.assert_allclose(wave("sine", u), [0.0, 1.0, 0.0, -1.0], atol=1e-12)
    np.testing.assert_allclose(wave("square", u), [1.0, 1.0, -1.0, -1.0])
    np.testing.assert_allclose(wave("sawtooth", u), [-1.0, -0.5, 0.0, 0.5])
    np.testing.assert_allclose(wave("triangle", u), [-1.0, 0.0, 1.0, 0.0])
    np.testing.assert_allclose(wave("sawtooth", u + 3.0), wave("sawtooth", u), atol=1e-12)  # periodic
    with pytest.raises(ValueError, match="unknown waveform"):
        wave("zigzag", u)


def test_noise_has_the_declared_standard_deviation():
    X, _ = raw_waveforms(n_samples=400, noise=0.3, min_amplitude=0.0, max_amplitude=0.0)
    assert X.mean() == pytest.approx(0.0, abs=0.01)
    assert X.std() == pytest.approx(0.3, rel=0.02)


# -- the forecast dataset -------------------------------------------------------------


@pytest.mark.parametrize("horizon", [1, 3])
def test_forecast_layout(horizon):
    s = load("waveform-forecast", n_samples=300, length=20, horizon=horizon)
    assert s.meta.task == "regression" and s.meta.input_shape == (20, 1) and s.meta.num_targets == horizon
    for X, y in (s.train, s.val, s.test):
        assert X.shape[1:] == (20, 1) and X.dtype == torch.float32
        assert y.shape == (len(X), horizon) and y.dtype == torch.float32
    assert sum(len(s.split(p)[0]) for p in ("train", "val", "test")) == 300
    assert s.preprocess["mean"].shape == (20, 1)


def test_forecast_targets_continue_the_series():
    """One noiseless sine: the targets follow the recurrence x[t+1] = 2 cos(w) x[t] - x[t-1]."""
    from zoo_sequence.datasets import generate_forecast

    X, y = generate_forecast(n_samples=50, length=32, horizon=2, components=1, noise=0.0, min_cycles=1.0,
                             max_cycles=4.0, data_seed=0)
    series = np.concatenate([X[..., 0], y], axis=1).astype(np.float64)
    for seq in series:
        t = int(np.argmax(np.abs(seq[1:-1]))) + 1  # a step far from zero
        two_cos = (seq[t + 1] + seq[t - 1]) / seq[t]
        np.testing.assert_allclose(seq[2:] + seq[:-2], two_cos * seq[1:-1], atol=1e-4)
    # and the data set's raw split holds these exact targets
    s = load("waveform-forecast", n_samples=50, length=32, horizon=2, components=1, noise=0.0,
             standardize=False)
    np.testing.assert_array_equal(rows(*all_samples(s)), rows(torch.from_numpy(X), torch.from_numpy(y)))


# -- models ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("input_shape", [(1, 1), (5, 3), (12, 2), (64, 1)])
@pytest.mark.parametrize("out_features", [1, 4])
def test_model_output_shape(name, input_shape, out_features):
    model = build(name, input_shape, out_features)
    for batch in (1, 6):
        out = model(torch.randn(batch, *input_shape))
        assert out.shape == (batch, out_features) and out.dtype == torch.float32


@pytest.mark.parametrize("name", RECURRENT)
@pytest.mark.parametrize("layers,bidirectional", [(1, True), (2, False), (3, True)])
def test_recurrent_variants(name, layers, bidirectional):
    model = build(name, (9, 2), 3, hidden=8, layers=layers, bidirectional=bidirectional, dropout=0.2)
    assert model.rnn.num_layers == layers and model.rnn.bidirectional is bidirectional
    assert model.rnn.batch_first and model.rnn.hidden_size == 8
    assert model.rnn.dropout == (0.2 if layers > 1 else 0.0)  # between stacked layers only
    assert model.head.in_features == 8 * (2 if bidirectional else 1)
    assert model(torch.randn(5, 9, 2)).shape == (5, 3)


@pytest.mark.parametrize("name", RECURRENT)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_head_reads_the_final_states_of_the_last_layer(name, bidirectional):
    torch.manual_seed(0)
    model = build(name, (7, 3), 2, hidden=5, layers=2, bidirectional=bidirectional).eval()
    x = torch.randn(4, 7, 3)
    with torch.no_grad():
        seq, _ = model.rnn(x)  # (N, T, directions * hidden)
        want = seq[:, -1, :5]  # forward: after the last step
        if bidirectional:
            want = torch.cat([want, seq[:, 0, 5:]], dim=1)  # backward: after the first step
        torch.testing.assert_close(model.features(x), want)
        torch.testing.assert_close(model(x), model.head(want))


def test_recurrent_models_depend_on_the_order_of_time_steps():
    torch.manual_seed(0)
    x = torch.randn(3, 10, 2)
    for name in RECURRENT:
        model = build(name, (10, 2), 2).eval()
        with torch.no_grad():
            assert not torch.allclose(model(x), model(x.flip(1)))


def test_recurrent_initialisation():
    torch.manual_seed(0)
    for name in RECURRENT:
        model = build(name, (4, 1), 2, hidden=6, layers=2)
        gates = {"rnn": 1, "gru": 3, "lstm": 4}[name]
        for pname, p in model.rnn.named_parameters():
            if pname.startswith("weight_hh"):
                assert p.shape == (6 * gates, 6)
                for k in range(gates):  # each gate's hidden-to-hidden matrix is orthogonal
                    w = p[6 * k : 6 * (k + 1)].detach()
                    torch.testing.assert_close(w @ w.T, torch.eye(6), atol=1e-5, rtol=0)
    lstm = build("lstm", (4, 1), 2, hidden=6, layers=2)
    for layer in range(2):
        forget = getattr(lstm.rnn, f"bias_ih_l{layer}")[6:12] + getattr(lstm.rnn, f"bias_hh_l{layer}")[6:12]
        torch.testing.assert_close(forget.detach(), torch.ones(6))


@pytest.mark.parametrize("channels", [(4,), (4, 8), (4, 8, 8, 8)])
@pytest.mark.parametrize("kernel_size", [1, 4, 5])
def test_cnn1d_structure(channels, kernel_size):
    model = build("cnn1d", (6, 3), 2, channels=channels, kernel_size=kernel_size)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv1d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == list(zip((3, *channels[:-1]), channels))
    assert all(c.kernel_size == (kernel_size,) for c in convs)
    # 6 steps pool to 3, then 1; blocks after that do not pool
    assert len([m for m in model.modules() if isinstance(m, nn.MaxPool1d)]) == min(len(channels), 2)
    assert model(torch.randn(2, 6, 3)).shape == (2, 2)


def test_cnn1d_is_invariant_to_time_shift_of_a_periodic_signal():
    """Global average pooling: shifting a sequence by whole pooling windows barely matters."""
    torch.manual_seed(0)
    model = build("cnn1d", (64, 1), 4, channels=(8, 8), kernel_size=3, dropout=0.0).eval()
    t = torch.arange(64.0)
    x = torch.sin(2 * math.pi * t / 16).reshape(1, 64, 1)
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(x.roll(16, dims=1)), atol=0.05, rtol=0)


@pytest.mark.parametrize("name,params", [
    ("rnn", {}), ("lstm", {"bidirectional": True}), ("gru", {"layers": 2, "dropout": 0.3}),
    ("lstm", {"layers": 2, "bidirectional": True, "dropout": 0.1}), ("cnn1d", {}),
    ("cnn1d", {"channels": (4, 4, 4), "kernel_size": 2, "dropout": 0.0}),
])
@pytest.mark.parametrize("input_shape", [(8, 1), (5, 3)])
def test_every_parameter_gets_a_finite_gradient(name, params, input_shape):
    torch.manual_seed(0)
    model = build(name, input_shape, 3, **params).train()
    nn.functional.cross_entropy(model(torch.randn(16, *input_shape)), torch.randint(0, 3, (16,))).backward()
    named = list(model.named_parameters())
    assert named
    for pname, p in named:
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", MODELS)
def test_dropout_is_active_in_training_and_off_in_eval(name):
    torch.manual_seed(0)
    model = build(name, (10, 2), 3, dropout=0.5)
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.5]
    x = torch.randn(8, 10, 2)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
    assert not [m for m in build(name, (10, 2), 3, dropout=0.0).modules() if isinstance(m, nn.Dropout)]


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("shape", [(4,), (1, 8, 8)])
def test_models_refuse_non_sequence_shapes(name, shape):
    with pytest.raises(ValueError, match="sequence input"):
        build(name, shape, 2)


# -- recipes ---------------------------------------------------------------------------

#: Floors after a single epoch (seeded runs, so not flaky): well above chance (0.25) or r2 0.
HEADLINE = {"waveforms-lstm": ("accuracy", 0.3), "waveforms-gru": ("accuracy", 0.3),
            "waveforms-rnn": ("accuracy", 0.22), "waveforms-cnn1d": ("accuracy", 0.5),
            "waveform-forecast-gru": ("r2", 0.3)}


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_trains_saves_and_evaluates_to_the_same_numbers(recipe, tmp_path):
    run = zoo.train(recipe, epochs=1, quiet=True, out=tmp_path / "run")
    cfg = runs.read_config(run.dir)  # config.json, flat
    assert cfg["recipe"] == recipe and cfg["epochs"] == 1
    assert cfg["meta"]["input_shape"] == [64, 1]
    assert all(math.isfinite(v) for v in run.metrics["test"].values())
    metric, floor = HEADLINE[recipe]
    assert run.metrics["test"][metric] > floor
    assert zoo.evaluate(run.dir) == run.metrics["test"]
