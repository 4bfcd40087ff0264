"""Figure 8: the zoo engine vs PyTorch Lightning's ``Trainer`` and skorch, at equal work.

Every side trains the very network the engine trains (built by :func:`bench.workloads._setup`
through zoo's registry, seeded the same way) on the same standardised splits, with Adam at
the recipe's learning rate, the recipe's batch size and epochs, no schedule, a validation
pass over the whole validation split after every epoch, and the test score at the end
(:func:`bench.workloads.test_score`, the same function for every side). The peers run with
the engine's thread count (``torch.set_num_threads`` for their timed region, restored after).

- zoo: :func:`bench.workloads.run_engine`, exactly what ``zoo train`` runs (checkpoints, final
  metrics, saving and the reload check included); its score is its best epoch's weights.
- Lightning: a ``LightningModule`` wrapping the network (``training_step`` the recipe's loss,
  ``validation_step`` the validation loss, ``configure_optimizers`` ``torch.optim.Adam``), a
  shuffling ``DataLoader`` for training, one over the validation split, and
  ``lightning.Trainer(max_epochs=..., accelerator="cpu", devices=1, logger=False, ...,
  num_sanity_val_steps=0)``: no sanity validation, no progress bar, no checkpoints. Its score is
  its last epoch's weights.
- skorch: ``NeuralNetRegressor`` (``MSELoss`` on the standardised targets) or
  ``NeuralNetClassifier`` (``CrossEntropyLoss``: skorch's default ``NLLLoss`` wants
  log-probabilities), ``torch.optim.Adam``, validating on the same validation split each epoch
  (``predefined_split``). Its score is its last epoch's weights.

Each timed region runs from the resolved config to the test score (data and model setup
included), like :func:`bench.workloads.run_engine`'s. Lightning and skorch are the optional
``bench`` extra: a peer that is not installed is skipped with one log line (and a note on
the other peer's rows), never an error.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import logging
import statistics
import time
import warnings
from typing import Any, Callable

import torch

from . import figures as f
from . import workloads as w

RECIPES = ("regression-mlp", "moons-mlp", "digits-cnn")
#: peer -> (importable module, its name in the report)
PEERS = {"lightning": ("lightning", "PyTorch Lightning"), "skorch": ("skorch", "skorch")}
INSTALL_HINT = "pip install 'zoo[bench]'"
#: The speed-up the engine should have over each peer, per recipe (the default when not listed).
TARGETS = {"lightning": 3.0, "skorch": 2.0}
TARGET_OVERRIDES = {"digits-cnn": {"lightning": 1.0, "skorch": 1.0}}


def available() -> dict[str, str | None]:
    """Each peer's install hint when it cannot be imported (None when it can)."""
    out: dict[str, str | None] = {}
    for peer, (module, _) in PEERS.items():
        try:
            importlib.import_module(module)
        except ImportError:
            out[peer] = f"{module} is not installed: {INSTALL_HINT}"
        else:
            out[peer] = None
    return out


def target_for(recipe: str, peer: str) -> float:
    return TARGET_OVERRIDES.get(recipe, {}).get(peer, TARGETS[peer])


# -- the sides -----------------------------------------------------------------------------


def _prepare(cfg: dict[str, Any]):
    """What every peer starts from (inside its timed region): data, the engine's network, loss and splits."""
    from zoo.evaluation import training_targets

    device = torch.device("cpu")
    splits, meta, target, run_model, loss_fn, (X, y) = w._setup(cfg, device)
    Xv, yv = splits.val
    yv = training_targets(run_model, yv, target)  # regression: standardised like the training targets
    return splits, meta, target, run_model, loss_fn, (X, y), (Xv, yv)


class _Clock:
    seconds = 0.0


@contextlib.contextmanager
def _timed(threads: int):
    """A peer's timed region: garbage collected first, then on the clock and on ``threads`` intra-op threads
    (restored after); ``clock.seconds`` is the region's wall time once it ends without an error."""
    before = torch.get_num_threads()
    gc.collect()
    clock = _Clock()
    t0 = time.perf_counter()
    torch.set_num_threads(threads)
    try:
        yield clock
        clock.seconds = time.perf_counter() - t0
    finally:
        torch.set_num_threads(before)


