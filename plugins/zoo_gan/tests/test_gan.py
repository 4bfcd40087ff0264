"""The ring of Gaussians, the GAN model, its metrics and the gan procedure: exact seeded runs and resumes,
metrics in the history and metrics.json, zoo eval, zoo sample and zoo plot."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import zoo
from helpers import run_zoo
from zoo_gan import datasets, metrics
from zoo_gan.models import gan_mlp

SMALL = {"dataset.n_samples": 600}  # 360 training points: 3 batches of 128 an epoch


def _train(tmp_path, name, epochs=2, params=None, **settings):
    return zoo.train("ring-gan", out=tmp_path / name, epochs=epochs, params={**SMALL, **(params or {})},
                     quiet=True, checkpoint_every=0, **settings)


def _rows(run_dir):
    with open(run_dir / "history.csv") as fh:
        return [{k: v for k, v in row.items() if k != "time"} for row in csv.DictReader(fh)]


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# -- the data and the metrics -----------------------------------------------------------------


def test_ring_of_gaussians_is_eight_tight_modes_on_a_circle_split_by_the_seed():
    s = datasets.ring_of_gaussians(seed=0, n_samples=4000)
    assert s.meta.task == "generation" and tuple(s.meta.input_shape) == (2,)
    assert [len(s.split(n)[0]) for n in ("train", "val", "test")] == [2400, 800, 800]
    X = torch.cat([s.split(n)[0] for n in ("train", "val", "test")]) * s.preprocess["std"] + s.preprocess["mean"]
    y = s.train[1]
    assert y.dtype == torch.float32 and y.shape == (2400, 1) and bool((y == 1).all())  # every sample is real
    c = torch.as_tensor(datasets.centres(), dtype=torch.float32)
    assert torch.allclose(c.norm(dim=1), torch.full((8,), 2.0))
    d, k = torch.cdist(X, c).min(1)
    assert torch.bincount(k, minlength=8).min() > 400  # every mode populated
    offsets = X - c[k]
    assert abs(float(offsets.std()) - 0.02) < 0.002
    assert torch.equal(datasets.ring_of_gaussians(seed=0, n_samples=4000).val[0], s.val[0])
    assert not torch.equal(datasets.ring_of_gaussians(seed=1, n_samples=4000).val[0], s.val[0])


def test_metrics_count_modes_with_one_percent_of_samples_within_three_std():
    c = torch.as_tensor(datasets.centres(), dtype=torch.float32)
    g = torch.Generator().manual_seed(0)
    perfect = c[torch.arange(10000) % 8] + 0.02 * torch.randn(10000, 2, generator=g)
    assert metrics.ring_modes(perfect) == 8
    assert 0.98 < metrics.ring_quality(perfect) < 0.995  # 1 - exp(-4.5) of a 2-D Gaussian within 3 std
    # mode 0 gets 100 samples (1%: counts), mode 1 gets 99 (not), the rest far away
    s = torch.full((10000, 2), 10.0)
    s[:100] = c[0]
    s[100:199] = c[1] + torch.tensor([0.059, 0.0])  # within 3 std (0.06)
    s[199:300] = c[2] + torch.tensor([0.061, 0.0])  # just outside
    assert metrics.ring_modes(s) == 1
    assert metrics.ring_quality(s) == pytest.approx(199 / 10000)
    assert metrics.ring_score(perfect) == pytest.approx(metrics.ring_quality(perfect))
    assert metrics.ring_score(s) == pytest.approx(199 / 10000 / 8)


def test_the_model_scores_data_and_samples_from_a_seeded_generator():
    torch.manual_seed(0)
    m = gan_mlp((2,), 1, latent=4, hidden=(16,), spectral_norm=True)
    assert m(torch.zeros(5, 2)).shape == (5, 1)
    a = m.sample(6, generator=torch.Generator().manual_seed(1))
    b = m.sample(6, generator=torch.Generator().manual_seed(1))
    assert a.shape == (6, 2) and torch.equal(a, b)
    assert any("parametrizations" in k for k in m.state_dict())  # spectral norm on the discriminator


# -- runs ---------------------------------------------------------------------------------------


def test_seeded_runs_are_bit_identical_and_report_the_ring_metrics(tmp_path):
    a = _train(tmp_path, "a", params={"procedure.r1": 0.5, "model.spectral_norm": True})
    b = _train(tmp_path, "b", params={"procedure.r1": 0.5, "model.spectral_norm": True})
    assert _same(load_file(str(a.dir / "model.safetensors")), load_file(str(b.dir / "model.safetensors")))
    assert _rows(a.dir) == _rows(b.dir)
    cols = a.history.columns
    for name in ("train_loss", "train_g_loss", "val_loss", "val_ring_modes", "val_ring_quality", "val_ring_score",
                 "lr", "lr_discriminator"):
        assert name in cols
    saved = json.loads((a.dir / "metrics.json").read_text())
    for split in ("train", "val", "test"):
        assert set(saved[split]) == {"loss", "ring_modes", "ring_quality", "ring_score"}
    assert saved["monitor"] == "val_ring_score"
    c = _train(tmp_path, "c", params={"procedure.r1": 0.5, "model.spectral_norm": True}, seed=1)
    assert not _same(load_file(str(a.dir / "model.safetensors")), load_file(str(c.dir / "model.safetensors")))


@pytest.mark.parametrize("extra", [
    {"procedure.d_steps": 2, "procedure.r1": 1.0, "procedure.loss": "hinge"},
    {"procedure.label_smoothing": 0.1, "procedure.loss": "minimax", "procedure.d_lr_scale": 2.0,
     "model.spectral_norm": True},
])
def test_a_resumed_run_continues_exactly(tmp_path, extra):
    kw = {"schedule": "step"}  # cosine would re-plan its decay over the new total
    extra = {**extra, "step_size": 1}
    _train(tmp_path, "a", epochs=2, params=extra, **kw)
    resumed = zoo.resume(tmp_path / "a", epochs=4, quiet=True)
    straight = _train(tmp_path, "b", epochs=4, params=extra, **kw)
    assert len(resumed.history) == 4
    assert _same(load_file(str(tmp_path / "a" / "model.safetensors")),
                 load_file(str(straight.dir / "model.safetensors")))
    assert _rows(tmp_path / "a") == _rows(straight.dir)
    state = json.loads(next((tmp_path / "a" / "checkpoints").glob("*/trainer.json")).read_text())
    assert state["procedure"]["d_count"] == 4 * 3
    assert set(state["procedure"]["optimizers"]) == {"optimizer", "discriminator"}


def test_zoo_eval_reproduces_the_reported_metrics(tmp_path):
    run = _train(tmp_path, "a")
    again = zoo.evaluate(run.dir, split="test", device="cpu")
    assert again == run.metrics["test"]


def test_zoo_sample_draws_seeded_samples_in_the_data_units(tmp_path):
    run = _train(tmp_path, "a")
    s = zoo.sample(run.dir, 50)
    assert s.shape == (50, 2) and s.dtype == np.float32
    assert np.array_equal(s, zoo.sample(run, 50)) and not np.array_equal(s, zoo.sample(run.dir, 50, seed=1))
    out = run_zoo("sample", str(run.dir), "-n", "30", "--out", "s.npy", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    got = np.load(tmp_path / "s.npy", allow_pickle=False)
    assert got.shape == (30, 2) and np.array_equal(got, s[:30])
    bad = run_zoo("sample", str(run.dir), "--out", "s.txt", cwd=tmp_path)
    assert bad.returncode != 0 and bad.stderr.strip().count("\n") == 0 and ".npy or .png" in bad.stderr


def test_zoo_sample_refuses_a_model_that_cannot_sample(tmp_path):
    zoo.train("regression-mlp", out=tmp_path / "r", epochs=1, params={"n_samples": 200}, quiet=True)
    out = run_zoo("sample", str(tmp_path / "r"), "--out", "s.npy", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "cannot sample" in out.stderr and "Traceback" not in out.stderr
    with pytest.raises(zoo.ZooError, match="cannot sample"):
        zoo.sample(tmp_path / "r", 3)


def test_zoo_plot_and_sample_draw_the_samples_over_the_modes(tmp_path):
    pytest.importorskip("matplotlib")
    run = _train(tmp_path, "a")
    out = run_zoo("plot", str(run.dir), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (run.dir / "samples.png").stat().st_size > 1000 and (run.dir / "curves.png").is_file()
    out = run_zoo("sample", str(run.dir), "-n", "200", "--out", "s.png", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"


def test_bad_settings_are_one_line_errors_before_anything_is_made(tmp_path):
    for args, text in ((("--set", "d_steps=0"), "d_steps='0' must be >= 1"),
                       (("--set", "procedure.loss=wgan"), "is not one of"),
                       (("--set", "label_smoothing=0.7"), "must be <= 0.5"),
                       (("--procedure", "supervised"), "procedure 'supervised' cannot train")):
        out = run_zoo("train", "ring-gan", *args, "--out", "x", cwd=tmp_path)
        assert out.returncode == 2, out.stderr
        assert text in out.stderr and out.stderr.strip().count("\n") == 0, out.stderr
        assert not (tmp_path / "x").exists()


def test_only_a_sample_n_generator_method_counts_as_sampling():
    from zoo.evaluation import can_sample
    from zoo_generative.models import vae

    assert can_sample(gan_mlp((2,), 1))
    assert not can_sample(vae((64,), 64))  # its sample(mu, logvar) is the reparameterisation, not a sampler
    assert not can_sample(torch.nn.Linear(2, 1))
