"""Pictures of a saved run: what ``zoo plot`` draws.

- ``curves.png``: training and validation loss by epoch, and the validation metrics
  by epoch (from ``history.csv``), with the best epoch marked;
- ``fit.png`` (regression with one input feature): the train and test points and the
  model's curve over a dense grid, in the data's original units;
- ``decision.png`` (classification with two input features): the model's decision
  regions under the train and test points, in the data's original units;
- ``confusion.png`` (multiclass): the confusion matrix on the test split;
- ``samples.png`` (generation on two features): the model's samples over the test split's
  points, in the data's original units; (generation on images): a grid of 64 samples;
- ``returns.png`` (control): the return curve, by environment steps: the mean return of the
  training episodes (exploring) and of the greedy policy's validation episodes, the best epoch marked.

matplotlib is an optional extra (``pip install 'zoo[plot]'``). Figures are drawn with
the object-oriented API on an Agg canvas (no pyplot, no global backend change), and
each PNG is written atomically.
"""

from __future__ import annotations

import contextvars
import math
import os
from pathlib import Path
from typing import Any, Callable

from . import rundir as runs
from .errors import UsageError, ZooError
from .files import atomic_path
from .runlist import best_from_history, minimize

INSTALL_HINT = "pip install 'zoo[plot]'"
DPI = 110
MAX_POINTS = 1500  # per split in scatter plots; more only hides the picture under dots
MAX_DECISION_POINTS = 800  # train points over decision regions (test: half as many)
MAX_LAZY = 2000  # samples read from a lazily loaded split (an image folder) for a picture
TRAIN_COLOR, VAL_COLOR = "#1f77b4", "#d62728"


class MissingMatplotlib(ZooError):
    """matplotlib, an optional extra, is not installed."""


def require_matplotlib(who: str = "zoo plot") -> None:
    """Raise a one-line ZooError naming the install command when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
    except ImportError:
        raise MissingMatplotlib(f"{who} needs matplotlib, which is not installed: {INSTALL_HINT}") from None


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


#: While :func:`plot_run` is given ``figures``: the list each saved picture's Figure is added to.
_COLLECT: contextvars.ContextVar[list | None] = contextvars.ContextVar("zoo_plot_figures", default=None)


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, facecolor="white")
    collect = _COLLECT.get()
    if collect is not None:
        collect.append(fig)
    return path


class Figures(list):
    """The matplotlib Figures of a run's pictures (:meth:`zoo.engine.Run.plot`), in the order drawn.

    A plain list of :class:`matplotlib.figure.Figure` (``fig.savefig(...)``, ``fig.axes``...) that a notebook
    shows as the pictures themselves when it is a cell's value (``display(fig)`` shows one)."""

    def _repr_html_(self) -> str:
        import base64
        import io

        parts = []
        for fig in self:
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
            parts.append(f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}"/>')
        return "<div>" + "".join(parts) + "</div>"


def _run_title(cfg: dict[str, Any], run_dir: Path) -> str:
    what = cfg.get("recipe") or f"{cfg.get('dataset')} + {cfg.get('model')} + {cfg.get('loss')}"
    return f"{run_dir.name}  ({what})" if what not in run_dir.name else run_dir.name


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def _pretty(name: str) -> str:
    return name.removeprefix("val_").replace("_", " ")


def _monitor_text(monitor: str) -> str:
    return ("validation " if monitor.startswith("val_") else "") + _pretty(monitor)


def _same_series(history: list[dict], a: str, b: str) -> bool:
    pairs = [(r.get(a), r.get(b)) for r in history]
    return all(x is not None and y is not None and abs(x - y) <= 1e-6 * max(1.0, abs(y)) for x, y in pairs)


# -- (a) learning curves -----------------------------------------------------------------


