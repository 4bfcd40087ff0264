"""The ``gan`` procedure: adversarial training of a model's generator and discriminator.

Each real training batch is one discriminator step (on the batch and as many generated samples);
after every ``d_steps`` of them comes one generator step on a batch of generated samples. Both
optimizers are the run's (``--optimizer``, ``--lr``; the discriminator's learning rate is scaled by
``d_lr_scale``), kept as ``optimizer`` (the generator's) and ``discriminator``, with a schedule each.
The latents and the shuffles come from the run's seeded generator, which the trainer checkpoints;
the optimizers, schedules and the step count travel in the procedure's state, so a resumed run
continues exactly.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn.functional as F

from zoo.errors import ZooError
from zoo.evaluation import evaluate_split, head_inputs, split_len
from zoo.parts import RunModel, build_loss
from zoo.procedures import NonFiniteLoss, Procedure, RunContext


def discriminator_bce() -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Loss: binary cross-entropy of logits against targets (1 real, 0 generated)."""
    def loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, target.to(logits.dtype))

    return loss


def _parts(net) -> tuple[torch.nn.Module, torch.nn.Module]:
    gen, disc = getattr(net, "generator", None), getattr(net, "discriminator", None)
    if not isinstance(gen, torch.nn.Module) or not isinstance(disc, torch.nn.Module) or not callable(
            getattr(net, "sample", None)):
        raise ZooError(f"procedure 'gan' needs a model with a 'generator' and a 'discriminator' (nn.Modules) and a "
                       f"sample(n, generator=None) method; {type(net).__name__} lacks them")
    return gen, disc


