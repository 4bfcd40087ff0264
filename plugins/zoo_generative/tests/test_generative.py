"""Tests of the built-in ``generative`` plugin: reconstruction data, the autoencoders, the VAE loss.

Everything goes through the real registry (the ``zoo`` entry point named ``generative``)
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
from zoo.evaluation import compute_loss, split_outputs
from zoo.errors import UsageError
from zoo.registry import get_registry

PLUGIN = "generative"
MODELS = ("autoencoder", "vae")
RECIPES = ("digits-autoencoder", "digits-vae")


# -- helpers -------------------------------------------------------------------------


def entry(kind: str, name: str):
    return get_registry().get(kind, name)


def load(seed: int = 0, **overrides) -> Splits:
    e = entry("dataset", "digits-reconstruction")
    return e.load()(seed=seed, **e.spec.resolve_params(overrides))


def build(name: str, input_shape, out_features: int, **overrides) -> nn.Module:
    e = entry("model", name)
    return e.load()(tuple(input_shape), out_features, **e.spec.resolve_params(overrides))


def vae_loss(**overrides):
    e = entry("loss", "vae-loss")
    return e.load()(**e.spec.resolve_params(overrides))


def output_of(out) -> torch.Tensor:
    return split_outputs(out)[0]


def all_x(s: Splits) -> torch.Tensor:
    return torch.cat([s.train[0], s.val[0], s.test[0]])


# -- discovery and declarations --------------------------------------------------------


def test_plugin_is_discovered_through_its_entry_point_without_problems():
    reg = get_registry()
    plugin = reg.plugins[PLUGIN]
    assert plugin.error is None
    assert plugin.value == "zoo_generative"
    assert plugin.contract == "1"
    assert plugin.contributes["dataset"] == ["digits-reconstruction"]
    assert sorted(plugin.contributes["model"]) == sorted(MODELS)
    assert plugin.contributes["loss"] == ["vae-loss"]
    assert sorted(plugin.contributes["recipe"]) == sorted(RECIPES)
    assert not [p for p in reg.problems() if f"'{PLUGIN}'" in p]


def test_declarations():
    ds = entry("dataset", "digits-reconstruction").spec
    assert ds.tasks == ("reconstruction",) and ds.input == "tabular"
    for name in MODELS:
        spec = entry("model", name).spec
        assert spec.tasks == ("reconstruction",) and spec.inputs == ("tabular", "image")
    assert entry("model", "autoencoder").spec.outputs == ("output",)
    assert entry("model", "vae").spec.outputs == ("output", "mu", "logvar")
    loss = entry("loss", "vae-loss").spec
    assert loss.tasks == ("reconstruction",) and loss.target == "value" and loss.reads == ("mu", "logvar")


@pytest.mark.parametrize("kind,name", [("dataset", "digits-reconstruction"), ("model", "autoencoder"),
                                       ("model", "vae"), ("loss", "vae-loss")])
def test_implementation_parameters_match_the_declaration(kind, name):
    e = entry(kind, name)
    assert e.plugin.name == PLUGIN and e.spec.problems() == []
    params = list(inspect.signature(e.load()).parameters.values())
    if kind == "model":
        assert [p.name for p in params[:2]] == ["input_shape", "out_features"]
        params = params[2:]
    expected = set(e.spec.params) | ({"seed"} if kind == "dataset" else set())
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
    assert resolve("digits-autoencoder")["loss"] == "mse"
    assert resolve("digits-vae")["loss"] == "vae-loss"


# -- the combination check -------------------------------------------------------------


def test_vae_loss_is_refused_with_a_model_that_has_no_mu_and_logvar():
    with pytest.raises(UsageError) as info:
        resolve(dataset="digits-reconstruction", model="autoencoder", loss="vae-loss")
    msg = str(info.value)
    assert "vae-loss" in msg and "autoencoder" in msg and "mu, logvar" in msg and "\n" not in msg


def test_cli_refuses_vae_loss_with_the_autoencoder_in_one_line():
    from click.testing import CliRunner

    from zoo.cli import main

    try:
        runner = CliRunner(mix_stderr=False)  # click < 8.2
    except TypeError:
        runner = CliRunner()
    result = runner.invoke(main, ["train", "--dataset", "digits-reconstruction", "--model", "autoencoder",
                                  "--loss", "vae-loss"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "'vae-loss'" in lines[0] and "'autoencoder'" in lines[0]
    assert result.stdout == ""


def test_other_pairings_are_accepted_or_refused_as_declared():
    resolve(dataset="digits-reconstruction", model="vae", loss="mse")  # mse reads only the output
    resolve(dataset="digits-reconstruction", model="autoencoder", loss="l1")
    with pytest.raises(UsageError, match="dataset 'digits-reconstruction'"):
        resolve(dataset="digits-reconstruction", model="autoencoder", loss="cross-entropy")
    with pytest.raises(UsageError, match="model 'autoencoder' cannot learn dataset 'moons'"):
        resolve(dataset="moons", model="autoencoder", loss="mse")


# -- the dataset -----------------------------------------------------------------------


def test_dataset_layout_the_target_is_the_standardised_input():
    s = load()
    assert s.meta.task == "reconstruction"
    assert s.meta.input_shape == (64,) and s.meta.num_targets == 64 and s.meta.num_classes is None
    sizes = [len(s.split(p)[0]) for p in ("train", "val", "test")]
    assert sum(sizes) == 1797 and sizes[2] == 360
    for X, y in (s.train, s.val, s.test):
        assert X.dtype == y.dtype == torch.float32
        assert X.shape == y.shape == (len(X), 64)
        assert torch.equal(X, y)


def test_dataset_holds_every_digit_once_and_standardises_globally():
    from sklearn.datasets import load_digits

    s, raw = load(seed=1), load(seed=1, standardize="none")
    assert raw.preprocess == {}
    mean, std = s.preprocess["mean"], s.preprocess["std"]
    assert mean.shape == std.shape == (64,)
    assert (mean == mean[0]).all() and (std == std[0]).all()
    assert float(mean[0]) == pytest.approx(raw.train[0].double().mean().item(), abs=1e-5)
    assert float(std[0]) == pytest.approx(raw.train[0].double().std(unbiased=False).item(), rel=1e-5)
    for part in ("train", "val", "test"):
        torch.testing.assert_close(s.split(part)[0], (raw.split(part)[0] - mean) / std)
        torch.testing.assert_close(s.split(part)[1], s.split(part)[0])
    got = np.sort(all_x(raw).numpy().astype(np.int64), axis=0)
    want = np.sort(load_digits().data.astype(np.int64), axis=0)
    np.testing.assert_array_equal(got, want)
    # per-pixel standardisation is the other choice
    f = load(seed=1, standardize="feature")
    np.testing.assert_allclose(f.train[0].double().mean(0).numpy(), 0.0, atol=1e-4)
    assert f.preprocess["std"].unique().numel() > 1


def test_same_seed_same_splits_other_seed_other_split():
    a, b, c = load(seed=3), load(seed=3), load(seed=4)
    for part in ("train", "val", "test"):
        for ta, tb in zip(a.split(part), b.split(part)):
            assert torch.equal(ta, tb)
    assert not torch.equal(a.test[0], c.test[0])


def test_predicting_the_mean_scores_about_one():
    """The trivial baseline the recipes are compared with: test MSE about 1.0 (global standardisation)."""
    for seed in (0, 1):
        y = load(seed=seed).test[1]
        assert float((y ** 2).mean()) == pytest.approx(1.0, abs=0.05)


# -- models ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("input_shape", [(64,), (4,), (1, 8, 8), (3, 4, 5)])
def test_model_output_shape(name, input_shape):
    d = math.prod(input_shape)
    model = build(name, input_shape, d, latent=3)
    for batch in (1, 5):
        out = model(torch.randn(batch, *input_shape))
        assert output_of(out).shape == (batch, d)
        if name == "vae":
            assert set(out) == {"output", "mu", "logvar"}
            assert out["mu"].shape == out["logvar"].shape == (batch, 3)
        else:
            assert isinstance(out, torch.Tensor)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("hidden", [(), (32,), (48, 24)])
def test_encoder_and_mirrored_decoder(name, hidden):
    model = build(name, (1, 8, 8), 64, hidden=hidden, latent=5)
    enc = [(m.in_features, m.out_features) for m in model.encoder.modules() if isinstance(m, nn.Linear)]
    dec = [(m.in_features, m.out_features) for m in model.decoder.modules() if isinstance(m, nn.Linear)]
    widths = [64, *hidden]
    if name == "autoencoder":
        assert enc == list(zip(widths, [*hidden, 5]))
    else:
        assert enc == list(zip(widths[:-1], widths[1:]))
        assert (model.mu.in_features, model.mu.out_features) == (widths[-1], 5)
        assert (model.logvar.in_features, model.logvar.out_features) == (widths[-1], 5)
    back = [5, *reversed(hidden), 64]
    assert dec == list(zip(back[:-1], back[1:]))


def test_the_autoencoder_code_is_the_bottleneck():
    torch.manual_seed(0)
    model = build("autoencoder", (10,), 10, hidden=(8,), latent=2).eval()
    x = torch.randn(7, 10)
    with torch.no_grad():
        z = model.encode(x)
        assert z.shape == (7, 2)
        torch.testing.assert_close(model(x), model.decoder(z))


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("activation", ["tanh", "gelu"])
def test_activation_and_dropout(name, activation):
    model = build(name, (6,), 6, hidden=(8, 8), activation=activation, dropout=0.3)
    acts = [m for m in model.modules() if type(m) in (nn.Tanh, nn.GELU, nn.ReLU)]
    assert len(acts) == 4 and all(type(m) is {"tanh": nn.Tanh, "gelu": nn.GELU}[activation] for m in acts)
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.3] * 4
    with pytest.raises(ValueError, match="activation"):
        entry("model", name).load()((6,), 6, activation="swishy")


@pytest.mark.parametrize("name,params", [("autoencoder", {}), ("autoencoder", {"hidden": (16, 8), "dropout": 0.2}),
                                         ("vae", {}), ("vae", {"hidden": (16, 8), "dropout": 0.2}),
                                         ("vae", {"hidden": ()})])
@pytest.mark.parametrize("input_shape", [(12,), (1, 4, 4)])
def test_every_parameter_gets_a_finite_gradient(name, params, input_shape):
    """Through the loss each is trained with: mse for the autoencoder, vae-loss (with mu, logvar) for the VAE."""
    torch.manual_seed(0)
    d = math.prod(input_shape)
    model = build(name, input_shape, d, **params).train()
    x = torch.randn(16, *input_shape)
    out = model(x)
    if name == "vae":
        loss = compute_loss(vae_loss(), out, x.reshape(16, -1), ("mu", "logvar"))
    else:
        loss = nn.functional.mse_loss(out, x.reshape(16, -1))
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, pname


def test_vae_eval_is_deterministic_and_decodes_mu():
    torch.manual_seed(0)
    model = build("vae", (64,), 64, latent=4).eval()
    x = torch.randn(9, 64)
    with torch.no_grad():
        a, b = model(x), model(x)
        for k in ("output", "mu", "logvar"):
            assert torch.equal(a[k], b[k])
        torch.testing.assert_close(a["output"], model.decoder(a["mu"]))


def test_vae_samples_the_code_in_train_mode():
    torch.manual_seed(0)
    model = build("vae", (64,), 64, latent=4).train()
    x = torch.randn(9, 64)
    a, b = model(x), model(x)
    assert torch.equal(a["mu"], b["mu"]) and torch.equal(a["logvar"], b["logvar"])  # no dropout: the encoder agrees
    assert not torch.equal(a["output"], b["output"])  # but the sampled codes differ
    # the reparameterisation: z = mu + exp(logvar / 2) * eps, eps from torch's generator
    mu, logvar = torch.randn(5, 4), torch.randn(5, 4)
    torch.manual_seed(7)
    z = model.sample(mu, logvar)
    torch.manual_seed(7)
    torch.testing.assert_close(z, mu + torch.exp(0.5 * logvar) * torch.randn(5, 4))
    # a tiny variance collapses the sample onto mu; eval() always uses mu
    torch.testing.assert_close(model.sample(mu, torch.full((5, 4), -60.0)), mu)
    assert torch.equal(model.eval().sample(mu, logvar), mu)


def test_vae_sampling_is_repeatable_from_the_seed():
    model = build("vae", (8,), 8, latent=2).train()
    x = torch.randn(4, 8)
    torch.manual_seed(3)
    a = model(x)["output"]
    torch.manual_seed(3)
    assert torch.equal(model(x)["output"], a)


# -- the VAE loss ----------------------------------------------------------------------


def test_kl_term_on_a_hand_computed_example():
    from zoo_generative.losses import kl_divergence

    mu = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)], [0.0, 0.0]])
    # sample 1: 0.5 * [(1 + 1 - 1 - 0) + (0 + 2 - 1 - ln 2)] = 1 - ln(2) / 2; sample 2: N(0, 1) itself, 0
    torch.testing.assert_close(kl_divergence(mu, logvar), torch.tensor([1.0 - 0.5 * math.log(2.0), 0.0]))


def test_vae_loss_on_a_hand_computed_example():
    output = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    target = torch.zeros(2, 2)
    mu = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)], [0.0, 0.0]])
    kl = 1.0 - 0.5 * math.log(2.0)
    # per sample: squared errors summed (5 and 0) + beta * KL; averaged over the batch; divided by D = 2
    for beta in (0.0, 1.0, 0.25):
        got = vae_loss(beta=beta)(output, target, mu=mu, logvar=logvar)
        assert got.dim() == 0
        assert float(got) == pytest.approx((5.0 + beta * kl) / 2 / 2, rel=1e-6)
    # beta 0 is the plain MSE
    torch.testing.assert_close(vae_loss(beta=0.0)(output, target, mu=mu, logvar=logvar),
                               nn.functional.mse_loss(output, target))
    # l1: absolute errors (3 and 0)
    got = vae_loss(reconstruction="l1")(output, target, mu=mu, logvar=logvar)
    assert float(got) == pytest.approx((3.0 + kl) / 2 / 2, rel=1e-6)


def test_vae_loss_gradients_reach_the_output_mu_and_logvar():
    g = torch.Generator().manual_seed(0)
    output, target = torch.randn(6, 5, generator=g, requires_grad=True), torch.randn(6, 5, generator=g)
    mu, logvar = torch.randn(6, 3, generator=g, requires_grad=True), torch.randn(6, 3, generator=g, requires_grad=True)
    vae_loss()(output, target, mu=mu, logvar=logvar).backward()
    for t in (output, mu, logvar):
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0
    # the KL gradient: d/dmu = mu / (N * D), d/dlogvar = (exp(logvar) - 1) / (2 * N * D)
    torch.testing.assert_close(mu.grad, mu.detach() / 30)
    torch.testing.assert_close(logvar.grad, (logvar.detach().exp() - 1) / 60)


def test_vae_loss_refuses_bad_settings():
    with pytest.raises(UsageError):
        entry("loss", "vae-loss").spec.resolve_params({"reconstruction": "bce"})
    with pytest.raises(UsageError):
        entry("loss", "vae-loss").spec.resolve_params({"beta": -1})
    with pytest.raises(ValueError, match="beta"):
        entry("loss", "vae-loss").load()(beta=-1.0)


# -- recipes ---------------------------------------------------------------------------


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_trains_saves_and_evaluates_to_the_same_numbers(recipe, tmp_path):
    run = zoo.train(recipe, epochs=1, quiet=True, out=tmp_path / "run")
    cfg = runs.read_config(run.dir)  # config.json, flat
    assert cfg["recipe"] == recipe and cfg["epochs"] == 1 and cfg["meta"]["task"] == "reconstruction"
    test = run.metrics["test"]
    assert set(test) >= {"loss", "mse", "mae"} and all(math.isfinite(v) for v in test.values())
    assert test["mse"] < 1.0  # one epoch already beats predicting the mean (about 1.0)
    assert zoo.evaluate(run.dir) == test
    model = zoo.load(run.dir)
    assert not model.training
    X = torch.from_numpy(np.zeros((2, 64), dtype=np.float32))
    with torch.no_grad():
        assert output_of(model(X)).shape == (2, 64)
