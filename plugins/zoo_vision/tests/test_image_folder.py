"""The ``image-folder`` dataset: a synthetic folder of PNGs written on the fly, read lazily.

Everything goes through the real registry and implementation; the only patching wraps
the image decoder to count how many images are decoded.
"""

from __future__ import annotations

import pickle
import re

import numpy as np
import pytest
import torch
from PIL import Image

import zoo
from zoo.data import Splits
from zoo.errors import UsageError, ZooError
from zoo.registry import get_registry

CLASSES = ("circles", "squares", "stripes")
PER_CLASS = 12


def imagefolder_module():
    import zoo_vision.imagefolder as m

    return m


def load(path, seed: int = 0, **overrides) -> Splits:
    e = get_registry().get("dataset", "image-folder")
    return e.load()(seed=seed, **e.spec.resolve_params({"path": str(path), "size": 16, **overrides}))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """3 classes of 12 noisy 12x12 PNGs: circles, squares, stripes in random colours."""
    return imagefolder_module().write_example(tmp_path_factory.mktemp("images"), per_class=PER_CLASS, pixels=12)


def all_files(folder) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*.png"))


def raw(paths, size: int = 16, grayscale: bool = False) -> np.ndarray:
    m = imagefolder_module()
    return np.stack([m.load_image(p, size, grayscale) for p in paths]).astype(np.float64)


def count_decodes(monkeypatch) -> list[str]:
    """Record every image the dataset decodes (``load_image`` is its only decoder)."""
    m = imagefolder_module()
    seen: list[str] = []
    real = m.load_image

    def counting(path, size, grayscale=False):
        seen.append(str(path))
        return real(path, size, grayscale)

    monkeypatch.setattr(m, "load_image", counting)
    return seen


# -- training end to end --------------------------------------------------------------------


def test_trains_the_cnn_and_evaluates_to_the_same_numbers(folder, tmp_path):
    run = zoo.train(dataset="image-folder", model="cnn", loss="cross-entropy",
                    params={"path": str(folder), "size": 16}, epochs=2, quiet=True, out=tmp_path / "run")
    assert run.config["meta"]["input_shape"] == [3, 16, 16]
    assert run.config["meta"]["class_names"] == list(CLASSES)
    assert set(run.metrics["test"]) == {"loss", "accuracy", "f1_macro"}
    assert zoo.evaluate(run.dir) == run.metrics["test"]
    model = zoo.load(run.dir)  # the channel standardisation travels in the weights file
    assert model.input_mean.shape == (3, 16, 16) and not torch.equal(model.input_std, torch.ones(3, 16, 16))


# -- layout, splits, items --------------------------------------------------------------------


def test_meta_splits_and_items(folder):
    s = load(folder)
    assert isinstance(s, Splits)
    assert (s.meta.task, s.meta.input_shape, s.meta.num_classes) == ("multiclass", (3, 16, 16), 3)
    assert s.meta.class_names == CLASSES  # the sub-folder names, sorted
    assert [len(s.train), len(s.val), len(s.test)] == [24, 6, 6]  # per class 8 / 2 / 2 (12 * 0.2 -> 2)
    parts = [s.split(p).paths for p in ("train", "val", "test")]
    union = [p for part in parts for p in part]
    assert sorted(union) == all_files(folder) and len(set(union)) == len(union)  # each image in one split
    for part in ("train", "val", "test"):
        split = s.split(part)
        for path, label in zip(split.paths, split.labels):
            assert CLASSES[label] in path  # labels stay with their images' folders
        assert sorted(set(split.labels)) == [0, 1, 2]  # stratified: every class in every split
        x, y = split[0]
        assert x.dtype == torch.float32 and x.shape == (3, 16, 16)
        assert y.dtype == torch.int64 and y.dim() == 0


def test_split_shares_follow_the_params_and_the_seed(folder):
    s = load(folder, val_size=0.25, test_size=0.25)
    assert [len(s.train), len(s.val), len(s.test)] == [18, 9, 9]
    a, b, c = load(folder, seed=3), load(folder, seed=3), load(folder, seed=4)
    for part in ("train", "val", "test"):
        assert a.split(part).paths == b.split(part).paths
        assert torch.equal(a.split(part)[0][0], b.split(part)[0][0])
    assert torch.equal(a.preprocess["mean"], b.preprocess["mean"])
    assert a.test.paths != c.test.paths


