"""A saved run's model: rebuilt from its checked config, its weights file checked against the model before
anything large is built, loaded strictly; the reload check; recomputing a saved run's metrics. Inference
(``zoo predict``, ``zoo.load``, plots) uses this, not the training loop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from . import checkpoint, rundir as runs
from .rundir import RunDir
from .config import Combination, entries_for, run_task
from .data import DataMeta
from .errors import CheckpointError
from .evaluation import MetricSet, evaluate_saved, predict
from .parts import RunModel, build_loss, build_model, load_data, pick_device, workers_for
from .registry import Registry

RELOAD_CHECK_SAMPLES = 256


#: The layout of the weights files: the :class:`RunModel` state dict (``net.*`` and the
#: preprocessing buffers). zoo 0.1 wrote ``zoo-weights/1`` (the bare network).
WEIGHTS_FORMAT = "zoo-weights/2"


def reload_check(model: RunModel, run_dir: Path, combo: Combination, cfg: dict, X: torch.Tensor) -> None:
    """Rebuild the model from the config, load the saved file, demand identical outputs on raw inputs ``X``."""
    fresh = build_model(combo, cfg, DataMeta.from_json(cfg["meta"])).to(X.device)
    checkpoint.load_weights(fresh, RunDir(run_dir).weights)
    expected, got = predict(model, X, cfg), predict(fresh, X, cfg)
    if not torch.equal(expected, got):
        diff = (expected.float() - got.float()).abs().max().item()
        raise CheckpointError(
            f"reload check failed: the model reloaded from {RunDir(run_dir).weights} predicts differently "
            f"from the trained one (max abs difference {diff:.3g} on {len(X)} held samples)"
        )
    from .evaluation import can_sample, draw_samples

    if can_sample(model.net):  # a generation model: its samples are what it predicts
        expected, got = draw_samples(model, len(X)), draw_samples(fresh, len(X))
        if not torch.equal(expected, got):
            diff = (expected.float() - got.float()).abs().max().item()
            raise CheckpointError(f"reload check failed: the model reloaded from {RunDir(run_dir).weights} samples "
                                  f"differently from the trained one (max abs difference {diff:.3g} on {len(X)} "
                                  "seeded samples)")


def load_run_model(run_dir: str | Path, device: str = "cpu", registry: Registry | None = None,
                   weights: str = runs.WEIGHTS):
    """Rebuild the run's :class:`RunModel` from its config and load its weights strictly.

    A run directory may come from anyone, so nothing large is built on its word: the config is
    checked when read (:meth:`zoo.rundir.RunDir.read_config`), then the model is built on PyTorch's ``meta``
    device (no memory) and its state dict's names, shapes and dtypes are compared with the weights
    file's header (no tensor data read); only a file that fits is loaded into a model built for
    real, and its tensors must be finite. Weights saved by zoo 0.1 (``zoo-weights/1``: the bare
    network, the regression target scale as ``mean``/``std`` beside it, the input standardisation
    in ``preprocess.safetensors``) are read into the same model.
    """
    cfg = RunDir(run_dir).read_config(registry)
    combo = entries_for(cfg, registry)
    meta = DataMeta.from_json(cfg["meta"])
    path = Path(run_dir) / weights
    header, file_meta = checkpoint.read_header(path)
    v1 = file_meta.get("format") == "zoo-weights/1"
    expected = _expected_header(combo, cfg, meta)
    if expected is not None:
        found = _v1_names(header, cfg) if v1 else header
        if v1:  # the preprocessing buffers are not in a zoo 0.1 weights file: the model keeps its own
            found.update({k: v for k, v in expected.items() if not k.startswith("net.") and k not in found})
        problems = checkpoint.compare(expected, found)
        if problems:
            raise CheckpointError(f"weights in {path}{' (zoo 0.1 format)' if v1 else ''} do not fit the model: "
                                  + "; ".join(problems))
    model = build_model(combo, cfg, meta)
    if v1:
        _load_v1(model, path, Path(run_dir), cfg)
    else:
        checkpoint.load_weights(model, path)
    model.to(pick_device(device)).eval()
    return model, cfg, combo


def _expected_header(combo: Combination, cfg: dict[str, Any], meta: DataMeta) -> dict[str, tuple] | None:
    """``{name: (shape, dtype)}`` of the run's :class:`RunModel` state dict, from a build on the ``meta``
    device: whatever sizes the config claims, no memory is allocated. None when the plugin's network
    cannot be built there (it then is built for real, as it always was)."""
    try:
        with torch.device("meta"):
            probe = build_model(combo, cfg, meta)
        return checkpoint.header_of(probe.state_dict())
    except Exception:  # noqa: BLE001 - a factory that needs real tensors (e.g. .item()); the real build decides
        return None


def _v1_names(state: dict[str, Any], cfg: dict[str, Any]) -> dict[str, Any]:
    """A zoo 0.1 weights file's entries under this version's names (``net.*``, ``output_mean``/``output_std``)."""
    scaled = bool(cfg.get("scale_targets")) and cfg["target"] == "value" and run_task(cfg) == "regression"
    new: dict[str, Any] = {}
    for key, value in state.items():
        if scaled and key in ("mean", "std"):
            new[f"output_{key}"] = value
        else:
            new[f"net.{key.removeprefix('net.')}" if scaled else f"net.{key}"] = value
    return new


def _load_v1(model: RunModel, path: Path, run_dir: Path, cfg: dict) -> None:
    state, _ = checkpoint.read_weights(path)
    new: dict[str, torch.Tensor] = _v1_names(state, cfg)
    pre_path = RunDir(run_dir).preprocess_v1
    pre = checkpoint.read_weights(pre_path)[0] if pre_path.is_file() else {}
    fresh = {k: v for k, v in model.state_dict().items() if not k.startswith("net.")}
    for key in fresh:
        new.setdefault(key, fresh[key])
    problems = checkpoint.mismatch(model, new)
    if problems:
        raise CheckpointError(f"weights in {path} (zoo 0.1 format) do not fit the model: " + "; ".join(problems))
    checkpoint.check_finite(model, new, path)
    bad = checkpoint.nonfinite(pre)
    if bad:
        raise CheckpointError(f"{pre_path}: {', '.join(bad)}; the preprocessing must be finite numbers")
    model.load_state_dict(new, strict=True)
    model.set_input_scale(pre, f"{pre_path}")
    if run_task(cfg) == "reconstruction":
        model.output_mean.copy_(model.input_mean.reshape(-1))
        model.output_std.copy_(model.input_std.reshape(-1))


def evaluate_run(run_dir: str | Path, split: str = "test", device: str = "auto",
                 registry: Registry | None = None) -> dict[str, float]:
    """Recompute a saved run's metrics on one split (data rebuilt from the config's seed; for a control task,
    the split's seeded episodes, see :mod:`zoo.episodes`)."""
    model, cfg, combo = load_run_model(run_dir, device, registry)
    dev = next(iter(model.parameters()), torch.empty(0)).device
    splits = load_data(combo, cfg)
    if splits.meta.task == "control":
        from .episodes import EpisodeRunner, evaluate_policy, scoring

        gamma, episodes = scoring(cfg)
        runner = EpisodeRunner(splits.environment, f"the environment of dataset '{cfg['dataset']}'")
        try:
            return evaluate_policy(model, build_loss(combo, cfg, dev), runner, split, gamma=gamma,
                                   episodes=episodes[split], device=dev,
                                   metrics=MetricSet.for_config(cfg, registry))
        finally:
            runner.close()
    return evaluate_saved(model, f"model '{cfg['model']}' of {run_dir}", build_loss(combo, cfg, dev),
                          splits.split(split), splits.meta.task, cfg["target"], dev, tuple(combo.loss.spec.reads),
                          workers_for(cfg.get("workers", -1)), cfg=cfg, metrics=MetricSet.for_config(cfg, registry))


def play_run(run_dir: str | Path, episodes: int = 10, seed: int | None = None, device: str = "cpu",
             registry: Registry | None = None):
    """Run a saved control run's greedy policy for ``episodes`` episodes (reset seeds ``seed``, ``seed + 1``,
    ...; by default the test split's fixed seeds, so the first episodes are those ``zoo eval`` scores) and
    return them (:class:`zoo.episodes.Episodes`: returns, lengths, transitions)."""
    from .episodes import EpisodeRunner, greedy, split_seeds
    from .errors import UsageError

    model, cfg, combo = load_run_model(run_dir, device, registry)
    if run_task(cfg) != "control":
        raise UsageError(f"{run_dir} is a {run_task(cfg)} run; 'zoo play' runs the policy of a control run "
                         "(an environment, such as 'zoo train cartpole-dqn')")
    dev = next(iter(model.parameters()), torch.empty(0)).device
    splits = load_data(combo, cfg)
    seeds = split_seeds("test", episodes) if seed is None else [int(seed) + i for i in range(int(episodes))]
    runner = EpisodeRunner(splits.environment, f"the environment of dataset '{cfg['dataset']}'")
    try:
        return runner.run(greedy(model), seeds, dev)
    finally:
        runner.close()
