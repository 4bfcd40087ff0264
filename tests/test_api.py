"""The Python API behind the CLI: zoo.train / zoo.evaluate / zoo.load."""

from __future__ import annotations

import pytest
import torch

import zoo
from zoo.errors import UsageError


def test_train_returns_a_run_with_history_rows_and_metrics(tmp_path):
    run = zoo.train(dataset="moons", model="linear", loss="bce-with-logits", params={"n_samples": 300},
                    epochs=3, lr=0.05, quiet=True, out=tmp_path / "r")
    assert [row["epoch"] for row in run.history] == [1, 2, 3]
    assert {"train_loss", "val_loss", "val_accuracy", "val_f1", "val_roc_auc"} <= set(run.history[0])
    assert set(run.metrics) == {"train", "val", "test"}
    assert run.config["target"] == "binary" and run.config["out_features"] == 1
    assert "test accuracy=" in repr(run)
    model = zoo.load(run.dir)
    assert isinstance(model, torch.nn.Module) and not model.training


def test_same_seed_same_weights_and_history(tmp_path):
    a = zoo.train("blobs-mlp", epochs=3, seed=5, quiet=True, out=tmp_path / "a")
    b = zoo.train("blobs-mlp", epochs=3, seed=5, quiet=True, out=tmp_path / "b")
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, b.model.state_dict()[k])
    strip = lambda h: [{k: v for k, v in r.items() if k != "time"} for r in h]  # noqa: E731
    assert strip(a.history) == strip(b.history)
    c = zoo.train("blobs-mlp", epochs=3, seed=6, quiet=True, out=tmp_path / "c")
    assert not torch.equal(next(iter(a.model.parameters())), next(iter(c.model.parameters())))


def test_engine_adapts_targets_to_the_loss(tmp_path):
    # the same binary dataset trains with cross-entropy (2 logits, long targets)
    # and with bce-with-logits (1 logit, float (N, 1) targets)
    ce = zoo.train(dataset="blobs", model="mlp", loss="cross-entropy", epochs=1, quiet=True, out=tmp_path / "ce")
    bce = zoo.train(dataset="blobs", model="mlp", loss="bce-with-logits", epochs=1, quiet=True, out=tmp_path / "b")
    assert ce.config["out_features"] == 2 and bce.config["out_features"] == 1
    assert ce.metrics["test"]["accuracy"] > 0.9 and bce.metrics["test"]["accuracy"] > 0.9


def test_every_compatible_builtin_combination_trains(tmp_path):
    combos = [("sine", "linear", "huber"), ("sine", "mlp", "l1"), ("digits", "mlp", "cross-entropy"),
              ("digits", "linear", "cross-entropy"), ("moons", "mlp", "bce-with-logits")]
    for i, (d, m, lo) in enumerate(combos):
        run = zoo.train(dataset=d, model=m, loss=lo, epochs=1, quiet=True, out=tmp_path / str(i),
                        params={"n_samples": 200} if d != "digits" else None)
        assert (run.dir / "model.safetensors").is_file()


def test_bad_settings_fail_before_any_run_directory_is_made(tmp_path):
    with pytest.raises(UsageError, match="unknown training setting 'epoch'; did you mean 'epochs'"):
        zoo.train("blobs-mlp", epoch=3, out=tmp_path / "r")
    with pytest.raises(UsageError, match="unknown parameter 'n_sample'.*did you mean 'n_samples'"):
        zoo.train("blobs-mlp", params={"n_sample": 3}, out=tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_a_parameter_two_parts_share_must_be_prefixed():
    import types

    from zoo import DatasetSpec, LossSpec, ModelSpec, Param, hookimpl
    from zoo.config import resolve
    from zoo.registry import Registry, get_registry

    mod = types.ModuleType("p")
    mod.zoo_datasets = hookimpl(lambda: [DatasetSpec(name="d", summary="s", tasks=("binary",), impl="m:f",
                                                     params={"epochs": Param("int", 1)})])
    mod.zoo_models = hookimpl(lambda: [ModelSpec(name="m", summary="s", tasks=("binary",), impl="m:f")])
    mod.zoo_losses = hookimpl(lambda: [LossSpec(name="l", summary="s", tasks=("binary",), impl="m:f")])
    reg = Registry.from_modules({"p": mod, "training": get_registry().plugins["training"].module})
    with pytest.raises(UsageError, match="--set epochs is ambiguous.*dataset.epochs or train.epochs"):
        resolve(dataset="d", model="m", loss="l", sets={"epochs": "3"}, registry=reg)
    cfg = resolve(dataset="d", model="m", loss="l", sets={"dataset.epochs": "3", "train.epochs": "5"}, registry=reg)
    assert cfg["dataset_params"] == {"epochs": 3} and cfg["epochs"] == 5


def test_a_failed_run_is_marked_failed(tmp_path):
    import json

    with pytest.raises(zoo.ZooError, match="training diverged; lower the learning rate"):
        zoo.train("regression-mlp", lr=1e30, epochs=2, quiet=True, out=tmp_path / "r", optimizer="sgd")
    status = json.loads((tmp_path / "r" / "run.json").read_text())
    assert status["status"] == "failed" and "training diverged" in status["error"]
    assert not (tmp_path / "r" / "model.safetensors").exists()
