"""Fine-tuning: ``zoo train --init RUN`` (strict, or ``--init-head reset``), ``--freeze PATTERN``, the source
recorded in config.json, exact resume; and the digits dataset's ``classes``."""

from __future__ import annotations

import hashlib
import json
import shutil
import signal

import pytest
import torch

import zoo
from zoo import checkpoint
from zoo.callbacks import Callback
from zoo.engine import resume
from zoo.errors import CheckpointError, TrainingInterrupted, UsageError

from helpers import run_zoo

FAST = {"epochs": 1, "threads": 1, "batch_size": 64}
HEAD = ("net.8.weight", "net.8.bias")  # the output layer of the cnn (its shapes follow the classes)


def classes(*digits: int) -> dict:
    return {"dataset.classes": list(digits)}


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A digits-cnn run on digits 0-2 (three outputs)."""
    out = tmp_path_factory.mktemp("ft") / "src"
    return zoo.train("digits-cnn", params=classes(0, 1, 2), out=out, quiet=True, **FAST)


def weights(path) -> dict[str, torch.Tensor]:
    return checkpoint.read_weights(path)[0]


class FirstWeights(Callback):
    """The model's state when training starts."""

    state_key = "first-weights"

    def on_fit_start(self, trainer) -> None:
        self.state = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


def test_strict_init_starts_from_the_source_weights_and_refits_the_preprocessing(source, tmp_path):
    first = FirstWeights()
    run = zoo.train("digits-cnn", params={**classes(3, 4, 5)}, out=tmp_path / "ft", quiet=True, init=str(source.dir),
                    callbacks=[first], **FAST)
    src = weights(source.dir / "model.safetensors")
    for key, value in src.items():
        if key.startswith("net."):
            assert torch.equal(first.state[key], value), key
    # the input standardisation is the new data's, not the source's
    assert not torch.equal(first.state["input_mean"], src["input_mean"])
    assert run.config["init"] == str(source.dir) and run.config["init_head"] == "strict"


def test_a_shape_mismatch_is_one_line_naming_every_key_and_shape(source, tmp_path):
    with pytest.raises(CheckpointError) as err:
        zoo.train("digits-cnn", params=classes(5, 6), out=tmp_path / "ft", quiet=True, init=str(source.dir), **FAST)
    text = str(err.value)
    assert "\n" not in text
    assert "net.8.weight (file (3, 256), model (2, 256))" in text and "net.8.bias (file (3,), model (2,))" in text
    assert "--init-head reset" in text
    assert not (tmp_path / "ft").exists()
    # another model: the keys are named, and no head reset is suggested (more than the output layer differs)
    with pytest.raises(CheckpointError) as err:
        zoo.train("digits-resnet", params=classes(0, 1, 2), out=tmp_path / "ft2", quiet=True, init=str(source.dir),
                  init_head="reset", **FAST)
    assert "missing: " in str(err.value) and "unexpected: " in str(err.value) and "\n" not in str(err.value)