def _quiet_lightning() -> None:
    for name in ("lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)


def run_lightning(cfg: dict[str, Any], *, threads: int) -> w.Result:
    """The recipe trained by ``lightning.Trainer`` (see the module docstring)."""
    import lightning as L
    from lightning.fabric.utilities.warnings import PossibleUserWarning
    from torch.utils.data import DataLoader, TensorDataset

    _quiet_lightning()
    lr, bs, epochs = cfg["lr"], cfg["batch_size"], cfg["epochs"]

    class Module(L.LightningModule):
        def __init__(self, net: torch.nn.Module, loss_fn: Callable) -> None:
            super().__init__()
            self.net, self.loss_fn = net, loss_fn

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            x, y = batch
            return self.loss_fn(self.net(x), y)

        def validation_step(self, batch, batch_idx):
            x, y = batch
            loss = self.loss_fn(self.net(x), y)
            self.log("val_loss", loss, batch_size=len(x))
            return loss

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=lr)

    with _timed(threads) as clock:
        splits, meta, target, run_model, loss_fn, (X, y), (Xv, yv) = _prepare(cfg)
        module = Module(run_model.net, loss_fn)
        train_loader = DataLoader(TensorDataset(X, y), batch_size=bs, shuffle=True)
        val_loader = DataLoader(TensorDataset(Xv, yv), batch_size=len(Xv))  # the whole split, one batch (as the engine)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PossibleUserWarning)  # num_workers, log_every_n_steps
            warnings.filterwarnings("ignore", ".*LeafSpec.*", FutureWarning)  # lightning's use of torch's pytree
            trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False,
                                enable_progress_bar=False, enable_checkpointing=False, enable_model_summary=False,
                                num_sanity_val_steps=0, deterministic=False)
            trainer.fit(module, train_loader, val_loader)
        Xt, yt = splits.test
        score = w.test_score(module.net, Xt, yt, meta.task, target, run_model.to_data_units)
    seconds = clock.seconds
    extra = {"threads": threads, "optimizer": w.describe_optimizer(trainer.optimizers[0]),
             "epochs_run": int(trainer.current_epoch),
             "val_loss": float(trainer.callback_metrics["val_loss"]) if "val_loss" in trainer.callback_metrics
             else None}
    return w.Result(seconds, score, None, extra)


def run_skorch(cfg: dict[str, Any], *, threads: int) -> w.Result:
    """The recipe trained by skorch's ``NeuralNetRegressor`` / ``NeuralNetClassifier`` (see the module docstring)."""
    from skorch import NeuralNetClassifier, NeuralNetRegressor
    from skorch.dataset import Dataset
    from skorch.helper import predefined_split

    with _timed(threads) as clock:
        splits, meta, target, run_model, loss_fn, (X, y), (Xv, yv) = _prepare(cfg)
        regression = meta.task == "regression"
        cls, criterion = ((NeuralNetRegressor, torch.nn.MSELoss) if regression
                          else (NeuralNetClassifier, torch.nn.CrossEntropyLoss))
        net = cls(run_model.net, criterion=criterion, optimizer=torch.optim.Adam, lr=cfg["lr"],
                  batch_size=cfg["batch_size"], max_epochs=cfg["epochs"], iterator_train__shuffle=True,
                  iterator_valid__batch_size=len(Xv),  # the whole validation split, one batch
                  train_split=predefined_split(Dataset(Xv, yv)), verbose=0, device="cpu")
        net.fit(X, y)
        Xt, yt = splits.test
        score = w.test_score(net.module_, Xt, yt, meta.task, target, run_model.to_data_units)
    seconds = clock.seconds
    extra = {"threads": threads, "optimizer": w.describe_optimizer(net.optimizer_),
             "epochs_run": len(net.history), "criterion": f"torch.nn.{criterion.__name__}",
             "val_loss": float(net.history[-1, "valid_loss"]) if len(net.history) else None}
    return w.Result(seconds, score, None, extra)


# -- the figure ----------------------------------------------------------------------------


def peers(settings: f.Settings, log: f.Log, recipes: tuple[str, ...] = RECIPES) -> list[dict]:
    """Figure 8: one row per recipe and installed peer (ratio: peer time / zoo time)."""
    missing = available()
    for peer, why in missing.items():
        if why:
            log(f"peers: {why}; its rows are skipped")
    installed = [p for p, why in missing.items() if why is None]
    if not installed:
        log(f"peers: neither PyTorch Lightning nor skorch is installed ({INSTALL_HINT}): no rows")
        return []
    skipped = [why for why in missing.values() if why]
    rows: list[dict] = []
    for recipe in recipes:
        rows += _recipe(settings, log, recipe, installed, skipped)
    return rows


