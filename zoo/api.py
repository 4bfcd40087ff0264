"""The Python API the CLI is a shell over: ``zoo.train``, ``zoo.evaluate``, ``zoo.predict``, ``zoo.load``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Mapping

from typing import TYPE_CHECKING, Iterable

from .config import resolve
from .registry import Registry

if TYPE_CHECKING:  # pragma: no cover
    from .callbacks import Callback
    from .engine import Run


def train(
    recipe: str | None = None,
    *,
    dataset: str | None = None,
    model: str | None = None,
    loss: str | None = None,
    params: Mapping[str, Any] | None = None,
    out: str | Path | None = None,
    quiet: bool = False,
    progress: str = "auto",
    registry: Registry | None = None,
    callbacks: Iterable[str | Callback] = (),
    track: str | Iterable[str] | None = None,
    **settings: Any,
) -> Run:
    """Train a recipe, or a dataset + model (+ loss), and save a run directory.

    ``params`` sets component hyperparameters (``{"model.hidden": [32, 32]}`` or
    ``{"dropout": 0.1}`` when only one component has it); ``settings`` are the
    training settings (``epochs``, ``batch_size``, ``lr``, ``optimizer``, ``seed``,
    ``device``, ...; ``zoo info train`` lists them). Without ``loss``, the dataset task's
    default loss is used. ``progress``: ``"auto"`` (one progress bar over the epochs in a
    notebook or terminal, nothing otherwise), ``"bar"``, ``"lines"`` (a line per epoch on
    stderr) or ``"none"``; ``quiet=True`` is ``"none"`` and also drops the notes about
    choices made for you. ``callbacks``: names of installed callbacks (``zoo list callbacks``; their
    parameters go in ``params`` as ``{"callback.NAME.key": value}``) and :class:`zoo.Callback` objects.
    ``track``: trackers to send the run to (``"tensorboard"``, ``["tensorboard", "mlflow"]``; callbacks
    too, recorded as such), their parameters in ``params`` as ``{"track.uri": ...}``.
    Returns a :class:`zoo.engine.Run` whose ``history`` is a list of per-epoch rows that also
    answers columns (``run.history["val_loss"]``).
    """
    from . import engine
    from .progress import api_reporter

    note = None if quiet else (lambda msg: print(f"note: {msg}", file=sys.stderr))
    callbacks = list(callbacks)
    names = [c for c in callbacks if isinstance(c, str)]
    objects = [c for c in callbacks if not isinstance(c, str)]
    trackers = [track] if isinstance(track, str) else list(track or [])
    cfg = resolve(recipe, dataset=dataset, model=model, loss=loss, sets=params, registry=registry, note=note,
                  callbacks=names, track=trackers, **settings)
    return engine.fit(cfg, registry=registry, out=out, reporter=api_reporter("none" if quiet else progress),
                      callbacks=objects)


def resume(run_dir: str | Path, *, epochs: int | None = None, device: str | None = None, quiet: bool = False,
           progress: str = "auto", callbacks: Iterable[Callback] = ()) -> Run:
    """Continue a saved run (stopped, interrupted or killed) from its last checkpoint, exactly as
    ``zoo train --resume`` does, up to ``epochs`` in total; ``callbacks`` are the objects given to
    :func:`train` (their state is restored from the checkpoint)."""
    from . import engine
    from .progress import api_reporter

    return engine.resume(run_dir, epochs=epochs, device=device, reporter=api_reporter("none" if quiet else progress),
                         callbacks=callbacks)


def evaluate(run_dir: str | Path, split: str = "test", device: str = "auto",
             input: str | Path | None = None) -> dict[str, float]:  # noqa: A002 - the CLI's --input
    """Rebuild a saved run's model, load its weights strictly and recompute its loss and metrics on a split
    (rebuilt from the run's seed), or on a new labelled file ``input`` (``.npz`` with ``X`` and ``y``, or
    ``.csv``; see :func:`zoo.inference.read_labelled`)."""
    if input is not None:
        from .inference import evaluate_file

        return evaluate_file(run_dir, input, device=device)
    from .saved import evaluate_run

    return evaluate_run(run_dir, split=split, device=device)


def predict(run_dir: str | Path, X: Any, device: str = "cpu"):
    """Predict with a saved run on raw inputs (a file path, an array, a tensor, a DataFrame...), exactly as
    ``zoo predict`` does; returns :class:`zoo.inference.Predictions` (``labels``, ``probabilities``,
    ``values``, ``to_csv()``)."""
    from .inference import predict as predict_run

    return predict_run(run_dir, X, device=device)


def play(run_dir: str | Path, episodes: int = 10, *, seed: int | None = None, device: str = "cpu"):
    """Run a saved control run's greedy policy (``zoo play``): ``episodes`` episodes reset with seeds ``seed``,
    ``seed + 1``, ... (by default the test split's fixed seeds). Returns :class:`zoo.episodes.Episodes`
    (``returns``, ``lengths`` and every transition)."""
    from .errors import UsageError
    from .saved import play_run

    if isinstance(episodes, bool) or not isinstance(episodes, int) or not 1 <= episodes <= 1_000_000:
        raise UsageError(f"--episodes {episodes!r}: the number of episodes must be an integer from 1 to 1000000")
    return play_run(run_dir, episodes, seed=seed, device=device)


def load(run_dir: str | Path, device: str = "cpu"):
    """The saved run's model, in eval mode, weights and preprocessing loaded strictly: a
    :class:`zoo.parts.RunModel` that takes RAW inputs (the run's fitted standardisation is inside it)
    and returns predictions in the data's units (logits for classification; ``.classes`` names them)."""
    from .saved import load_run_model

    return load_run_model(run_dir, device)[0]
