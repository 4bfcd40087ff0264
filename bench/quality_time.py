"""Figure 9: wall time until the TEST score first reaches a fixed target, zoo vs scikit-learn.

Each tool runs with its own best default settings for the architecture:

- zoo: the recipe exactly as ``zoo train RECIPE`` runs it (its own schedule, epochs,
  learning rate and batch size), trained by ``zoo.engine.Trainer`` with one extra callback
  that scores the current weights on the test split after every epoch (its own time taken
  off the clock) and stops the run once the target is reached (``trainer.stop``);
- scikit-learn's ``MLPRegressor`` / ``MLPClassifier`` with the same hidden layers and
  activation and everything else at scikit-learn's defaults (adam, ``learning_rate_init``
  0.001, ``batch_size="auto"``, ``alpha`` 1e-4), and a second variant with the recipe's
  learning rate and batch size; both trained one epoch at a time with ``partial_fit`` on the
  engine's standardised splits (regression targets standardised with the training split's
  mean and std, predictions mapped back, as :func:`bench.workloads.run_sklearn` does), the test
  split scored after each epoch with the scoring off the clock.

Every clock starts before the data is loaded and the model built (as in
:func:`bench.workloads.run_engine`). A side that does not reach the target within its budget
(epochs or seconds; zoo also stops at the end of its recipe) is reported as never reaching it,
its time being the time it ran (a lower bound on its time to the target).
"""

from __future__ import annotations

import gc
import shutil
import statistics
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from . import figures as f
from . import workloads as w

#: The test score to reach: (metric, op, value), in the data's units.
TARGETS: dict[str, tuple[str, str, float]] = {
    "regression-mlp": ("mse", "<=", 1.10),
    "moons-mlp": ("accuracy", ">=", 0.86),
}
#: What each side may spend per run (scikit-learn's MLPRegressor needs about 800-1200 epochs on regression-mlp).
BUDGET_EPOCHS, BUDGET_SECONDS = 2000, 60.0
QUICK_BUDGET_SECONDS = 10.0


@dataclass
class Reach:
    """One timed run of one side: when (and whether) it reached the target."""

    seconds: float  # to the target, or the whole run when it never got there (scoring excluded)
    reached: bool
    epochs: int  # epochs trained when the target was reached (or in all)
    score: dict[str, Any]  # the test score when the target was reached, else the best seen
    extra: dict[str, Any] = field(default_factory=dict)


def reached(score: float, target: tuple[str, str, float]) -> bool:
    _, op, value = target
    return score <= value if op == "<=" else score >= value


def _better(a: float, b: float | None, target: tuple[str, str, float]) -> bool:
    return b is None or (a < b if target[1] == "<=" else a > b)


# -- zoo -----------------------------------------------------------------------------------


def run_zoo(cfg: dict[str, Any], target: tuple[str, str, float], *, max_epochs: int, max_seconds: float) -> Reach:
    """The recipe through ``zoo.engine.Trainer``, stopped when the test score reaches ``target``."""
    from zoo import engine
    from zoo.callbacks import Callback

    class TestTarget(Callback):
        state_key = "bench_test_target"

        def __init__(self, t0: float) -> None:
            self.t0, self.scoring = t0, 0.0
            self.hit: tuple[float, int, dict] | None = None
            self.best: tuple[float, int, dict] | None = None
            self.elapsed = 0.0

        def on_epoch_end(self, trainer, row) -> None:
            t = time.perf_counter()
            self.elapsed = t - self.t0 - self.scoring
            Xt, yt = trainer.splits.test
            dev = trainer.strategy.device
            score = w.test_score(trainer.model.net, Xt.to(dev), yt.to(dev), trainer.model.task,
                                 trainer.cfg["target"], trainer.model.to_data_units)
            epoch = row["epoch"]
            if self.best is None or _better(score["value"], self.best[2]["value"], target):
                self.best = (self.elapsed, epoch, score)
            if reached(score["value"], target):
                self.hit = (self.elapsed, epoch, score)
                trainer.stop(f"test {target[0]} reached {score['value']:.4f} after epoch {epoch}")
            elif epoch >= max_epochs or self.elapsed >= max_seconds:
                trainer.stop(f"budget spent after epoch {epoch}")
            self.scoring += time.perf_counter() - t

    workdir = Path(tempfile.mkdtemp(prefix="zoo-bench-"))
    try:
        gc.collect()
        t0 = time.perf_counter()
        cb = TestTarget(t0)
        trainer = engine.Trainer(cfg, None, out=workdir / "run", callbacks=[cb])
        setup = time.perf_counter() - t0
        trainer.run()
        extra = {"setup_seconds": setup, "optimizer": w.describe_optimizer(trainer.procedure.optimizer),
                 "threads": trainer.cfg.get("threads"), "schedule": cfg["schedule"], "recipe_epochs": cfg["epochs"]}
        if cb.hit is not None:
            return Reach(cb.hit[0], True, cb.hit[1], cb.hit[2], extra)
        return Reach(cb.elapsed, False, trainer.epoch, cb.best[2], extra)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# -- scikit-learn --------------------------------------------------------------------------