def plot_curves(run_dir: Path, cfg: dict[str, Any]) -> Path | None:
    from matplotlib.ticker import MaxNLocator

    history = runs.RunDir(run_dir).read_history()
    if not history:
        return None
    metrics = runs.RunDir(run_dir).read_metrics()
    monitor = metrics.get("monitor") or cfg.get("monitor") or "val_loss"
    best_epoch = metrics.get("best_epoch") if "best_epoch" in metrics else best_from_history(history, monitor)[0]

    epochs = [int(r.get("epoch") or i) for i, r in enumerate(history, 1)]
    columns = [k for k in history[0] if k.startswith("val_") and k != "val_loss"
               and not _same_series(history, k, "val_loss")]  # val_mse is the loss of an mse run
    errors = [k for k in columns if minimize(k)]  # mse, mae: unbounded, smaller is better
    scores = [k for k in columns if not minimize(k)]  # accuracy, f1, r2...: bounded, larger is better
    panels = [("loss", ["train_loss", "val_loss"])]
    if errors:
        panels.append(("validation errors", errors))
    if scores:
        panels.append(("validation scores", scores))

    fig = _figure(5.2 * len(panels), 4.4)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    marker = "o" if len(epochs) <= 40 else None
    for ax, (title, keys) in zip(axes, panels):
        for i, key in enumerate(keys):
            ys = [r.get(key) for r in history]
            ys = [math.nan if y is None else y for y in ys]
            color = None
            label = _pretty(key)
            if title == "loss":
                color = TRAIN_COLOR if key == "train_loss" else VAL_COLOR
                label = "training" if key == "train_loss" else "validation"
            ax.plot(epochs, ys, marker=marker, markersize=3.5, linewidth=1.6, color=color, label=label)
        if best_epoch is not None:
            ax.axvline(best_epoch, color="0.45", linestyle="--", linewidth=1.0, zorder=0,
                       label=f"best epoch ({best_epoch})")
            if monitor in keys or (title == "loss" and monitor == "val_loss"):
                row = history[epochs.index(best_epoch)] if best_epoch in epochs else {}
                v = row.get(monitor)
                if v is not None:
                    ax.plot([best_epoch], [v], marker="*", markersize=15, color="gold", markeredgecolor="black",
                            linestyle="none", zorder=5, label=f"best {_monitor_text(monitor)} {_fmt(v)}")
        finite = [r.get(k) for r in history for k in keys if r.get(k) is not None and r.get(k) > 0]
        if title != "validation scores" and len(finite) > 1 and max(finite) / min(finite) > 30:
            ax.set_yscale("log")
        ax.set_title(title.capitalize() if title != "loss" else f"Loss ({cfg.get('loss', '')})")
        ax.set_xlabel("epoch")
        ax.set_ylabel({"loss": "loss", "validation errors": "error (lower is better)",
                       "validation scores": "score (higher is better)"}[title])
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.margins(x=0.06)
        if len(epochs) == 1:
            ax.set_xlim(epochs[0] - 0.5, epochs[0] + 0.5)
            ax.set_xticks(epochs)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small", loc="best")
    fig.suptitle(f"Learning curves: {_run_title(cfg, run_dir)}", fontsize="large")
    return _save(fig, run_dir / "curves.png")


