"""zoo plugin: experiment tracking. A run sent to TensorBoard or MLflow as it trains.

This module is what the ``track`` entry point names. It only declares; the trackers
(``zoo_track.tensorboard_tracker``, ``zoo_track.mlflow_tracker``) are callbacks, imported when a run
enables one (``zoo train ... --track tensorboard``, which is ``--callback tensorboard``), and they
import their library (``pip install 'zoo[track]'``) only then. A third-party tracker is a plugin of
the same shape: a :class:`zoo.CallbackSpec` whose implementation is a :class:`zoo_track.base.Tracker`
(or any :class:`zoo.Callback`).

Whatever a tracker's library or server does, the run goes on: a failure is one warning, the tracker
is off for the rest of the run, and the run's own files are kept.
"""

from zoo import CallbackSpec, Param, hookimpl

ZOO_CONTRACT = "1"


@hookimpl
def zoo_callbacks():
    return [
        CallbackSpec(
            name="tensorboard",
            summary="TensorBoard event files in the run: every history column by epoch, the config as hparams with "
                    "the final metrics, the pictures.",
            impl="zoo_track.tensorboard_tracker:TensorBoardTracker",
            params={
                "dir": Param("str", "tensorboard", "where the event files go: a folder inside the run directory, or "
                                                   "an absolute path under which a folder named after the run is made"),
                "images": Param("bool", True, "log the run's pictures (curves.png, ...; drawn when matplotlib is "
                                              "installed) at the end"),
            },
        ),
        CallbackSpec(
            name="mlflow",
            summary="MLflow tracking: the config as params, every history column by epoch, tags, the run's files as "
                    "artifacts.",
            impl="zoo_track.mlflow_tracker:MlflowTracker",
            params={
                "uri": Param("str", "", "tracking URI (http://host:5000, sqlite:///path.db, databricks, ...); empty: "
                                        "sqlite:///mlflow.db beside the runs directory"),
                "experiment": Param("str", "", "experiment name (empty: the recipe, or DATASET-MODEL)"),
                "artifacts": Param("bool", True, "upload the run's files at the end: weights, config, metrics, "
                                                 "history, pictures"),
            },
        ),
    ]
