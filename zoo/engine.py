"""The training engine: build the parts, fit, evaluate, checkpoint, resume, verify the reload.

The dataset is held in memory as tensors on the training device and batched by
index, so there is no DataLoader, no per-sample Python and no per-step host sync on
CUDA. Everything a resume needs is written after every epoch as safetensors + JSON.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import functools
import io
import json
import math
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from . import __version__, checkpoint, metrics, runs
from .config import Combination, entries_for, minimize, run_task
from .data import DataMeta, Splits, check_splits, is_tensor_split, label_problem
from .errors import CheckpointError, UsageError, ZooError
from .files import defer_until_safe, write_json, write_text
from .locks import RunLock
from .optim import FlatFusedAdam, has_fused_adam
from .progress import LineReporter, Reporter
from .registry import Registry
from .resumable import CheckpointStore, read_state

EVAL_BATCH = 4096
RELOAD_CHECK_SAMPLES = 256
#: The layout of the weights files: the :class:`RunModel` state dict (``net.*`` and the
#: preprocessing buffers). zoo 0.1 wrote ``zoo-weights/1`` (the bare network).
WEIGHTS_FORMAT = "zoo-weights/2"


class TrainingInterrupted(ZooError):
    """SIGINT or SIGTERM ended the run after a clean epoch; it can be resumed."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum


class NonFiniteLoss(ZooError):
    """The training loss became NaN or infinite."""


class History(list):
    """A run's per-epoch rows (dicts: ``epoch``, ``train_loss``, ``val_loss``, ``val_<metric>``, ``lr``,
    ``time``), which also answer a column by name: ``run.history["val_loss"]`` is the list of
    validation losses, so ``plt.plot(h["epoch"], h["val_loss"])`` draws a curve."""

    def __getitem__(self, key):
        if isinstance(key, str):
            if self and key not in self[0]:
                from .errors import did_you_mean

                raise KeyError(f"no column {key!r} in the history{did_you_mean(key, self[0])} "
                               f"(columns: {', '.join(self[0])})")
            return [row.get(key) for row in self]
        return super().__getitem__(key)

    @property
    def columns(self) -> list[str]:
        return list(self[0]) if self else []


@dataclass
class Run:
    """A training run: where it is, what it was, how it went.

    ``model`` is the trained :class:`RunModel` (best epoch's weights): it takes raw inputs and
    returns the data's units (logits for classification).
    """

    dir: Path
    config: dict[str, Any]
    history: History
    metrics: dict[str, dict[str, float]]
    model: torch.nn.Module = field(repr=False)
    status: str = "finished"
    best_epoch: int | None = None

    def predict(self, X, device: str = "cpu"):
        """Predictions on raw inputs, exactly as ``zoo predict`` makes them (see :func:`zoo.predict`)."""
        from .inference import predict as predict_run

        return predict_run(self.dir, X, device=device)

    def __repr__(self) -> str:
        name = metrics.TASK_METRICS[self.config["meta"]["task"]][0]
        value = self.metrics.get("test", {}).get(name, float("nan"))
        return f"Run({str(self.dir)!r}, epochs={len(self.history)}, status={self.status}, test {name}={value:.4g})"


# -- building the parts ------------------------------------------------------------------


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(f"--device {name}: CUDA is not available here (torch {torch.__version__}); use --device cpu")
        dev = torch.device(name)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UsageError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) present")
        return dev
    return torch.device(name)


def out_features(meta: DataMeta, target: str) -> int:
    if target == "index":
        return int(meta.num_classes)
    if target == "binary":
        return 1
    return int(meta.num_targets)


def adapt_targets(y: torch.Tensor, target: str) -> torch.Tensor:
    """Dataset targets -> the layout the loss wants (so users never fight shapes/dtypes)."""
    if target == "index":
        return y.reshape(-1).long()
    if target == "binary":
        return y.reshape(-1, 1).float()
    return y.reshape(len(y), -1).float()


class RunModel(torch.nn.Module):
    """A run's model as users call it: raw inputs in, predictions in the data's units out.

    ``forward(x) = to_data_units(net((x - input_mean) / input_std))``. ``net`` is the plugin's
    network, which trains on standardised inputs and (for regression) standardised targets;
    the four buffers are the fitted preprocessing, saved in the same safetensors file as the
    weights, so a reloaded model needs nothing else to take raw inputs:

    - ``input_mean``/``input_std`` (the input shape): the dataset's standardisation, fitted on
      the training split (zeros and ones when the dataset standardises nothing);
    - ``output_mean``/``output_std`` (one per output): regression, the training targets' mean
      and std (the loss is computed on standardised targets); reconstruction, the input
      standardisation flattened, so a reconstruction comes back in the input's units;
      classification, zeros and ones (the outputs are logits and are left alone).

    ``classes`` names the class of each output for classification (``meta.class_names``).
    """

    def __init__(self, net: torch.nn.Module, meta: DataMeta, out_features: int) -> None:
        super().__init__()
        self.net = net
        shape = tuple(int(d) for d in meta.input_shape)
        self.register_buffer("input_mean", torch.zeros(shape))
        self.register_buffer("input_std", torch.ones(shape))
        self.register_buffer("output_mean", torch.zeros(out_features))
        self.register_buffer("output_std", torch.ones(out_features))
        self.task = meta.task
        self.classes = list(meta.class_names) if meta.class_names is not None else None
        self.scales_output = meta.task in ("regression", "reconstruction")

    def standardize(self, x: torch.Tensor) -> torch.Tensor:
        """Raw inputs -> what ``net`` was trained on."""
        return (x - self.input_mean) / self.input_std

    def to_data_units(self, out: torch.Tensor) -> torch.Tensor:
        """``net``'s prediction -> the data's units (classification logits are returned as they are)."""
        if not self.scales_output:
            return out
        return torch.addcmul(self.output_mean, out.float(), self.output_std)

    def forward(self, x: torch.Tensor):
        out = self.net(self.standardize(x))
        if isinstance(out, dict):
            return {**out, "output": self.to_data_units(out["output"])}
        return self.to_data_units(out)

    def set_input_scale(self, preprocess: dict[str, torch.Tensor], where: str) -> None:
        """Copy a dataset's fitted ``mean``/``std`` (any shape that broadcasts to the input) into the buffers."""
        unknown = sorted(set(preprocess) - {"mean", "std"})
        if unknown:
            raise ZooError(f"{where} returned preprocessing zoo cannot apply ({', '.join(unknown)}); only mean/std "
                           "standardisation is supported")
        for key, buf in (("mean", self.input_mean), ("std", self.input_std)):
            if key not in preprocess:
                continue
            value = torch.as_tensor(preprocess[key]).float()
            try:
                buf.copy_(value.expand(buf.shape))
            except RuntimeError:
                raise ZooError(f"{where} returned a preprocessing {key} of shape {tuple(value.shape)}, which does "
                               f"not broadcast to its input shape {tuple(buf.shape)}") from None
        if not torch.isfinite(self.input_std).all() or (self.input_std == 0).any():
            raise ZooError(f"{where} returned a preprocessing std with zero or non-finite values")


