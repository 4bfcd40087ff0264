"""The training workloads the figures time: the zoo engine and what it is compared with.

Every runner takes a resolved zoo config (:func:`config`) and returns a :class:`Result`:
the wall time of its timed region and the test score it reached. The timed region is
the same for every side: from the resolved config to a trained model and its test
score, so it includes loading the data through ``zoo.parts.load_data`` (identical
work on every side) and building the model through the registry's factory.

- :func:`run_engine`: ``zoo.engine.Trainer(cfg).run()``, exactly what ``zoo train`` runs
  (without the CLI): per-epoch validation, checkpoints, final metrics, saving and the
  reload check included.
- :func:`run_tight`: a tight hand-written loop: tensors in memory, ``torch.randperm``
  batches from a seeded generator, ``zero_grad(set_to_none=True)``, the engine's
  optimizer class and flags, the engine's thread count, a validation loss each epoch
  (the engine computes one too) and the test score at the end. It consumes the random
  number generators exactly as the engine does, so its final weights can be compared
  bit for bit.
- :func:`run_guide`: the tutorials' loop: ``DataLoader(TensorDataset(X, y),
  batch_size, shuffle=True)``, the default torch optimizer implementation and the
  default thread count.
- :func:`run_sklearn`: scikit-learn's ``MLPRegressor`` / ``MLPClassifier`` with the same
  architecture and Adam settings, for every epoch (no early stopping).
"""

from __future__ import annotations

import gc
import inspect
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

#: The headline test figure per task (what the score columns show).
HEADLINE = {"regression": "mse", "binary": "accuracy", "multiclass": "accuracy", "reconstruction": "mse"}
LOWER_IS_BETTER = {"mse"}

#: What ``DataLoader`` guides write for each optimizer name: the default implementation.
GUIDE_OPTIMIZERS: dict[str, Callable[[Any, dict], torch.optim.Optimizer]] = {
    "sgd": lambda p, c: torch.optim.SGD(p, lr=c["lr"], momentum=c["momentum"], weight_decay=c["weight_decay"],
                                        nesterov=c["nesterov"]),
    "adam": lambda p, c: torch.optim.Adam(p, lr=c["lr"], weight_decay=c["weight_decay"]),
    "adamw": lambda p, c: torch.optim.AdamW(p, lr=c["lr"], weight_decay=c["weight_decay"]),
    "rmsprop": lambda p, c: torch.optim.RMSprop(p, lr=c["lr"], momentum=c["momentum"],
                                                weight_decay=c["weight_decay"]),
    "adagrad": lambda p, c: torch.optim.Adagrad(p, lr=c["lr"], weight_decay=c["weight_decay"]),
}
TORCH_OPTIMIZERS = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop", "adagrad": "Adagrad"}


@dataclass
class Result:
    """One timed run of one side."""

    seconds: float
    score: dict[str, Any]  # {"metric": "mse", "value": 1.02}
    train_seconds: float | None = None  # the optimizer steps alone (forward, backward, step), summed over epochs
    extra: dict[str, Any] = field(default_factory=dict)  # JSON-able details for the report
    state: dict[str, torch.Tensor] | None = field(default=None, repr=False)  # final weights, for parity
    objects: dict[str, Any] = field(default_factory=dict, repr=False)  # live objects (trainer, run), not reported


def config(recipe: str, *, epochs: int | None, device: str = "cpu", seed: int = 0, **train: Any) -> dict[str, Any]:
    """A recipe's resolved config, as ``zoo train RECIPE --epochs N ...`` would resolve it."""
    from zoo.config import resolve

    return resolve(recipe, epochs=epochs, device=device, seed=seed, **train)


