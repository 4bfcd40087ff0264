"""The training engine: build the parts, fit, evaluate, save, verify the reload.

The dataset is held in memory as tensors on the training device and batched by
index, so there is no DataLoader, no per-sample Python and no per-step host sync.
"""

from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from . import __version__, checkpoint, metrics, runs
from .config import Combination, entries_for
from .data import DataMeta, Splits
from .errors import CheckpointError, UsageError, ZooError
from .files import write_json, write_text
from .registry import Registry

EVAL_BATCH = 4096
RELOAD_CHECK_SAMPLES = 256


@dataclass
class Run:
    """A finished training run: where it is, what it was, how it went."""

    dir: Path
    config: dict[str, Any]
    history: list[dict[str, float]]
    metrics: dict[str, dict[str, float]]
    model: torch.nn.Module = field(repr=False)

    def __repr__(self) -> str:
        name = metrics.TASK_METRICS[self.config["meta"]["task"]][0]
        value = self.metrics.get("test", {}).get(name, float("nan"))
        return f"Run({str(self.dir)!r}, epochs={len(self.history)}, test {name}={value:.4g})"


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


class TargetScale(torch.nn.Module):
    """Wraps a regression network so it learns standardised targets but outputs the data's units.

    ``mean`` and ``std`` are buffers: they are saved with the weights and restored on load.
    """

    def __init__(self, net: torch.nn.Module, num_targets: int) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.zeros(num_targets))
        self.register_buffer("std", torch.ones(num_targets))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.mean, self.net(x), self.std)


def uses_target_scale(cfg: dict[str, Any]) -> bool:
    return bool(cfg.get("scale_targets")) and cfg["target"] == "value"


def build_model(combo: Combination, cfg: dict[str, Any], meta: DataMeta) -> torch.nn.Module:
    model = _build_net(combo, cfg, meta)
    if uses_target_scale(cfg):
        model = TargetScale(model, out_features(meta, cfg["target"]))
    return model


def _build_net(combo: Combination, cfg: dict[str, Any], meta: DataMeta) -> torch.nn.Module:
    factory = combo.model.load()
    try:
        model = factory(tuple(meta.input_shape), out_features(meta, cfg["target"]), **cfg["model_params"])
    except ZooError:
        raise
    except Exception as exc:
        raise ZooError(
            f"model '{combo.model.name}' could not be built for input shape {tuple(meta.input_shape)} "
            f"with {cfg['model_params']}: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(model, torch.nn.Module):
        raise ZooError(f"model '{combo.model.name}' implementation returned {type(model).__name__}, not an nn.Module")
    return model


def build_loss(combo: Combination, cfg: dict[str, Any], device: torch.device | None = None) -> Callable:
    loss_fn = combo.loss.load()(**cfg["loss_params"])
    if isinstance(loss_fn, torch.nn.Module) and device is not None:
        loss_fn = loss_fn.to(device)  # buffers such as pos_weight follow the model
    return loss_fn


def load_data(combo: Combination, cfg: dict[str, Any]) -> Splits:
    ds = combo.dataset
    splits = ds.load()(seed=cfg["seed"], **cfg["dataset_params"])
    if not isinstance(splits, Splits):
        raise ZooError(f"dataset '{ds.name}' returned {type(splits).__name__}, not zoo.data.Splits")
    if splits.meta.task != ds.spec.tasks[0]:
        raise ZooError(f"dataset '{ds.name}' declares task {ds.spec.tasks[0]} but produced {splits.meta.task}")
    return splits


def make_optimizer(cfg: dict[str, Any], params) -> torch.optim.Optimizer:
    name, lr, wd, mom = cfg["optimizer"], cfg["lr"], cfg["weight_decay"], cfg["momentum"]
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=mom, weight_decay=wd)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=mom, weight_decay=wd)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, weight_decay=wd)
    raise UsageError(f"unknown optimizer '{name}'")