def _recipe(settings: f.Settings, log: f.Log, recipe: str, installed: list[str], skipped: list[str]) -> list[dict]:
    cfg = w.config(recipe, epochs=settings.epochs_for(recipe), device="cpu", seed=settings.seed, schedule="none")
    if cfg["optimizer"] != "adam" or cfg["optimizer_params"].get("weight_decay"):
        raise ValueError(f"{recipe}: the peers figure needs plain adam (got {cfg['optimizer']} "
                         f"{cfg['optimizer_params']})")
    engine_opt, threads = w.probe_engine(cfg)
    zoo_opt = w.describe_optimizer(engine_opt)
    where = f"peers {recipe}"
    log(f"{where}: {cfg['epochs']} epochs, batch {cfg['batch_size']}, lr {cfg['lr']}, {threads} thread(s), "
        f"{settings.repeats} repeats (engine, {', '.join(installed)})")
    runners: dict[str, Callable[[dict], w.Result]] = {
        "engine": w.run_engine,
        "lightning": lambda c: run_lightning(c, threads=threads),
        "skorch": lambda c: run_skorch(c, threads=threads),
    }
    sides = {name: (lambda fn=runners[name]: fn(cfg)) for name in ("engine", *installed)}
    if not settings.quick:  # one epoch of each side first: imports, kernels, allocator
        warm_cfg = {**cfg, "epochs": 1}
        for name in sides:
            runners[name](warm_cfg)
    res = f.interleave(sides, settings.repeats, log, where)
    eng = res["engine"]
    zoo_side = f.side("zoo engine", [r.seconds for r in eng], "s", [r.score for r in eng], threads=threads,
                      optimizer=zoo_opt, best_epoch=[r.extra["best_epoch"] for r in eng], breakdown=f._breakdown(eng),
                      last_epoch_score=f._score([r.extra["last_epoch_score"] for r in eng]))
    common = {"workload": recipe, "device": "cpu", "epochs": cfg["epochs"], "batch_size": cfg["batch_size"],
              "lr": cfg["lr"], "repeats": settings.repeats}
    rows = []
    for peer in installed:
        got = res[peer]
        name = PEERS[peer][1]
        label = "lightning.Trainer" if peer == "lightning" else (
            "skorch NeuralNetRegressor" if eng[0].score["metric"] == "mse" else "skorch NeuralNetClassifier")
        other = f.side(label, [r.seconds for r in got], "s", [r.score for r in got], threads=threads,
                       optimizer=got[0].extra["optimizer"], epochs_run=got[0].extra["epochs_run"])
        ratio = statistics.median(r.seconds for r in got) / statistics.median(r.seconds for r in eng)
        bound = target_for(recipe, peer)
        better = f.score_not_worse(zoo_side["score"], other["score"])
        notes = [f"zoo: {zoo_opt}; {name}: {got[0].extra['optimizer']}; lr {cfg['lr']}, no schedule",
                 f"{threads} thread(s) on every side, {cfg['epochs']} epochs, batch {cfg['batch_size']}, "
                 "validation over the whole validation split every epoch (one batch on every side)",
                 "zoo's score is its best epoch's weights (as zoo train reports it; last epoch: "
                 f"{_fmt(zoo_side['last_epoch_score'])}), {name}'s its last epoch's",
                 f"zoo score {'equal or better' if better else 'WORSE'} (tolerance "
                 f"{f.SCORE_TOLERANCE.get(zoo_side['score']['metric'])})"]
        if peer == "lightning":
            notes.append("Lightning: num_sanity_val_steps=0, no logger, progress bar, checkpoints or model summary")
        else:
            notes.append(f"skorch: criterion {got[0].extra['criterion']}, predefined_split on the validation split"
                         + (", targets standardised like the engine's" if eng[0].score["metric"] == "mse" else ""))
        notes += [f"not measured: {why}" for why in skipped]
        r = f.row("peers", f"{recipe}: engine vs {name}", zoo_side, other, ratio, f.SPEEDUP, ">=", bound,
                  f">= {bound:.1f}x with equal or better score", notes, phase="end to end", peer=peer,
                  score_not_worse=better, **common)
        r["target_met"] = r["target_met"] and better
        rows.append(r)
    return rows


def _fmt(score: dict) -> str:
    return f"{score['metric']} {score['value']:.4f}"