def plot_returns(run_dir: Path, cfg: dict[str, Any]) -> Path | None:
    """The return curve of a control run (see the module's description)."""
    history = runs.RunDir(run_dir).read_history()
    if not history or "val_mean_return" not in history[0]:
        return None
    metrics = runs.RunDir(run_dir).read_metrics()
    monitor = metrics.get("monitor") or cfg.get("monitor") or "val_mean_return"
    best_epoch = metrics.get("best_epoch") if "best_epoch" in metrics else best_from_history(history, monitor)[0]
    by_steps = all(r.get("env_steps") is not None for r in history)
    xs = [r["env_steps"] if by_steps else int(r.get("epoch") or i) for i, r in enumerate(history, 1)]
    fig = _figure(6.4, 4.4)
    ax = fig.subplots()
    marker = "o" if len(xs) <= 40 else None
    if all(r.get("train_return") is not None for r in history):
        ax.plot(xs, [r["train_return"] for r in history], marker=marker, markersize=3.5, linewidth=1.4,
                color=TRAIN_COLOR, alpha=0.8, label="training episodes (exploring)")
    ax.plot(xs, [r["val_mean_return"] for r in history], marker=marker, markersize=3.5, linewidth=1.8,
            color=VAL_COLOR, label="greedy policy (validation episodes)")
    epochs = [int(r.get("epoch") or i) for i, r in enumerate(history, 1)]
    if best_epoch in epochs:
        i = epochs.index(best_epoch)
        ax.plot([xs[i]], [history[i]["val_mean_return"]], marker="*", markersize=15, color="gold",
                markeredgecolor="black", linestyle="none", zorder=5,
                label=f"best epoch ({best_epoch}): {_fmt(history[i]['val_mean_return'])}")
    test = metrics.get("test", {}).get("mean_return") if isinstance(metrics.get("test"), dict) else None
    if test is not None:
        ax.axhline(test, color="0.35", linestyle=":", linewidth=1.2,
                   label=f"test: {_fmt(test)} (best epoch's weights)")
    ax.set_xlabel("environment steps" if by_steps else "epoch")
    ax.set_ylabel("mean return per episode")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", loc="best")
    fig.suptitle(f"Return curve: {_run_title(cfg, run_dir)}", fontsize="large")
    return _save(fig, run_dir / "returns.png")


# -- the model on its data -------------------------------------------------------------


class _Loaded:
    """The run's model (raw inputs in), config, and its data rebuilt from the seed (standardised)."""

    def __init__(self, run_dir: Path) -> None:
        from .parts import load_data
        from .inference import Predictor

        self.predictor = Predictor(run_dir, "cpu")
        self.cfg = self.predictor.cfg
        self.splits = load_data(self.predictor.combo, self.cfg)
        self.meta = self.cfg["meta"]
        self.model = self.predictor.model

    def tensors(self, name: str, limit: int | None = None, seed: int = 0):
        """``(X, y, total)`` of a split as tensors: all of an in-memory split, at most ``limit`` samples
        (seeded) of a lazily read one, so that pictures of a large image folder stay cheap."""
        import torch

        from .data import is_tensor_split

        split = self.splits.split(name)
        if is_tensor_split(split):
            return split[0], split[1], len(split[0])
        total = len(split)
        index = _subsample(total, limit or total, seed)
        items = [split[int(i)] for i in index]
        return (torch.stack([torch.as_tensor(x) for x, _ in items]),
                torch.stack([torch.as_tensor(t) for _, t in items]), total)

    def raw(self, X):
        """Undo the standardisation: the split's inputs in the data's original units, as numpy."""
        import numpy as np

        from .evaluation import raw_inputs

        X = raw_inputs(self.model, X.float())
        return np.asarray(X.reshape(len(X), -1).numpy(), dtype=np.float64)

    def outputs_raw(self, X_raw):
        """Model outputs for raw inputs (the model standardises them with its stored transform)."""
        import numpy as np

        shape = tuple(self.meta["input_shape"])
        return self.predictor.outputs(np.asarray(X_raw, dtype=np.float32).reshape(-1, *shape))


def _subsample(n: int, limit: int, seed: int = 0):
    import numpy as np

    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def _split_label(name: str, shown: int, total: int) -> str:
    return f"{name} ({shown} of {total})" if shown < total else f"{name} ({total})"


