"""Fixtures of the tracker tests: runs and tracking stores in temporary folders, never in the project."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _runs_elsewhere(tmp_path, monkeypatch):
    """A run without ``--out`` (and the default MLflow store beside the runs directory) goes under tmp_path."""
    monkeypatch.setenv("ZOO_RUNS_DIR", str(tmp_path / "runs"))


@pytest.fixture(scope="session")
def mlflow_home(tmp_path_factory):
    """A folder holding the session's one SQLite tracking store, ``mlflow.db`` (making a new one takes
    seconds): the default store of runs whose runs directory is ``<folder>/runs``."""
    pytest.importorskip("mlflow")
    return tmp_path_factory.mktemp("mlflow")


@pytest.fixture(scope="session")
def mlflow_uri(mlflow_home):
    return "sqlite:///" + (mlflow_home / "mlflow.db").as_posix()
