"""zoo: a plugin-style PyTorch model zoo.

Importing ``zoo`` is cheap (no torch): the declarations a plugin needs are here,
and the training API (:func:`train`, :func:`evaluate`, :func:`predict`, :func:`load`, :func:`sample`,
:func:`play`)
imports torch on first use.
"""

from __future__ import annotations

__version__ = "0.2.0"

from .errors import ZooError  # noqa: E402
from .hookspecs import hookimpl  # noqa: E402
from .spec import (CallbackSpec, DatasetSpec, LossSpec, MetricSpec, ModelSpec, OptimizerSpec,  # noqa: E402
                   Param, ProcedureSpec, RecipeSpec, ScheduleSpec, StrategySpec)

_LAZY = {"train": "api", "evaluate": "api", "predict": "api", "load": "api", "resume": "api", "play": "api",
         "sample": "sampling", "tune": "tuning", "export": "exporting",
         "Run": "engine",
         "RunModel": "parts", "Callback": "callbacks"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")


__all__ = [
    "__version__", "ZooError", "hookimpl", "DatasetSpec", "ModelSpec", "LossSpec", "RecipeSpec", "Param",
    "OptimizerSpec", "ScheduleSpec", "MetricSpec", "CallbackSpec", "ProcedureSpec", "StrategySpec",
    "train", "evaluate", "predict", "load", "resume", "sample", "play", "tune", "export", "Run", "RunModel",
    "Callback",
]