def sync(device: torch.device | str) -> None:
    """Wait for the device (timers must not stop while CUDA kernels are still queued)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def describe_optimizer(opt: Any) -> str:
    cls = type(opt)
    name = f"{cls.__module__}.{cls.__qualname__}"
    defaults = getattr(opt, "defaults", None)
    if isinstance(opt, torch.optim.Optimizer) and defaults:
        flags = [f"{k}={defaults[k]}" for k in ("fused", "foreach") if k in defaults]
        name += f"({', '.join(flags)})"
    return name


def same_optimizer(engine_opt: Any, cfg: dict[str, Any]) -> tuple[Callable[[Any], Any], str]:
    """A factory for the engine's optimizer class and implementation, and its description.

    A ``torch.optim`` optimizer is rebuilt from its class with the engine's flags
    (``fused``, ``foreach``, ...) passed explicitly; any other class (an optimizer of
    the engine's own) is built the way the engine builds it.
    """
    desc = describe_optimizer(engine_opt)
    if isinstance(engine_opt, torch.optim.Optimizer):
        cls = type(engine_opt)
        accepted = inspect.signature(cls.__init__).parameters
        kwargs = {k: v for k, v in engine_opt.defaults.items() if k in accepted}
        return (lambda params: cls(params, **kwargs)), desc
    from zoo.config import entries_for

    entry = entries_for(cfg).optimizer
    factory = entry.load()
    return ((lambda params: factory(params, lr=cfg["lr"], **cfg["optimizer_params"])),
            f"{desc} (built by optimizer '{entry.name}' of plugin '{entry.plugin.name}')")


def torch_fused_optimizer(cfg: dict[str, Any]) -> tuple[Callable[[Any], Any], str] | None:
    """torch's own fused optimizer for ``cfg`` (for a second parity check), or None."""
    cls = getattr(torch.optim, TORCH_OPTIMIZERS.get(cfg["optimizer"], ""), None)
    if cls is None or "fused" not in inspect.signature(cls.__init__).parameters:
        return None
    hyper = cfg["optimizer_params"]
    kwargs = {"lr": cfg["lr"], "weight_decay": hyper.get("weight_decay", 0.0), "fused": True}
    if cfg["optimizer"] in ("sgd", "rmsprop"):
        kwargs["momentum"] = hyper.get("momentum", 0.0)
    return (lambda params: cls(params, **kwargs)), f"torch.optim.{cls.__name__}(fused=True)"


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


@torch.no_grad()
def test_score(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, task: str, target: str,
               to_units: Callable[[torch.Tensor], torch.Tensor] | None = None) -> dict[str, Any]:
    """The headline test figure of ``model`` (eval mode) on standardised ``X`` against the dataset's ``y``,
    computed in float64; ``to_units`` maps the network's output to the data's units (the run's target scale)."""
    was_training = model.training
    model.eval()
    try:
        out = model(X)
    finally:
        model.train(was_training)
    out = out["output"] if isinstance(out, dict) else out
    if to_units is not None and task == "regression":
        out = to_units(out)
    metric = HEADLINE[task]
    if metric == "mse":
        value = float((out.double().reshape(len(y), -1) - y.double().reshape(len(y), -1)).pow(2).mean())
    elif target == "binary":
        value = float(((out.reshape(-1) > 0).long() == y.reshape(-1).long()).double().mean())
    else:
        value = float((out.argmax(dim=1) == y.reshape(-1).long()).double().mean())
    return {"metric": metric, "value": value}


# -- the zoo engine ----------------------------------------------------------------------


def run_engine(cfg: dict[str, Any], *, keep: bool = False) -> Result:
    """``zoo.engine.Trainer(cfg, None).run()`` into a fresh run directory (removed after, unless ``keep``).

    Besides the total it records where the time went: ``setup`` (data and model),
    ``train`` (the procedure's ``train_epoch``: the optimizer steps), ``finish`` (final metrics,
    saving, reload check) and ``between`` (validation, history and checkpoints each
    epoch). The two methods are timed by wrappers set on the instance (a call each per
    epoch; no engine code is changed).
    """
    from zoo import engine

    workdir = Path(tempfile.mkdtemp(prefix="zoo-bench-"))
    spent = {"train": 0.0, "finish": 0.0}

    def timed(name: str, fn: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - t
        return wrapper

    try:
        gc.collect()
        t0 = time.perf_counter()
        trainer = engine.Trainer(cfg, None, out=workdir / "run")
        t_setup = time.perf_counter() - t0
        methods = {"train": (trainer.procedure, "train_epoch"), "finish": (trainer, "finish")}
        wrapped = [name for name, (obj, method) in methods.items() if hasattr(obj, method)]
        for name in wrapped:
            obj, method = methods[name]
            setattr(obj, method, timed(name, getattr(obj, method)))
        run = trainer.run()
        sync(trainer.strategy.device)
        seconds = time.perf_counter() - t0
        task, target = trainer.model.task, trainer.cfg["target"]
        metric = HEADLINE[task]
        score = {"metric": metric, "value": float(run.metrics["test"][metric])}
        Xt, yt = trainer.splits.test
        dev = trainer.strategy.device
        last = test_score(trainer.model.net, Xt.to(dev), yt.to(dev), task, target,
                          trainer.model.to_data_units)
        extra = {
            "threads": trainer.cfg.get("threads"),
            "optimizer": describe_optimizer(trainer.procedure.optimizer),
            "best_epoch": run.best_epoch,
            "last_epoch_score": last,
            "breakdown": {
                "setup": t_setup,
                "train": spent["train"] if "train" in wrapped else None,
                "finish": spent["finish"] if "finish" in wrapped else None,
            },
        }
        if len(wrapped) == 2:
            extra["breakdown"]["between"] = seconds - t_setup - spent["train"] - spent["finish"]
        objects = {"optimizer": trainer.procedure.optimizer}
        if keep:
            objects.update(trainer=trainer, run=run, workdir=workdir)
        return Result(seconds, score, spent["train"] if "train" in wrapped else None, extra, weights(trainer.model.net),
                      objects)
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


def probe_engine(cfg: dict[str, Any]) -> tuple[Any, int]:
    """The optimizer and thread count the engine sets up for ``cfg`` (a Trainer built, not run)."""
    from zoo import engine

    workdir = Path(tempfile.mkdtemp(prefix="zoo-bench-"))
    try:
        trainer = engine.Trainer(cfg, None, out=workdir / "run")
        return trainer.procedure.optimizer, int(trainer.cfg.get("threads") or torch.get_num_threads())
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# -- the hand-written loops --------------------------------------------------------------


def _setup(cfg: dict[str, Any], device: torch.device):
    """Data and model exactly as ``zoo.engine.Trainer`` makes them, consuming the RNG as it does."""
    from zoo import parts
    from zoo.config import entries_for
    from zoo.evaluation import training_targets

    combo = entries_for(cfg)
    seed = cfg["seed"]
    torch.manual_seed(seed)
    splits = parts.load_data(combo, cfg)
    meta, target = splits.meta, combo.loss.spec.target
    mcfg = {**cfg, "target": target, "meta": meta.to_json()}
    torch.manual_seed(seed)
    run_model = parts.build_model(combo, mcfg, meta)
    parts.fit_scales(run_model, splits, mcfg, combo)  # the engine's preprocessing buffers
    run_model.to(device)
    X, y = splits.train
    y = training_targets(run_model, y.to(device), target)  # regression: standardised, as the engine does
    loss_fn = parts.build_loss(combo, cfg, device)
    return splits, meta, target, run_model, loss_fn, (X, y)


def run_tight(cfg: dict[str, Any], *, threads: int, make_optimizer: Callable[[Any], Any],
              epochs: int | None = None) -> Result:
    """The tight loop (see the module docstring); ``epochs=0`` only builds (for diagnosis)."""
    from zoo.evaluation import training_targets

    device = torch.device(cfg["device"])
    epochs = cfg["epochs"] if epochs is None else epochs
    threads_before = torch.get_num_threads()
    gc.collect()
    t0 = time.perf_counter()
    splits, meta, target, run_model, loss_fn, (X, y) = _setup(cfg, device)
    model = run_model.net  # the network the engine trains, on standardised inputs and targets
    X, y = X.to(device), y.to(device)
    Xv, yv = (t.to(device) for t in splits.val)
    yv = training_targets(run_model, yv, target)
    opt = make_optimizer(model.parameters())
    gen = torch.Generator(device="cpu").manual_seed(cfg["seed"])
    n, bs = len(X), cfg["batch_size"]
    train_seconds = 0.0
    torch.set_num_threads(threads)
    try:
        for _ in range(epochs):
            t = time.perf_counter()
            model.train()
            perm = torch.randperm(n, generator=gen).to(device, non_blocking=True)
            for i in range(0, n, bs):
                idx = perm[i : i + bs]
                loss = loss_fn(model(X.index_select(0, idx)), y.index_select(0, idx))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            sync(device)
            train_seconds += time.perf_counter() - t
            model.eval()
            with torch.no_grad():
                val_loss = float(loss_fn(model(Xv), yv))  # the engine's per-epoch validation (no RNG)
        Xt, yt = (t.to(device) for t in splits.test)
        score = test_score(model, Xt, yt, meta.task, target, run_model.to_data_units)
        sync(device)
        seconds = time.perf_counter() - t0
    finally:
        torch.set_num_threads(threads_before)
    extra = {"threads": threads, "val_loss": val_loss if epochs else None}
    return Result(seconds, score, train_seconds, extra, weights(model))


def run_guide(cfg: dict[str, Any]) -> Result:
    """The tutorials' loop: a shuffling DataLoader, default optimizer, default threads."""
    from torch.utils.data import DataLoader, TensorDataset

    from zoo.evaluation import training_targets

    device = torch.device(cfg["device"])
    gc.collect()
    t0 = time.perf_counter()
    splits, meta, target, run_model, loss_fn, (X, y) = _setup(cfg, device)
    model = run_model.net
    opt = GUIDE_OPTIMIZERS[cfg["optimizer"]](model.parameters(), {"momentum": 0.0, "nesterov": False,
                                                                  "weight_decay": 0.0, **cfg["optimizer_params"],
                                                                  "lr": cfg["lr"]})
    bs = cfg["batch_size"]
    loader = DataLoader(TensorDataset(X.cpu(), y.cpu()), batch_size=bs, shuffle=True)
    Xv, yv = splits.val
    val_loader = DataLoader(TensorDataset(Xv, training_targets(run_model, yv.to(device), target).cpu()),
                            batch_size=bs)
    train_seconds = 0.0
    for _ in range(cfg["epochs"]):
        t = time.perf_counter()
        model.train()
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            opt.zero_grad()
        sync(device)
        train_seconds += time.perf_counter() - t
        model.eval()
        val_loss = 0.0
        with torch.no_grad():
            for xb, yb in val_loader:
                val_loss += loss_fn(model(xb.to(device)), yb.to(device)).item()
    Xt, yt = (t.to(device) for t in splits.test)
    score = test_score(model, Xt, yt, meta.task, target, run_model.to_data_units)
    sync(device)
    seconds = time.perf_counter() - t0
    extra = {"threads": torch.get_num_threads(), "optimizer": describe_optimizer(opt)}
    return Result(seconds, score, train_seconds, extra)


# -- scikit-learn ------------------------------------------------------------------------

SKLEARN_ACTIVATIONS = {"tanh": "tanh", "relu": "relu", "sigmoid": "logistic", "identity": "identity"}


def sklearn_params(cfg: dict[str, Any]) -> dict[str, Any]:
    """The ``MLPRegressor``/``MLPClassifier`` settings that do the engine's work: every epoch, plain Adam."""
    if cfg["model"] != "mlp":
        raise ValueError(f"scikit-learn has no counterpart for model '{cfg['model']}'")
    if cfg["optimizer"] != "adam" or cfg["schedule"] != "none" or cfg["optimizer_params"].get("weight_decay"):
        raise ValueError("the scikit-learn comparison needs adam, schedule none and no weight decay")
    mp = cfg["model_params"]
    if mp.get("dropout"):
        raise ValueError("scikit-learn's MLPs have no dropout")
    epochs = cfg["epochs"]
    return {
        "hidden_layer_sizes": tuple(int(h) for h in mp["hidden"]),
        "activation": SKLEARN_ACTIVATIONS[mp["activation"]],
        "solver": "adam",
        "learning_rate_init": cfg["lr"],
        "batch_size": cfg["batch_size"],
        "max_iter": epochs,
        "n_iter_no_change": epochs,
        "tol": 0.0,
        "early_stopping": False,
        "shuffle": True,
        "alpha": 0.0,
        "random_state": cfg["seed"],
    }


def run_sklearn(cfg: dict[str, Any]) -> Result:
    """scikit-learn on the engine's splits (standardised features); regression targets standardised too.

    scikit-learn's MLPRegressor fits raw targets; the engine's network learns standardised
    ones (its loss is computed on them, see ``zoo.evaluation.training_targets``). To give scikit-learn the same problem, its targets
    are standardised with the training split's mean and std (as the engine's) and its
    predictions mapped back to the data's units before the test MSE.
    """
    import numpy as np
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    from zoo.config import entries_for
    from zoo.parts import load_data

    params = sklearn_params(cfg)
    gc.collect()
    t0 = time.perf_counter()
    splits = load_data(entries_for(cfg), cfg)
    task = splits.meta.task
    X, y = (t.numpy() for t in splits.train)
    Xt, yt = (t.numpy() for t in splits.test)
    X, Xt = X.reshape(len(X), -1), Xt.reshape(len(Xt), -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter reached: it is meant to be
        if task == "regression":
            y = y.reshape(len(y), -1).astype(np.float64)
            mean, std = y.mean(0), y.std(0, ddof=1)
            std = np.where(std > 0, std, 1.0)
            est = MLPRegressor(**params).fit(X, ((y - mean) / std).squeeze(-1) if y.shape[1] == 1 else (y - mean) / std)
            pred = est.predict(Xt).reshape(len(Xt), -1) * std + mean
            value = float(((pred - yt.reshape(len(yt), -1)) ** 2).mean())
        else:
            est = MLPClassifier(**params).fit(X, y)
            value = float((est.predict(Xt) == yt).mean())
    seconds = time.perf_counter() - t0
    extra = {"n_iter": int(est.n_iter_), "dtype": str(est.coefs_[0].dtype), "params": {
        k: (list(v) if isinstance(v, tuple) else v) for k, v in params.items()}}
    return Result(seconds, {"metric": HEADLINE[task], "value": value}, None, extra)