def plot_fit(run_dir: Path, data: _Loaded) -> Path:
    import numpy as np

    Xtr, ytr, _ = data.tensors("train", MAX_LAZY)
    Xte, yte, _ = data.tensors("test", MAX_LAZY)
    xtr, xte = data.raw(Xtr)[:, 0], data.raw(Xte)[:, 0]
    ytr, yte = ytr.reshape(len(ytr), -1).numpy(), yte.reshape(len(yte), -1).numpy()
    allx = np.concatenate([xtr, xte, data.raw(data.tensors("val", MAX_LAZY)[0])[:, 0]])
    lo, hi = float(allx.min()), float(allx.max())
    pad = 0.02 * (hi - lo or 1.0)
    grid = np.linspace(lo - pad, hi + pad, 800)
    curve = data.outputs_raw(grid.reshape(-1, 1)).reshape(len(grid), -1).numpy()
    k = curve.shape[1]
    test = _test_metrics(run_dir)

    fig = _figure(7.5, 4.6 * k if k > 1 else 5.0)
    axes = fig.subplots(k, 1, squeeze=False)[:, 0]
    itr, ite = _subsample(len(xtr), MAX_POINTS, 1), _subsample(len(xte), MAX_POINTS, 2)
    for t, ax in enumerate(axes):
        ax.scatter(xtr[itr], ytr[itr, t], s=9, alpha=0.35, color=TRAIN_COLOR, edgecolors="none",
                   label=_split_label("train", len(itr), len(xtr)))
        ax.scatter(xte[ite], yte[ite, t], s=14, alpha=0.8, color="#ff7f0e", edgecolors="white", linewidths=0.3,
                   label=_split_label("test", len(ite), len(xte)))
        ax.plot(grid, curve[:, t], color="black", linewidth=2.2, label="model")
        ax.set_xlabel("x (input, original units)")
        ax.set_ylabel("y (target)" if k == 1 else f"target {t}")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize="small", markerscale=1.5)
    figure = f"  |  test {_metric_text(test, 'mse', 'r2')}" if test else ""
    axes[0].set_title(f"Model fit: {_run_title(data.cfg, run_dir)}{figure}", fontsize="medium")
    return _save(fig, run_dir / "fit.png")


