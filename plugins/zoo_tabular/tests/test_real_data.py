"""The bundled real data sets (scikit-learn's load_*: no downloads) and their recipes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import zoo
from zoo.config import resolve
from zoo.data import Splits
from zoo.registry import get_registry

#: name -> (loader, task, samples, features, class names)
REAL = {
    "iris": ("load_iris", "multiclass", 150, 4, ("setosa", "versicolor", "virginica")),
    "wine": ("load_wine", "multiclass", 178, 13, ("class_0", "class_1", "class_2")),
    "breast-cancer": ("load_breast_cancer", "binary", 569, 30, ("malignant", "benign")),
    "diabetes": ("load_diabetes", "regression", 442, 10, None),
}
RECIPES = {
    "iris-mlp": ("iris", "mlp", "cross-entropy"),
    "wine-mlp": ("wine", "mlp", "cross-entropy"),
    "breast-cancer-linear": ("breast-cancer", "linear", "bce-with-logits"),
    "diabetes-mlp": ("diabetes", "mlp", "mse"),
}


def load(name: str, seed: int = 0, **overrides) -> Splits:
    e = get_registry().get("dataset", name)
    return e.load()(seed=seed, **e.spec.resolve_params(overrides))


def sklearn_data(name: str):
    import sklearn.datasets

    kwargs = {"scaled": False} if name == "diabetes" else {}
    d = getattr(sklearn.datasets, REAL[name][0])(**kwargs)
    return d.data, d.target


def sorted_rows(X, y) -> np.ndarray:
    a = np.concatenate([np.asarray(X, dtype=np.float64).reshape(len(X), -1),
                        np.asarray(y, dtype=np.float64).reshape(len(y), -1)], axis=1)
    return a[np.lexsort(a.T[::-1])]


@pytest.mark.parametrize("name", sorted(REAL))
def test_sizes_meta_and_class_names(name):
    _, task, n, d, names = REAL[name]
    spec = get_registry().get("dataset", name).spec
    assert spec.tasks == (task,) and spec.input == "tabular"
    s = load(name)
    assert (s.meta.task, s.meta.input_shape, s.meta.class_names) == (task, (d,), names)
    assert s.meta.num_classes == (len(names) if names else None)
    sizes = [len(s.split(p)[0]) for p in ("train", "val", "test")]
    assert sum(sizes) == n
    # the peers' 80/20 train/test split; validation is 16% of the data, taken from the 80%
    assert sizes[2] == math.ceil(0.2 * n)
    assert abs(sizes[1] - 0.16 * n) <= 1
    for X, y in (s.train, s.val, s.test):
        assert X.dtype == torch.float32 and torch.isfinite(X).all()
        if names:
            assert y.dtype == torch.int64 and y.shape == (len(X),)
        else:
            assert y.dtype == torch.float32 and y.shape == (len(X), 1)


@pytest.mark.parametrize("name", sorted(REAL))
def test_every_sample_keeps_its_label_and_appears_once(name):
    s = load(name, seed=1, standardize=False)
    X = torch.cat([s.train[0], s.val[0], s.test[0]]).numpy()
    y = torch.cat([s.train[1], s.val[1], s.test[1]]).numpy()
    raw_X, raw_y = sklearn_data(name)
    np.testing.assert_allclose(sorted_rows(X, y), sorted_rows(raw_X.astype(np.float32), raw_y), rtol=1e-6)
    if name == "diabetes":  # raw units, so that zoo predict takes the values people have
        assert X[:, 0].min() >= 18 and X[:, 0].max() <= 80 and set(np.unique(X[:, 1])) == {1.0, 2.0}


@pytest.mark.parametrize("name", ["iris", "wine", "breast-cancer"])
@pytest.mark.parametrize("seed", [0, 3])
def test_classification_splits_are_stratified(name, seed):
    s = load(name, seed=seed)
    k = s.meta.num_classes
    y_all = torch.cat([s.train[1], s.val[1], s.test[1]])
    share = torch.bincount(y_all, minlength=k).double() / len(y_all)
    for part in ("train", "val", "test"):
        y = s.split(part)[1]
        assert (torch.bincount(y, minlength=k).double() - share * len(y)).abs().max() <= 1.0


@pytest.mark.parametrize("name", sorted(REAL))
def test_standardised_with_training_statistics_and_seeded(name):
    s, raw = load(name, seed=2), load(name, seed=2, standardize=False)
    Xtr = raw.train[0].double()
    np.testing.assert_allclose(s.preprocess["mean"].numpy(), Xtr.mean(0).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(s.preprocess["std"].numpy(), Xtr.std(0, unbiased=False).numpy(), rtol=1e-5)
    for part in ("train", "val", "test"):
        expect = (raw.split(part)[0] - s.preprocess["mean"]) / s.preprocess["std"]
        torch.testing.assert_close(s.split(part)[0], expect, rtol=1e-5, atol=1e-5)
    again, other = load(name, seed=2), load(name, seed=3)
    assert torch.equal(again.test[0], s.test[0]) and torch.equal(again.train[1], s.train[1])
    assert not torch.equal(other.test[0], s.test[0])


def test_recipes_resolve_to_their_parts():
    for name, (dataset, model, loss) in RECIPES.items():
        cfg = resolve(name)
        assert (cfg["dataset"], cfg["model"], cfg["loss"]) == (dataset, model, loss)
        assert cfg["epochs"] * math.ceil(0.64 * REAL[dataset][2] / cfg["batch_size"]) <= 3000  # steps: a few seconds


def test_a_short_iris_run_learns_and_predicts_species_names(tmp_path):
    from zoo.inference import predict_file

    run = zoo.train("iris-mlp", epochs=40, quiet=True, out=tmp_path / "run")
    assert run.metrics["test"]["accuracy"] >= 0.9
    (tmp_path / "in.csv").write_text("5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n")
    text = predict_file(run.dir, tmp_path / "in.csv")
    lines = text.splitlines()
    assert lines[0] == "label,prob_setosa,prob_versicolor,prob_virginica"
    assert [line.split(",")[0] for line in lines[1:]] == ["setosa", "virginica"]


#: Seed-0 floors, a little under what the recipes reach (1.0, 1.0, 0.982, 0.385): a guard against
#: regressions. The promised figures are means over seeds 0-2 (see the README's table).
QUALITY = {"iris-mlp": ("accuracy", 0.96), "wine-mlp": ("accuracy", 0.97),
           "breast-cancer-linear": ("accuracy", 0.97), "diabetes-mlp": ("r2", 0.35)}


@pytest.mark.parametrize("recipe", sorted(QUALITY))
def test_recipe_quality_at_seed_0(recipe, tmp_path):
    metric, floor = QUALITY[recipe]
    run = zoo.train(recipe, seed=0, device="cpu", quiet=True, out=tmp_path / "run")
    assert run.metrics["test"][metric] >= floor, f"{recipe}: test {metric} {run.metrics['test'][metric]:.4f}"
