"""The Python API the CLI is a shell over: ``zoo.train``, ``zoo.resume``, ``zoo.evaluate``, ``zoo.predict``,
``zoo.load``, ``zoo.play``, and (light: no torch) ``zoo.runs``, ``zoo.list`` (:func:`components`) and ``zoo.info``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Mapping

from typing import TYPE_CHECKING, Iterable

from .config import resolve
from .errors import UsageError, ZooError, one_line as _one_line
from .registry import Registry

if TYPE_CHECKING:  # pragma: no cover
    from .callbacks import Callback
    from .engine import Run


def _dir(run: str | Path | Run) -> str | Path:
    """A run directory, given one or a :class:`zoo.engine.Run` (its ``dir``)."""
    return run if isinstance(run, (str, Path)) else getattr(run, "dir", run)


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


def resume(run_dir: str | Path | Run, *, epochs: int | None = None, device: str | None = None, quiet: bool = False,
           progress: str = "auto", callbacks: Iterable[Callback] = ()) -> Run:
    """Continue a saved run (stopped, interrupted or killed) from its last checkpoint, exactly as
    ``zoo train --resume`` does, up to ``epochs`` in total; ``callbacks`` are the objects given to
    :func:`train` (their state is restored from the checkpoint)."""
    from . import engine
    from .progress import api_reporter

    return engine.resume(_dir(run_dir), epochs=epochs, device=device,
                         reporter=api_reporter("none" if quiet else progress),
                         callbacks=callbacks)


def evaluate(run_dir: str | Path | Run, split: str = "test", device: str = "auto",
             input: str | Path | None = None) -> dict[str, float]:  # noqa: A002 - the CLI's --input
    """Rebuild a saved run's model, load its weights strictly and recompute its loss and metrics on a split
    (rebuilt from the run's seed), or on a new labelled file ``input`` (``.npz`` with ``X`` and ``y``, or
    ``.csv``; see :func:`zoo.inference.read_labelled`)."""
    if input is not None:
        from .inference import evaluate_file

        return evaluate_file(_dir(run_dir), input, device=device)
    from .saved import evaluate_run

    return evaluate_run(_dir(run_dir), split=split, device=device)


def predict(run_dir: str | Path | Run, X: Any, device: str = "cpu"):
    """Predict with a saved run (its directory or a :class:`zoo.engine.Run`; so are the other functions' runs)
    on raw inputs (a file path, an array, a tensor, a DataFrame...), exactly as
    ``zoo predict`` does; returns :class:`zoo.inference.Predictions` (``labels``, ``probabilities``,
    ``values``, ``to_csv()``)."""
    from .inference import predict as predict_run

    return predict_run(_dir(run_dir), X, device=device)


def play(run_dir: str | Path | Run, episodes: int = 10, *, seed: int | None = None, device: str = "cpu"):
    """Run a saved control run's greedy policy (``zoo play``): ``episodes`` episodes reset with seeds ``seed``,
    ``seed + 1``, ... (by default the test split's fixed seeds). Returns :class:`zoo.episodes.Episodes`
    (``returns``, ``lengths`` and every transition)."""
    from .errors import UsageError
    from .saved import play_run

    if isinstance(episodes, bool) or not isinstance(episodes, int) or not 1 <= episodes <= 1_000_000:
        raise UsageError(f"--episodes {episodes!r}: the number of episodes must be an integer from 1 to 1000000")
    return play_run(_dir(run_dir), episodes, seed=seed, device=device)


def load(run_dir: str | Path | Run, device: str = "cpu"):
    """The saved run's model, in eval mode, weights and preprocessing loaded strictly: a
    :class:`zoo.parts.RunModel` that takes RAW inputs (the run's fitted standardisation is inside it)
    and returns predictions in the data's units (logits for classification; ``.classes`` names them)."""
    from .saved import load_run_model

    return load_run_model(_dir(run_dir), device)[0]


# -- what is installed, what was run: light (no torch), the CLI's 'runs', 'list' and 'info' ----------------------

def runs(root: str | Path | None = None) -> list[dict[str, Any]]:
    """The saved runs under ``root`` (default: ``runs`` in the current directory, or ``$ZOO_RUNS_DIR``),
    newest first: exactly the rows ``zoo runs --json`` prints (``name``, ``path``, ``status``, ``epochs``,
    ``best_value``, ``test_metric``, ``test_value``, ...; see :data:`zoo.runlist.FIELDS`). No runs yet
    under the default root is an empty list; a missing explicit ``root`` is an error."""
    from .runlist import list_runs
    from .rundir import default_root

    if root is None:
        root_path = default_root()
        return list_runs(root_path) if root_path.exists() else []
    return list_runs(Path(root))


def training_settings() -> dict[str, dict[str, Any]]:
    """Every training setting (type, default, bounds, help): what ``zoo info train --json`` prints."""
    from .settings import TRAIN_PARAMS, USED_ONLY_WITH

    return {k: {**p.describe(), **({"used_only_with": {USED_ONLY_WITH[k][0]: [*USED_ONLY_WITH[k][1]]}}
                                   if k in USED_ONLY_WITH else {})}
            for k, p in TRAIN_PARAMS.items()}


def _component_rows(kind: str | None = None, pattern: str | None = None, *, task: str | None = None,
                    input: str | None = None, registry: Registry | None = None):  # noqa: A002 - the CLI's --input
    """``(kinds, [(kind, entry), ...])`` of :func:`components`, for the CLI's table too."""
    import fnmatch

    from .errors import UsageError, did_you_mean
    from .kinds import KIND_ARGS, PLURAL
    from .registry import get_registry
    from .spec import INPUT_KINDS, TASKS

    if task is not None and task not in TASKS:
        raise UsageError(f"unknown task '{task}'{did_you_mean(task, TASKS)} (tasks: {', '.join(TASKS)})")
    if input is not None and input not in INPUT_KINDS:
        raise UsageError(f"unknown input kind '{input}'{did_you_mean(input, INPUT_KINDS)} "
                         f"(kinds: {', '.join(INPUT_KINDS)})")
    reg = registry or get_registry()
    if kind is not None and kind not in KIND_ARGS:
        hint = did_you_mean(kind, [*PLURAL.values()])
        if pattern is None and not (hint and not any(kind in n for n in reg.all_names())):
            kind, pattern = None, kind  # list("mlp") filters everything by a pattern
        else:
            raise UsageError(f"unknown kind '{kind}'{hint} (kinds: {', '.join(PLURAL.values())})")
    kinds = [KIND_ARGS[kind]] if kind else [*PLURAL]
    rows = []
    for k in kinds:
        for e in reg.entries(k):
            if pattern and not (fnmatch.fnmatch(e.name, pattern) or pattern in e.name):
                continue
            if not _matches(reg, e, task, input):
                continue
            rows.append((k, e))
    return kinds, rows


def _matches(reg: Registry, entry: Any, task: str | None, input_kind: str | None) -> bool:
    """Whether a listed component supports ``task`` and ``input_kind`` (None: any)."""
    from .errors import ZooError

    spec = entry.spec
    if spec.kind == "recipe":
        try:
            spec = reg.get("dataset", spec.dataset).spec
        except ZooError:
            return task is None and input_kind is None
    if task is not None and task not in spec.tasks:
        return False
    if input_kind is not None:
        kinds = spec.inputs if spec.kind == "model" else (spec.input,) if spec.kind == "dataset" else None
        if kinds is not None and input_kind not in kinds:
            return False
    return True


def components(kind: str | None = None, pattern: str | None = None, task: str | None = None,
               input: str | None = None,  # noqa: A002 - the CLI's --input
               ) -> list[dict[str, Any]] | dict[str, dict[str, Any]]:
    """What the installed plugins contribute (``zoo.list``): one dict per component (``kind``, ``name``,
    ``summary``, ``tasks``, ``params``, ..., ``plugin``, ``distribution``), exactly the ``items`` of
    ``zoo list KIND PATTERN --json``. ``kind``: ``"models"``, ``"datasets"``, ``"recipes"``, ... (None: all);
    ``pattern``: a glob or a substring of the name; ``task``/``input``: only what supports that task or input
    kind. ``zoo.list("settings")`` is :func:`training_settings` (a dict, by setting)."""
    if kind == "settings":
        return training_settings()  # as 'zoo list settings --json'
    _, rows = _component_rows(kind, pattern, task=task, input=input)
    return [{**e.spec.describe(), "plugin": e.plugin.name, "distribution": e.plugin.dist} for _, e in rows]


def _check_info_args(name: str, input_shape: Any, outputs: int | None, params: Any) -> None:
    from .errors import UsageError

    if input_shape is None and (outputs is not None or params):
        raise UsageError(f"--{'outputs' if outputs is not None else 'set'} only applies with --input-shape "
                         f"(zoo info {name} --input-shape SHAPE ...)")


def _info_entries(name: str, input_shape: str | tuple[int, ...] | None = None, outputs: int | None = None,
                  params: Mapping[str, Any] | None = None):
    """``(entries, sizes)`` of :func:`info` (sizes by ``id(entry)``, None when not measured), for the CLI too."""
    from .errors import UsageError, did_you_mean
    from .registry import get_registry

    _check_info_args(name, input_shape, outputs, params)
    reg = get_registry()
    found = reg.find(name)
    if not found:
        msg = f"nothing is called '{name}'{did_you_mean(name.rpartition(':')[2], [*reg.all_names(), 'train'])}"
        broken = reg.broken()
        if broken:
            msg += "; it may come from a plugin that failed to load: " + "; ".join(
                f"'{p.name}' ({p.dist} {p.version}): {p.error}" for p in broken)
        raise UsageError(msg)
    sized = [e for e in found if e.spec.kind in ("model", "recipe")]
    sizes: dict[int, dict | None] = {id(e): None for e in sized}
    if input_shape is not None:
        if not sized:
            kinds = " and ".join(sorted({("an " if e.spec.kind[0] in "aeiou" else "a ") + e.spec.kind for e in found}))
            raise UsageError(f"--input-shape applies to models and recipes; '{name}' is {kinds}")
        shape = parse_input_shape(input_shape if isinstance(input_shape, str) else ",".join(map(str, input_shape)))
        overrides = {str(k): v for k, v in (params or {}).items()}
        for e in sized:
            sizes[id(e)] = model_size(reg, e, shape, outputs, overrides)
    return reg, found, sizes


def info(name: str, *, input_shape: str | tuple[int, ...] | None = None, outputs: int | None = None,
         params: Mapping[str, Any] | None = None) -> list[dict[str, Any]] | dict[str, dict[str, Any]]:
    """Every installed component called ``name`` (``"mlp"``, or ``"plugin:mlp"``; a name may be, say, both a
    dataset and a recipe), each a dict (``kind``, ``name``, ``summary``, ``params``, ``plugin``; models and
    recipes also ``size``): exactly what ``zoo info NAME --json`` prints. ``input_shape`` (one sample's shape,
    ``(1, 8, 8)``) builds a model or recipe's model and measures it (imports torch), with ``outputs`` and
    hyperparameters ``params`` (``{"hidden": "32,32"}``). ``zoo.info("train")`` is :func:`training_settings`."""
    from .errors import UsageError
    from .registry import get_registry

    _check_info_args(name, input_shape, outputs, params)
    if name == "train" and not get_registry().find(name):
        if input_shape is not None:
            raise UsageError("--input-shape applies to models and recipes, not to 'zoo info train'")
        return training_settings()  # as 'zoo info train --json'
    _, found, sizes = _info_entries(name, input_shape, outputs, params)
    return [{**e.spec.describe(), "plugin": e.plugin.describe(), **({"size": sizes[id(e)]} if id(e) in sizes else {})}
            for e in found]


# -- model sizes (zoo info NAME --input-shape) ------------------------------------------------


def parse_input_shape(text: str) -> tuple[int, ...]:
    parts = [p.strip() for p in text.strip().strip("()[]").split(",") if p.strip()]
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1 or len(shape) > 8:
        raise UsageError(f"--input-shape expects one sample's shape as positive integers separated by commas, "
                         f"such as 1,8,8 (C,H,W) or 64,1 (T,F) or 30 (D); got '{_one_line(text, 40)}'")
    return shape


def model_size(reg, entry, shape: tuple[int, ...], outputs: int | None, overrides: dict[str, str]) -> dict:
    """Build a model (or a recipe's model, with the recipe's hyperparameters) for one sample of ``shape``
    and measure it: parameters, and multiply-accumulates of one forward pass (Linear, convolution and
    recurrent layers, as :func:`zoo.parts.count_macs`). Imports torch; a failure is one ZooError line."""
    import math

    spec = entry.spec
    model = reg.get("model", spec.model) if spec.kind == "recipe" else entry
    given = {**(spec.model_params if spec.kind == "recipe" else {}),
             **{k.removeprefix("model."): v for k, v in overrides.items()}}
    params = model.spec.resolve_params(given)
    if outputs is None:
        outputs = math.prod(shape) if tuple(model.spec.tasks) == ("reconstruction",) else 10
    what = f"model '{model.name}'" + (f" (recipe '{spec.name}')" if spec.kind == "recipe" else "")
    shown = f"input shape {shape} with {outputs} output{'s' if outputs != 1 else ''}"
    factory = model.load()
    import torch

    from .parts import count_macs

    try:
        net = factory(shape, outputs, **params)
        if not isinstance(net, torch.nn.Module):
            raise TypeError(f"it returned {type(net).__name__}, not an nn.Module")
        net.eval()
        with torch.no_grad():
            net(torch.zeros(1, *shape))
    except Exception as exc:  # noqa: BLE001 - the model's own reason, on one line
        raise ZooError(f"{what} cannot be built for {shown}: {type(exc).__name__}: {_one_line(exc, 300)}") from exc
    return {"input_shape": list(shape), "outputs": outputs, "model": model.qualified,
            "model_params": {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()},
            "parameters": sum(p.numel() for p in net.parameters()), "macs": count_macs(net, shape)}