def make_scheduler(cfg: dict[str, Any], optimizer: torch.optim.Optimizer, steps_per_epoch: int):
    """A per-step learning-rate schedule (or None)."""
    total = cfg["epochs"] * steps_per_epoch
    if cfg["schedule"] == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    if cfg["schedule"] == "step":  # divide by 10 at 50% and 75% of the run
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, [total // 2, total * 3 // 4], gamma=0.1)
    return None


@torch.no_grad()
def predict(model: torch.nn.Module, X: torch.Tensor) -> torch.Tensor:
    """Raw outputs of ``model`` in eval mode, in batches."""
    was_training = model.training
    model.eval()
    try:
        return torch.cat([model(X[i : i + EVAL_BATCH]) for i in range(0, len(X), EVAL_BATCH)]) if len(X) else X
    finally:
        model.train(was_training)


def evaluate_split(model, loss_fn, X, y, task, target) -> dict[str, float]:
    out = predict(model, X)
    res = {"loss": float(loss_fn(out, adapt_targets(y, target)))}
    res.update(metrics.compute(task, out, y, target))
    return res


def fit(cfg: dict[str, Any], *, registry: Registry | None = None, out: str | None = None,
        log: Callable[[str], None] | None = None) -> Run:
    """Train the resolved config ``cfg`` (see :func:`zoo.config.resolve`) and save a run."""
    log = log or (lambda msg: None)
    combo = entries_for(cfg, registry)
    device = pick_device(cfg["device"])
    seed = cfg["seed"]
    torch.manual_seed(seed)

    splits = load_data(combo, cfg)
    meta, task = splits.meta, splits.meta.task
    cfg = {**cfg, "target": combo.loss.spec.target, "meta": meta.to_json(), "zoo_version": __version__}
    cfg["out_features"] = out_features(meta, cfg["target"])
    torch.manual_seed(seed)
    model = build_model(combo, cfg, meta)
    if isinstance(model, TargetScale):
        y = adapt_targets(splits.train[1], cfg["target"])
        model.mean.copy_(y.mean(0))
        model.std.copy_(y.std(0).clamp_min(1e-12))
    model = model.to(device)
    loss_fn = build_loss(combo, cfg, device)
    optimizer = make_optimizer(cfg, model.parameters())
    steps_per_epoch = -(-len(splits.train[0]) // cfg["batch_size"])
    scheduler = make_scheduler(cfg, optimizer, steps_per_epoch)

    stem = cfg["recipe"] or f"{cfg['dataset']}-{cfg['model']}-{cfg['loss']}"
    run_dir = runs.create_run_dir(stem, out)
    status = {"status": "running", "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "zoo_version": __version__}
    write_json(run_dir / runs.STATUS, status)
    write_json(run_dir / runs.CONFIG, cfg)
    if splits.preprocess:
        checkpoint.save_weights(splits.preprocess, run_dir / runs.PREPROCESS, {"kind": "preprocess"})

    Xtr, ytr = (t.to(device) for t in splits.train)
    Ttr = adapt_targets(ytr, cfg["target"])
    Xva, yva = (t.to(device) for t in splits.val)
    n, bs = len(Xtr), cfg["batch_size"]
    gen = torch.Generator(device="cpu").manual_seed(seed)
    history: list[dict[str, float]] = []
    t0 = time.perf_counter()
    log(f"training {stem} on {device} ({n} train / {len(Xva)} val samples) -> {run_dir}")
    try:
        for epoch in range(1, cfg["epochs"] + 1):
            model.train()
            perm = torch.randperm(n, generator=gen).to(device)
            total = torch.zeros((), device=device)
            for i in range(0, n, bs):
                idx = perm[i : i + bs]
                xb, tb = Xtr.index_select(0, idx), Ttr.index_select(0, idx)
                loss = loss_fn(model(xb), tb)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                total += loss.detach() * len(idx)
            train_loss = float(total) / n
            if not math.isfinite(train_loss):
                raise ZooError(
                    f"training loss became {train_loss} in epoch {epoch}; lower the learning rate "
                    f"(now {cfg['lr']}) or check the inputs are normalised"
                )
            val = evaluate_split(model, loss_fn, Xva, yva, task, cfg["target"])
            row = {"epoch": epoch, "train_loss": train_loss, **{f"val_{k}": v for k, v in val.items()},
                   "time": round(time.perf_counter() - t0, 4)}
            history.append(row)
            log(_epoch_line(row, cfg["epochs"]))
        write_text(run_dir / runs.HISTORY, _history_csv(history))

        results = {}
        for split in ("train", "val", "test"):
            X, y = (t.to(device) for t in splits.split(split))
            results[split] = evaluate_split(model, loss_fn, X, y, task, cfg["target"])
        weights_meta = {
            "format": "zoo-weights/1",
            "zoo_version": __version__,
            "recipe": cfg["recipe"] or "",
            "dataset": cfg["dataset"],
            "model": cfg["model"],
            "loss": cfg["loss"],
        }
        checkpoint.save_weights(model, run_dir / runs.WEIGHTS, weights_meta)
        reload_check(model, run_dir, combo, cfg, splits.test[0][:RELOAD_CHECK_SAMPLES].to(device))
        write_json(run_dir / runs.METRICS, results)
        status.update(status="finished", finished=time.strftime("%Y-%m-%dT%H:%M:%S"), epochs=len(history),
                      seconds=round(time.perf_counter() - t0, 3))
        write_json(run_dir / runs.STATUS, status)
    except BaseException as exc:
        if history:
            write_text(run_dir / runs.HISTORY, _history_csv(history))
        interrupted = isinstance(exc, KeyboardInterrupt)
        status.update(status="interrupted" if interrupted else "failed", epochs=len(history),
                      error=None if interrupted else f"{type(exc).__name__}: {exc}")
        write_json(run_dir / runs.STATUS, status)
        raise
    return Run(run_dir, cfg, history, results, model)


def reload_check(model: torch.nn.Module, run_dir: Path, combo: Combination, cfg: dict, X: torch.Tensor) -> None:
    """Rebuild the model from the config, load the saved file, demand identical outputs."""
    fresh = build_model(combo, cfg, DataMeta.from_json(cfg["meta"])).to(X.device)
    checkpoint.load_weights(fresh, run_dir / runs.WEIGHTS)
    expected, got = predict(model, X), predict(fresh, X)
    if not torch.equal(expected, got):
        diff = (expected.float() - got.float()).abs().max().item()
        raise CheckpointError(
            f"reload check failed: the model reloaded from {run_dir / runs.WEIGHTS} predicts differently "
            f"from the trained one (max abs difference {diff:.3g} on {len(X)} held samples)"
        )


def load_run_model(run_dir: str | Path, device: str = "cpu", registry: Registry | None = None):
    """Rebuild the run's model from its config and load its weights strictly."""
    cfg = runs.read_config(run_dir)
    combo = entries_for(cfg, registry)
    model = build_model(combo, cfg, DataMeta.from_json(cfg["meta"]))
    checkpoint.load_weights(model, Path(run_dir) / runs.WEIGHTS)
    model.to(pick_device(device)).eval()
    return model, cfg, combo


def evaluate_run(run_dir: str | Path, split: str = "test", device: str = "auto",
                 registry: Registry | None = None) -> dict[str, float]:
    """Recompute a saved run's metrics on one split (data rebuilt from the config's seed)."""
    model, cfg, combo = load_run_model(run_dir, device, registry)
    dev = next(iter(model.parameters()), torch.empty(0)).device
    splits = load_data(combo, cfg)
    X, y = (t.to(dev) for t in splits.split(split))
    return evaluate_split(model, build_loss(combo, cfg, dev), X, y, splits.meta.task, cfg["target"])


def _epoch_line(row: dict[str, float], epochs: int) -> str:
    width = len(str(epochs))
    parts = [f"epoch {row['epoch']:>{width}}/{epochs}", f"train_loss {row['train_loss']:.4f}"]
    parts += [f"{k} {v:.4f}" for k, v in row.items() if k.startswith("val_")]
    return "  ".join(parts)


def _history_csv(history: list[dict[str, float]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(history[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    return buf.getvalue()