class GanProcedure(Procedure):
    """Adversarial training (see the module's description)."""

    def __init__(self, ctx: RunContext, *, loss: str = "non-saturating", label_smoothing: float = 0.0,
                 d_steps: int = 1, d_lr_scale: float = 1.0, r1: float = 0.0) -> None:
        super().__init__(ctx)
        s = self.settings
        if loss not in ("non-saturating", "minimax", "hinge"):
            raise ZooError(f"procedure 'gan': loss must be non-saturating, minimax or hinge, not {loss!r}")
        self.require_one_process_fp32("gan")
        self.objective, self.smoothing, self.d_steps = loss, float(label_smoothing), int(d_steps)
        self.r1 = float(r1)
        self.model = ctx.model
        self.net = ctx.model.net
        self.gen, self.disc = _parts(self.net)
        self.device = ctx.strategy.device
        self.target = ctx.cfg["target"]
        self.loss_fn = build_loss(ctx.combo, ctx.cfg, self.device)
        batches = max(1, -(-split_len(ctx.splits.train) // s.batch_size))
        self.steps_per_epoch = batches
        self.g_opt = self.build_optimizer(self.gen.parameters())
        self.d_opt = self.build_optimizer(self.disc.parameters(), name="discriminator", lr=s.lr * d_lr_scale)
        self.g_sched = self.build_schedule(self.g_opt, max(1, batches // self.d_steps))
        self.d_sched = self.build_schedule(self.d_opt, batches, name="discriminator")
        self.d_count = 0  # discriminator steps so far (a generator step follows every d_steps of them)
        self._train = None
        self._val = None

    # -- data ------------------------------------------------------------------------------

    def _train_split(self):
        if self._train is None:
            self._train = self.ctx.strategy.place(self.ctx.splits.train)
        return self._train

    def _eval_split(self, name: str):
        if name != "val":
            return self.ctx.splits.split(name)
        if self._val is None:
            self._val = self.ctx.strategy.place(self.ctx.splits.val)
        return self._val

    # -- the objectives ----------------------------------------------------------------------

    def d_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        if self.objective == "hinge":
            return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
        return (F.binary_cross_entropy_with_logits(real, torch.full_like(real, 1.0 - self.smoothing))
                + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))

    def g_loss(self, fake: torch.Tensor) -> torch.Tensor:
        if self.objective == "hinge":
            return -fake.mean()
        if self.objective == "minimax":
            return -F.softplus(fake).mean()  # log(1 - D(G(z))) = -softplus(logit)
        return F.softplus(-fake).mean()  # -log D(G(z))

    # -- the step ------------------------------------------------------------------------------

    def train_epoch(self, epoch: int, on_batch: Callable[[int, Any], None] | None) -> dict[str, float]:
        s = self.settings
        net, gen_rng, clip = self.net, self.ctx.generator, s.clip_grad
        batches = self.ctx.strategy.train_batches(self._train_split(), s.batch_size, gen_rng)
        net.train()
        d_losses, g_losses = [], []
        for b, (xb, _) in enumerate(batches):
            n = len(xb)
            with torch.no_grad():
                fake = net.sample(n, generator=gen_rng)
            if self.r1:
                xb = xb.detach().requires_grad_(True)
            real = net(xb)
            d = self.d_loss(real, net(fake))
            if self.r1:  # R1: the squared gradient norm of the discriminator on real samples
                (grad,) = torch.autograd.grad(real.sum(), xb, create_graph=True)
                d = d + 0.5 * self.r1 * grad.pow(2).reshape(n, -1).sum(1).mean()
            self.d_opt.zero_grad(set_to_none=True)
            d.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(self.disc.parameters(), clip)
            self.d_opt.step()
            if self.d_sched is not None:
                self.d_sched.step()
            self.d_count += 1
            d_losses.append(d.detach())
            if self.d_count % self.d_steps == 0:
                g = self.g_loss(net(net.sample(s.batch_size, generator=gen_rng)))
                self.g_opt.zero_grad(set_to_none=True)
                g.backward()
                if clip:
                    torch.nn.utils.clip_grad_norm_(self.gen.parameters(), clip)
                self.g_opt.step()
                if self.g_sched is not None:
                    self.g_sched.step()
                g_losses.append(g.detach())
            if on_batch is not None:
                on_batch(b + 1, d_losses[-1])
        d_mean = float(torch.stack(d_losses).mean()) if d_losses else float("nan")
        g_mean = float(torch.stack(g_losses).mean()) if g_losses else float("nan")
        for name, value in (("discriminator", d_mean), ("generator", g_mean)):
            if not math.isfinite(value) and (name == "discriminator" or g_losses):
                raise NonFiniteLoss(f"the {name} loss became {value} in epoch {epoch + 1}: training diverged; "
                                    f"lower the learning rate (now {s.lr}) or clip gradients (--set clip_grad=1.0)")
        return {"train_loss": d_mean, "train_g_loss": g_mean}

    def evaluate(self, split: str, fast: bool, model: RunModel | None = None) -> dict[str, float]:
        return evaluate_split(model if model is not None else self.model, self.loss_fn, self._eval_split(split),
                              "generation", self.target, self.device, fast=fast, cfg=self.ctx.cfg,
                              metrics=self.ctx.metrics)

    # -- state ---------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "d_count": self.d_count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.d_count = int(state["d_count"])

    # -- checks --------------------------------------------------------------------------------

    def probe(self, n: int = 4) -> None:
        """The discriminator scores a few training samples with one value each, and the generator's samples
        have the data's shape (no gradient, no state change, eval mode)."""
        m = self.ctx.combo.model
        who = f"model '{m.name}' from plugin '{m.plugin.name}'"
        xb = head_inputs(self.ctx.splits.train, n).to(self.device)
        was = self.net.training
        self.net.eval()
        try:
            with torch.no_grad():
                out = self.net(xb)
                fake = self.net.sample(n, generator=torch.Generator().manual_seed(0))
        except Exception as exc:  # noqa: BLE001 - a plugin's forward on a bad shape
            raise ZooError(f"{who} failed on a batch of shape {tuple(xb.shape)}: {type(exc).__name__}: "
                           f"{' '.join(str(exc).split())}") from exc
        finally:
            self.net.train(was)
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (n, 1):
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ZooError(f"{who} scored a batch of {n} samples as {got}; the gan procedure needs ({n}, 1): one "
                           "discriminator logit per sample")
        if not isinstance(fake, torch.Tensor) or tuple(fake.shape) != tuple(xb.shape):
            got = tuple(fake.shape) if isinstance(fake, torch.Tensor) else type(fake).__name__
            raise ZooError(f"{who} sampled {got} for sample({n}); the data's samples are {tuple(xb.shape)}")
