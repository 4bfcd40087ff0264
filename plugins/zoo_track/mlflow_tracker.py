"""The ``mlflow`` tracker: a zoo run as an MLflow run.

- **where**: ``uri`` (any tracking URI: ``http://host:5000``, ``sqlite:///path.db``, ``databricks``, ...).
  Empty, the default, is a SQLite store ``mlflow.db`` in the directory that holds the runs directory
  (``runs/``, or ``$ZOO_RUNS_DIR``): ``./mlflow.db`` when zoo runs from a project folder, so that
  ``mlflow ui --backend-store-uri sqlite:///mlflow.db`` there shows every run, with no server. On a
  SQLite store, new experiments keep their artifacts beside the database (``mlartifacts/<experiment>``).
- **the experiment**: ``experiment``, or the recipe's name, or ``DATASET-MODEL``.
- **params**: the run's config, flat, as ``--set`` spells it (``dataset``, ``model.hidden``, ``train.lr``, ...).
- **metrics**: every history column by epoch (step = epoch), then the results (``final_<split>_<metric>``
  and ``best_epoch``).
- **tags**: the run directory's name as the run name, the recipe, task, parts and their plugins, the plugins'
  versions, zoo's version, the run directory, the git commit (branch, uncommitted changes) of the
  current directory's repository when there is one, ``zoo.status`` at the end.
- **artifacts** at the end: ``model.safetensors``, ``config.json``, ``metrics.json``, ``history.csv``,
  ``run.json``, the pictures (drawn when matplotlib is installed).

Only :class:`mlflow.tracking.MlflowClient` is used, never MLflow's global "active run": several zoo runs in
one process (or a notebook with its own MLflow run) do not collide. The MLflow run's id and URI travel in
the zoo run's checkpoint, so ``zoo train --resume`` continues the same MLflow run.
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
import re
import time
from pathlib import Path
from typing import Any

from .base import Tracker, config_params, final_metrics, git_info, note, pictures, require, run_tags

#: The most values MLflow takes in one ``log_batch`` call, per kind.
BATCH_PARAMS, BATCH_METRICS, BATCH_TAGS = 100, 1000, 100
#: Longer parameter values are cut (older servers take 500 characters).
PARAM_CHARS = 500
#: The run's files sent as artifacts (those it has).
RUN_FILES = ("model.safetensors", "config.json", "metrics.json", "history.csv", "run.json", "preprocess.json")


def default_uri() -> str:
    """``sqlite:///<the directory holding the runs directory>/mlflow.db``, as an absolute path."""
    from zoo.rundir import default_root

    db = Path(os.path.abspath(default_root())).parent / "mlflow.db"
    return "sqlite:///" + db.as_posix()  # sqlite:////home/... (an absolute path), sqlite:///C:/... on Windows


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (None for other stores or an in-memory database)."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///"):].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


@contextlib.contextmanager
def _quiet_store():
    """MLflow announces that it creates a new database's tables (INFO lines on stderr); the tracker says where
    the run goes in one line of its own instead."""
    names = ("mlflow.store.db.utils", "alembic.runtime.migration", "alembic")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


