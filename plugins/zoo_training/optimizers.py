"""Optimizer factories: ``factory(params, *, lr, **hyperparameters) -> torch.optim.Optimizer``.

Each picks the fastest implementation torch has for the parameters' device: Adam and
AdamW step every parameter as one flat buffer with torch's fused kernel
(:class:`zoo_training.optim.FlatFusedAdam`, bit-identical to ``Adam(fused=True)``); the
others use torch's fused kernels where they exist. A fused step updates every parameter
in one kernel instead of a handful of small ops per tensor: for the small models of a zoo
the optimizer step is as costly as forward and backward together.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from .optim import FlatFusedAdam, has_fused_adam


def _fused_or_plain(build: Callable[..., torch.optim.Optimizer], **kwargs: Any) -> torch.optim.Optimizer:
    try:
        return build(fused=True, **kwargs)
    except (RuntimeError, TypeError, ValueError):  # no fused kernel for this device or dtype
        return build(**kwargs)


def _several_processes() -> bool:
    """Whether this process trains with others under DDP (whose gradients live in its own buckets)."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _adam(params, lr: float, weight_decay: float, decoupled: bool) -> torch.optim.Optimizer:
    params = list(params)
    # Under DDP with several processes each gradient is a view into DDP's all-reduce buckets
    # (gradient_as_bucket_view: no copy after the reduction), which a flat gradient buffer would undo:
    # there, torch's fused Adam steps the same kernel over the parameter list.
    if params and has_fused_adam(params[0].device) and not _several_processes():
        try:
            return FlatFusedAdam(params, lr=lr, weight_decay=weight_decay, decoupled=decoupled)
        except ValueError:  # mixed dtypes or devices: the per-tensor optimizer below
            pass
    cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    return _fused_or_plain(lambda **kw: cls(params, lr=lr, weight_decay=weight_decay, **kw))


def adam(params, *, lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    return _adam(params, lr, weight_decay, decoupled=False)


def adamw(params, *, lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    return _adam(params, lr, weight_decay, decoupled=True)


def sgd(params, *, lr: float, momentum: float = 0.0, nesterov: bool = False,
        weight_decay: float = 0.0) -> torch.optim.Optimizer:
    if nesterov and momentum <= 0:
        raise ValueError("nesterov needs momentum > 0 (--set momentum=0.9)")
    params = list(params)
    return _fused_or_plain(lambda **kw: torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay,
                                                        nesterov=nesterov, **kw))


def rmsprop(params, *, lr: float, momentum: float = 0.0, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    return torch.optim.RMSprop(list(params), lr=lr, momentum=momentum, weight_decay=weight_decay)


def adagrad(params, *, lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    params = list(params)
    return _fused_or_plain(lambda **kw: torch.optim.Adagrad(params, lr=lr, weight_decay=weight_decay, **kw))
