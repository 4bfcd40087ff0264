"""Ring metrics: ``metric(samples, real, *, target)`` with generated samples in the data's units (``real``,
the split's samples, is not needed: the ring's geometry is known, see ``zoo_gan.datasets``). The exact and
fast versions are the same torch code."""

from __future__ import annotations

import torch

from .datasets import MODES, STD, centres

#: A sample is of high quality within this many standard deviations of a mode's centre.
WITHIN_STD = 3.0
#: A mode is covered when it holds at least this share of the samples (within 3 std).
MODE_SHARE = 0.01


def _assign(samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(nearest mode of each sample, whether it lies within 3 std of it)."""
    x = samples.detach().double().reshape(len(samples), -1)
    if x.shape[1] != 2:
        raise ValueError(f"ring metrics score 2-D samples, not samples of {x.shape[1]} values")
    c = torch.as_tensor(centres(), dtype=torch.float64, device=x.device)
    dist = torch.cdist(x, c)
    best, nearest = dist.min(1)
    ok = torch.isfinite(best) & (best <= WITHIN_STD * STD)
    return nearest, ok


def ring_quality(pred, y=None, *, target="value") -> float:
    """Share of samples within 3 std of some mode's centre (0 to 1)."""
    _, ok = _assign(pred)
    return float(ok.double().mean()) if len(ok) else 0.0


def ring_modes(pred, y=None, *, target="value") -> float:
    """Modes holding at least 1% of the samples within 3 std (0 to 8)."""
    nearest, ok = _assign(pred)
    counts = torch.bincount(nearest[ok], minlength=MODES)
    return float((counts >= MODE_SHARE * len(pred)).sum()) if len(pred) else 0.0


def ring_score(pred, y=None, *, target="value") -> float:
    """ring_quality times the share of the modes covered: 1 only when both are perfect (what a run monitors)."""
    return ring_quality(pred) * ring_modes(pred) / MODES
