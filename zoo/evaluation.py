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
    if len(preds) == 1:  # one batch (most validation splits): no copy
        return preds[0], {k: v[0] for k, v in extras.items()}, ys[0]
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
    if task == "generation":
        return _evaluate_generation(model, loss_fn, split, target, device, workers, fast, cfg, metrics, gather)
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


#: How many samples a generation model draws to be scored on a split (seeded: the same every time).
GENERATION_SAMPLES = 10_000
GENERATION_SEED = 0


def can_sample(net: torch.nn.Module) -> bool:
    """Whether a network draws samples (a generation model): it has a method ``sample(n, generator=None)``
    (one with other parameters, such as a VAE's reparameterisation ``sample(mu, logvar)``, is not one)."""
    import inspect

    method = getattr(net, "sample", None)
    if not callable(method):
        return False
    try:
        params = inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False
    return "generator" in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


@torch.no_grad()
def draw_samples(model: RunModel, n: int, seed: int = GENERATION_SEED, device: torch.device | None = None,
                 batch: int = EVAL_BATCH) -> torch.Tensor:
    """``n`` samples of a generation model in the data's units, in eval mode, from a CPU generator seeded with
    ``seed`` (the same samples on every device and every call)."""
    net = model.net
    if not can_sample(net):
        raise ZooError(f"{type(net).__name__} cannot sample: it has no sample(n, generator=None) method")
    gen = torch.Generator(device="cpu").manual_seed(seed)
    was_training = net.training
    net.eval()
    try:
        parts = [net.sample(min(batch, n - i), generator=gen) for i in range(0, n, batch)]
    finally:
        net.train(was_training)
    out = torch.cat(parts) if parts else torch.empty(0, *model.input_mean.shape)
    if device is not None:
        out = out.to(device)
    return raw_inputs(model, out.float().to(model.input_mean.device))


def _evaluate_generation(model: RunModel, loss_fn, split, target: str, device: torch.device, workers: int,
                         fast: bool, cfg, metrics, gather) -> dict[str, float]:
    """A generation model on a split: ``loss`` is the run's loss on the model's scores of the split's (real,
    target 1) samples and of as many generated ones (target 0); the metrics compare
    :data:`GENERATION_SAMPLES` generated samples with the split's samples, both in the data's units
    (``metric(samples, real, target=...)``)."""
    scores, _, y = forward_all(model.net, split, device, workers, cfg)
    real = torch.cat([xb for xb, _ in eval_batches(split, device, workers=workers)])
    if gather is not None:
        scores, y, real = gather(scores), gather(y), gather(real)
    fake = draw_samples(model, GENERATION_SAMPLES)
    n = len(real)
    fake_scores = forward_all(model.net, (model.standardize(fake[:n]), torch.zeros(min(n, len(fake)), 1)),
                              device, workers, cfg)[0]
    with torch.no_grad():
        t_real = adapt_targets(y, target).float()
        loss = (compute_loss(loss_fn, scores.float(), t_real, ()) * len(scores)
                + compute_loss(loss_fn, fake_scores.float(), torch.zeros_like(fake_scores, dtype=torch.float32), ())
                * len(fake_scores)) / (len(scores) + len(fake_scores))
    res = {"loss": float(loss)}
    metrics = metrics if metrics is not None else MetricSet.for_config(cfg or {"task": "generation"})
    res.update(metrics.compute(fake.float(), raw_inputs(model, real.float()), target, fast=fast))
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
