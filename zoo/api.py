"""The Python API the CLI is a shell over: ``zoo.train``, ``zoo.evaluate``, ``zoo.load``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Mapping

from . import engine
from .config import resolve
from .registry import Registry


def train(
    recipe: str | None = None,
    *,
    dataset: str | None = None,
    model: str | None = None,
    loss: str | None = None,
    params: Mapping[str, Any] | None = None,
    out: str | Path | None = None,
    quiet: bool = False,
    registry: Registry | None = None,
    **settings: Any,
) -> engine.Run:
    """Train a recipe, or a dataset + model + loss, and save a run directory.

    ``params`` sets component hyperparameters (``{"model.hidden": [32, 32]}`` or
    ``{"dropout": 0.1}`` when only one component has it); ``settings`` are the
    training settings (``epochs``, ``batch_size``, ``lr``, ``optimizer``,
    ``seed``, ``device``, ...). Returns a :class:`zoo.engine.Run`.
    """
    cfg = resolve(recipe, dataset=dataset, model=model, loss=loss, sets=params, registry=registry, **settings)
    log = None if quiet else (lambda msg: print(msg, file=sys.stderr))
    return engine.fit(cfg, registry=registry, out=out, log=log)


def evaluate(run_dir: str | Path, split: str = "test", device: str = "auto") -> dict[str, float]:
    """Rebuild a saved run's model, load its weights strictly and recompute its metrics."""
    return engine.evaluate_run(run_dir, split=split, device=device)


def load(run_dir: str | Path, device: str = "cpu"):
    """The saved run's model (an ``nn.Module`` in eval mode), weights loaded strictly."""
    return engine.load_run_model(run_dir, device)[0]
