"""Autoencoders. Each factory takes ``(input_shape, out_features, **params)``.

Both flatten their input (tabular ``(d,)`` or image ``(C, H, W)``) and reconstruct
``out_features`` values (``prod(input_shape)`` in the reconstruction task), with a linear
output layer since the targets are standardised (unbounded) values.
"""

from __future__ import annotations

import math

import torch
from torch import nn

_ACT = {
    "relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU,
    "elu": nn.ELU, "leaky_relu": nn.LeakyReLU, "silu": nn.SiLU,
}


def _check(activation: str, dropout: float, latent: int) -> None:
    if activation not in _ACT:
        raise ValueError(f"unknown activation {activation!r}; use one of {', '.join(_ACT)}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if latent < 1:
        raise ValueError(f"latent must be at least 1, got {latent}")


def _stack(width: int, sizes, activation: str, dropout: float) -> tuple[list[nn.Module], int]:
    """Linear-activation(-dropout) layers through ``sizes``; returns them and the final width."""
    layers: list[nn.Module] = []
    for h in sizes:
        layers += [nn.Linear(width, int(h)), _ACT[activation]()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = int(h)
    return layers, width


def _decoder(latent: int, hidden, out_features: int, activation: str, dropout: float) -> nn.Sequential:
    layers, width = _stack(latent, tuple(reversed(tuple(hidden))), activation, dropout)
    return nn.Sequential(*layers, nn.Linear(width, out_features))


class AutoEncoder(nn.Module):
    """``encoder``: flattened input -> hidden -> ``latent``; ``decoder``: the mirror image."""

    def __init__(self, input_shape, out_features: int, *, hidden, latent: int, activation: str,
                 dropout: float) -> None:
        super().__init__()
        _check(activation, dropout, latent)
        layers, width = _stack(math.prod(input_shape), hidden, activation, dropout)
        self.encoder = nn.Sequential(nn.Flatten(), *layers, nn.Linear(width, latent))
        self.decoder = _decoder(latent, hidden, out_features, activation, dropout)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class VAE(nn.Module):
    """A variational autoencoder: the encoder gives ``mu`` and ``logvar`` of a diagonal Gaussian code.

    In ``train()`` mode the code is sampled with the reparameterisation trick,
    ``z = mu + exp(logvar / 2) * eps`` with ``eps ~ N(0, 1)`` (from torch's global generator,
    which the engine seeds and checkpoints); in ``eval()`` mode ``z = mu``, so evaluation
    and saved-model predictions are deterministic. ``forward`` returns
    ``{"output": decoder(z), "mu": mu, "logvar": logvar}``.
    """

    def __init__(self, input_shape, out_features: int, *, hidden, latent: int, activation: str,
                 dropout: float) -> None:
        super().__init__()
        _check(activation, dropout, latent)
        layers, width = _stack(math.prod(input_shape), hidden, activation, dropout)
        self.encoder = nn.Sequential(nn.Flatten(), *layers)
        self.mu = nn.Linear(width, latent)
        self.logvar = nn.Linear(width, latent)
        self.decoder = _decoder(latent, hidden, out_features, activation, dropout)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return self.mu(h), self.logvar(h)

    def sample(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return mu
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        mu, logvar = self.encode(x)
        return {"output": self.decoder(self.sample(mu, logvar)), "mu": mu, "logvar": logvar}


def autoencoder(input_shape, out_features: int, *, hidden=(128,), activation: str = "relu", dropout: float = 0.0,
                latent: int = 16) -> nn.Module:
    return AutoEncoder(input_shape, out_features, hidden=hidden, latent=latent, activation=activation,
                       dropout=dropout)


def vae(input_shape, out_features: int, *, hidden=(128,), activation: str = "relu", dropout: float = 0.0,
        latent: int = 16) -> nn.Module:
    return VAE(input_shape, out_features, hidden=hidden, latent=latent, activation=activation, dropout=dropout)
