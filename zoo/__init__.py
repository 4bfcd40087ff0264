"""zoo: a plugin-style PyTorch model zoo. The ``zoo`` command is a shell over this API.

Importing ``zoo`` is cheap (no torch); each function imports what it needs on first use.

Train and use runs (each returns or takes a run directory, ``runs/<name>-<time>``):
  zoo.train(recipe, *, dataset, model, loss, params, out, epochs=..., ...) -> Run   (zoo train)
  zoo.resume(run_dir, *, epochs)   continue a stopped or killed run -> Run          (zoo train --resume)
  zoo.evaluate(run_dir, split="test", input=None) -> {metric: value}                (zoo eval)
  zoo.predict(run_dir, X) -> Predictions (.labels, .probabilities, .values)         (zoo predict)
  zoo.load(run_dir) -> RunModel: the trained nn.Module, raw inputs in
  zoo.sample(run_dir, n, seed=0) -> array of samples from a generative run          (zoo sample)
  zoo.play(run_dir, episodes=10) -> Episodes: a control run's greedy policy         (zoo play)
  zoo.tune(recipe, trials=50, space=...) -> StudySummary: best trial, all trials    (zoo tune)
  zoo.export(run_dir, format="onnx", out=None) -> ExportResult, checked             (zoo export)

Look around (no torch; the same rows as the commands' --json):
  zoo.runs(root=None) -> [dict]    saved runs, newest first                         (zoo runs)
  zoo.list(kind=None, pattern=None, task=None, input=None) -> [dict]  components    (zoo list)
  zoo.info(name) -> [dict]         every component called name, with its params     (zoo info)

Objects:
  zoo.Run       a run: .dir .config .metrics .history (rows; h["val_loss"] a column)
                .status .best_epoch .model (RunModel) .predict(X) .plot() -> [Figure]
  zoo.RunModel  a run's model: raw inputs to the data's units, .classes
  zoo.Callback  subclass it to watch or steer training: zoo.train(..., callbacks=[cb])
  zoo.sklearn   ZooClassifier, ZooRegressor: scikit-learn estimators over zoo.train

For plugins: hookimpl and the specs (ModelSpec, DatasetSpec, LossSpec, RecipeSpec, Param, ...).
Errors about what you asked for are zoo.ZooError (the CLI shows them as one line).
help(zoo.train) and the others give each function's details.
"""

from __future__ import annotations

__version__ = "0.2.0"

from .errors import ZooError  # noqa: E402
from .hookspecs import hookimpl  # noqa: E402
from .spec import (CallbackSpec, DatasetSpec, LossSpec, MetricSpec, ModelSpec, OptimizerSpec,  # noqa: E402
                   Param, ProcedureSpec, RecipeSpec, ScheduleSpec, StrategySpec)

#: name -> "module" (the attribute of that name) or "module:attribute". ``zoo.list`` is ``api.components``:
#: no module of zoo's defines a ``list`` that would shadow the builtin.
_LAZY = {"train": "api", "evaluate": "api", "predict": "api", "load": "api", "resume": "api", "play": "api",
         "list": "api:components", "info": "api", "runs": "api",
         "sample": "sampling", "tune": "tuning", "export": "exporting",
         "Run": "engine",
         "RunModel": "parts", "Callback": "callbacks"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, _, attr = _LAZY[name].partition(":")
        return getattr(importlib.import_module(f".{module}", __name__), attr or name)
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")


__all__ = [
    "__version__", "ZooError", "hookimpl", "DatasetSpec", "ModelSpec", "LossSpec", "RecipeSpec", "Param",
    "OptimizerSpec", "ScheduleSpec", "MetricSpec", "CallbackSpec", "ProcedureSpec", "StrategySpec",
    "train", "evaluate", "predict", "load", "resume", "sample", "play", "tune", "export", "runs", "info", "Run",
    "RunModel", "Callback",
]  # not "list": 'from zoo import *' must not shadow the builtin; call it as zoo.list(...)