def test_grayscale_and_size(folder):
    s = load(folder, grayscale=True, size=8)
    assert s.meta.input_shape == (1, 8, 8)
    assert s.train[0][0].shape == (1, 8, 8)
    assert s.preprocess["mean"].shape == s.preprocess["std"].shape == (1, 1, 1)


def test_images_of_any_size_and_mode_are_converted(tmp_path):
    rng = np.random.RandomState(0)
    for cls in ("a", "b"):
        (tmp_path / cls / "nested").mkdir(parents=True)
        Image.fromarray(rng.randint(0, 256, (20, 30, 3), dtype=np.uint8)).save(tmp_path / cls / "rgb.jpg")
        Image.fromarray(rng.randint(0, 256, (7, 9), dtype=np.uint8)).save(tmp_path / cls / "grey.PNG")
        Image.fromarray(rng.randint(0, 256, (10, 10, 4), dtype=np.uint8)).save(tmp_path / cls / "rgba.png")
        Image.fromarray(rng.randint(0, 256, (10, 10, 3), dtype=np.uint8)).convert("P").save(
            tmp_path / cls / "nested" / "palette.png")
        (tmp_path / cls / "notes.txt").write_text("not an image, ignored")
        (tmp_path / cls / ".hidden.png").write_bytes(b"ignored: hidden")
    (tmp_path / ".cache").mkdir()  # a hidden folder is not a class
    s = load(tmp_path, size=5, val_size=0.25, test_size=0.25)
    assert s.meta.class_names == ("a", "b") and s.meta.input_shape == (3, 5, 5)
    assert len(s.train) + len(s.val) + len(s.test) == 8
    for part in ("train", "val", "test"):
        split = s.split(part)
        for i in range(len(split)):
            assert split[i][0].shape == (3, 5, 5) and torch.isfinite(split[i][0]).all()


def test_sixteen_bit_grey_pngs_are_scaled_not_clipped(tmp_path):
    wide = (np.arange(64, dtype=np.float64).reshape(8, 8) * 1000).astype(np.uint16)
    Image.fromarray(wide).save(tmp_path / "deep.png")
    x = imagefolder_module().load_image(tmp_path / "deep.png", 8, grayscale=True)
    np.testing.assert_array_equal(x[0], np.rint(wide * 255.0 / 65535.0))


# -- normalisation -----------------------------------------------------------------------------


