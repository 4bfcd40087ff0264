"""Evaluating and predicting with a model: batches of a split, forward passes, the loss and metrics of a
split, raw-input predictions. Training, ``zoo eval``, ``zoo predict`` and plots share it; it does not
import the training loop."""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Sequence

import torch

from .data import is_tensor_split
from .errors import ZooError
from .parts import RunModel, adapt_targets

EVAL_BATCH = 4096


def split_outputs(out) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """A model's forward result -> (prediction, extra outputs such as a VAE's mu/logvar)."""
    if isinstance(out, dict):
        return out["output"], {k: v for k, v in out.items() if k != "output"}
    return out, {}


def compute_loss(loss_fn, out, target: torch.Tensor, reads: tuple[str, ...]) -> torch.Tensor:
    if reads:
        return loss_fn(out["output"], target, **{k: out[k] for k in reads})
    return loss_fn(out["output"] if isinstance(out, dict) else out, target)


def eval_batches(split, device: torch.device, batch_size: int = EVAL_BATCH, workers: int = 0):
    """``(x, y)`` batches of a split on ``device``, in order."""
    if is_tensor_split(split):
        X, y = split
        for i in range(0, len(X), batch_size):
            yield X[i : i + batch_size].to(device, non_blocking=True), y[i : i + batch_size].to(device, non_blocking=True)
        return
    loader = torch.utils.data.DataLoader(split, batch_size=min(batch_size, 256), shuffle=False, num_workers=workers,
                                         pin_memory=device.type == "cuda")
    for xb, yb in loader:
        yield xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)


@torch.no_grad()
def autocast_for(cfg: dict[str, Any] | None, device: torch.device):
    """The forward-pass precision context of a run (bfloat16 autocast, or nothing)."""
    if cfg is not None and cfg.get("precision") == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def forward_all(model: torch.nn.Module, split, device: torch.device, workers: int = 0, cfg=None):
    """Eval-mode outputs over a whole split: (prediction, extras, targets), concatenated."""
    was_training = model.training
    model.eval()
    preds, extras, ys = [], {}, []
    try:
        for xb, yb in eval_batches(split, device, workers=workers):
            with autocast_for(cfg, device):
                out = model(xb)
            p, ex = split_outputs(out)
            preds.append(p)
            ys.append(yb)
            for k, v in ex.items():
                extras.setdefault(k, []).append(v)
    finally:
        model.train(was_training)
    if not preds:
        raise ZooError("cannot evaluate an empty split")
    return torch.cat(preds), {k: torch.cat(v) for k, v in extras.items()}, torch.cat(ys)


@torch.no_grad()
def predict(model: torch.nn.Module, X: torch.Tensor, cfg: dict[str, Any] | None = None) -> torch.Tensor:
    """Predictions of ``model`` (its ``output``) in eval mode, in batches: for a :class:`RunModel`, raw
    inputs in and the data's units out."""
    was_training = model.training
    model.eval()
    try:
        with autocast_for(cfg, X.device):
            outs = [split_outputs(model(X[i : i + EVAL_BATCH]))[0] for i in range(0, max(len(X), 1), EVAL_BATCH)]
        return torch.cat(outs)
    finally:
        model.train(was_training)


def training_targets(model: RunModel, y: torch.Tensor, target: str) -> torch.Tensor:
    """A dataset's targets in the layout the loss wants and the units the net learns: regression targets
    standardised with the run's fitted scale (identity when ``scale_targets`` is off)."""
    t = adapt_targets(y, target)
    if model.task == "regression":
        t = (t - model.output_mean) / model.output_std
    return t


