"""A third-party tracker is a plugin of the same shape as the built-in ones: a CallbackSpec whose
implementation subclasses zoo_track.base.Tracker. Installed as a real distribution, it is enabled with
``--track NAME``, gets ``--set track.KEY`` values, continues on resume and inherits the failure policy."""

from __future__ import annotations

import json

from helpers import install_plugin, run_zoo, site_env

DECLARATIONS = '''
from zoo import CallbackSpec, Param, hookimpl

ZOO_CONTRACT = "1"


@hookimpl
def zoo_callbacks():
    return [CallbackSpec(name="ledger", summary="Every epoch as a line in a ledger folder (a stand-in service).",
                         impl="ledger_impl:LedgerTracker",
                         params={"root": Param("str", "", "the service's folder (required in practice)")})]
'''

IMPLEMENTATION = '''
import json
import uuid
from pathlib import Path

from zoo_track.base import Tracker, config_params, final_metrics


class LedgerTracker(Tracker):
    label = "Ledger"

    def __init__(self, root=""):
        super().__init__()
        self.root, self.run_id = root, None

    def open(self, trainer):
        if not self.root:
            raise ValueError("no ledger folder given (--set track.root=DIR)")
        self.run_id = self.run_id or uuid.uuid4().hex
        self.file = Path(self.root) / f"{self.run_id}.jsonl"
        self.file.parent.mkdir(parents=True, exist_ok=True)
        self._write({"open": trainer.run_dir.name, "config": config_params(trainer.cfg)})

    def log_epoch(self, trainer, row):
        self._write({"epoch": row["epoch"], "val_loss": row["val_loss"]})

    def finish(self, trainer, run):
        self._write({"final": final_metrics(run)})

    def state(self):
        return {"run_id": self.run_id}

    def restore(self, state):
        self.run_id = state.get("run_id")

    def _write(self, record):
        with open(self.file, "a") as fh:
            fh.write(json.dumps(record) + "\\n")
'''

SMALL = ["--set", "n_samples=200", "--set", "model.hidden=8", "--set", "threads=1", "--set", "checkpoint_every=0",
         "--device", "cpu", "-q"]


def test_a_third_party_tracker_plugin_tracks_resumes_and_fails_softly(tmp_path):
    site = install_plugin(tmp_path / "site", "zoo-ledger", {"ledger": DECLARATIONS, "ledger_impl": IMPLEMENTATION},
                          {"ledger": "ledger"})
    env = {**site_env(site), "OMP_NUM_THREADS": "1"}
    first = run_zoo("train", "moons-mlp", "--epochs", "2", "--track", "ledger", "--set", "track.root=service",
                    "--out", "r", *SMALL, cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    more = run_zoo("train", "--resume", "r", "--epochs", "3", "-q", cwd=tmp_path, env=env)
    assert more.returncode == 0, more.stderr
    [ledger] = (tmp_path / "service").iterdir()  # one run at the service, continued by the resume
    records = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert [r["epoch"] for r in records if "epoch" in r] == [1, 2, 3]
    assert records[0]["config"]["recipe"] == "moons-mlp" and len([r for r in records if "final" in r]) == 2
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["callbacks"] == [{"name": "ledger", "plugin": "ledger", "root": "service"}]

    broken = run_zoo("train", "moons-mlp", "--epochs", "1", "--track", "ledger", "--out", "b", *SMALL[:-1],
                     cwd=tmp_path, env=env)
    assert broken.returncode == 0, broken.stderr
    assert "warning: Ledger tracking failed while starting" in broken.stderr and "track.root=DIR" in broken.stderr


def test_a_tracker_that_leaves_out_a_required_call_cannot_be_built():
    """open and log_epoch are what every tracker must do: a subclass without one is refused when it is built,
    naming what is missing, instead of failing in the middle of a run."""
    import pytest

    from zoo_track.base import Tracker

    class Forgetful(Tracker):
        def open(self, trainer):
            pass

    with pytest.raises(TypeError, match="log_epoch"):
        Forgetful()
