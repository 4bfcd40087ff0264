"""The 8x8 digits as a generation task: the dataset, the DCGAN pair, the pinned classifier's metrics (the floor far
below noise, every class seen in real images, a tampered classifier refused), and short digits-gan runs: metrics in
the history and metrics.json, zoo sample to .npy and .png, zoo plot's sample grid, an exact resume."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import zoo
from helpers import run_zoo
from zoo_gan import datasets, metrics
from zoo_gan.models import PixelNorm, dcgan


def _pixels(splits, name):
    return splits.split(name)[0] * splits.preprocess["std"] + splits.preprocess["mean"]


def _train(tmp_path, name, epochs=2, params=None, **settings):
    return zoo.train("digits-gan", out=tmp_path / name, epochs=epochs, params=params or {}, quiet=True,
                     checkpoint_every=0, threads=1, **settings)


def _rows(run_dir):
    with open(run_dir / "history.csv") as fh:
        return [{k: v for k, v in row.items() if k != "time"} for row in csv.DictReader(fh)]


# -- the data -------------------------------------------------------------------------------------


def test_digits_images_are_the_raw_pixels_seen_in_minus_one_to_one_and_split_by_the_seed():
    s = datasets.digits_images(seed=0)
    assert s.meta.task == "generation" and tuple(s.meta.input_shape) == (1, 8, 8)
    assert [len(s.split(n)[0]) for n in ("train", "val", "test")] == [1167, 270, 360]
    X = torch.cat([s.split(n)[0] for n in ("train", "val", "test")])
    assert float(X.min()) == -1.0 and float(X.max()) == 1.0
    assert torch.equal(s.preprocess["mean"], torch.full((1, 8, 8), 8.0)) and torch.equal(s.preprocess["std"],
                                                                                       torch.full((1, 8, 8), 8.0))
    raw = torch.cat([_pixels(s, n) for n in ("train", "val", "test")])
    assert torch.equal(raw, raw.round()) and float(raw.sum()) == pytest.approx(float(
        torch.as_tensor(__import__("sklearn.datasets").datasets.load_digits().data).sum()))
    assert bool((s.train[1] == 1).all())
    assert torch.equal(datasets.digits_images(seed=0).val[0], s.val[0])
    assert not torch.equal(datasets.digits_images(seed=1).val[0], s.val[0])


# -- the model ------------------------------------------------------------------------------------


def test_dcgan_scores_images_and_samples_them_in_the_tanh_range():
    torch.manual_seed(0)
    m = dcgan((1, 8, 8), 1, latent=8, channels=(4, 8), spectral_norm=True)
    assert m(torch.zeros(5, 1, 8, 8)).shape == (5, 1)
    m.eval()
    a = m.sample(6, generator=torch.Generator().manual_seed(1)).detach()
    assert a.shape == (6, 1, 8, 8) and torch.equal(a, m.sample(6, generator=torch.Generator().manual_seed(1)))
    assert float(a.detach().abs().max()) <= 1.0
    assert any("parametrizations" in k for k in m.state_dict())
    m.train()  # no batch statistics: the same samples in train mode
    assert torch.equal(a, m.sample(6, generator=torch.Generator().manual_seed(1)).detach())
    assert any(isinstance(x, torch.nn.GroupNorm) for x in dcgan((1, 8, 8), 1, norm="layer").modules())
    assert not any(isinstance(x, (torch.nn.GroupNorm, PixelNorm)) for x in dcgan((1, 8, 8), 1, norm="none").modules())
    assert dcgan((3, 16, 12), 1)(torch.zeros(2, 3, 16, 12)).shape == (2, 1)
    for shape, kw, text in (((64,), {}, "(channels, height, width)"), ((1, 6, 8), {}, "multiples of 4"),
                            ((1, 8, 8), {"norm": "batch"}, "norm must be one of")):
        with pytest.raises(ValueError, match=text.replace("(", r"\(").replace(")", r"\)")):
            dcgan(shape, 1, **kw)


# -- the metrics ----------------------------------------------------------------------------------


def test_the_floor_is_far_below_noise_and_real_images_show_all_ten_classes():
    s = datasets.digits_images(seed=0)
    train, test = _pixels(s, "train"), _pixels(s, "test")
    noise = 16 * torch.rand(1000, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    floor = metrics.digits_fd(train, test)
    assert floor < 20 and metrics.digits_fd(noise, test) > 10 * floor
    assert metrics.digits_fd(test, test) == pytest.approx(0.0, abs=1e-6)
    assert metrics.digits_fd(train.reshape(-1, 64), test) == floor  # flat or (1, 8, 8): the same images
    assert metrics.digits_classes(train) == 10 and metrics.digits_classes(test) == 10
    assert metrics.digits_classes(noise) <= 2  # classified, but rarely with 0.9 probability
    ones = test[torch.argmax(metrics.load_classifier()(test), 1) == 1]
    assert metrics.digits_classes(ones) == 1
    with pytest.raises(ValueError, match="8x8 images"):
        metrics.digits_fd(torch.zeros(10, 2), test)


def test_the_classifier_is_pinned_and_a_changed_file_is_refused(tmp_path):
    tensors = load_file(str(metrics.CLASSIFIER_PATH))
    assert set(tensors) == {"input_mean", "input_std", "net.0.weight", "net.0.bias", "net.3.weight", "net.3.bias",
                            "net.8.weight", "net.8.bias"}
    bad = tmp_path / "classifier.safetensors"
    data = bytearray(metrics.CLASSIFIER_PATH.read_bytes())
    data[-1] ^= 1  # one bit of the last weight
    bad.write_bytes(bytes(data))
    with pytest.raises(zoo.ZooError, match="not the pinned") as err:
        metrics.load_classifier(bad)
    assert "\n" not in str(err.value) and "bench.digits_classifier" in str(err.value)
    with pytest.raises(zoo.ZooError, match="cannot be read"):
        metrics.load_classifier(tmp_path / "missing.safetensors")
    copy = tmp_path / "same.safetensors"
    shutil.copy(metrics.CLASSIFIER_PATH, copy)
    assert isinstance(metrics.load_classifier(copy), metrics.DigitsClassifier)


# -- runs -----------------------------------------------------------------------------------------


def test_a_short_digits_gan_run_reports_the_digits_metrics_and_samples_pixels(tmp_path):
    run = _train(tmp_path, "a")
    assert {"val_digits_fd", "val_digits_classes", "train_g_loss"} <= set(run.history.columns)
    saved = json.loads((run.dir / "metrics.json").read_text())
    assert saved["monitor"] == "val_digits_fd"
    for split in ("train", "val", "test"):
        assert set(saved[split]) == {"loss", "digits_fd", "digits_classes"}
        assert 0 <= saved[split]["digits_classes"] <= 10 and saved[split]["digits_fd"] > 0
    s = zoo.sample(run.dir, 64)
    assert s.shape == (64, 1, 8, 8) and s.dtype == np.float32 and 0 <= s.min() and s.max() <= 16
    assert metrics.digits_fd(torch.from_numpy(zoo.sample(run.dir, 1000)), _pixels(datasets.digits_images(seed=0),
                                                                                   "test")) \
        == pytest.approx(saved["test"]["digits_fd"], rel=1e-6)
    out = run_zoo("sample", str(run.dir), "-n", "64", "--out", "samples.npy", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert np.array_equal(np.load(tmp_path / "samples.npy", allow_pickle=False), s)


def test_zoo_sample_and_zoo_plot_draw_a_grid_of_digits(tmp_path):
    pytest.importorskip("matplotlib")
    run = _train(tmp_path, "a", epochs=1)
    out = run_zoo("sample", str(run.dir), "-n", "64", "--out", "samples.png", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "samples.png").read_bytes()[:4] == b"\x89PNG"
    out = run_zoo("plot", str(run.dir), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (run.dir / "samples.png").stat().st_size > 1000 and (run.dir / "curves.png").is_file()


def test_a_resumed_digits_gan_run_continues_exactly(tmp_path):
    extra = {"procedure.r1": 1.0, "procedure.label_smoothing": 0.1, "model.spectral_norm": True, "step_size": 1}
    kw = {"schedule": "step"}  # cosine would re-plan its decay over the new total
    _train(tmp_path, "a", epochs=1, params=extra, **kw)
    zoo.resume(tmp_path / "a", epochs=2, quiet=True)
    straight = _train(tmp_path, "b", epochs=2, params=extra, **kw)
    a, b = load_file(str(tmp_path / "a" / "model.safetensors")), load_file(str(straight.dir / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert _rows(tmp_path / "a") == _rows(straight.dir)
