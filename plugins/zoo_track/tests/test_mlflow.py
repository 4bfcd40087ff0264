"""The ``mlflow`` tracker, read back with MLflow's client API on a SQLite store: params, the metric history
by epoch, tags, artifacts; a resumed zoo run continuing the same MLflow run; the default store beside the
runs directory; and failures (a store that cannot be opened, a run deleted mid-training) that never fail
the zoo run."""

from __future__ import annotations

import json
import shutil
import subprocess
import warnings

import pytest

import zoo
from helpers import run_zoo

pytest.importorskip("mlflow")

from mlflow.tracking import MlflowClient  # noqa: E402

SMALL = {"params": {"n_samples": 200, "model.hidden": [8]}, "device": "cpu", "threads": 1, "quiet": True}


def _params(uri, **extra):
    return {**SMALL["params"], "track.uri": uri, **extra}


def _only_run(client, experiment, run_name):
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], filter_string=f"attributes.run_name = '{run_name}'")
    assert len(runs) == 1, runs
    return runs[0]


def _steps(client, run_id, key):
    return [(m.step, m.value) for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)]


def test_a_run_sends_its_params_metrics_by_epoch_tags_and_files(tmp_path, mlflow_uri, monkeypatch):
    pytest.importorskip("matplotlib")
    repo = tmp_path / "project"  # the current directory is a git repository: its commit is tagged
    repo.mkdir()
    monkeypatch.chdir(repo)
    commit = None
    if shutil.which("git"):
        git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
        subprocess.run([*git, "init", "-q"], check=True)
        (repo / "exp.txt").write_text("x")
        subprocess.run([*git, "add", "exp.txt"], check=True)
        subprocess.run([*git, "commit", "-q", "-m", "x"], check=True)
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()

    run = zoo.train("moons-mlp", epochs=3, out=tmp_path / "run-a", track="mlflow",
                    **{**SMALL, "params": _params(mlflow_uri)})
    client = MlflowClient(tracking_uri=mlflow_uri)
    got = _only_run(client, "moons-mlp", "run-a")  # the experiment is the recipe; the run, the run directory
    assert got.info.status == "FINISHED"

    p = got.data.params
    assert p["recipe"] == "moons-mlp" and p["dataset"] == "moons" and p["model"] == "mlp"
    assert p["loss"] == "cross-entropy" and p["optimizer"] == "adam" and p["model.hidden"] == "8"
    assert float(p["train.lr"]) == run.config["lr"] and p["train.epochs"] == "3" and p["dataset.n_samples"] == "200"

    rid = got.info.run_id
    for column in run.history[0]:
        if column != "epoch":
            assert _steps(client, rid, column) == [(r["epoch"], pytest.approx(r[column])) for r in run.history]
    assert got.data.metrics["final_test_accuracy"] == pytest.approx(run.metrics["test"]["accuracy"])
    assert got.data.metrics["final_val_loss"] == pytest.approx(run.metrics["val"]["loss"])
    assert got.data.metrics["best_epoch"] == run.best_epoch

    t = got.data.tags
    assert t["zoo.recipe"] == "moons-mlp" and t["zoo.task"] == "binary" and t["zoo.version"] == zoo.__version__
    assert t["zoo.dataset"] == "moons" and t["zoo.dataset.plugin"] == "tabular"
    assert t["zoo.model"] == "mlp" and t["zoo.loss.plugin"] == "losses" and t["zoo.optimizer.plugin"] == "training"
    assert t["zoo.plugin.tabular"] and t["zoo.plugin.track"] and t["zoo.status"] == "finished"
    assert t["zoo.run_dir"] == str(run.dir.resolve()) and t["mlflow.runName"] == "run-a"
    if commit:
        assert t["mlflow.source.git.commit"] == commit and t["zoo.git.dirty"] == "false"

    files = {a.path for a in client.list_artifacts(rid)}
    assert {"model.safetensors", "config.json", "metrics.json", "history.csv", "run.json", "pictures"} <= files
    assert {"pictures/curves.png", "pictures/decision.png"} <= {a.path for a in client.list_artifacts(rid, "pictures")}
    local = client.download_artifacts(rid, "model.safetensors", str(tmp_path / "dl"))
    assert open(local, "rb").read() == (run.dir / "model.safetensors").read_bytes()


