"""Metric implementations: ``metric(pred, y, *, target) -> float``.

``pred`` is a model's output over a split (values in the data's units, or class logits),
``y`` the dataset's targets, ``target`` the loss's target layout (``index``: one logit per
class; ``binary``: one logit; ``value``). Each metric has an exact version, scikit-learn's figure (final metrics,
``zoo eval``), and a ``fast_*`` version in torch for the per-epoch history; a test holds
them together to 1e-9. The exact MSE, MAE, R², accuracy and the binary F1, precision and
recall and the macro F1 are scikit-learn's formulas written out in numpy (a test holds them bit-identical to
scikit-learn's functions): scoring a regression run does not import scikit-learn and SciPy,
and a run's final metrics skip scikit-learn's argument checks (about a millisecond a call).
ROC AUC calls scikit-learn.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch


def predictions(output: torch.Tensor, target: str) -> torch.Tensor:
    """Raw model outputs -> predictions: class indices or values."""
    if target == "index":
        return output.argmax(dim=1)
    if target == "binary":
        return (output.reshape(-1) > 0).long()
    return output


def scores(output: torch.Tensor, target: str) -> torch.Tensor | None:
    """Positive-class probability for a binary task (for ROC AUC), else None."""
    if target == "index" and output.shape[1] == 2:
        return torch.softmax(output.double(), dim=1)[:, 1]
    if target == "binary":
        return torch.sigmoid(output.double().reshape(-1))
    return None


# -- exact (scikit-learn) ----------------------------------------------------------------------


def _values(pred, y, target):
    y_np = y.detach().cpu().numpy().astype(np.float64)
    p = predictions(pred.detach().double().cpu(), target).numpy().reshape(y_np.shape)
    return y_np, p


def _labels(pred, y, target):
    return y.detach().cpu().numpy().reshape(-1).astype(np.int64), predictions(pred.detach().double().cpu(),
                                                                             target).numpy()


def _columns(pred, y, target):
    """``(y_true, y_pred)`` as float64 columns, as scikit-learn's regression metrics shape them."""
    t, p = _values(pred, y, target)
    return t.reshape(len(t), -1), p.reshape(len(p), -1)


def mse(pred, y, *, target):
    t, p = _columns(pred, y, target)
    return float(np.mean(np.mean((t - p) ** 2, axis=0)))


def mae(pred, y, *, target):
    t, p = _columns(pred, y, target)
    return float(np.mean(np.mean(np.abs(p - t), axis=0)))


def r2(pred, y, *, target):
    """scikit-learn's ``r2_score`` (uniform average over outputs, ``force_finite``): 1 for a perfect fit of
    constant targets, 0 for an imperfect one; NaN with fewer than two samples."""
    t, p = _columns(pred, y, target)
    if len(t) < 2:
        return float("nan")
    numerator = np.sum(1.0 * (t - p) ** 2, axis=0)
    denominator = np.sum(1.0 * (t - np.mean(t, axis=0)) ** 2, axis=0)
    nonzero_num, nonzero_den = numerator != 0, denominator != 0
    valid = nonzero_den & nonzero_num
    scores = np.ones(t.shape[1])
    scores[valid] = 1 - numerator[valid] / denominator[valid]
    scores[nonzero_num & ~nonzero_den] = 0.0
    return float(np.mean(scores))


def accuracy(pred, y, *, target):
    t, p = _labels(pred, y, target)
    return float(np.mean(t == p))


def _binary(pred, y, target, sklearn_name: str, value: Callable[[float, float, float], float]) -> float:
    """A binary label metric from ``(tp, predicted positives, actual positives)`` when both label arrays hold
    only 0 and 1; otherwise scikit-learn's function ``sklearn_name`` decides (and explains what it refuses)."""
    t, p = _labels(pred, y, target)
    if t.size and (t.min() < 0 or t.max() > 1 or p.min() < 0 or p.max() > 1):
        from sklearn import metrics

        return float(getattr(metrics, sklearn_name)(t, p, zero_division=0))
    tp = float(np.count_nonzero((t == 1) & (p == 1)))
    return value(tp, float(np.count_nonzero(p == 1)), float(np.count_nonzero(t == 1)))


def _ratio(num: float, den: float) -> float:
    return num / den if den else 0.0  # scikit-learn's zero_division=0


def f1(pred, y, *, target):
    # scikit-learn's (1 + beta²) tp / (beta² actual + predicted), beta = 1
    return _binary(pred, y, target, "f1_score", lambda tp, predicted, actual: _ratio(2.0 * tp, actual + predicted))


def precision(pred, y, *, target):
    return _binary(pred, y, target, "precision_score", lambda tp, predicted, _: _ratio(tp, predicted))


def recall(pred, y, *, target):
    return _binary(pred, y, target, "recall_score", lambda tp, _, actual: _ratio(tp, actual))


