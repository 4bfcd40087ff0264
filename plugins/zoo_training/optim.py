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
        """The state in ``torch.optim.Adam``'s own layout (a moment tensor per parameter, shaped like it), so a
        checkpoint moves between this optimizer and torch's (a run resumed on several processes uses torch's
        fused Adam, see ``zoo_training.optimizers``)."""
        g = self.param_groups[0]
        group = {"lr": g["lr"], "betas": list(g["betas"]), "eps": g["eps"], "weight_decay": g["weight_decay"],
                 "amsgrad": False, "maximize": False, "foreach": None, "capturable": False, "differentiable": False,
                 "fused": True, "decoupled_weight_decay": bool(g["decoupled"]), "params": list(range(len(self.params)))}
        state, offset = {}, 0
        for i, p in enumerate(self.params):
            n = p.numel()
            state[i] = {"step": self.steps.clone(), "exp_avg": self.exp_avg[offset : offset + n].view_as(p).clone(),
                        "exp_avg_sq": self.exp_avg_sq[offset : offset + n].view_as(p).clone()}
            offset += n
        return {"state": state, "param_groups": [group]}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Load a state of :meth:`state_dict`, of ``torch.optim.Adam``/``AdamW`` over the same parameters, or of
        the flat layout (one moment tensor for all) earlier versions saved."""
        saved = state["state"]
        keys = sorted(saved, key=int)
        if not keys:  # an optimizer that has not stepped yet
            self.exp_avg.zero_()
            self.exp_avg_sq.zero_()
            self.steps.zero_()
        elif len(keys) == 1 and saved[keys[0]]["exp_avg"].numel() == self.flat.numel():
            for name in ("exp_avg", "exp_avg_sq"):
                getattr(self, name).copy_(saved[keys[0]][name].reshape(-1))
            self.steps.copy_(saved[keys[0]]["step"])
        else:
            if len(keys) != len(self.params):
                raise ValueError(f"optimizer state for {len(keys)} parameters, the model has {len(self.params)}")
            offset = 0
            for i, p in zip(keys, self.params):
                for name in ("exp_avg", "exp_avg_sq"):
                    t = saved[i][name]
                    if tuple(t.shape) != tuple(p.shape):
                        raise ValueError(f"optimizer state {name} of parameter {i} has shape {tuple(t.shape)}, the "
                                         f"parameter {tuple(p.shape)}")
                    getattr(self, name)[offset : offset + p.numel()].copy_(t.reshape(-1))
                offset += p.numel()
            self.steps.copy_(saved[keys[0]]["step"])
        group = dict(state["param_groups"][0])
        mine = self.param_groups[0]
        for key in ("lr", "eps", "weight_decay"):
            mine[key] = group[key]
        mine["betas"] = tuple(group["betas"])


def has_fused_adam(device: torch.device) -> bool:
    return hasattr(torch, "_fused_adam_") and hasattr(torch, "_fused_adamw_") and device.type in ("cpu", "cuda")
