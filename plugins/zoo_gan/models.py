"""The GAN models: one module holding a ``generator`` and a ``discriminator``.

``forward(x)`` is the discriminator's logit for a batch of data-shaped (standardised) inputs, so the
run's :class:`zoo.RunModel` standardises what the discriminator sees and saves both networks in one
state dict; ``sample(n, generator=None)`` draws ``n`` samples in that standardised space from a
Gaussian latent, taken from ``generator`` (a CPU ``torch.Generator``) when given.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class GanPair(nn.Module):
    """A generator and a discriminator for samples of ``input_shape``."""

    def __init__(self, generator: nn.Module, discriminator: nn.Module, latent: int, input_shape,
                 pack: int = 1) -> None:
        super().__init__()
        self.pack = int(pack)
        self.generator = generator
        self.discriminator = discriminator
        self.latent = int(latent)
        self.input_shape = tuple(int(d) for d in input_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The discriminator's logits, one per sample. With ``pack`` > 1 (PacGAN) it judges consecutive groups of
        ``pack`` samples together, and each sample gets its group's logit (a batch whose size is not a multiple
        of ``pack`` fills its last group with its first samples)."""
        if self.pack == 1:
            return self.discriminator(x)
        n, p = len(x), self.pack
        flat = x.reshape(n, -1)
        short = -n % p
        if short:
            flat = torch.cat([flat, flat[torch.arange(short, device=flat.device) % max(n, 1)]])
        out = self.discriminator(flat.reshape(len(flat) // p, -1))
        return out.repeat_interleave(p, dim=0)[:n]

    def latents(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` Gaussian latents, drawn on the CPU (the same on every device) and moved to the model's."""
        device = next(self.generator.parameters()).device
        z = torch.randn(n, self.latent, generator=generator, device="cpu" if generator is not None else device)
        return z.to(device)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.generator(self.latents(n, generator)).reshape(n, *self.input_shape)


def _mlp(sizes: list[int], act, last_act=None, norm=None) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        lin = nn.Linear(sizes[i], sizes[i + 1])
        layers.append(norm(lin) if norm is not None else lin)
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


def gan_mlp(input_shape, out_features: int, *, latent: int = 8, hidden=(128, 128, 128),
            spectral_norm: bool = False, pack: int = 1) -> GanPair:
    """MLPs: the generator maps ``latent`` Gaussian values through ``hidden`` ReLU layers to a sample; the
    discriminator maps a flattened sample through ``hidden`` LeakyReLU(0.2) layers to ``out_features``
    logits (one for the generation task), with spectral normalisation of every layer when asked; with ``pack``
    > 1 it sees ``pack`` samples at once (PacGAN), which penalises a generator that covers few modes."""
    d = int(math.prod(input_shape))
    hidden = [int(h) for h in hidden]
    gen = _mlp([int(latent), *hidden, d], nn.ReLU)
    norm = torch.nn.utils.parametrizations.spectral_norm if spectral_norm else None
    disc = nn.Sequential(nn.Flatten(), *_mlp([d * int(pack), *hidden, int(out_features)], lambda: nn.LeakyReLU(0.2),
                                             norm=norm))
    return GanPair(gen, disc, latent, input_shape, pack)


class PixelNorm(nn.Module):
    """Each position's feature vector scaled to unit root mean square (ProGAN's pixel normalisation): per sample,
    with no statistics, so a sample does not depend on its batch or on train/eval mode."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(1, keepdim=True) + 1e-8)


#: The generator's normalisations: none of them keeps running statistics, so sampling is the same in train and
#: eval mode (batch normalisation is not offered: its eval-mode samples would differ from the trained ones).
GEN_NORMS = ("pixel", "layer", "none")


def dcgan(input_shape, out_features: int, *, latent: int = 32, channels=(32, 64), norm: str = "pixel",
          spectral_norm: bool = False) -> GanPair:
    """A DCGAN-style convolutional pair for small ``(C, H, W)`` images (H and W multiples of 4).

    The generator maps ``latent`` Gaussian values through a linear layer to ``channels[1]`` maps of
    ``H/4 x W/4``, then two stride-2 transposed convolutions (kernel 4) up to ``channels[0]`` maps of
    ``H/2 x W/2`` and to the image, with a normalisation (``norm``: ``pixel``, ProGAN's per-position feature
    normalisation; ``layer``, each sample's maps to zero mean and unit variance with a learnt scale and shift;
    ``none``) and ReLU between them and a tanh at the end (the data's standardised range is [-1, 1]). The
    discriminator mirrors it: two stride-2 convolutions (kernel 4; ``channels[0]`` then ``channels[1]`` maps) with
    LeakyReLU(0.2) and a linear layer to ``out_features`` logits, every layer spectrally normalised when
    ``spectral_norm`` is set. Neither network has batch statistics: a sample does not depend on its batch or on
    train/eval mode."""
    if len(input_shape) != 3:
        raise ValueError(f"dcgan needs (channels, height, width) images, got shape {tuple(input_shape)}")
    c, h, w = (int(d) for d in input_shape)
    if h % 4 or w % 4:
        raise ValueError(f"dcgan upsamples twice by 2 and needs a height and width that are multiples of 4, "
                         f"got {h}x{w}")
    if len(channels) != 2:
        raise ValueError(f"dcgan has two convolutional stages; give two channel counts, not {len(channels)}")
    if norm not in GEN_NORMS:
        raise ValueError(f"norm must be one of {', '.join(GEN_NORMS)}, not {norm!r}")
    c1, c2 = (int(x) for x in channels)
    latent = int(latent)
    small = (h // 4) * (w // 4)

    def normed(n: int) -> list[nn.Module]:
        return {"pixel": [PixelNorm()], "layer": [nn.GroupNorm(1, n)], "none": []}[norm]

    gen = nn.Sequential(
        nn.Linear(latent, c2 * small), nn.Unflatten(1, (c2, h // 4, w // 4)), *normed(c2), nn.ReLU(),
        nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1), *normed(c1), nn.ReLU(),
        nn.ConvTranspose2d(c1, c, 4, stride=2, padding=1), nn.Tanh(),
    )
    sn = torch.nn.utils.parametrizations.spectral_norm if spectral_norm else (lambda m: m)
    disc = nn.Sequential(
        sn(nn.Conv2d(c, c1, 4, stride=2, padding=1)), nn.LeakyReLU(0.2),
        sn(nn.Conv2d(c1, c2, 4, stride=2, padding=1)), nn.LeakyReLU(0.2),
        nn.Flatten(), sn(nn.Linear(c2 * small, int(out_features))),
    )
    return GanPair(gen, disc, latent, (c, h, w))