def test_init_head_reset_names_the_reset_keys_trains_and_records_the_source(source, tmp_path):
    r = run_zoo("train", "digits-cnn", "--set", "classes=5,6", "--epochs", "1", "--set", "threads=1",
                "--init", str(source.dir), "--init-head", "reset", "--out", str(tmp_path / "ft"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "output layer re-created (fresh initialisation): net.8.weight, net.8.bias" in r.stderr
    cfg = json.loads((tmp_path / "ft" / "config.json").read_text())
    rec = cfg["init_source"]
    digest = hashlib.sha256((source.dir / "model.safetensors").read_bytes()).hexdigest()
    assert rec["sha256"] == digest and rec["model"] == "cnn" and rec["recipe"] == "digits-cnn"
    assert rec["path"] == str(source.dir.resolve()) and rec["reset"] == list(HEAD) and rec["head"] == "reset"
    assert cfg["train"]["init"] == str(source.dir) and cfg["train"]["init_head"] == "reset"
    assert weights(tmp_path / "ft" / "model.safetensors")["net.8.weight"].shape == (2, 256)
    # the run's config.json repeats the fine-tuning (the record is recomputed)
    again = run_zoo("train", "--config", str(tmp_path / "ft" / "config.json"), "--print-config", "--format", "json",
                    cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert '"init_head": "reset"' in again.stdout


def test_freeze_keeps_matched_weights_bit_identical_under_adamw_weight_decay(source, tmp_path):
    run = zoo.train("digits-cnn", params={**classes(0, 1, 2), "optimizer.weight_decay": 0.5}, optimizer="adamw",
                    lr=0.05, out=tmp_path / "ft", quiet=True, init=str(source.dir), freeze=["net.0.*", "net.3.weight"],
                    **{**FAST, "epochs": 2})
    src, new = weights(source.dir / "model.safetensors"), weights(run.dir / "model.safetensors")
    for key in ("net.0.weight", "net.0.bias", "net.3.weight"):
        assert torch.equal(src[key], new[key]), key
    for key in ("net.3.bias", *HEAD):
        assert not torch.equal(src[key], new[key]), key
    assert [n for n, p in run.model.named_parameters() if not p.requires_grad] == [
        "net.0.weight", "net.0.bias", "net.3.weight"]


def test_a_freeze_pattern_matching_nothing_is_an_error_naming_close_names(tmp_path):
    with pytest.raises(UsageError) as err:
        zoo.train("digits-cnn", params=classes(0, 1), out=tmp_path / "ft", quiet=True, freeze="0.*", **FAST)
    assert "did you mean 'net.0.*'" in str(err.value) and "net.8.*" in str(err.value)
    r = run_zoo("train", "digits-cnn", "--freeze", "net.9*", "--out", str(tmp_path / "ft"), cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith("error: --freeze net.9*: matches no parameter of model 'cnn'")
    r = run_zoo("train", "digits-cnn", "--freeze", "net.*", "--out", str(tmp_path / "ft"), cwd=tmp_path)
    assert r.returncode == 2 and "freezes every parameter" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "ft").exists()


def test_cli_refusals_are_one_line_without_traceback(source, tmp_path):
    cases = [
        (["--init", str(tmp_path / "nowhere")], "no such run directory"),
        (["--init-head", "reset"], "init_head=reset has no effect without init"),
        (["--init", str(source.dir), "--init-head", "fresh"], "init_head='fresh' is not one of: strict, reset"),
        (["--init", str(source.dir), "--set", "classes=0,1"], "add --init-head reset"),
    ]
    for args, expected in cases:
        r = run_zoo("train", "digits-cnn", "--epochs", "1", *args, "--out", str(tmp_path / "ft"), cwd=tmp_path)
        assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
        assert expected in r.stderr and r.stderr.count("\n") == 1, r.stderr


class StopAfterFirstEpoch(Callback):
    """Asks the run to stop as SIGINT does, after its first epoch (a clean, resumable stop)."""

    state_key = "stop-after-first"

    def on_epoch_end(self, trainer, row) -> None:
        trainer.flag.signum = signal.SIGINT


def test_a_resumed_fine_tuning_run_is_exact_and_does_not_reload_the_source(source, tmp_path):
    common = dict(params=classes(0, 1, 2), quiet=True, init=str(source.dir), freeze="net.0.*",
                  **{**FAST, "epochs": 2, "checkpoint_every": 0})
    whole = zoo.train("digits-cnn", out=tmp_path / "whole", **common)
    copy = shutil.copytree(source.dir, tmp_path / "src")
    with pytest.raises(TrainingInterrupted):
        zoo.train("digits-cnn", out=tmp_path / "part", callbacks=[StopAfterFirstEpoch()],
                  **{**common, "init": str(copy)})
    shutil.rmtree(copy)  # the resume continues from its checkpoint: the source is not read again
    resumed = resume(tmp_path / "part")
    a, b = weights(whole.dir / "model.safetensors"), weights(resumed.dir / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [r["train_loss"] for r in whole.history] == [r["train_loss"] for r in resumed.history]
    cfg = json.loads((resumed.dir / "config.json").read_text())
    assert cfg["init_source"]["path"] == str(copy.resolve())


def test_digits_classes_selects_digits_as_classes_in_order(tmp_path):
    from zoo.config import entries_for, resolve
    from zoo.parts import load_data

    cfg = resolve("digits-cnn", sets={"classes": "7,5,9"})
    splits = load_data(entries_for(cfg), cfg)
    assert splits.meta.num_classes == 3 and tuple(splits.meta.class_names) == ("5", "7", "9")
    assert sorted(set(splits.train[1].tolist())) == [0, 1, 2]
    from sklearn.datasets import load_digits

    wanted = int(sum((load_digits().target == d).sum() for d in (5, 7, 9)))
    assert sum(len(s[1]) for s in (splits.train, splits.val, splits.test)) == wanted
    with pytest.raises(Exception, match="names a digit twice"):
        load_data(entries_for(cfg), {**cfg, "dataset_params": {**cfg["dataset_params"], "classes": [1, 1]}})
    with pytest.raises(UsageError, match="must be <= 9"):
        resolve("digits-cnn", sets={"classes": "3,10"})
