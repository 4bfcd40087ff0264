"""Metrics per task, computed with scikit-learn from a model's raw outputs."""

from __future__ import annotations

import numpy as np
import torch

from .metric_names import TASK_METRICS  # noqa: F401 - re-exported


def predictions(output: torch.Tensor, target_layout: str) -> torch.Tensor:
    """Turn raw model outputs into predictions: class indices or values."""
    if target_layout == "index":
        return output.argmax(dim=1)
    if target_layout == "binary":
        return (output.reshape(-1) > 0).long()
    return output


def scores(output: torch.Tensor, target_layout: str) -> torch.Tensor | None:
    """Positive-class probability for binary tasks (for ROC-AUC), else None."""
    if target_layout == "index" and output.shape[1] == 2:
        return torch.softmax(output.double(), dim=1)[:, 1]
    if target_layout == "binary":
        return torch.sigmoid(output.double().reshape(-1))
    return None


def compute(task: str, output: torch.Tensor, y: torch.Tensor, target_layout: str) -> dict[str, float]:
    """Metrics of ``output`` (raw model output) against dataset targets ``y``."""
    from sklearn import metrics as m

    output = output.detach().double().cpu()  # float64 sums: metrics do not drift with N
    y_np = y.detach().cpu().numpy()
    if task in ("regression", "reconstruction"):
        y_np = y_np.astype(np.float64)
    if task in ("regression", "reconstruction"):
        pred = predictions(output, target_layout).numpy().reshape(y_np.shape)
        out = {
            "mse": float(m.mean_squared_error(y_np, pred)),
            "mae": float(m.mean_absolute_error(y_np, pred)),
        }
        if task == "regression":
            out["r2"] = float(m.r2_score(y_np, pred))
        return out
    pred = predictions(output, target_layout).numpy()
    y_np = y_np.reshape(-1).astype(np.int64)
    if task == "binary":
        out = {
            "accuracy": float(m.accuracy_score(y_np, pred)),
            "f1": float(m.f1_score(y_np, pred, zero_division=0)),
            "precision": float(m.precision_score(y_np, pred, zero_division=0)),
            "recall": float(m.recall_score(y_np, pred, zero_division=0)),
        }
        s = scores(output, target_layout)
        out["roc_auc"] = float(m.roc_auc_score(y_np, s.numpy())) if len(np.unique(y_np)) == 2 else float("nan")
        return out
    return {
        "accuracy": float(m.accuracy_score(y_np, pred)),
        "f1_macro": float(m.f1_score(y_np, pred, average="macro", zero_division=0)),
    }


def compute_fast(task: str, output: torch.Tensor, y: torch.Tensor, target_layout: str) -> dict[str, float]:
    """The same metrics as :func:`compute`, in torch, for the per-epoch validation history.

    scikit-learn's metric functions validate their inputs on every call, which costs
    milliseconds an epoch; these give the same numbers (a test holds them to
    scikit-learn's to 1e-9) for the history, while final metrics come from :func:`compute`.
    """
    output = output.detach().double()
    if task in ("regression", "reconstruction"):
        yt = y.detach().double().reshape(len(y), -1)
        pred = predictions(output, target_layout).reshape(yt.shape)
        err = pred - yt
        out = {"mse": float(err.pow(2).mean()), "mae": float(err.abs().mean())}
        if task == "regression":
            ss_res = err.pow(2).sum(0)
            ss_tot = (yt - yt.mean(0)).pow(2).sum(0)
            r2 = torch.where(ss_tot > 0, 1 - ss_res / ss_tot.clamp_min(1e-300),
                             torch.where(ss_res == 0, torch.ones_like(ss_res), torch.zeros_like(ss_res)))
            out["r2"] = float(r2.mean())
        return out
    yt = y.detach().reshape(-1).long()
    pred = predictions(output, target_layout).reshape(-1).long()
    acc = float((pred == yt).double().mean())
    if task == "binary":
        tp = float(((pred == 1) & (yt == 1)).sum())
        fp = float(((pred == 1) & (yt == 0)).sum())
        fn = float(((pred == 0) & (yt == 1)).sum())
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
        return {"accuracy": acc, "f1": f1, "precision": precision, "recall": recall,
                "roc_auc": _roc_auc(scores(output, target_layout), yt)}
    labels = torch.unique(torch.cat([yt, pred]))
    f1s = []
    for c in labels:
        tp = float(((pred == c) & (yt == c)).sum())
        fp = float(((pred == c) & (yt != c)).sum())
        fn = float(((pred != c) & (yt == c)).sum())
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return {"accuracy": acc, "f1_macro": sum(f1s) / len(f1s)}


def _roc_auc(score: torch.Tensor, y: torch.Tensor) -> float:
    """Area under the ROC curve as the Mann-Whitney statistic, ties counted half."""
    pos, neg = int((y == 1).sum()), int((y == 0).sum())
    if pos == 0 or neg == 0:
        return float("nan")
    s = score.double()
    order = torch.argsort(s)
    sorted_s = s[order]
    ranks = torch.empty_like(s)
    ranks[order] = torch.arange(1, len(s) + 1, dtype=torch.float64)
    # average ranks over ties
    uniq, inverse, counts = torch.unique_consecutive(sorted_s, return_inverse=True, return_counts=True)
    if len(uniq) < len(s):
        ends = torch.cumsum(counts, 0).double()
        avg = ends - (counts.double() - 1) / 2
        ranks[order] = avg[inverse]
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))
