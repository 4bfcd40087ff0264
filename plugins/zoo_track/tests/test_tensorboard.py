"""The ``tensorboard`` tracker, read back with TensorBoard's own reader (``EventAccumulator`` and the hparams
plugin's data): scalars by epoch for every history column, the config as hparams with the final metrics,
the pictures, a resume that continues without duplicates, and a failure that never fails the run."""

from __future__ import annotations

import csv
import warnings

import pytest

import zoo

pytest.importorskip("tensorboard")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.plugins.hparams import metadata, plugin_data_pb2  # noqa: E402

SMALL = {"params": {"n_samples": 200, "model.hidden": [8]}, "device": "cpu", "threads": 1, "quiet": True}


def _events(path):
    acc = EventAccumulator(str(path), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def _series(acc, tag):
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def _history(run_dir):
    with open(run_dir / "history.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_a_run_logs_every_column_by_epoch_the_config_as_hparams_and_its_pictures(tmp_path):
    pytest.importorskip("matplotlib")
    run = zoo.train("moons-mlp", epochs=3, out=tmp_path / "r", track="tensorboard", **SMALL)
    acc = _events(run.dir / "tensorboard")

    history = _history(run.dir)
    columns = [c for c in history[0] if c != "epoch"]
    assert set(columns) <= set(acc.Tags()["scalars"])  # train_loss, val_loss, val_accuracy, ..., lr, time
    for column in columns:
        assert [s for s, _ in _series(acc, column)] == [1, 2, 3]
        assert [v for _, v in _series(acc, column)] == pytest.approx([float(r[column]) for r in history], rel=1e-6)

    # the results at the end, as scalars the HPARAMS tab shows beside the hyperparameters
    assert _series(acc, "final_test_accuracy") == [(3, pytest.approx(run.metrics["test"]["accuracy"]))]
    assert _series(acc, "final_val_loss") == [(3, pytest.approx(run.metrics["val"]["loss"]))]
    assert _series(acc, "best_epoch") == [(3, run.best_epoch)]

    content = acc.PluginTagToContent(metadata.PLUGIN_NAME)
    start = plugin_data_pb2.HParamsPluginData.FromString(content[metadata.SESSION_START_INFO_TAG])
    hp = start.session_start_info.hparams
    assert hp["recipe"].string_value == "moons-mlp" and hp["model"].string_value == "mlp"
    assert hp["train.lr"].number_value == pytest.approx(run.config["lr"])
    assert hp["train.epochs"].number_value == 3 and hp["dataset.n_samples"].number_value == 200
    assert hp["model.hidden"].string_value == "8" and hp["dataset.standardize"].bool_value is True
    end = plugin_data_pb2.HParamsPluginData.FromString(content[metadata.SESSION_END_INFO_TAG])
    assert end.session_end_info.status == 1  # STATUS_SUCCESS

    # the run's pictures: drawn into the run directory (as zoo plot does) and logged as images
    images = acc.Tags()["images"]
    assert {"pictures/curves", "pictures/decision"} <= set(images)
    curves = acc.Images("pictures/curves")[-1]
    assert curves.step == 3 and curves.encoded_image_string == (run.dir / "curves.png").read_bytes()

    # the config records the tracker as a callback, as --callback tensorboard would
    assert run.config["callbacks"] == [{"name": "tensorboard", "plugin": "track",
                                        "params": {"dir": "tensorboard", "images": True}}]


class FailAt(zoo.Callback):
    """Fails the run at the end of an epoch, after the trackers sent it and before it was checkpointed:
    the resumed run trains that epoch again."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, trainer, row):
        if row["epoch"] == self.epoch:
            raise RuntimeError("the machine went away")


def test_a_resumed_run_continues_its_events_and_each_epoch_appears_once(tmp_path):
    kw = {**SMALL, "checkpoint_every": 0, "schedule": "none", "params": {**SMALL["params"], "track.images": False}}
    straight = zoo.train("moons-mlp", epochs=4, out=tmp_path / "straight", track="tensorboard", **kw)
    with pytest.raises(RuntimeError, match="went away"):  # epoch 3 was sent, then the run died
        zoo.train("moons-mlp", epochs=4, out=tmp_path / "r", track="tensorboard", callbacks=[FailAt(3)], **kw)
    assert [s for s, _ in _series(_events(tmp_path / "r" / "tensorboard"), "val_loss")] == [1, 2, 3]
    resumed = zoo.resume(tmp_path / "r", epochs=4, quiet=True)  # from the checkpoint of epoch 2

    acc = _events(resumed.dir / "tensorboard")
    expected = _series(_events(straight.dir / "tensorboard"), "val_loss")
    assert [s for s, _ in expected] == [1, 2, 3, 4]
    assert _series(acc, "val_loss") == expected  # epoch 3 of the dead process was purged, not shown twice
    assert _series(acc, "train_loss") == _series(_events(straight.dir / "tensorboard"), "train_loss")
    assert [s for s, _ in _series(acc, "final_test_loss")] == [4]
    content = acc.PluginTagToContent(metadata.PLUGIN_NAME)
    assert set(content) == {metadata.SESSION_START_INFO_TAG, metadata.SESSION_END_INFO_TAG}


def test_an_absolute_dir_collects_runs_under_one_logdir(tmp_path):
    shared = tmp_path / "tb"
    run = zoo.train("moons-mlp", epochs=1, out=tmp_path / "r1", track=["tensorboard"],
                    **{**SMALL, "params": {**SMALL["params"], "track.dir": str(shared), "track.images": False}})
    assert not (run.dir / "tensorboard").exists()
    assert [s for s, _ in _series(_events(shared / "r1"), "val_loss")] == [1]


def test_a_tracker_that_fails_warns_once_and_the_run_finishes_with_its_files(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the events folder would go")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = zoo.train("moons-mlp", epochs=2, out=tmp_path / "r", track="tensorboard",
                        **{**SMALL, "params": {**SMALL["params"], "track.dir": str(blocker / "tb")}})
    tracking = [w for w in caught if w.category.__name__ == "TrackingWarning"]
    assert len(tracking) == 1, [str(w.message) for w in caught]
    text = str(tracking[0].message)
    assert text.startswith("TensorBoard tracking failed while starting and is off for the rest of this run")
    assert "\n" not in text
    assert run.status == "finished" and len(run.history) == 2
    assert (run.dir / "model.safetensors").is_file() and (run.dir / "metrics.json").is_file()
    assert zoo.evaluate(run.dir)["loss"] == pytest.approx(run.metrics["test"]["loss"])