def build_net(combo: Combination, cfg: dict[str, Any], meta: DataMeta) -> torch.nn.Module:
    """The plugin's network for this run (trains on standardised inputs)."""
    factory = combo.model.load()
    try:
        net = factory(tuple(meta.input_shape), out_features(meta, cfg["target"]), **cfg["model_params"])
    except ZooError:
        raise
    except Exception as exc:
        raise ZooError(
            f"model '{combo.model.name}' from plugin '{combo.model.plugin.name}' could not be built for input shape "
            f"{tuple(meta.input_shape)} with {cfg['model_params']}: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(net, torch.nn.Module):
        raise ZooError(f"model '{combo.model.name}' from plugin '{combo.model.plugin.name}' returned "
                       f"{type(net).__name__}, not an nn.Module")
    return net


def build_model(combo: Combination, cfg: dict[str, Any], meta: DataMeta) -> RunModel:
    """The run's :class:`RunModel` (its buffers at identity until fitted or loaded)."""
    return RunModel(build_net(combo, cfg, meta), meta, out_features(meta, cfg["target"]))


def fit_scales(model: RunModel, splits: Splits, cfg: dict[str, Any], combo: Combination) -> str | None:
    """Fill the model's preprocessing buffers: the dataset's input standardisation and, for regression with
    ``scale_targets``, the training targets' mean and std. Returns a note when the targets stay unscaled."""
    ds = combo.dataset
    model.set_input_scale(splits.preprocess, f"dataset '{ds.name}' from plugin '{ds.plugin.name}'")
    if model.task == "reconstruction" and model.output_mean.numel() == model.input_mean.numel():
        model.output_mean.copy_(model.input_mean.reshape(-1))
        model.output_std.copy_(model.input_std.reshape(-1))
    elif model.task == "regression" and cfg["scale_targets"] and cfg["target"] == "value":
        y = splits.train[1] if is_tensor_split(splits.train) else getattr(splits.train, "targets", None)
        if y is None:
            cfg["scale_targets"] = False
            return (f"dataset '{ds.name}' is read lazily and exposes no 'targets': its targets are not "
                    "standardised (scale_targets=false)")
        y = adapt_targets(torch.as_tensor(y), cfg["target"]).double()
        std = y.std(0) if len(y) > 1 else torch.ones(y.shape[1:], dtype=y.dtype)
        model.output_mean.copy_(y.mean(0))
        model.output_std.copy_(torch.where(std > 0, std, torch.ones_like(std)))
    return None


def build_loss(combo: Combination, cfg: dict[str, Any], device: torch.device | None = None) -> Callable:
    try:
        loss_fn = combo.loss.load()(**cfg["loss_params"])
    except ZooError:
        raise
    except Exception as exc:
        raise ZooError(f"loss '{combo.loss.name}' could not be built with {cfg['loss_params']}: "
                       f"{type(exc).__name__}: {exc}") from exc
    if isinstance(loss_fn, torch.nn.Module) and device is not None:
        loss_fn = loss_fn.to(device)  # buffers such as pos_weight follow the model
    return loss_fn


def load_data(combo: Combination, cfg: dict[str, Any]) -> Splits:
    ds = combo.dataset
    try:
        splits = ds.load()(seed=cfg["seed"], **cfg["dataset_params"])
    except ZooError:
        raise
    except (ValueError, OSError) as exc:  # the dataset's own message for a bad file or value
        raise ZooError(f"dataset '{ds.name}': {' '.join(str(exc).split())}") from exc
    except Exception as exc:
        raise ZooError(f"dataset '{ds.name}' from plugin '{ds.plugin.name}' could not be loaded with "
                       f"{cfg['dataset_params']}: {type(exc).__name__}: {' '.join(str(exc).split())}") from exc
    if not isinstance(splits, Splits):
        raise ZooError(f"dataset '{ds.name}' from plugin '{ds.plugin.name}' returned {type(splits).__name__}, "
                       "not zoo.data.Splits")
    problem = check_splits(splits)
    if problem:
        raise ZooError(f"dataset '{ds.name}' from plugin '{ds.plugin.name}' ({ds.plugin.dist} {ds.plugin.version}): "
                       f"{problem}")
    expected = cfg.get("task") or ds.spec.tasks[0]
    if splits.meta.task != expected:
        raise ZooError(f"dataset '{ds.name}' from plugin '{ds.plugin.name}' was resolved as a {expected} task but "
                       f"produced a {splits.meta.task} task")
    return splits


def make_optimizer(cfg: dict[str, Any], params) -> torch.optim.Optimizer:
    """The configured optimizer, in its fused implementation where torch has one for the device.

    A fused step updates every parameter in one kernel instead of a handful of small
    ops per tensor: for the small models of a zoo the optimizer step is as costly as
    forward and backward together, and fusing it is the largest single speed-up.
    """
    name, lr, wd, mom = cfg["optimizer"], cfg["lr"], cfg["weight_decay"], cfg["momentum"]
    params = list(params)
    builders = {
        "sgd": lambda **kw: torch.optim.SGD(params, lr=lr, momentum=mom, weight_decay=wd, nesterov=cfg["nesterov"], **kw),
        "adam": lambda **kw: torch.optim.Adam(params, lr=lr, weight_decay=wd, **kw),
        "adamw": lambda **kw: torch.optim.AdamW(params, lr=lr, weight_decay=wd, **kw),
        "rmsprop": lambda **kw: torch.optim.RMSprop(params, lr=lr, momentum=mom, weight_decay=wd, **kw),
        "adagrad": lambda **kw: torch.optim.Adagrad(params, lr=lr, weight_decay=wd, **kw),
    }
    if name not in builders:
        raise UsageError(f"unknown optimizer '{name}'")
    if cfg.get("fused", True) and name in ("adam", "adamw") and params and has_fused_adam(params[0].device):
        try:
            return FlatFusedAdam(params, lr=lr, weight_decay=wd, decoupled=name == "adamw")
        except ValueError:  # mixed dtypes or devices: the per-tensor optimizer below
            pass
    if cfg.get("fused", True) and name != "rmsprop":
        try:
            return builders[name](fused=True)
        except (RuntimeError, TypeError, ValueError):  # no fused kernel for this device or dtype
            pass
    return builders[name]()


def count_macs(model: torch.nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one forward pass on one sample (Linear and Conv layers)."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        out = output[0] if isinstance(output, tuple) else output  # RNNs return (output, state)
        if not isinstance(out, torch.Tensor):
            return
        if isinstance(module, torch.nn.Linear):
            total += module.in_features * out.numel()
        elif isinstance(module, torch.nn.modules.conv._ConvNd):
            total += out.numel() * (module.in_channels // module.groups) * math.prod(module.kernel_size)
        elif isinstance(module, torch.nn.RNNBase):
            total += sum(p.numel() for p in module.parameters()) * (out.shape[1] if out.dim() > 2 else 1)

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            device = next(iter(model.parameters()), torch.empty(0)).device
            model(torch.zeros(1, *input_shape, device=device))
    except Exception:  # noqa: BLE001 - only an estimate
        return 0
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return total


#: Below this many multiply-accumulates per optimizer step, one CPU thread is faster: the
#: work per op is too small to split, and spare threads only spin (badly so on a busy machine).
SMALL_STEP_MACS = 64_000_000


def choose_threads(setting: int, model: torch.nn.Module, input_shape, batch_size: int, device: torch.device) -> int:
    if setting > 0:
        return setting
    if device.type != "cpu":
        return torch.get_num_threads()
    macs = count_macs(model, tuple(input_shape)) * batch_size
    return 1 if macs < SMALL_STEP_MACS else torch.get_num_threads()


class LRSchedule:
    """Learning-rate factor per optimizer step: warm-up times cosine, step or plateau.

    Its whole state is a few numbers (saved as JSON), so a resumed run continues it
    exactly. ``cosine`` decays to zero over the run's planned total of steps.
    """

    def __init__(self, cfg: dict[str, Any], steps_per_epoch: int) -> None:
        self.kind = cfg["schedule"]
        self.base = cfg["lr"]
        self.spe = steps_per_epoch
        self.total = cfg["epochs"] * steps_per_epoch
        self.warmup = int(round(cfg["warmup_epochs"] * steps_per_epoch))
        self.step_size, self.gamma, self.patience = cfg["step_size"], cfg["gamma"], cfg["plateau_patience"]
        self.plateau_scale = 1.0
        self.plateau_best: float | None = None
        self.plateau_bad = 0
        self.lower_is_better = minimize(cfg["monitor"])
        self.active = self.kind != "none" or self.warmup > 0

    def factor(self, step: int) -> float:
        f = 1.0
        if self.kind == "cosine":
            span = max(1, self.total - self.warmup)
            t = min(max(step - self.warmup, 0), span)
            f = 0.5 * (1.0 + math.cos(math.pi * t / span))
        elif self.kind == "step":
            f = self.gamma ** (step // self.spe // self.step_size)
        elif self.kind == "plateau":
            f = self.plateau_scale
        if self.warmup and step < self.warmup:
            f *= (step + 1) / self.warmup
        return f

    def apply(self, optimizer: torch.optim.Optimizer, step: int) -> None:
        lr = self.base * self.factor(step)
        for group in optimizer.param_groups:
            group["lr"] = lr

    def epoch_end(self, value: float) -> None:
        if self.kind != "plateau":
            return
        better = self.plateau_best is None or (value < self.plateau_best if self.lower_is_better
                                               else value > self.plateau_best)
        if better:
            self.plateau_best, self.plateau_bad = value, 0
        else:
            self.plateau_bad += 1
            if self.plateau_bad >= self.patience:
                self.plateau_scale *= self.gamma
                self.plateau_bad = 0

    def state(self) -> dict[str, Any]:
        return {"plateau_scale": self.plateau_scale, "plateau_best": self.plateau_best, "plateau_bad": self.plateau_bad}

    def load(self, state: dict[str, Any]) -> None:
        self.plateau_scale = state["plateau_scale"]
        self.plateau_best = state["plateau_best"]
        self.plateau_bad = state["plateau_bad"]


# -- evaluation --------------------------------------------------------------------------


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


def evaluate_split(model: RunModel, loss_fn, split, task: str, target: str, device: torch.device,
                   reads: tuple[str, ...] = (), workers: int = 0, fast: bool = False,
                   cfg: dict[str, Any] | None = None) -> dict[str, float]:
    """Loss and metrics of ``model`` on a split of its (standardised) dataset.

    The loss is what training minimises (on standardised regression targets); the metrics
    are in the data's units. ``fast`` computes the metrics in torch (for the per-epoch
    history); otherwise with scikit-learn (final metrics, ``zoo eval``).
    """
    pred, extras, y = forward_all(model.net, split, device, workers, cfg)
    pred, extras = pred.float(), {k: v.float() for k, v in extras.items()}
    with torch.no_grad():
        loss = compute_loss(loss_fn, {"output": pred, **extras} if reads else pred,
                            training_targets(model, y, target), reads)
        if task == "regression":
            pred = model.to_data_units(pred)
    res = {"loss": float(loss)}
    res.update((metrics.compute_fast if fast else metrics.compute)(task, pred, y, target))
    return res


def head_inputs(split, n: int) -> torch.Tensor:
    """The first ``n`` inputs of a split, as one tensor (for the reload check)."""
    if is_tensor_split(split):
        return split[0][:n]
    return torch.stack([split[i][0] for i in range(min(n, len(split)))])


def split_len(split) -> int:
    return len(split[0]) if is_tensor_split(split) else len(split)


# -- the checkpoint a resume needs -------------------------------------------------------

#: The files of a checkpoint generation (see :mod:`zoo.resumable`).
CKPT_MODEL = "last.safetensors"
CKPT_BEST = "best.safetensors"
CKPT_OPTIM = "optimizer.safetensors"
CKPT_RNG = "rng.safetensors"
CKPT_STATE = "trainer.json"


def _optimizer_split(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors, plain = {}, {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{pid}.{k}"] = v
            else:
                plain.setdefault(str(pid), {})[k] = v
    return tensors, {"param_groups": sd["param_groups"], "state": plain}


def _optimizer_join(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, t in tensors.items():
        pid, _, name = key.partition(".")
        state.setdefault(int(pid), {})[name] = t
    for pid, values in meta["state"].items():
        state.setdefault(int(pid), {}).update(values)
    return {"state": state, "param_groups": meta["param_groups"]}


def _rng_tensors(gen: torch.Generator) -> dict[str, torch.Tensor]:
    out = {"torch": torch.get_rng_state(), "shuffle": gen.get_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            out[f"cuda.{i}"] = s
    return out


def _restore_rng(tensors: dict[str, torch.Tensor], gen: torch.Generator) -> None:
    torch.set_rng_state(tensors["torch"])
    gen.set_state(tensors["shuffle"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("cuda."))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[: torch.cuda.device_count()])


# -- signals -----------------------------------------------------------------------------


class _StopFlag:
    """What the signal handlers saw: the first SIGINT/SIGTERM asks for a clean stop."""

    def __init__(self) -> None:
        self.signum: int | None = None


class TrainingAborted(ZooError):
    """A second SIGINT/SIGTERM: stopped at once (after the file write in progress completed)."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum


@contextlib.contextmanager
def _graceful_signals(flag: _StopFlag, abort_message: Callable[[str], str] | None = None):
    """For the whole life of a run: the first SIGINT/SIGTERM sets ``flag`` (the run stops at its next safe
    point); a second one stops at once, but only once the file write in progress has completed."""
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = {}

    def abort(signum: int) -> None:
        name = signal.Signals(signum).name
        text = abort_message(name) if abort_message else f"{name} received twice: stopped at once"
        raise TrainingAborted(text, signum)

    def handler(signum, frame):
        if flag.signum is not None:  # a second signal: stop now, but never in the middle of a file write
            defer_until_safe(lambda: abort(signum))
            return
        flag.signum = signum

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield flag
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# -- the trainer -------------------------------------------------------------------------


class Trainer:
    """One run: set up from a resolved config (or a run directory to resume), then train."""

    def __init__(self, cfg: dict[str, Any], run_dir: Path | None, *, registry: Registry | None = None,
                 reporter: Reporter | None = None, out: str | Path | None = None, lock: RunLock | None = None,
                 flag: _StopFlag | None = None) -> None:
        self.reporter = reporter or Reporter()
        self.flag = flag or _StopFlag()
        self.lock = lock
        self.combo = entries_for(cfg, registry)
        self.registry = registry
        self.device = pick_device(cfg["device"])
        seed = cfg["seed"]
        torch.manual_seed(seed)
        self.splits = load_data(self.combo, cfg)
        meta = self.splits.meta
        self.task = meta.task
        cfg = {**cfg, "task": meta.task, "target": self.combo.loss.spec.target, "meta": meta.to_json(),
               "zoo_version": __version__}
        cfg["out_features"] = out_features(meta, cfg["target"])
        self.cfg = cfg
        torch.manual_seed(seed)
        model = build_model(self.combo, cfg, meta)
        note = fit_scales(model, self.splits, cfg, self.combo)
        if note:
            self.reporter.message(note)
        self.model = model.to(self.device)
        self.net = self.model.net
        self.train_net = self.net
        if cfg.get("compile"):
            self.train_net = torch.compile(self.net, backend=cfg.get("compile_backend", "inductor"))
        if not cfg.get("threads"):
            cfg["threads"] = choose_threads(0, self.net, meta.input_shape, cfg["batch_size"], self.device)
        self.loss_fn = build_loss(self.combo, cfg, self.device)
        self.optimizer = make_optimizer(cfg, self.net.parameters())
        self.reads = tuple(self.combo.loss.spec.reads)
        self.workers = _workers(cfg.get("workers", -1))
        self.steps_per_epoch = -(-split_len(self.splits.train) // cfg["batch_size"])
        self.schedule = LRSchedule(cfg, self.steps_per_epoch)
        self.gen = torch.Generator(device="cpu").manual_seed(seed)
        self.history = History()
        self.epoch = 0
        self.best: dict[str, Any] = {"value": None, "epoch": None, "bad_epochs": 0}
        self.best_state: dict[str, torch.Tensor] | None = None
        self.lower_is_better = minimize(cfg["monitor"])
        self.saved_epoch = 0  # the epoch of the newest resumable checkpoint on disk
        self.saved_at = time.perf_counter()
        self.published_best: int | None = None  # the best epoch whose weights model.safetensors holds
        if run_dir is None:
            self.probe()  # a model that cannot serve this dataset and loss fails here, before any file is made
            self._stop_if_asked("before training started: nothing was saved")
            stem = cfg["recipe"] or f"{cfg['dataset']}-{cfg['model']}-{cfg['loss']}"
            run_dir, self.lock = runs.create_run_dir(stem, out)
            self.run_dir = Path(run_dir)
            self.status = {"status": "running", "started": _now(), "zoo_version": __version__}
            try:
                write_json(run_dir / runs.STATUS, self.status)
                runs.write_config(run_dir, cfg)
                if self.splits.state:
                    write_json(run_dir / runs.PREPROCESS_STATE, self.splits.state)
            except BaseException:
                self._write_status("failed")
                self.close()
                raise
        else:
            self.status = runs.read_status(run_dir)
            self._stop_if_asked("before training resumed: the run is unchanged")
        self.run_dir = Path(run_dir)
        self.store = CheckpointStore(self.run_dir)

    def close(self) -> None:
        """Release the run directory (its lock) for other processes."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def _stop_if_asked(self, when: str) -> None:
        if self.flag.signum is not None:
            name = signal.Signals(self.flag.signum).name
            raise TrainingInterrupted(f"{name} received {when}", self.flag.signum)

    def _write_status(self, state: str | None = None, **fields: Any) -> None:
        """Record the run's status; a failure to write it (a full disk) never hides the error being reported."""
        if state is not None:
            self.status["status"] = state
        self.status.update(fields)
        try:
            write_json(self.run_dir / runs.STATUS, self.status)
        except ZooError as exc:
            self.reporter.message(f"warning: the run's status could not be recorded: {exc}")

    # -- checkpoint -------------------------------------------------------------------

    def save_checkpoint(self) -> None:
        """Commit a new checkpoint generation (see :mod:`zoo.resumable`), then publish the derived files
        (``history.csv``, and ``model.safetensors`` when the best epoch changed) from what was committed."""
        tag = {"epoch": str(self.epoch)}
        best_epoch = self.best["epoch"]

        def write(d: Path) -> None:  # into the new generation's directory, renamed into place as a whole
            save = functools.partial(checkpoint.save_weights, fsync=False, atomic=False)
            save(self.model, d / CKPT_MODEL, {**self._weights_meta(), **tag})
            if self.best_state is not None:
                save(self.best_state, d / CKPT_BEST, {**self._weights_meta(), **tag, "best_epoch": str(best_epoch)})
            tensors, plain = _optimizer_split(self.optimizer)
            save(tensors, d / CKPT_OPTIM, {**tag, "optimizer": json.dumps(plain)})
            save(_rng_tensors(self.gen), d / CKPT_RNG, tag)
            state = {"epoch": self.epoch, "history": list(self.history), "best": self.best,
                     "schedule": self.schedule.state()}
            (d / CKPT_STATE).write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")

        self.store.commit(self.epoch, write)
        self.saved_epoch, self.saved_at = self.epoch, time.perf_counter()
        self._publish()

    def _publish(self) -> None:
        """The run's readable files that follow the committed checkpoint: history and the best weights so far.
        They are copies: a resume rebuilds them from the checkpoint, so they may lag it but never disagree."""
        write_text(self.run_dir / runs.HISTORY, _history_csv(self.history), fsync=False)
        if self.best_state is not None and self.best["epoch"] != self.published_best:
            checkpoint.save_weights(self.best_state, self.run_dir / runs.WEIGHTS,
                                    {**self._weights_meta(), "epoch": str(self.best["epoch"])}, fsync=False)
            self.published_best = self.best["epoch"]

    def maybe_checkpoint(self) -> None:
        """A checkpoint every ``checkpoint_every`` seconds (each epoch when 0)."""
        if time.perf_counter() - self.saved_at >= self.cfg["checkpoint_every"]:
            self.save_checkpoint()

    def restore_checkpoint(self) -> None:
        """Continue from the current checkpoint generation; debris of an interrupted write is removed first."""
        removed = self.store.clean()
        if removed:
            self.reporter.message(f"removed what an interrupted write left behind: {', '.join(removed)}")
        epoch, d = self.store.current()
        state = read_state(d)
        if state["epoch"] != epoch:
            raise CheckpointError(f"{d / CKPT_STATE} is from epoch {state['epoch']} but its generation from epoch "
                                  f"{epoch}: the checkpoint is inconsistent")
        meta = checkpoint.read_metadata(d / CKPT_MODEL)
        if meta.get("format") != WEIGHTS_FORMAT:
            raise UsageError(f"{self.run_dir} was saved in the weights format {meta.get('format')!r}, which zoo "
                             f"{__version__} cannot resume")
        checkpoint.load_weights(self.model, d / CKPT_MODEL)
        opt_tensors, opt_meta = checkpoint.read_weights(d / CKPT_OPTIM)
        rng, rng_meta = checkpoint.read_weights(d / CKPT_RNG)
        for name, m in ((CKPT_MODEL, meta), (CKPT_OPTIM, opt_meta), (CKPT_RNG, rng_meta)):
            if m.get("epoch") != str(epoch):
                raise CheckpointError(f"{d / name} is from epoch {m.get('epoch')} but {d / CKPT_STATE} from epoch "
                                      f"{epoch}: the checkpoint is inconsistent")
        try:
            self.optimizer.load_state_dict(_optimizer_join(opt_tensors, json.loads(opt_meta["optimizer"])))
            _restore_rng(rng, self.gen)
            self.schedule.load(state["schedule"])
        except (KeyError, ValueError, TypeError, RuntimeError) as exc:
            raise CheckpointError(f"the checkpoint in {d} cannot be restored ({type(exc).__name__}: "
                                  f"{str(exc)[:200]})") from None
        self.epoch, self.history, self.best = state["epoch"], History(state["history"]), state["best"]
        self.saved_epoch = self.epoch
        if self.best.get("epoch") is not None:
            if not (d / CKPT_BEST).is_file():
                raise CheckpointError(f"{d} records best epoch {self.best['epoch']} but holds no {CKPT_BEST}")
            best_model = copy.deepcopy(self.model)
            best_meta = checkpoint.load_weights(best_model, d / CKPT_BEST)
            if best_meta.get("best_epoch") != str(self.best["epoch"]):
                raise CheckpointError(f"{d / CKPT_BEST} holds epoch {best_meta.get('best_epoch')} but {CKPT_STATE} "
                                      f"records best epoch {self.best['epoch']}: the checkpoint is inconsistent")
            self.best_state = {k: v.detach().clone() for k, v in best_model.state_dict().items()}
        self._publish()  # the readable copies catch up with the checkpoint (they may lag after a kill)

    def _weights_meta(self) -> dict[str, str]:
        c = self.cfg
        return {"format": WEIGHTS_FORMAT, "zoo_version": __version__, "recipe": c["recipe"] or "",
                "dataset": c["dataset"], "model": c["model"], "loss": c["loss"]}

    # -- training ---------------------------------------------------------------------

    def _improved(self, value: float) -> bool:
        best = self.best["value"]
        if best is None:
            return True
        delta = self.cfg["min_delta"]
        return value < best - delta if self.lower_is_better else value > best + delta

    def _train_batches(self, train):
        """Shuffled training batches: index the on-device tensors, or a DataLoader."""
        bs, dev = self.cfg["batch_size"], self.device
        if isinstance(train, tuple):
            Xtr, Ttr = train
            perm = torch.randperm(len(Xtr), generator=self.gen).to(dev, non_blocking=True)
            for i in range(0, len(Xtr), bs):
                idx = perm[i : i + bs]
                yield Xtr.index_select(0, idx), Ttr.index_select(0, idx)
            return
        loader = torch.utils.data.DataLoader(train, batch_size=bs, shuffle=True, generator=self.gen,
                                             num_workers=self.workers, pin_memory=dev.type == "cuda")
        for xb, yb in loader:
            self._check_labels(yb, "train")
            yield xb.to(dev, non_blocking=True), training_targets(self.model, yb.to(dev, non_blocking=True),
                                                                  self.cfg["target"])

    def _check_labels(self, y: torch.Tensor, split: str) -> None:
        if self.task in ("binary", "multiclass"):
            problem = label_problem(y, self.splits.meta.num_classes)
            if problem:
                ds = self.combo.dataset
                raise ZooError(f"dataset '{ds.name}' from plugin '{ds.plugin.name}': its {split} split {problem}")

    def check_output(self, out, xb: torch.Tensor) -> None:
        """A batch's output must have the shape the task needs; say so in one line otherwise."""
        m, spec = self.combo.model, self.combo.model.spec
        who = f"model '{m.name}' from plugin '{m.plugin.name}'"
        k, n, meta = self.cfg["out_features"], len(xb), self.splits.meta
        if isinstance(out, dict):
            missing = [name for name in spec.outputs if name not in out]
            if missing:
                raise ZooError(f"{who} returned a dict without {', '.join(missing)} (it declares outputs "
                               f"{', '.join(spec.outputs)}; it returned {', '.join(map(str, out))})")
            out = out["output"]
        elif tuple(spec.outputs) != ("output",):
            raise ZooError(f"{who} declares outputs {', '.join(spec.outputs)} but returned a single tensor")
        if not isinstance(out, torch.Tensor):
            raise ZooError(f"{who} returned {type(out).__name__}, not a tensor")
        if tuple(out.shape) != (n, k):
            if self.task in ("binary", "multiclass"):
                need = (f"one logit per class ({k}: {meta.num_classes} classes)" if self.cfg["target"] == "index"
                        else "one logit (a binary loss)")
            else:
                need = f"{k} value{'s' if k != 1 else ''} per sample"
            raise ZooError(f"{who} returned output of shape {tuple(out.shape)} for a batch of {n} samples of shape "
                           f"{tuple(xb.shape[1:])}; the {self.task} task with loss '{self.combo.loss.name}' needs "
                           f"({n}, {k}): {need} (the model was built with out_features={k})")

    def probe(self, n: int = 8) -> None:
        """One eval-mode forward pass on the first training samples (no gradient, no randomness, no state
        change): the model must take the dataset's batches and return the output shape the task and loss
        need. Either failure is one line naming the model, its plugin and the shapes."""
        m = self.combo.model
        xb = head_inputs(self.splits.train, min(n, self.cfg["batch_size"])).to(self.device)
        was_training = self.net.training
        self.net.eval()
        try:
            with torch.no_grad():
                out = self.net(xb)
        except Exception as exc:  # noqa: BLE001 - whatever a plugin's forward raises on a bad shape
            raise ZooError(f"model '{m.name}' from plugin '{m.plugin.name}' failed on a batch of shape "
                           f"{tuple(xb.shape)} from dataset '{self.combo.dataset.name}': {type(exc).__name__}: "
                           f"{' '.join(str(exc).split())}") from exc
        finally:
            self.net.train(was_training)
        self.check_output(out, xb)

    def train_epoch(self, train, flag: _StopFlag) -> float:
        cfg, net, opt, loss_fn, reads = self.cfg, self.train_net, self.optimizer, self.loss_fn, self.reads
        bf16 = cfg.get("precision") == "bf16"
        l1, clip = cfg["l1"], cfg["clip_grad"]
        schedule = self.schedule if self.schedule.active else None
        weights = [p for name, p in net.named_parameters() if p.dim() > 1] if l1 else []
        on_cpu = self.device.type == "cpu"
        step0 = self.epoch * self.steps_per_epoch
        reporter = self.reporter
        net.train()
        losses, sizes = [], []
        for b, (xb, tb) in enumerate(self._train_batches(train)):
            if schedule is not None:
                schedule.apply(opt, step0 + b)
            if bf16:
                with autocast_for(cfg, self.device):
                    out = net(xb)
                out = {k: v.float() for k, v in out.items()} if isinstance(out, dict) else out.float()
            else:
                out = net(xb)
            loss = loss_fn(out, tb) if not isinstance(out, dict) else compute_loss(loss_fn, out, tb, reads)
            if on_cpu and not math.isfinite(loss.item()):  # no device sync on CPU: stop at once
                self._non_finite(b + 1, loss.item(), xb, out, tb)
            losses.append(loss.detach())
            sizes.append(len(xb))
            if l1:
                loss = loss + l1 * sum(w.abs().sum() for w in weights)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
            opt.step()
            reporter.batch(losses[-1])
        if not losses:
            return float("nan")
        stacked = torch.stack(losses)  # one host sync an epoch, not one a step
        weights = torch.tensor(sizes, dtype=stacked.dtype, device=stacked.device)
        train_loss = float((stacked * weights).sum() / weights.sum())
        if not math.isfinite(train_loss):
            bad = (~torch.isfinite(stacked)).nonzero()
            self._non_finite(int(bad[0]) + 1 if len(bad) else None, train_loss)
        return train_loss

    def _non_finite(self, batch: int | None, value: float, xb=None, out=None, target=None) -> None:
        """Stop the run, naming which came first: diverged weights, the model's output, or the loss."""
        m, lo, ds = self.combo.model, self.combo.loss, self.combo.dataset
        model_name = f"model '{m.name}' from plugin '{m.plugin.name}'"
        loss_name = f"loss '{lo.name}' from plugin '{lo.plugin.name}'"
        where = f"epoch {self.epoch + 1}" + (f", batch {batch}" if batch else "")
        kept = (f"; the last good checkpoint (epoch {self.saved_epoch}) is kept in {self.run_dir}"
                if self.saved_epoch else "")
        diverged = (f": training diverged; lower the learning rate (now {self.cfg['lr']}) or clip gradients "
                    "(--set clip_grad=1.0)")
        weights_ok = all(bool(torch.isfinite(p).all()) for p in self.net.parameters())
        if not weights_ok:
            why = f"the weights of {model_name} became non-finite before {where}{diverged}"
        elif xb is not None and not bool(torch.isfinite(xb).all()):
            why = f"dataset '{ds.name}' from plugin '{ds.plugin.name}' gave non-finite inputs in {where}"
        elif out is not None and not all(bool(torch.isfinite(t).all()) for t in split_outputs(out)[1].values()) \
                or out is not None and not bool(torch.isfinite(split_outputs(out)[0]).all()):
            why = (f"{model_name} returned non-finite output in {where} from finite weights and inputs (a bug in "
                   "its forward, such as a log or a division by zero)")
        elif out is not None and _overflows(self.loss_fn, out, target, self.reads):
            big = float(split_outputs(out)[0].detach().abs().max())
            why = (f"the loss overflowed to {value} in {where}: the outputs of {model_name} reached {big:.3g}"
                   f"{diverged}")
        elif out is not None:
            why = f"{loss_name} returned {value} in {where} on finite model outputs and targets (a bug in the loss)"
        else:
            why = f"the training loss of {loss_name} became {value} in {where}{diverged}"
        raise NonFiniteLoss(why + kept)

    def run(self, epochs: int | None = None) -> Run:
        """Train up to ``epochs`` (the total), checkpointing as configured, then finish the run. The run
        directory's lock is released at the end, whatever happens."""
        try:
            return self._run(epochs)
        finally:
            self.close()

    def _run(self, epochs: int | None) -> Run:
        cfg = self.cfg
        epochs = epochs or cfg["epochs"]
        dev = self.device
        train, val_split = self.splits.train, self.splits.val
        if is_tensor_split(train):  # the fast path: the whole split on the device, once
            train = (train[0].to(dev), training_targets(self.model, train[1].to(dev), cfg["target"]))
        if is_tensor_split(val_split):
            val_split = tuple(t.to(dev) for t in val_split)
        flag = self.flag
        stopped_early = False
        t0 = time.perf_counter() - (self.history[-1]["time"] if self.history else 0.0)
        self.reporter.message(
            f"training {self.run_dir.name} on {dev} ({split_len(train)} train / {split_len(val_split)} val samples, "
            f"epochs {self.epoch + 1}-{epochs}) -> {self.run_dir}")
        if self.status.get("status") != "running" or "error" in self.status:  # a resumed run: mark it again
            self.status.pop("error", None)
            self.status.pop("signal", None)
            self._write_status("running")
        threads_before = torch.get_num_threads()
        torch.set_num_threads(cfg["threads"])
        try:
            while self.epoch < epochs:
                if flag.signum is not None:  # asked to stop before this process trained an epoch
                    self._interrupted(epochs)
                if self.patience_exhausted():
                    stopped_early = True
                    break
                self.reporter.epoch_start(self.epoch + 1, epochs, self.steps_per_epoch)
                train_loss = self.train_epoch(train, flag)
                self.epoch += 1
                val = evaluate_split(self.model, self.loss_fn, val_split, self.task, cfg["target"], dev,
                                     self.reads, self.workers, fast=True, cfg=cfg)
                row = {"epoch": self.epoch, "train_loss": train_loss, **{f"val_{k}": v for k, v in val.items()},
                       "lr": self.optimizer.param_groups[0]["lr"], "time": round(time.perf_counter() - t0, 4)}
                self.history.append(row)
                value = row[cfg["monitor"]]
                self.schedule.epoch_end(value)
                if self._improved(value):
                    self.best = {"value": value, "epoch": self.epoch, "bad_epochs": 0}
                    self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
                else:
                    self.best["bad_epochs"] += 1
                self.reporter.epoch_end(row, epochs)
                if flag.signum is not None:
                    self.save_checkpoint()
                    self._interrupted(epochs)
                self.maybe_checkpoint()
            if not stopped_early and self.patience_exhausted() and self.epoch < epochs:
                stopped_early = True
            if self.saved_epoch != self.epoch:
                self.save_checkpoint()
            return self.finish(stopped_early)
        except TrainingInterrupted:
            raise
        except BaseException as exc:
            interrupted = isinstance(exc, (KeyboardInterrupt, TrainingAborted))
            self._write_status("interrupted" if interrupted else "failed", epochs=self.saved_epoch,
                               error=None if interrupted else f"{type(exc).__name__}: {exc}")
            if isinstance(exc, TrainingAborted):
                kept = (f"the last complete checkpoint (epoch {self.saved_epoch}) is kept; resume with 'zoo train "
                        f"--resume {self.run_dir}'" if self.saved_epoch else "no epoch was saved")
                raise TrainingAborted(f"{exc}; {kept}", exc.exit_code - 128) from None
            raise
        finally:
            torch.set_num_threads(threads_before)
            self.reporter.close()

    def _interrupted(self, epochs: int) -> None:
        name = signal.Signals(self.flag.signum).name
        self._write_status("interrupted", epochs=self.saved_epoch, signal=name)
        if self.saved_epoch:
            where = f"stopped cleanly after epoch {self.saved_epoch}/{epochs}"
        else:
            where = "stopped before the first epoch ended, nothing to resume from"
        raise TrainingInterrupted(f"{name} received: {where}; resume with 'zoo train --resume {self.run_dir}'"
                                  if self.saved_epoch else f"{name} received: {where}", self.flag.signum)

    def patience_exhausted(self) -> bool:
        p = self.cfg["patience"]
        return bool(p) and self.best["bad_epochs"] >= p

    def finish(self, stopped_early: bool) -> Run:
        cfg, dev = self.cfg, self.device
        final = self.model
        if self.best_state is not None:
            final = copy.deepcopy(self.model)
            final.load_state_dict(self.best_state)
        results = {}
        for split in ("train", "val", "test"):
            results[split] = evaluate_split(final, self.loss_fn, self.splits.split(split), self.task, cfg["target"],
                                            dev, self.reads, self.workers, cfg=cfg)
        best_epoch = self.best["epoch"]
        checkpoint.save_weights(final, self.run_dir / runs.WEIGHTS, {**self._weights_meta(),
                                                                     "epoch": str(best_epoch)})
        reload_check(final, self.run_dir, self.combo, cfg, raw_inputs(final, head_inputs(self.splits.test,
                                                                                    RELOAD_CHECK_SAMPLES).to(dev)))
        write_json(self.run_dir / runs.METRICS, {"best_epoch": best_epoch, "monitor": cfg["monitor"], **results})
        write_text(self.run_dir / runs.HISTORY, _history_csv(self.history))
        self.status.update(status="stopped early" if stopped_early else "finished", finished=_now(),
                           epochs=self.epoch, best_epoch=best_epoch,
                           seconds=self.history[-1]["time"] if self.history else 0.0)
        write_json(self.run_dir / runs.STATUS, self.status)
        if self.flag.signum is not None:  # asked to stop while the run was saving its results: they are complete
            self.reporter.message(f"{signal.Signals(self.flag.signum).name} received while the results were being "
                                  "saved: the run finished first")
        if stopped_early:
            self.reporter.message(f"stopped early after epoch {self.epoch}: {cfg['monitor']} did not improve for "
                                  f"{cfg['patience']} epochs; keeping epoch {best_epoch}")
        final.eval()
        return Run(self.run_dir, cfg, self.history, results, final, self.status["status"], best_epoch)


def _overflows(loss_fn, out, target, reads) -> bool:
    """Whether the loss is finite in float64 on the same outputs: then float32 overflowed (divergence)."""
    if target is None:
        return False
    try:
        with torch.no_grad():
            wide = ({k: v.double() for k, v in out.items()} if isinstance(out, dict) else out.double())
            t = target.double() if target.is_floating_point() else target
            value = loss_fn(wide, t) if not isinstance(wide, dict) else compute_loss(loss_fn, wide, t, reads)
        return bool(torch.isfinite(value))
    except Exception:  # noqa: BLE001 - a loss that cannot run in float64 tells nothing either way
        return False


def raw_inputs(model: RunModel, X: torch.Tensor) -> torch.Tensor:
    """Standardised inputs back in the data's units (what users give a :class:`RunModel`)."""
    return X * model.input_std + model.input_mean


def fit(cfg: dict[str, Any], *, registry: Registry | None = None, out: str | Path | None = None,
        log: Callable[[str], None] | None = None, reporter: Reporter | None = None) -> Run:
    """Train the resolved config ``cfg`` (see :func:`zoo.config.resolve`) and save a run.

    SIGINT and SIGTERM are handled for the whole call: the first stops the run at its next
    safe point (before the run directory is made, or after the current epoch, checkpointed);
    a second stops it at once, once the file write in progress has completed.
    """
    if reporter is None:
        reporter = LineReporter(log) if log else Reporter()
    with _graceful_signals(_StopFlag()) as flag:
        return Trainer(cfg, None, registry=registry, reporter=reporter, out=out, flag=flag).run()


RESUMABLE = ("epochs", "device")


def resume(run_dir: str | Path, *, epochs: int | None = None, device: str | None = None,
           registry: Registry | None = None, reporter: Reporter | None = None) -> Run:
    """Continue a run in its own directory up to ``epochs`` in total (default: its planned total).

    The run's lock is taken first: a run another process is still training is refused. The
    newest complete checkpoint is restored (debris of an interrupted write is removed), so a
    run killed at any instant continues exactly as if it had not been interrupted.
    """
    cfg = runs.read_config(run_dir)
    if epochs is not None:
        from .config import TRAIN_PARAMS

        cfg["epochs"] = TRAIN_PARAMS["epochs"].check("--epochs", epochs)
    if device is not None:
        cfg["device"] = device
    lock = RunLock(run_dir).acquire("resume")
    try:
        with _graceful_signals(_StopFlag()) as flag:
            trainer = Trainer(cfg, Path(run_dir), registry=registry, reporter=reporter, lock=lock, flag=flag)
            trainer.restore_checkpoint()
            if trainer.epoch > cfg["epochs"]:
                raise UsageError(f"{run_dir} has already trained {trainer.epoch} epochs; --epochs is the total and "
                                 f"must be >= {trainer.epoch}")
            runs.write_config(trainer.run_dir, trainer.cfg)
            return trainer.run()
    finally:
        lock.release()


def reload_check(model: RunModel, run_dir: Path, combo: Combination, cfg: dict, X: torch.Tensor) -> None:
    """Rebuild the model from the config, load the saved file, demand identical outputs on raw inputs ``X``."""
    fresh = build_model(combo, cfg, DataMeta.from_json(cfg["meta"])).to(X.device)
    checkpoint.load_weights(fresh, run_dir / runs.WEIGHTS)
    expected, got = predict(model, X, cfg), predict(fresh, X, cfg)
    if not torch.equal(expected, got):
        diff = (expected.float() - got.float()).abs().max().item()
        raise CheckpointError(
            f"reload check failed: the model reloaded from {run_dir / runs.WEIGHTS} predicts differently "
            f"from the trained one (max abs difference {diff:.3g} on {len(X)} held samples)"
        )


def load_run_model(run_dir: str | Path, device: str = "cpu", registry: Registry | None = None,
                   weights: str = runs.WEIGHTS):
    """Rebuild the run's :class:`RunModel` from its config and load its weights strictly.

    A run directory may come from anyone, so nothing large is built on its word: the config is
    checked when read (:func:`zoo.runs.read_config`), then the model is built on PyTorch's ``meta``
    device (no memory) and its state dict's names, shapes and dtypes are compared with the weights
    file's header (no tensor data read); only a file that fits is loaded into a model built for
    real, and its tensors must be finite. Weights saved by zoo 0.1 (``zoo-weights/1``: the bare
    network, the regression target scale as ``mean``/``std`` beside it, the input standardisation
    in ``preprocess.safetensors``) are read into the same model.
    """
    cfg = runs.read_config(run_dir, registry)
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
    pre_path = run_dir / runs.PREPROCESS
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


def evaluate_run(run_dir: str | Path, split: str = "test", device: str = "auto",
                 registry: Registry | None = None) -> dict[str, float]:
    """Recompute a saved run's metrics on one split (data rebuilt from the config's seed)."""
    model, cfg, combo = load_run_model(run_dir, device, registry)
    dev = next(iter(model.parameters()), torch.empty(0)).device
    splits = load_data(combo, cfg)
    return evaluate_saved(model, f"model '{cfg['model']}' of {run_dir}", build_loss(combo, cfg, dev),
                          splits.split(split), splits.meta.task, cfg["target"], dev, tuple(combo.loss.spec.reads),
                          _workers(cfg.get("workers", -1)), cfg=cfg)


def _workers(setting: int) -> int:
    """DataLoader workers for datasets that are not in-memory tensors (-1: one per spare core, at most 4)."""
    if setting >= 0:
        return setting
    import os

    return max(0, min(4, (os.cpu_count() or 1) - 1))


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def _history_csv(history: list[dict[str, float]]) -> str:
    if not history:
        return ""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(history[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    return buf.getvalue()