class MetricSet:
    """The metrics a run reports, resolved from the registry: ``(name, exact, fast)`` per metric, in report
    order. ``exact`` (scikit-learn) gives final metrics and ``zoo eval``; ``fast`` (torch) the history."""

    def __init__(self, names: Sequence[str], registry: Any = None) -> None:
        from .registry import get_registry

        reg = registry or get_registry()
        self.items: list[tuple[str, Callable, Callable]] = []
        for name in names:
            entry = reg.get("metric", name)
            exact = entry.load()
            fast = exact
            if entry.spec.fast:
                module, _, attr = entry.spec.fast.partition(":")
                import importlib

                fast = getattr(importlib.import_module(module), attr)
            self.items.append((entry.name, exact, fast))

    @classmethod
    def for_config(cls, cfg: dict[str, Any], registry: Any = None) -> "MetricSet":
        from .config import metric_names
        from .registry import get_registry

        reg = registry or get_registry()
        names = cfg.get("metrics") or metric_names(cfg.get("task") or cfg["meta"]["task"], (), reg)
        return cls(names, reg)

    def compute(self, pred: torch.Tensor, y: torch.Tensor, target: str, fast: bool = False) -> dict[str, float]:
        return {name: float((quick if fast else exact)(pred, y, target=target)) for name, exact, quick in self.items}


def evaluate_split(model: RunModel, loss_fn, split, task: str, target: str, device: torch.device,
                   reads: tuple[str, ...] = (), workers: int = 0, fast: bool = False,
                   cfg: dict[str, Any] | None = None, metrics: MetricSet | None = None,
                   gather: Callable[[torch.Tensor], torch.Tensor] | None = None) -> dict[str, float]:
    """Loss and metrics of ``model`` on a split of its (standardised) dataset.

    The loss is what training minimises (on standardised regression targets); the metrics
    are in the data's units. ``fast`` computes the metrics in torch (for the per-epoch
    history); otherwise with scikit-learn (final metrics, ``zoo eval``). With several processes
    ``split`` is this one's shard and ``gather`` joins every process's outputs and targets in
    order, so the loss and metrics are those of the whole split.
    """
    pred, extras, y = forward_all(model.net, split, device, workers, cfg)
    if gather is not None:
        pred, y = gather(pred), gather(y)
        extras = {k: gather(v) for k, v in extras.items()}
    pred, extras = pred.float(), {k: v.float() for k, v in extras.items()}
    with torch.no_grad():
        loss = compute_loss(loss_fn, {"output": pred, **extras} if reads else pred,
                            training_targets(model, y, target), reads)
        if task == "regression":
            pred = model.to_data_units(pred)
    res = {"loss": float(loss)}
    metrics = metrics if metrics is not None else MetricSet.for_config(cfg or {"task": task})
    res.update(metrics.compute(pred, y, target, fast=fast))
    return res


def head_inputs(split, n: int) -> torch.Tensor:
    """The first ``n`` inputs of a split, as one tensor (for the reload check)."""
    if is_tensor_split(split):
        return split[0][:n]
    return torch.stack([split[i][0] for i in range(min(n, len(split)))])


def split_len(split) -> int:
    return len(split[0]) if is_tensor_split(split) else len(split)


def raw_inputs(model: RunModel, X: torch.Tensor) -> torch.Tensor:
    """Standardised inputs back in the data's units (what users give a :class:`RunModel`)."""
    return X * model.input_std + model.input_mean


def evaluate_saved(model: RunModel, what: str, *args: Any, **kwargs: Any) -> dict[str, float]:
    """:func:`evaluate_split` for a saved run's model, refusing outputs that are not finite with one line
    naming ``what`` (the model and its run) instead of scoring NaN or stopping in scikit-learn."""
    def refuse(name: str) -> None:
        raise ZooError(f"{what} returned NaN or infinity ({name}) from finite weights: its weights or inputs "
                       "overflow float32, so there is nothing to score")

    def hook(module: torch.nn.Module, inputs: Any, out: Any) -> None:
        pred, extras = split_outputs(out)
        for name, t in (("output", pred), *extras.items()):
            if isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(torch.isfinite(t).all()):
                refuse(name)

    handle = model.net.register_forward_hook(hook)
    try:
        return evaluate_split(model, *args, **kwargs)
    except ValueError as exc:  # scikit-learn on outputs that overflowed into the data's units
        if "NaN" in str(exc) or "infinity" in str(exc):
            refuse("output")
        raise
    finally:
        handle.remove()
