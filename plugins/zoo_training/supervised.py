"""The supervised procedure: forward, loss, backward and an optimizer step on each batch.

The training split is held on the device as tensors and batched by index (no DataLoader,
no per-sample Python, no per-step host sync on CUDA); a dataset read lazily goes through a
``DataLoader``. The loss of each batch stays on the device and is summed once an epoch.
On CPU a non-finite loss stops the run at the batch it appears, naming what came first:
diverged weights, non-finite inputs, the model's output, an overflow, or the loss itself.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

from zoo.data import label_problem
from zoo.errors import ZooError
from zoo.evaluation import autocast_for, compute_loss, evaluate_split, head_inputs, split_len, split_outputs, \
    training_targets
from zoo.parts import RunModel, build_loss, out_features, workers_for
from zoo.procedures import NonFiniteLoss, Procedure, RunContext, backward


class SupervisedProcedure(Procedure):
    """Learn ``model(x) -> y`` with the run's loss, optimizer and schedule."""

    def __init__(self, ctx: RunContext) -> None:
        super().__init__(ctx)
        s, cfg, combo = self.settings, ctx.cfg, ctx.combo
        self.model = ctx.model
        self.net = ctx.model.net
        self.train_net = ctx.strategy.wrap(self.net)
        if s.compile:
            self.train_net = torch.compile(self.train_net, backend=s.compile_backend)
        self.device = ctx.strategy.device
        self.target = cfg["target"]
        self.task = ctx.model.task
        self.loss_fn = build_loss(combo, cfg, self.device)
        self.reads = tuple(combo.loss.spec.reads)
        self.optimizer = self.build_optimizer(self.net.parameters())
        self.workers = workers_for(s.workers)
        self.steps_per_epoch = -(-split_len(ctx.splits.train) // s.batch_size)
        self.schedule = self.build_schedule(self.optimizer, self.steps_per_epoch)
        self.lr = float(self.optimizer.param_groups[0]["lr"])
        self._train = None
        self._val = None

    # -- data --------------------------------------------------------------------------

    def _targets(self, y: torch.Tensor) -> torch.Tensor:
        return training_targets(self.model, y, self.target)

    def _checked_targets(self, y: torch.Tensor) -> torch.Tensor:
        if self.task in ("binary", "multiclass"):
            problem = label_problem(y, self.ctx.splits.meta.num_classes)
            if problem:
                ds = self.ctx.combo.dataset
                raise ZooError(f"dataset '{ds.name}' from plugin '{ds.plugin.name}': its train split {problem}")
        return self._targets(y)

    def _train_split(self):
        """The training split on the device once, its targets in the loss's layout and units."""
        if self._train is None:
            self._train = self.ctx.strategy.place(self.ctx.splits.train, self._targets)
        return self._train

    def _eval_split(self, name: str):
        """This process's shard of a split as evaluation reads it (targets as the dataset gives them), with the
        split's length; validation on the device once."""
        strategy = self.ctx.strategy
        if name != "val":
            split = self.ctx.splits.split(name)
            return strategy.shard(split), split_len(split)
        if self._val is None:
            val = self.ctx.splits.val
            self._val = strategy.place(strategy.shard(val)), split_len(val)
        return self._val

    # -- the step ------------------------------------------------------------------------

    def train_epoch(self, epoch: int, on_batch: Callable[[int, Any], None] | None) -> dict[str, float]:
        s = self.settings
        net, opt, loss_fn, reads, schedule = self.train_net, self.optimizer, self.loss_fn, self.reads, self.schedule
        bf16 = s.precision == "bf16"
        l1, clip = s.l1, s.clip_grad
        weights = [p for name, p in net.named_parameters() if p.dim() > 1] if l1 else []
        on_cpu = self.device.type == "cpu"
        group = opt.param_groups[0]
        strategy = self.ctx.strategy
        several = strategy.world_size > 1
        batches = strategy.train_batches(self._train_split(), s.batch_size, self.ctx.generator, self.workers,
                                         self._checked_targets)
        net.train()
        losses, sizes = [], []
        first_bad: tuple[int, str] | None = None  # several processes: (batch, why), agreed on at the epoch's end
        for b, (xb, tb) in enumerate(batches):
            if bf16:
                with autocast_for(self.ctx.cfg, self.device):
                    out = net(xb)
                out = {k: v.float() for k, v in out.items()} if isinstance(out, dict) else out.float()
            else:
                out = net(xb)
            loss = loss_fn(out, tb) if not isinstance(out, dict) else compute_loss(loss_fn, out, tb, reads)
            if on_cpu:  # reading the value waits for nothing on the CPU: check it now, keep it as a number
                value = loss.item()
                if first_bad is None and not math.isfinite(value):
                    why = self._diagnose(epoch, b + 1, value, xb, out, tb)
                    if not several:
                        raise NonFiniteLoss(why)  # stop at once
                    first_bad = (b + 1, why)  # the others are in this step's all-reduce: stop together, below
                losses.append(value)
            else:
                losses.append(loss.detach())  # on the device: read once an epoch, below
            sizes.append(strategy.counted(xb.shape[0]) if several else xb.shape[0])  # not len(): a Python call
            if l1:
                loss = loss + l1 * sum(w.abs().sum() for w in weights)
            if several:
                loss = strategy.scale_loss(loss)
            opt.zero_grad(set_to_none=True)
            backward(loss)
            if clip:
                torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
            opt.step()
            if schedule is not None:
                self.lr = group["lr"]
                schedule.step()
            if on_batch is not None:
                on_batch(b + 1, loss.detach())
        if schedule is None:
            self.lr = group["lr"]
        if several:
            self._agree_finite(epoch, first_bad)
        if not losses:
            return {"train_loss": float("nan")}
        if on_cpu:
            stacked = torch.tensor(losses, dtype=torch.float32)
        else:
            stacked = torch.stack(losses)  # one host sync an epoch, not one a step
        w = torch.tensor(sizes, dtype=stacked.dtype, device=stacked.device)
        if several:
            total, count = strategy.reduce_sum(torch.stack([(stacked * w).sum(), w.sum()])).tolist()
            train_loss = total / count
        else:
            train_loss = float((stacked * w).sum() / w.sum())
        if not math.isfinite(train_loss):
            bad = (~torch.isfinite(stacked)).nonzero()
            raise NonFiniteLoss(self._diagnose(epoch, int(bad[0]) + 1 if len(bad) and not several else None,
                                               train_loss))
        return {"train_loss": train_loss}

    def _agree_finite(self, epoch: int, first_bad: tuple[int, str] | None) -> None:
        """Several processes: stop every one of them if any saw a non-finite loss this epoch, with the message
        of the first (lowest batch, then lowest rank) that did."""
        strategy = self.ctx.strategy
        world = strategy.world_size
        key = -(first_bad[0] * world + strategy.rank) if first_bad is not None else -float("inf")
        (agreed,) = strategy.agree([key])
        if agreed == -float("inf"):
            return
        src = int(-agreed) % world
        why = strategy.broadcast(first_bad[1] if strategy.rank == src else None, src=src)
        raise NonFiniteLoss(f"{why} (seen by process {src} of {world})")

    def learning_rates(self) -> dict[str, float]:
        return {"lr": self.lr}  # the learning rate of the epoch's last step

    def evaluate(self, split: str, fast: bool, model: RunModel | None = None) -> dict[str, float]:
        part, n = self._eval_split(split)
        strategy = self.ctx.strategy
        gather = None
        model = model if model is not None else self.model
        if strategy.world_size > 1:
            strategy.sync_buffers(model.net)  # every shard scored by the weights the writer saves
            gather = lambda t: strategy.gather(t, n)  # noqa: E731
        return evaluate_split(model, self.loss_fn, part, self.task,
                              self.target, self.device, self.reads, self.workers, fast=fast, cfg=self.ctx.cfg,
                              metrics=self.ctx.metrics, gather=gather)

    # -- checks ----------------------------------------------------------------------------

    def probe(self, n: int = 8) -> None:
        """One eval-mode forward pass on the first training samples (no gradient, no randomness, no state
        change): the model must take the dataset's batches and return the output shape the task and loss
        need. Either failure is one line naming the model, its plugin and the shapes."""
        m = self.ctx.combo.model
        xb = head_inputs(self.ctx.splits.train, min(n, self.settings.batch_size)).to(self.device)
        was_training = self.net.training
        self.net.eval()
        try:
            with torch.no_grad():
                out = self.net(xb)
        except Exception as exc:  # noqa: BLE001 - whatever a plugin's forward raises on a bad shape
            raise ZooError(f"model '{m.name}' from plugin '{m.plugin.name}' failed on a batch of shape "
                           f"{tuple(xb.shape)} from dataset '{self.ctx.combo.dataset.name}': {type(exc).__name__}: "
                           f"{' '.join(str(exc).split())}") from exc
        finally:
            self.net.train(was_training)
        self.check_output(out, xb)

    def check_output(self, out, xb: torch.Tensor) -> None:
        """A batch's output must have the shape the task needs; say so in one line otherwise."""
        combo, meta = self.ctx.combo, self.ctx.splits.meta
        m, spec = combo.model, combo.model.spec
        who = f"model '{m.name}' from plugin '{m.plugin.name}'"
        k, n = out_features(meta, self.target), len(xb)
        if isinstance(out, dict):
            missing = [name for name in spec.outputs if name not in out]
            if missing:
                raise ZooError(f"{who} returned a dict without {', '.join(missing)} (it declares outputs "
                               f"{', '.join(spec.outputs)}; it returned {', '.join(map(str, out))})")
            out = out["output"]
        elif tuple(spec.outputs) != ("output",):
            raise ZooError(f"{who} declares outputs {', '.join(spec.outputs)} but returned a single tensor")
        if not isinstance(out, torch.Tensor):
            raise ZooError(f"{who} returned {type(out).__name__}, not a tensor")
        if tuple(out.shape) != (n, k):
            if self.task in ("binary", "multiclass"):
                need = (f"one logit per class ({k}: {meta.num_classes} classes)" if self.target == "index"
                        else "one logit (a binary loss)")
            else:
                need = f"{k} value{'s' if k != 1 else ''} per sample"
            raise ZooError(f"{who} returned output of shape {tuple(out.shape)} for a batch of {n} samples of shape "
                           f"{tuple(xb.shape[1:])}; the {self.task} task with loss '{combo.loss.name}' needs "
                           f"({n}, {k}): {need} (the model was built with out_features={k})")

    def _diagnose(self, epoch: int, batch: int | None, value: float, xb=None, out=None, target=None) -> str:
        """Why the loss is not finite, naming which came first: diverged weights, the model's output, or the
        loss."""
        combo = self.ctx.combo
        m, lo, ds = combo.model, combo.loss, combo.dataset
        model_name = f"model '{m.name}' from plugin '{m.plugin.name}'"
        loss_name = f"loss '{lo.name}' from plugin '{lo.plugin.name}'"
        where = f"epoch {epoch + 1}" + (f", batch {batch}" if batch else "")
        diverged = (f": training diverged; lower the learning rate (now {self.settings.lr}) or clip gradients "
                    "(--set clip_grad=1.0)")
        weights_ok = all(bool(torch.isfinite(p).all()) for p in self.net.parameters())
        if not weights_ok:
            why = f"the weights of {model_name} became non-finite before {where}{diverged}"
        elif xb is not None and not bool(torch.isfinite(xb).all()):
            why = f"dataset '{ds.name}' from plugin '{ds.plugin.name}' gave non-finite inputs in {where}"
        elif out is not None and not all(bool(torch.isfinite(t).all()) for t in split_outputs(out)[1].values()) \
                or out is not None and not bool(torch.isfinite(split_outputs(out)[0]).all()):
            why = (f"{model_name} returned non-finite output in {where} from finite weights and inputs (a bug in "
                   "its forward, such as a log or a division by zero)")
        elif out is not None and _overflows(self.loss_fn, out, target, self.reads):
            big = float(split_outputs(out)[0].detach().abs().max())
            why = (f"the loss overflowed to {value} in {where}: the outputs of {model_name} reached {big:.3g}"
                   f"{diverged}")
        elif out is not None:
            why = f"{loss_name} returned {value} in {where} on finite model outputs and targets (a bug in the loss)"
        else:
            why = f"the training loss of {loss_name} became {value} in {where}{diverged}"
        return why


def _overflows(loss_fn, out, target, reads) -> bool:
    """Whether the loss is finite in float64 on the same outputs: then float32 overflowed (divergence)."""
    if target is None:
        return False
    try:
        with torch.no_grad():
            wide = ({k: v.double() for k, v in out.items()} if isinstance(out, dict) else out.double())
            t = target.double() if target.is_floating_point() else target
            value = loss_fn(wide, t) if not isinstance(wide, dict) else compute_loss(loss_fn, wide, t, reads)
        return bool(torch.isfinite(value))
    except Exception:  # noqa: BLE001 - a loss that cannot run in float64 tells nothing either way
        return False