def roc_auc(pred, y, *, target):
    from sklearn.metrics import roc_auc_score

    y_np = y.detach().cpu().numpy().reshape(-1).astype(np.int64)
    if len(np.unique(y_np)) != 2:
        return float("nan")
    return float(roc_auc_score(y_np, scores(pred.detach().double().cpu(), target).numpy()))


def f1_macro(pred, y, *, target):
    """scikit-learn's ``f1_score(average="macro", zero_division=0)``: the mean of each class's F1 over the
    classes present in the targets or the predictions."""
    t, p = _labels(pred, y, target)
    if not t.size or min(t.min(), p.min()) < 0:
        from sklearn.metrics import f1_score

        return float(f1_score(t, p, average="macro", zero_division=0))
    k = int(max(t.max(), p.max())) + 1
    conf = np.bincount(t * k + p, minlength=k * k).reshape(k, k)
    tp, predicted, actual = np.diagonal(conf), conf.sum(0), conf.sum(1)
    present = (predicted + actual) > 0
    tp, denom = tp[present].astype(np.float64), (actual[present] + predicted[present]).astype(np.float64)
    return float(np.mean(2.0 * tp / denom))


# -- fast (torch, per epoch) -------------------------------------------------------------------


def _fast_err(pred, y, target):
    yt = y.detach().double().reshape(len(y), -1)
    return predictions(pred.detach().double(), target).reshape(yt.shape) - yt, yt


def fast_mse(pred, y, *, target):
    return float(_fast_err(pred, y, target)[0].pow(2).mean())


def fast_mae(pred, y, *, target):
    return float(_fast_err(pred, y, target)[0].abs().mean())


def fast_r2(pred, y, *, target):
    err, yt = _fast_err(pred, y, target)
    ss_res = err.pow(2).sum(0)
    ss_tot = (yt - yt.mean(0)).pow(2).sum(0)
    r2 = torch.where(ss_tot > 0, 1 - ss_res / ss_tot.clamp_min(1e-300),
                     torch.where(ss_res == 0, torch.ones_like(ss_res), torch.zeros_like(ss_res)))
    return float(r2.mean())


def _fast_labels(pred, y, target):
    return predictions(pred.detach().double(), target).reshape(-1).long(), y.detach().reshape(-1).long()


def _counts(pred, y, target):
    p, t = _fast_labels(pred, y, target)
    tp = float(((p == 1) & (t == 1)).sum())
    fp = float(((p == 1) & (t == 0)).sum())
    fn = float(((p == 0) & (t == 1)).sum())
    return tp, fp, fn


def fast_accuracy(pred, y, *, target):
    p, t = _fast_labels(pred, y, target)
    return float((p == t).double().mean())


def fast_f1(pred, y, *, target):
    tp, fp, fn = _counts(pred, y, target)
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0


def fast_precision(pred, y, *, target):
    tp, fp, _ = _counts(pred, y, target)
    return tp / (tp + fp) if tp + fp else 0.0


def fast_recall(pred, y, *, target):
    tp, _, fn = _counts(pred, y, target)
    return tp / (tp + fn) if tp + fn else 0.0


def fast_roc_auc(pred, y, *, target):
    """Area under the ROC curve as the Mann-Whitney statistic, ties counted half."""
    t = y.detach().reshape(-1).long()
    s = scores(pred.detach().double(), target)
    pos, neg = int((t == 1).sum()), int((t == 0).sum())
    if pos == 0 or neg == 0:
        return float("nan")
    order = torch.argsort(s)
    sorted_s = s[order]
    ranks = torch.empty_like(s)
    ranks[order] = torch.arange(1, len(s) + 1, dtype=torch.float64)
    uniq, inverse, counts = torch.unique_consecutive(sorted_s, return_inverse=True, return_counts=True)
    if len(uniq) < len(s):  # average ranks over ties
        ends = torch.cumsum(counts, 0).double()
        ranks[order] = (ends - (counts.double() - 1) / 2)[inverse]
    return float((ranks[t == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def fast_f1_macro(pred, y, *, target):
    """The unweighted mean of per-class F1 over the classes present in the targets or the predictions (as
    scikit-learn takes them), from one confusion matrix."""
    p, t = _fast_labels(pred, y, target)
    if not len(t):
        return 0.0
    k = int(torch.maximum(p.max(), t.max())) + 1
    conf = torch.bincount(t * k + p, minlength=k * k).reshape(k, k).double()
    tp = conf.diagonal()
    predicted, actual = conf.sum(0), conf.sum(1)
    denom = predicted + actual  # 2 tp + fp + fn
    present = denom > 0
    f1 = torch.where(present, 2 * tp / denom.clamp_min(1), torch.zeros_like(tp))
    return float(f1[present].mean())