def sklearn_variants(cfg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """scikit-learn's defaults for the recipe's architecture, and the same with the recipe's lr and batch size."""
    mp = cfg["model_params"]
    arch = {"hidden_layer_sizes": tuple(int(h) for h in mp["hidden"]),
            "activation": w.SKLEARN_ACTIVATIONS[mp["activation"]], "random_state": cfg["seed"]}
    return {"defaults": arch,
            "recipe lr and batch": {**arch, "learning_rate_init": cfg["lr"], "batch_size": cfg["batch_size"]}}


def run_sklearn(cfg: dict[str, Any], params: dict[str, Any], target: tuple[str, str, float], *, max_epochs: int,
                max_seconds: float) -> Reach:
    """scikit-learn one ``partial_fit`` epoch at a time until the test score reaches ``target``."""
    import numpy as np
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    from zoo.config import entries_for
    from zoo.parts import load_data

    gc.collect()
    t0 = time.perf_counter()
    scoring = 0.0
    splits = load_data(entries_for(cfg), cfg)
    task = splits.meta.task
    X, y = (t.numpy() for t in splits.train)
    Xt, yt = (t.numpy() for t in splits.test)
    X, Xt = X.reshape(len(X), -1), Xt.reshape(len(Xt), -1)
    regression = task == "regression"
    if regression:
        y = y.reshape(len(y), -1).astype(np.float64)
        mean, std = y.mean(0), y.std(0, ddof=1)
        std = np.where(std > 0, std, 1.0)
        ys = (y - mean) / std
        ys = ys.squeeze(-1) if ys.shape[1] == 1 else ys
        est = MLPRegressor(**params)
        step: Callable[[], Any] = lambda: est.partial_fit(X, ys)  # noqa: E731
    else:
        est = MLPClassifier(**params)
        classes = np.unique(y)
        step = lambda: est.partial_fit(X, y, classes=classes)  # noqa: E731
    hit = best = None
    epoch, elapsed = 0, 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning and the like: the epochs are ours to count
        while True:
            step()
            epoch += 1
            t = time.perf_counter()
            elapsed = t - t0 - scoring
            if regression:
                pred = est.predict(Xt).reshape(len(Xt), -1) * std + mean
                value = float(((pred - yt.reshape(len(yt), -1)) ** 2).mean())
            else:
                value = float((est.predict(Xt) == yt).mean())
            score = {"metric": w.HEADLINE[task], "value": value}
            if best is None or _better(value, best[2]["value"], target):
                best = (elapsed, epoch, score)
            scoring += time.perf_counter() - t
            if reached(value, target):
                hit = (elapsed, epoch, score)
                break
            if epoch >= max_epochs or elapsed >= max_seconds:
                break
    extra = {"dtype": str(est.coefs_[0].dtype), "batch_size": params.get("batch_size", "auto"),
             "learning_rate_init": params.get("learning_rate_init", 0.001)}
    if hit is not None:
        return Reach(hit[0], True, hit[1], hit[2], extra)
    return Reach(elapsed, False, epoch, best[2], extra)


# -- the figure ----------------------------------------------------------------------------


def budget(settings: f.Settings) -> tuple[int, float]:
    """(epochs, seconds) each side may spend: small with ``--quick`` (``--epochs`` caps the epochs)."""
    epochs = settings.epochs_for("") or BUDGET_EPOCHS
    return epochs, QUICK_BUDGET_SECONDS if settings.quick else BUDGET_SECONDS


def quality_time(settings: f.Settings, log: f.Log, targets: dict[str, tuple[str, str, float]] | None = None,
                 max_epochs: int | None = None, max_seconds: float | None = None) -> list[dict]:
    """Figure 9: per recipe and scikit-learn variant, sklearn's time to the target / zoo's."""
    targets = TARGETS if targets is None else targets
    b_epochs, b_seconds = budget(settings)
    b_epochs = max_epochs or b_epochs
    b_seconds = max_seconds or b_seconds
    rows: list[dict] = []
    for recipe, target in targets.items():
        rows += _recipe(settings, log, recipe, target, b_epochs, b_seconds)
    return rows


def _describe(target: tuple[str, str, float]) -> str:
    return f"{'MSE' if target[0] == 'mse' else target[0]} {target[1]} {target[2]:g}"


def _recipe(settings: f.Settings, log: f.Log, recipe: str, target: tuple[str, str, float], max_epochs: int,
            max_seconds: float) -> list[dict]:
    cfg = w.config(recipe, epochs=None, device="cpu", seed=settings.seed)  # zoo train RECIPE, as it is
    if cfg["model"] != "mlp":
        raise ValueError(f"{recipe}: scikit-learn has no counterpart for model '{cfg['model']}'")
    variants = sklearn_variants(cfg)
    est = "MLPRegressor" if target[0] == "mse" else "MLPClassifier"
    where = f"quality-time {recipe}"
    zoo_epochs = min(cfg["epochs"], max_epochs)
    log(f"{where}: test {_describe(target)}; zoo {cfg['epochs']} epochs ({cfg['schedule']} schedule, lr {cfg['lr']}, "
        f"batch {cfg['batch_size']}); budget {max_epochs} epochs / {max_seconds:g} s; {settings.repeats} repeats, "
        f"seed {settings.seed} every repeat")
    kw = {"max_epochs": max_epochs, "max_seconds": max_seconds}

    sides: dict[str, Callable[[], Reach]] = {"zoo": lambda: run_zoo(cfg, target, **kw)}
    for name, params in variants.items():
        sides[name] = lambda p=params: run_sklearn(cfg, p, target, **kw)
    if not settings.quick:  # warm-up: one epoch of each side
        run_zoo(cfg, target, max_epochs=1, max_seconds=max_seconds)
        for params in variants.values():
            run_sklearn(cfg, params, target, max_epochs=1, max_seconds=max_seconds)
    res = f.interleave(sides, settings.repeats, log, where)
    zoo = res["zoo"]
    zoo_reached = all(r.reached for r in zoo)
    zoo_side = f.side("zoo train " + recipe, [r.seconds for r in zoo], "s", [r.score for r in zoo],
                      reached=zoo_reached, epochs=[r.epochs for r in zoo], optimizer=zoo[0].extra["optimizer"],
                      threads=zoo[0].extra["threads"], schedule=zoo[0].extra["schedule"],
                      recipe_epochs=cfg["epochs"], lr=cfg["lr"], batch_size=cfg["batch_size"],
                      setup_seconds=statistics.median(r.extra["setup_seconds"] for r in zoo))
    zoo_text = (f"zoo reached it after {_epochs_text(zoo)} (of its recipe's {cfg['epochs']}, {cfg['schedule']} "
                f"schedule, lr {cfg['lr']}, batch {cfg['batch_size']}, {zoo[0].extra['optimizer']}, "
                f"{zoo[0].extra['threads']} thread(s); of its time, {zoo_side['setup_seconds']:.3f} s building the "
                "Trainer: data, model, run directory)" if zoo_reached else
                f"zoo never reached {_describe(target)} within {zoo_epochs} epochs / {max_seconds:g} s "
                f"(best {_fmt(zoo_side['score'])}); its time is the whole run")
    rows = []
    for name in variants:
        got = res[name]
        sk_reached = all(r.reached for r in got)
        params = variants[name]
        other = f.side(f"scikit-learn {est} ({name})", [r.seconds for r in got], "s", [r.score for r in got],
                       reached=sk_reached, epochs=[r.epochs for r in got], dtype=got[0].extra["dtype"],
                       params={k: list(v) if isinstance(v, tuple) else v for k, v in params.items()})
        ratio = statistics.median(r.seconds for r in got) / statistics.median(r.seconds for r in zoo)
        sk_text = (f"scikit-learn ({name}: adam, learning_rate_init {got[0].extra['learning_rate_init']}, batch_size "
                   f"{got[0].extra['batch_size']}, alpha {params.get('alpha', 'default 1e-4')}, "
                   f"{got[0].extra['dtype']}) ")
        sk_text += (f"reached it after {_epochs_text(got)}" if sk_reached else
                    f"never reached {_describe(target)} within {max_epochs} epochs / {max_seconds:g} s (best "
                    f"{_fmt(other['score'])}); its time is the whole budget it ran, so the ratio is a lower bound")
        notes = [f"time until the test {_describe(target)} first holds (scoring after each epoch, off the clock; "
                 "data and model setup on the clock)", zoo_text, sk_text,
                 "scores: the test score when the target was reached (zoo: the current epoch's weights), or the best "
                 f"seen; every repeat runs seed {settings.seed} (the same run, timed again)"]
        if target[0] == "mse":
            notes.append("scikit-learn fits targets standardised like the engine's, predictions mapped back")
        r = f.row("quality-time", f"{recipe}: time to test {_describe(target)}, zoo vs {est} ({name})", zoo_side,
                  other, ratio, f.SPEEDUP, ">=", 1.0, ">= 1.0x (zoo reaches the target first)", notes,
                  workload=recipe, device="cpu", quality_target={"metric": target[0], "op": target[1],
                                                                  "value": target[2]},
                  budget={"epochs": max_epochs, "seconds": max_seconds}, zoo_reached=zoo_reached,
                  other_reached=sk_reached, repeats=settings.repeats)
        r["target_met"] = r["target_met"] and zoo_reached
        rows.append(r)
    log(f"{where}: zoo {statistics.median(r.seconds for r in zoo):.3f} s ({_epochs_text(zoo)}"
        f"{'' if zoo_reached else ', never reached'}); "
        + "; ".join(f"{n} {statistics.median(r.seconds for r in res[n]):.3f} s ({_epochs_text(res[n])}"
                    f"{'' if all(r.reached for r in res[n]) else ', never reached'})" for n in variants))
    return rows


def _epochs_text(results: list[Reach]) -> str:
    epochs = sorted({r.epochs for r in results})
    return f"{epochs[0]} epochs" if len(epochs) == 1 else f"{epochs[0]}-{epochs[-1]} epochs"


def _fmt(score: dict) -> str:
    return f"{score['metric']} {score['value']:.4f}"
