"""The ``arrays`` dataset: arrays X and y from an .npz file (what zoo.sklearn trains on)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import zoo
from zoo.errors import UsageError
from zoo.registry import get_registry


def load(**params):
    e = get_registry().get("dataset", "arrays")
    return e.load()(seed=0, **e.spec.resolve_params(params))


def test_task_auto_splits_and_standardisation(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(5.0, 3.0, size=(100, 3))
    np.savez(tmp_path / "r.npz", X=X, y=X @ [1.0, 2.0, 3.0])
    s = load(path=str(tmp_path / "r.npz"))
    assert s.meta.task == "regression" and len(s.train[0]) == 90 and len(s.val[0]) == 10
    assert s.test[0] is s.val[0] or torch.equal(s.test[0], s.val[0])  # test_size=0: the test split is val's
    assert torch.allclose(s.train[0].mean(0), torch.zeros(3), atol=1e-5)
    assert torch.allclose(s.train[0].std(0, unbiased=False), torch.ones(3), atol=1e-5)
    raw = s.val[0] * s.preprocess["std"] + s.preprocess["mean"]  # the fitted scale undoes the standardisation
    assert np.isin(np.round(raw.numpy(), 3), np.round(X.astype(np.float32), 3)).all()

    np.savez(tmp_path / "c.npz", X=X, y=np.array(["a", "b", "c", "d"])[np.arange(100) % 4])
    s = load(path=str(tmp_path / "c.npz"), test_size=0.2)
    assert s.meta.task == "multiclass" and s.meta.class_names == ("a", "b", "c", "d")
    assert len(s.test[0]) == 20 and len(s.train[0]) + len(s.val[0]) == 80

    s = load(path=str(tmp_path / "c.npz"), val_size=0.0)  # validate on the training samples
    assert torch.equal(s.train[0], s.val[0]) and len(s.train[0]) == 100


def test_zoo_train_on_an_npz_file(tmp_path):
    X = np.random.default_rng(1).normal(size=(60, 2))
    np.savez(tmp_path / "d.npz", X=X, y=(X[:, 0] > 0))
    run = zoo.train(dataset="arrays", model="linear", params={"path": str(tmp_path / "d.npz")}, epochs=2,
                    out=tmp_path / "run", quiet=True)
    assert run.config["task"] == "binary" and run.config["meta"]["class_names"] == ["False", "True"]
    with pytest.raises(UsageError, match="does not exist"):
        zoo.train(dataset="arrays", model="linear", params={"path": str(tmp_path / "none.npz")}, quiet=True)