def plot_decision(run_dir: Path, data: _Loaded) -> Path:
    import numpy as np
    from matplotlib.colors import ListedColormap
    from matplotlib.lines import Line2D

    names = data.predictor.class_names()
    n_classes = len(names)
    Xtr, ytr, _ = data.tensors("train", MAX_LAZY)
    Xte, yte, _ = data.tensors("test", MAX_LAZY)
    xtr, xte = data.raw(Xtr), data.raw(Xte)
    ytr, yte = ytr.reshape(-1).numpy(), yte.reshape(-1).numpy()
    allx = np.concatenate([xtr, xte, data.raw(data.tensors("val", MAX_LAZY)[0])])
    lo, hi = allx.min(0), allx.max(0)
    pad = 0.05 * np.where(hi > lo, hi - lo, 1.0)
    n = 300
    g0, g1 = np.linspace(lo[0] - pad[0], hi[0] + pad[0], n), np.linspace(lo[1] - pad[1], hi[1] + pad[1], n)
    G0, G1 = np.meshgrid(g0, g1)
    out = data.outputs_raw(np.stack([G0.ravel(), G1.ravel()], axis=1))
    probs = data.predictor.probabilities(out).numpy()
    test = _test_metrics(run_dir)

    fig = _figure(7.8, 6.2)
    ax = fig.subplots()
    if n_classes == 2:
        cmap = "RdBu_r"
        p1 = probs[:, 1].reshape(n, n)
        cs = ax.contourf(G0, G1, p1, levels=np.linspace(0, 1, 11), cmap=cmap, alpha=0.5, vmin=0, vmax=1)
        ax.contour(G0, G1, p1, levels=[0.5], colors="black", linewidths=1.6)
        cbar = fig.colorbar(cs, ax=ax, shrink=0.9)
        cbar.set_label(f"model's P(class '{names[1]}')")
        point_colors = ["#08519c", "#a50f15"]
    else:
        import matplotlib

        base = matplotlib.colormaps["tab10" if n_classes <= 10 else "tab20"]
        point_colors = [base(i % base.N) for i in range(n_classes)]
        pred = probs.argmax(1).reshape(n, n)
        ax.contourf(G0, G1, pred, levels=np.arange(n_classes + 1) - 0.5, cmap=ListedColormap(point_colors),
                    alpha=0.3)
        ax.contour(G0, G1, pred, levels=np.arange(n_classes) + 0.5, colors="black", linewidths=0.8)
    itr, ite = _subsample(len(xtr), MAX_DECISION_POINTS, 1), _subsample(len(xte), MAX_DECISION_POINTS // 2, 2)
    handles = []
    for c in range(n_classes):
        m = ytr[itr] == c
        ax.scatter(xtr[itr][m, 0], xtr[itr][m, 1], s=13, color=point_colors[c], alpha=0.85, edgecolors="white",
                   linewidths=0.4)
        m = yte[ite] == c
        ax.scatter(xte[ite][m, 0], xte[ite][m, 1], s=30, color=point_colors[c], marker="^", edgecolors="black",
                   linewidths=0.6)
        handles.append(Line2D([], [], linestyle="none", marker="s", markersize=8, color=point_colors[c],
                              label=f"class {names[c]}"))
    handles += [
        Line2D([], [], linestyle="none", marker="o", markersize=5, color="0.4", markeredgecolor="white",
               label=_split_label("train", len(itr), len(xtr))),
        Line2D([], [], linestyle="none", marker="^", markersize=7, color="0.6", markeredgecolor="black",
               label=_split_label("test", len(ite), len(xte))),
    ]
    handles.append(Line2D([], [], color="black", linewidth=1.6 if n_classes == 2 else 0.8,
                          label="decision boundary (P = 0.5)" if n_classes == 2 else "class boundaries"))
    ax.legend(handles=handles, loc="upper left", fontsize="small", framealpha=0.85)
    ax.set_xlim(g0[0], g0[-1])
    ax.set_ylim(g1[0], g1[-1])
    ax.set_xlabel("feature 0 (original units)")
    ax.set_ylabel("feature 1 (original units)")
    figure = f"  |  test {_metric_text(test, 'accuracy')}" if test else ""
    ax.set_title(f"Decision regions: {_run_title(data.cfg, run_dir)}{figure}", fontsize="medium")
    return _save(fig, run_dir / "decision.png")


def plot_confusion(run_dir: Path, data: _Loaded) -> Path:
    import numpy as np
    from sklearn.metrics import confusion_matrix

    from .evaluation import raw_inputs

    names = data.predictor.class_names()
    k = len(names)
    X, y, total = data.tensors("test", MAX_LAZY)
    out = data.predictor.outputs(raw_inputs(data.model, X.float()))
    pred = out.argmax(1).numpy() if data.predictor.target == "index" else (out.reshape(-1) > 0).long().numpy()
    cm = confusion_matrix(y.reshape(-1).numpy(), pred, labels=list(range(k)))
    acc = float(np.trace(cm)) / max(1, int(cm.sum()))

    side = min(14.0, max(5.5, 0.55 * k + 2.5))
    fig = _figure(side + 1.2, side)
    ax = fig.subplots()
    im = ax.imshow(cm, cmap="Blues", vmin=0)
    cbar = fig.colorbar(im, ax=ax, shrink=0.85)
    cbar.set_label("test samples")
    if k <= 30:
        size = 10 if k <= 12 else 7
        thresh = cm.max() / 2 if cm.max() else 1
        for i in range(k):
            for j in range(k):
                if cm[i, j] or i == j:
                    ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=size,
                            color="white" if cm[i, j] > thresh else "black")
    ticks = np.arange(k)
    ax.set_xticks(ticks, labels=names, rotation=45 if max(len(s) for s in names) > 3 else 0,
                  ha="right" if max(len(s) for s in names) > 3 else "center")
    ax.set_yticks(ticks, labels=names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    shown = f"{int(cm.sum())} samples" if total == int(cm.sum()) else f"{int(cm.sum())} of {total} samples"
    ax.set_title(f"Confusion matrix (test split, {shown}, accuracy {acc:.3f})\n"
                 f"{_run_title(data.cfg, run_dir)}", fontsize="medium")
    return _save(fig, run_dir / "confusion.png")


#: Samples a generation model draws for ``samples.png``.
PLOT_SAMPLES = 2000


def _draw_samples(ax, samples, real=None) -> None:
    if real is not None:
        ax.scatter(real[:, 0], real[:, 1], s=10, alpha=0.5, color="#ff7f0e", edgecolors="none",
                   label=f"data ({len(real)})")
    ax.scatter(samples[:, 0], samples[:, 1], s=6, alpha=0.35, color=TRAIN_COLOR, edgecolors="none",
               label=f"samples ({len(samples)})")
    ax.set_aspect("equal", adjustable="datalim")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right", fontsize="small", markerscale=2)


def plot_samples(samples, path: str | os.PathLike, real=None, title: str = "") -> Path:
    """A picture of samples (in the data's units): a scatter of 2-D samples (over ``real`` points when given),
    or a grid of at most 64 images ``(C, H, W)``."""
    import numpy as np

    require_matplotlib("writing samples as PNG")
    samples = np.asarray(samples, dtype=np.float64)
    path = Path(path)
    flat = samples.reshape(len(samples), -1)
    if samples.ndim == 2 and flat.shape[1] == 2:
        fig = _figure(6.0, 6.0)
        ax = fig.subplots()
        _draw_samples(ax, flat, None if real is None else np.asarray(real, dtype=np.float64).reshape(len(real), -1))
    elif samples.ndim == 4 and samples.shape[1] in (1, 3):
        shown = samples[:64]
        cols = int(math.ceil(math.sqrt(len(shown))))
        rows = int(math.ceil(len(shown) / cols))
        fig = _figure(1.1 * cols + 0.4, 1.1 * rows + 0.6)
        axes = fig.subplots(rows, cols, squeeze=False)
        lo, hi = float(shown.min()), float(shown.max())
        for i, ax in enumerate(axes.ravel()):
            ax.axis("off")
            if i < len(shown):
                img = (shown[i] - lo) / ((hi - lo) or 1.0)
                ax.imshow(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0), cmap="gray_r"
                          if img.shape[0] == 1 else None, vmin=0, vmax=1)
    else:
        raise UsageError(f"a PNG shows 2-D samples or images (C, H, W); these samples have shape "
                         f"{tuple(samples.shape[1:])}: write them as .npy")
    if title:
        fig.suptitle(title, fontsize="medium")
    return _save(fig, path)