def test_normalisation_is_per_channel_from_training_images_only(folder):
    s = load(folder, seed=1)
    mean, std = s.preprocess["mean"], s.preprocess["std"]
    assert mean.shape == std.shape == (3, 1, 1) and mean.dtype == std.dtype == torch.float32
    train = raw(s.train.paths)  # 24 training images: fewer than the sample cap, so all are used
    np.testing.assert_allclose(mean.numpy().ravel(), train.mean(axis=(0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(std.numpy().ravel(), train.std(axis=(0, 2, 3)), rtol=1e-4)
    everything = raw(all_files(folder))
    assert np.abs(everything.mean(axis=(0, 2, 3)) - mean.numpy().ravel()).max() > 0.05  # not all images
    xs = torch.stack([s.train[i][0] for i in range(len(s.train))]).double()
    assert xs.mean(dim=(0, 2, 3)).abs().max() < 1e-4  # training inputs: zero mean, unit variance
    torch.testing.assert_close(xs.std(dim=(0, 2, 3), unbiased=False), torch.ones(3, dtype=torch.double),
                               rtol=1e-4, atol=1e-4)
    # validation and test images use the same fixed constants (raw pixels in 0..255)
    for part in ("val", "test"):
        split = s.split(part)
        expect = (torch.from_numpy(raw(split.paths[:1])[0]).float() - mean) / std
        torch.testing.assert_close(split[0][0], expect)


def test_normalisation_decodes_a_capped_sample_of_training_images(folder, monkeypatch):
    m = imagefolder_module()
    monkeypatch.setattr(m, "STATS_SAMPLE", 5)
    seen = count_decodes(monkeypatch)
    s = load(folder)
    assert len(seen) == 5 and set(seen) <= set(s.train.paths)
    again = load(folder)
    assert seen[:5] == seen[5:]  # the same seeded sample
    assert torch.equal(s.preprocess["mean"], again.preprocess["mean"])


# -- laziness ------------------------------------------------------------------------------------


def test_splits_hold_file_paths_and_decode_one_image_per_item(folder, monkeypatch):
    seen = count_decodes(monkeypatch)
    s = load(folder)
    assert len(seen) == len(s.train)  # only the normalisation sample was decoded (all 24 < the cap)
    seen.clear()
    for part in ("train", "val", "test"):
        split = s.split(part)
        assert set(vars(split)) == {"paths", "labels", "size", "grayscale", "mean", "std"}
        assert all(isinstance(p, str) for p in split.paths)
        assert split.mean.numel() == split.std.numel() == 3  # no pixels held, only the constants
    s.test[3]
    assert seen == [s.test.paths[3]]
    seen.clear()
    s.test[3]
    assert len(seen) == 1  # nothing is cached either: memory does not grow with the images read


def test_memory_does_not_grow_with_the_image_count(tmp_path):
    m = imagefolder_module()
    small = load(m.write_example(tmp_path / "small", per_class=4, pixels=32), size=32)
    large = load(m.write_example(tmp_path / "large", per_class=40, pixels=32), size=32)
    size = lambda s: len(pickle.dumps(s.train))  # noqa: E731 - what a DataLoader worker receives
    per_image = (size(large) - size(small)) / (len(large.train) - len(small.train))
    pixels = 3 * 32 * 32 * 4  # one decoded float32 image
    assert per_image < 0.1 * pixels  # a path and a label, not an image


# -- errors ----------------------------------------------------------------------------------------


def error(path, **overrides) -> str:
    with pytest.raises(ValueError) as info:
        load(path, **overrides)
    return str(info.value)


def test_empty_or_missing_path(tmp_path):
    e = get_registry().get("dataset", "image-folder")
    with pytest.raises(UsageError, match="dataset 'image-folder' needs path"):
        e.spec.resolve_params()  # a required parameter: refused before anything is read
    with pytest.raises(ValueError, match="needs path=DIR"):
        e.load()(seed=0, **e.spec.resolve_params({"path": ""}))
    assert "does not exist" in error(tmp_path / "nowhere") and "nowhere" in error(tmp_path / "nowhere")
    (tmp_path / "file.png").write_bytes(b"x")
    assert "is not a folder" in error(tmp_path / "file.png")


def test_fewer_than_two_classes(tmp_path):
    assert "at least 2 class sub-folders" in error(tmp_path)
    (tmp_path / "only").mkdir()
    assert "found only 'only'" in error(tmp_path)


def test_no_images_lists_the_accepted_extensions(tmp_path):
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        (tmp_path / cls / "x.gif").write_bytes(b"GIF89a")
    msg = error(tmp_path)
    assert "no images found" in msg and ".png, .jpg, .jpeg" in msg


def test_a_class_with_fewer_than_three_images_is_named(tmp_path):
    m = imagefolder_module()
    root = m.write_example(tmp_path / "f", per_class=3, pixels=8)
    (root / "stripes" / "000.png").unlink()
    msg = error(root)
    assert "'stripes' has 2" in msg and "at least 3 images" in msg
    assert "circles" not in msg


def test_a_corrupt_image_is_named_when_indexing(tmp_path):
    m = imagefolder_module()
    root = m.write_example(tmp_path / "f", per_class=3, pixels=8)
    (root / "squares" / "bad.png").write_bytes(b"this is not a PNG")
    msg = error(root)
    assert re.search(r"squares.bad\.png .* is not a readable image", msg)
    (root / "squares" / "bad.png").unlink()
    good = (root / "circles" / "001.png").read_bytes()
    (root / "circles" / "cut.png").write_bytes(good[: len(good) // 2])  # truncated
    assert "cut.png" in error(root)


def test_errors_reach_the_user_as_one_readable_line(tmp_path):
    with pytest.raises(ZooError, match="image-folder: the folder .*nowhere does not exist"):
        zoo.train(dataset="image-folder", model="cnn", loss="cross-entropy",
                  params={"path": str(tmp_path / "nowhere")}, epochs=1, quiet=True, out=tmp_path / "run")
