"""Callbacks from Python: objects given to ``zoo.train``, their events and order, stopping a run, state that
survives a resume, and the per-batch event only for those that ask for it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

import zoo
from zoo.errors import UsageError

SMALL = {"params": {"n_samples": 200, "model.hidden": [8]}, "device": "cpu", "quiet": True}


class Recorder(zoo.Callback):
    def __init__(self):
        self.events = []

    def on_fit_start(self, trainer):
        self.events.append(("fit_start", trainer.epoch))

    def on_epoch_start(self, trainer, epoch):
        self.events.append(("epoch_start", epoch))

    def on_epoch_end(self, trainer, row):
        self.events.append(("epoch_end", row["epoch"], sorted(row)))

    def on_fit_end(self, trainer, run):
        self.events.append(("fit_end", run.status, run.best_epoch))


def test_events_arrive_in_order_with_the_epochs_row(tmp_path):
    rec = Recorder()
    run = zoo.train("regression-mlp", epochs=2, out=tmp_path / "r", callbacks=[rec], **SMALL)
    cols = sorted(run.history[0])
    assert rec.events == [("fit_start", 0), ("epoch_start", 1), ("epoch_end", 1, cols), ("epoch_start", 2),
                          ("epoch_end", 2, cols), ("fit_end", "finished", run.best_epoch)]
    assert {"train_loss", "val_loss", "val_mse", "lr", "time"} <= set(cols)


class StopAt(zoo.Callback):
    def __init__(self, value):
        self.value = value

    def on_epoch_end(self, trainer, row):
        if row["val_loss"] < self.value:
            trainer.stop(f"val_loss reached {self.value}")


def test_a_callback_stops_the_run_and_the_best_epoch_is_kept(tmp_path):
    run = zoo.train("regression-mlp", epochs=50, out=tmp_path / "r", callbacks=[StopAt(10.0)], **SMALL)
    assert run.status == "stopped early" and len(run.history) == 1
    assert json.loads((tmp_path / "r" / "run.json").read_text())["status"] == "stopped early"


class Counter(zoo.Callback):
    """Counts steps (per-batch event) and keeps a tensor in its state."""

    def __init__(self):
        self.steps, self.total = 0, torch.zeros(())

    def on_batch_end(self, trainer, batch, loss):
        self.steps += 1
        self.total = self.total + loss.detach().cpu()

    def on_save_checkpoint(self, trainer):
        return {"steps": self.steps, "total": self.total}

    def on_load_checkpoint(self, trainer, state):
        self.steps, self.total = state["steps"], state["total"]


def test_the_batch_event_and_callback_state_survive_a_resume_exactly(tmp_path):
    straight = Counter()  # schedule none: a cosine schedule plans over the epochs asked for, 3 here and 1 below
    zoo.train("regression-mlp", epochs=3, schedule="none", checkpoint_every=0, out=tmp_path / "a", callbacks=[straight], **SMALL)
    first = Counter()
    zoo.train("regression-mlp", epochs=1, schedule="none", checkpoint_every=0, out=tmp_path / "b", callbacks=[first], **SMALL)
    again = Counter()
    zoo.resume(tmp_path / "b", epochs=3, quiet=True, callbacks=[again])
    steps_per_epoch = -(-120 // 32)  # 60 % of 200 samples train, batches of 32
    assert straight.steps == again.steps == 3 * steps_per_epoch and first.steps == steps_per_epoch
    assert torch.equal(straight.total, again.total)


def test_callbacks_that_clash_or_are_not_callbacks_are_refused_before_training(tmp_path):
    with pytest.raises(UsageError, match="state key 'Counter'"):
        zoo.train("regression-mlp", epochs=1, out=tmp_path / "r", callbacks=[Counter(), Counter()], **SMALL)
    with pytest.raises(UsageError, match="not int"):
        zoo.train("regression-mlp", epochs=1, out=tmp_path / "s", callbacks=[3], **SMALL)
    with pytest.raises(UsageError, match="unknown callback 'jsonl-lg'"):
        zoo.train("regression-mlp", epochs=1, out=tmp_path / "t", callbacks=["jsonl-lg"], **SMALL)


def test_the_per_batch_event_costs_nothing_when_no_callback_has_it(tmp_path):
    """The loop hands the procedure no per-batch function at all unless a callback implements it."""
    from zoo import engine
    from zoo.config import resolve

    cfg = resolve("regression-mlp", sets={"n_samples": 200}, epochs=1, device="cpu")
    trainer = engine.Trainer(cfg, None, out=tmp_path / "r", callbacks=[Recorder()])
    try:
        assert trainer._batch_event() is None
        trainer.callbacks.append(Counter())
        assert trainer._batch_event() is not None
    finally:
        trainer.close()


def test_inference_does_not_import_the_training_loop(tmp_path):
    run = zoo.train("regression-mlp", epochs=1, out=tmp_path / "r", **SMALL)
    script = (f"import sys, zoo; m = zoo.load({str(run.dir)!r}); zoo.evaluate({str(run.dir)!r}, device='cpu');"
              "import zoo.plots;"
              "print(sorted(n for n in sys.modules if n in ('zoo.engine', 'zoo.procedures', 'zoo.callbacks',"
              " 'zoo.strategies', 'zoo_training.supervised')))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
