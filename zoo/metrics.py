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
        return torch.softmax(output.float(), dim=1)[:, 1]
    if target_layout == "binary":
        return torch.sigmoid(output.float().reshape(-1))
    return None


def compute(task: str, output: torch.Tensor, y: torch.Tensor, target_layout: str) -> dict[str, float]:
    """Metrics of ``output`` (raw model output) against dataset targets ``y``."""
    from sklearn import metrics as m

    output = output.detach().float().cpu()
    y_np = y.detach().cpu().numpy()
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