def test_a_resumed_run_continues_the_same_mlflow_run(tmp_path, mlflow_uri):
    params = {**SMALL["params"], "callback.mlflow.uri": mlflow_uri, "callback.mlflow.artifacts": False,
              "callback.mlflow.experiment": "resumes"}  # --callback mlflow is --track mlflow
    kw = {**SMALL, "checkpoint_every": 0, "params": params}
    first = zoo.train(dataset="sine", model="mlp", epochs=2, out=tmp_path / "run-r", callbacks=["mlflow"], **kw)
    client = MlflowClient(tracking_uri=mlflow_uri)
    rid = _only_run(client, "resumes", "run-r").info.run_id
    assert client.get_run(rid).info.status == "FINISHED" and first.config["callbacks"][0]["name"] == "mlflow"

    again = zoo.resume(first.dir, epochs=4, quiet=True)
    got = _only_run(client, "resumes", "run-r")
    assert got.info.run_id == rid and got.info.status == "FINISHED"
    assert _steps(client, rid, "val_loss") == [(r["epoch"], pytest.approx(r["val_loss"])) for r in again.history]
    assert [s for s, _ in _steps(client, rid, "val_loss")] == [1, 2, 3, 4]
    assert got.data.params["train.epochs"] == "2"  # MLflow params are immutable: the change is a tag
    assert got.data.tags["zoo.resumed_with"] == "train.epochs=4" and got.data.tags["zoo.resumes"] == "1"
    assert got.data.metrics["final_test_loss"] == pytest.approx(again.metrics["test"]["loss"])


def test_the_default_store_is_sqlite_beside_the_runs_directory(mlflow_home, monkeypatch):
    project = mlflow_home  # a project folder (whose mlflow.db the session's other tests made already)
    (project / "exp.toml").write_text('recipe = "moons-mlp"\ntrack = ["mlflow"]\n[dataset]\nn_samples = 200\n'
                                      '[train]\nepochs = 2\ndevice = "cpu"\nthreads = 1\n')
    out = run_zoo("train", "--config", "exp.toml", cwd=project, env={"OMP_NUM_THREADS": "1"}, timeout=300)
    assert out.returncode == 0, out.stderr
    assert (project / "mlflow.db").is_file() and (project / "runs").is_dir()
    assert "MLflow: run " in out.stderr and "mlflow ui --backend-store-uri sqlite:///" in out.stderr
    assert "INFO" not in out.stderr  # MLflow's own notes (about a database it creates) are not shown
    [run_dir] = (project / "runs").iterdir()
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["callbacks"] == [{"name": "mlflow", "plugin": "track", "uri": "", "experiment": "", "artifacts": True}]

    monkeypatch.chdir(project)  # what `mlflow ui --backend-store-uri sqlite:///mlflow.db` reads there
    client = MlflowClient(tracking_uri="sqlite:///mlflow.db")
    got = _only_run(client, "moons-mlp", run_dir.name)
    assert [s for s, _ in _steps(client, got.info.run_id, "train_loss")] == [1, 2]
    assert got.info.artifact_uri.startswith((project / "mlartifacts").as_uri())  # the store keeps its files
    assert "model.safetensors" in {a.path for a in client.list_artifacts(got.info.run_id)}


def test_a_store_that_cannot_be_opened_is_one_warning_and_the_run_finishes(tmp_path):
    out = run_zoo("train", "moons-mlp", "--epochs", "2", "--set", "n_samples=200", "--set", "threads=1",
                  "--device", "cpu", "--track", "mlflow", "--set", "track.uri=nosuchstore://here", "--out", "r",
                  cwd=tmp_path, env={"OMP_NUM_THREADS": "1"}, timeout=300)
    assert out.returncode == 0, out.stderr
    warned = [line for line in out.stderr.splitlines() if "MLflow tracking failed" in line]
    assert len(warned) == 1 and warned[0].startswith("warning: MLflow tracking failed while starting"), out.stderr
    assert "nosuchstore" in warned[0] and "Traceback" not in out.stderr
    assert "saved r/model.safetensors (finished" in out.stdout
    assert (tmp_path / "r" / "metrics.json").is_file() and (tmp_path / "r" / "history.csv").is_file()


class DeleteTheRun(zoo.Callback):
    """Someone deletes the MLflow run while zoo trains: the next epoch cannot be sent."""

    def __init__(self, uri):
        self.uri = uri

    def on_epoch_end(self, trainer, row):
        if row["epoch"] == 1:
            client = MlflowClient(tracking_uri=self.uri)
            exp = client.get_experiment_by_name("deleted")
            [run] = client.search_runs([exp.experiment_id])
            client.delete_run(run.info.run_id)


def test_a_tracker_failing_mid_run_warns_once_and_training_goes_on(tmp_path, mlflow_uri):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = zoo.train("moons-mlp", epochs=3, out=tmp_path / "r", track="mlflow", callbacks=[DeleteTheRun(mlflow_uri)],
                        **{**SMALL, "params": _params(mlflow_uri, **{"track.experiment": "deleted"})})
    tracking = [str(w.message) for w in caught if w.category.__name__ == "TrackingWarning"]
    assert len(tracking) == 1 and tracking[0].startswith("MLflow tracking failed while sending epoch 2"), tracking
    assert run.status == "finished" and len(run.history) == 3 and (run.dir / "model.safetensors").is_file()
