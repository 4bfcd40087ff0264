"""The VAE loss: ``vae_loss(**params)`` returns ``(output, target, *, mu, logvar) -> scalar``."""

from __future__ import annotations

import torch
from torch import nn


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) per sample, summed over the latent dimensions: ``(N,)``.

    ``0.5 * sum_j (mu_j^2 + exp(logvar_j) - 1 - logvar_j)``.
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).reshape(len(mu), -1).sum(dim=1)


class VAELoss(nn.Module):
    """Negative ELBO per output value.

    For each sample, the reconstruction error summed over its D output values (squared
    error for ``mse``, absolute error for ``l1``) plus ``beta`` times the KL divergence of
    its code from N(0, 1) summed over the latent dimensions; averaged over the batch and
    divided by D, so the loss is on the scale of the per-value MSE while the balance of the
    two terms is that of the per-sample ELBO (``beta = 1``: the standard VAE objective for a
    Gaussian decoder of variance 1/2, up to a constant).
    """

    def __init__(self, beta: float, reconstruction: str) -> None:
        super().__init__()
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        if reconstruction not in ("mse", "l1"):
            raise ValueError(f"reconstruction must be mse or l1, not {reconstruction!r}")
        self.beta = float(beta)
        self.reconstruction = reconstruction

    def forward(self, output: torch.Tensor, target: torch.Tensor, *, mu: torch.Tensor,
                logvar: torch.Tensor) -> torch.Tensor:
        n = len(output)
        diff = (output - target).reshape(n, -1)
        err = diff.pow(2) if self.reconstruction == "mse" else diff.abs()
        per_sample = err.sum(dim=1) + self.beta * kl_divergence(mu, logvar)
        return per_sample.mean() / diff.shape[1]

    def extra_repr(self) -> str:
        return f"beta={self.beta}, reconstruction={self.reconstruction!r}"


def vae_loss(*, beta: float = 1.0, reconstruction: str = "mse") -> nn.Module:
    return VAELoss(beta, reconstruction)