class MlflowTracker(Tracker):
    """Sends the run to an MLflow tracking store (see the module's documentation for what it sends)."""

    label = "MLflow"

    def __init__(self, uri: str = "", experiment: str = "", artifacts: bool = True) -> None:
        super().__init__()
        require("mlflow", "mlflow", self.label)
        self.uri_param, self.experiment_param, self.artifacts = uri, experiment, artifacts
        self.client: Any = None
        self.uri: str | None = None  # the store this run went to (kept for resumes: the default depends on cwd)
        self.run_id: str | None = None
        self.experiment = ""
        self.resumes = 0

    def state(self) -> dict[str, Any]:
        return {"uri": self.uri, "run_id": self.run_id, "resumes": self.resumes}

    def restore(self, state: dict[str, Any]) -> None:
        uri, run_id = state.get("uri"), state.get("run_id")
        self.uri = uri if isinstance(uri, str) else None
        self.run_id = run_id if isinstance(run_id, str) else None
        self.resumes = state.get("resumes", 0) if isinstance(state.get("resumes"), int) else 0

    # -- connecting ------------------------------------------------------------------

    def open(self, trainer: Any) -> None:
        from mlflow.tracking import MlflowClient

        uri = self.uri_param or self.uri or default_uri()
        path = sqlite_path(uri)
        if path is not None:  # SQLite makes the file, not its folder
            path.parent.mkdir(parents=True, exist_ok=True)
        with _quiet_store():
            client = MlflowClient(tracking_uri=uri)
            run = self._existing_run(client) if uri == self.uri else None
            self.client, self.uri = client, uri
            if run is not None:
                self._continue(trainer, run)
            else:
                self._create(trainer)
        shown = f"mlflow ui --backend-store-uri {uri}" if path is not None else uri
        note(trainer, f"MLflow: run {self.run_id} in experiment '{self.experiment}' ({shown})")

    def _existing_run(self, client: Any) -> Any:
        if not self.run_id:
            return None
        from mlflow.exceptions import MlflowException

        try:
            run = client.get_run(self.run_id)
        except MlflowException:
            return None  # deleted for good: a new MLflow run gets the whole history
        return run if run.info.lifecycle_stage == "active" else None

    def _experiment_id(self, trainer: Any) -> str:
        from mlflow.exceptions import MlflowException

        cfg = trainer.cfg
        name = self.experiment_param or cfg.get("recipe") or f"{cfg['dataset']}-{cfg['model']}"
        client = self.client
        self.experiment = name
        found = client.get_experiment_by_name(name)
        if found is None:
            path = sqlite_path(self.uri)
            location = None
            if path is not None:
                safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "experiment"
                location = (path.resolve().parent / "mlartifacts" / safe).as_uri()
            try:
                return client.create_experiment(name, artifact_location=location)
            except MlflowException:  # another run made it meanwhile
                found = client.get_experiment_by_name(name)
                if found is None:
                    raise
        if found.lifecycle_stage != "active":
            raise RuntimeError(f"the MLflow experiment '{name}' is deleted; restore it (mlflow experiments restore) "
                               "or choose another with --set track.experiment=NAME")
        return found.experiment_id

    def _create(self, trainer: Any) -> None:
        from mlflow.entities import Param

        run_dir = Path(trainer.run_dir)
        tags = {**run_tags(trainer), "mlflow.source.name": "zoo", "mlflow.source.type": "LOCAL",
                "mlflow.note.content": f"zoo run `{run_dir.name}` in `{run_dir.resolve()}`"}
        with contextlib.suppress(Exception):
            tags["mlflow.user"] = getpass.getuser()
        git = git_info()
        if "commit" in git:
            tags["mlflow.source.git.commit"] = git["commit"]
        if "branch" in git:
            tags["mlflow.source.git.branch"] = git["branch"]
        if "dirty" in git:
            tags["zoo.git.dirty"] = git["dirty"]
        run = self.client.create_run(self._experiment_id(trainer), run_name=run_dir.name, tags=tags)
        self.run_id, self.resumes = run.info.run_id, 0
        params = [Param(k, _text(v)[:PARAM_CHARS]) for k, v in config_params(trainer.cfg).items()]
        for i in range(0, len(params), BATCH_PARAMS):
            self.client.log_batch(self.run_id, params=params[i:i + BATCH_PARAMS])
        self.sent = 0  # a new MLflow run gets the run's whole history

    def _continue(self, trainer: Any, run: Any) -> None:
        """A resumed zoo run: its MLflow run goes on. Parameters are immutable in MLflow: new ones are added, and
        the ones the resume changed (``train.epochs``, ``train.device``) are recorded in ``zoo.resumed_with``."""
        from mlflow.entities import Param, RunTag

        self.resumes += 1
        self.experiment = self.client.get_experiment(run.info.experiment_id).name
        old = run.data.params
        new = {k: _text(v)[:PARAM_CHARS] for k, v in config_params(trainer.cfg).items()}
        added = [Param(k, v) for k, v in new.items() if k not in old]
        changed = [f"{k}={v}" for k, v in new.items() if k in old and old[k] != v]
        self.client.update_run(self.run_id, status="RUNNING")
        tags = [RunTag("zoo.resumes", str(self.resumes))]
        if changed:
            tags.append(RunTag("zoo.resumed_with", ", ".join(changed)[:5000]))
        for i in range(0, len(added), BATCH_PARAMS):
            self.client.log_batch(self.run_id, params=added[i:i + BATCH_PARAMS])
        self.client.log_batch(self.run_id, tags=tags)

    # -- sending -----------------------------------------------------------------------

    def log_epoch(self, trainer: Any, row: dict[str, float]) -> None:
        self._metrics({k: v for k, v in row.items() if k != "epoch"}, int(row["epoch"]))

    def _metrics(self, values: dict[str, Any], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, step) for k, v in values.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)]
        for i in range(0, len(metrics), BATCH_METRICS):
            self.client.log_batch(self.run_id, metrics=metrics[i:i + BATCH_METRICS])

    def finish(self, trainer: Any, run: Any) -> None:
        from mlflow.entities import RunTag

        self._metrics(final_metrics(run), trainer.epoch)
        if self.artifacts:
            run_dir = Path(trainer.run_dir)
            for name in RUN_FILES:
                if (run_dir / name).is_file():
                    self.client.log_artifact(self.run_id, str(run_dir / name))
            for path in pictures(trainer):
                self.client.log_artifact(self.run_id, str(path), artifact_path="pictures")
        self.client.log_batch(self.run_id, tags=[RunTag("zoo.status", run.status)])
        self.client.set_terminated(self.run_id, status="FINISHED")

    def abort(self, trainer: Any, exc: BaseException) -> None:
        from mlflow.entities import RunTag

        from zoo.errors import TrainingAborted, TrainingInterrupted

        interrupted = isinstance(exc, (KeyboardInterrupt, TrainingAborted, TrainingInterrupted))
        text = " ".join(f"{type(exc).__name__}: {exc}".split())[:5000]
        self.client.log_batch(self.run_id, tags=[RunTag("zoo.status", "interrupted" if interrupted else "failed"),
                                                 RunTag("zoo.error", text)])
        self.client.set_terminated(self.run_id, status="KILLED" if interrupted else "FAILED")

    def close(self) -> None:
        self.client = None


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
