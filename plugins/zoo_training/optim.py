"""Adam and AdamW over one flat parameter buffer, stepped by torch's fused kernel.

For the small models of a zoo the optimizer step costs as much as forward and backward
together, and most of that is Python: ``torch.optim.Optimizer.step`` runs hooks,
profiler records and per-tensor bookkeeping on every call. Here every trainable
parameter is a view into one flat tensor and every gradient a view into one flat
gradient buffer (autograd accumulates into the existing views), so a step is a single
call of the same fused kernel ``torch.optim.Adam(fused=True)`` uses, on one tensor.
The update is elementwise, so the weights are bit-identical to that optimizer's.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch


class FlatFusedAdam(torch.optim.Optimizer):
    """A drop-in for ``torch.optim.Adam``/``AdamW`` (fused) on a flat buffer.

    It is a ``torch.optim.Optimizer`` (so ``torch.optim.lr_scheduler`` schedules drive it) and
    offers what they and the training step use: ``step``, ``zero_grad``, ``param_groups`` (one
    group; its ``lr`` may be changed between steps) and ``state_dict``/``load_state_dict``.
    ``Optimizer.__init__`` is deliberately not called: it would wrap ``step`` in profiling hooks,
    the per-call overhead this class exists to avoid.
    """

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float = 1e-3, betas=(0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, decoupled: bool = False) -> None:
        params = [p for p in params if p.requires_grad]
        if not params:
            raise ValueError("no trainable parameters")
        first = params[0]
        if any(p.dtype != first.dtype or p.device != first.device for p in params):
            raise ValueError("flat buffers need one dtype and one device")
        if not first.is_floating_point():
            raise ValueError("flat buffers need floating-point parameters")
        with torch.no_grad():
            self.flat = torch.cat([p.detach().reshape(-1) for p in params])
            self.grad = torch.zeros_like(self.flat)
            offset = 0
            for p in params:
                n = p.numel()
                p.data = self.flat[offset : offset + n].view_as(p)
                p.grad = self.grad[offset : offset + n].view_as(p)
                offset += n
        self.params = params
        self.defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay,
                         "decoupled": decoupled}
        self.param_groups = [{**self.defaults, "params": [0]}]
        self.state = {}
        self.exp_avg = torch.zeros_like(self.flat)
        self.exp_avg_sq = torch.zeros_like(self.flat)
        self.steps = torch.zeros((), dtype=torch.float32, device=self.flat.device if self.flat.is_cuda else "cpu")
        self._kernel = torch._fused_adamw_ if decoupled else torch._fused_adam_

    def zero_grad(self, set_to_none: bool = True) -> None:  # noqa: ARG002 - the views must stay
        self.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        g = self.param_groups[0]
        self.steps += 1
        b1, b2 = g["betas"]
        self._kernel([self.flat], [self.grad], [self.exp_avg], [self.exp_avg_sq], [], [self.steps],
                     lr=g["lr"], beta1=b1, beta2=b2, weight_decay=g["weight_decay"], eps=g["eps"],
                     amsgrad=False, maximize=False)

    def state_dict(self) -> dict[str, Any]:
        group = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.param_groups[0].items()}
        return {"state": {0: {"step": self.steps.clone(), "exp_avg": self.exp_avg.clone(),
                              "exp_avg_sq": self.exp_avg_sq.clone()}},
                "param_groups": [group]}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Any]) -> None:
        s = state["state"][0]
        for name in ("exp_avg", "exp_avg_sq"):
            if tuple(s[name].shape) != tuple(self.flat.shape):
                raise ValueError(f"optimizer state {name} has shape {tuple(s[name].shape)}, "
                                 f"the parameters {tuple(self.flat.shape)}")
        self.exp_avg.copy_(s["exp_avg"])
        self.exp_avg_sq.copy_(s["exp_avg_sq"])
        self.steps.copy_(s["step"])
        group = dict(state["param_groups"][0])
        group["betas"] = tuple(group["betas"])
        self.param_groups[0].update(group)


def has_fused_adam(device: torch.device) -> bool:
    return hasattr(torch, "_fused_adam_") and hasattr(torch, "_fused_adamw_") and device.type in ("cpu", "cuda")