def plot_generation(run_dir: Path, data: _Loaded) -> Path:
    """Samples of a 2-D generation model over the test split's points, or a grid of 64 samples of images."""
    from .evaluation import draw_samples

    samples = draw_samples(data.model, PLOT_SAMPLES).cpu().numpy()
    if samples.ndim == 4:
        test = _test_metrics(run_dir)
        names = [k for k in test if k != "loss"][:2]
        figure = f"\ntest {_metric_text(test, *names)}" if names else ""
        return plot_samples(samples[:64], run_dir / "samples.png", title=f"Samples: {_run_title(data.cfg, run_dir)}"
                            f"{figure}")
    Xte, _, _ = data.tensors("test", MAX_LAZY)
    real = data.raw(Xte)
    real = real[_subsample(len(real), MAX_POINTS, 2)]
    test = _test_metrics(run_dir)
    names = [k for k in test if k != "loss"][:2]
    figure = f"  |  test {_metric_text(test, *names)}" if names else ""
    fig = _figure(6.4, 6.4)
    ax = fig.subplots()
    _draw_samples(ax, samples, real)
    ax.set_title(f"Samples: {_run_title(data.cfg, run_dir)}{figure}", fontsize="medium")
    return _save(fig, run_dir / "samples.png")


def _test_metrics(run_dir: Path) -> dict[str, float]:
    test = runs.RunDir(run_dir).read_metrics().get("test")
    return test if isinstance(test, dict) else {}


def _metric_text(test: dict[str, float], *names: str) -> str:
    return ", ".join(f"{n} {test[n]:.3g}" for n in names if isinstance(test.get(n), (int, float)))


# -- all of it ---------------------------------------------------------------------------


def plot_run(run_dir: str | os.PathLike, warn: Callable[[str], None] | None = None,
             figures: list | None = None) -> list[Path]:
    """Draw every picture that fits the run into ``run_dir``; return the paths written.

    ``figures``: a list that each picture's matplotlib Figure is also appended to (the same order
    as the paths), for :meth:`zoo.engine.Run.plot`.

    ``curves.png`` needs ``history.csv``; the others need the saved model
    (``model.safetensors``) and rebuild the data from the run's config and seed:
    ``fit.png`` for a regression on one input feature, ``decision.png`` for a
    classification on two, ``confusion.png`` for a multiclass task (on at most
    :data:`MAX_LAZY` test samples of a lazily read dataset). Each picture is drawn on its
    own: one that fails is passed to ``warn`` (one line) and the others are still drawn;
    without ``warn`` the first failure is raised once the others are written. Raises a
    one-line ZooError when matplotlib is missing or nothing can be drawn.
    """
    require_matplotlib()
    token = _COLLECT.set(figures)
    try:
        return _plot_run(Path(run_dir), warn)
    finally:
        _COLLECT.reset(token)


def _plot_run(run_dir: Path, warn: Callable[[str], None] | None) -> list[Path]:
    files = runs.RunDir(run_dir)
    cfg = files.read_config()
    written: list[Path] = []
    failures: list[str] = []

    def draw(name: str, fn: Callable[..., Path | None], *args: Any) -> None:
        try:
            path = fn(run_dir, *args)
        except Exception as exc:  # noqa: BLE001 - a picture never turns a finished run into a failure
            detail = str(exc) if isinstance(exc, ZooError) else f"{type(exc).__name__}: {exc}"
            failures.append(f"{name} could not be drawn: {' '.join(detail.split())}")
            if warn is not None:
                warn(failures[-1])
            return
        if path is not None:
            written.append(path)

    draw("curves.png", plot_curves, cfg)
    meta = cfg["meta"]
    task = meta.get("task")
    if task == "control":
        draw("returns.png", plot_returns, cfg)
    width = math.prod(meta.get("input_shape") or [0])
    image = len(meta.get("input_shape") or []) == 3
    wants_model = ((task == "regression" and width == 1) or (task in ("binary", "multiclass", "generation")
                                                              and width == 2) or task == "multiclass"
                   or (task == "generation" and image))
    if wants_model and files.weights.is_file():
        try:
            data = _Loaded(run_dir)
        except ZooError as exc:
            failures.append(f"the model pictures could not be drawn: {exc}")
            if warn is not None:
                warn(failures[-1])
            data = None
        if data is not None:
            if task == "regression" and width == 1:
                draw("fit.png", plot_fit, data)
            if task in ("binary", "multiclass") and width == 2:
                draw("decision.png", plot_decision, data)
            if task == "multiclass":
                draw("confusion.png", plot_confusion, data)
            if task == "generation" and (width == 2 or image):
                draw("samples.png", plot_generation, data)
    if failures and warn is None:
        raise ZooError(failures[0])
    if not written and not failures:
        status = files.read_status()
        state = status.get("status", "unknown") if isinstance(status, dict) else "unknown"
        why = (f"no epoch finished (no {runs.HISTORY}, no {runs.WEIGHTS})" if not files.weights.is_file()
               else f"it has no {runs.HISTORY}, and no model picture fits a {task} task on input shape "
                    f"{tuple(meta.get('input_shape') or ())}")
        raise UsageError(f"nothing to plot in {run_dir} (status: {state}): {why}")
    return written
