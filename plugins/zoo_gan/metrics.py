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


# -- the 8x8 digits -----------------------------------------------------------------------------
#
# Both digits metrics read a digits classifier that zoo trained (``zoo train digits-cnn --seed 0``, test accuracy
# 0.978), shipped with the plugin as ``digits_classifier.safetensors`` and pinned by its sha256 (regenerate it with
# ``python -m bench.digits_classifier``). It takes raw pixels (0..16, the digits data's units) and standardises them
# as its run did. Each metric scores the first :data:`DIGITS_SAMPLES` samples it is given.

from pathlib import Path  # noqa: E402

#: The classifier file and its pinned sha256 (checked every time a process loads it).
CLASSIFIER_PATH = Path(__file__).resolve().parent / "digits_classifier.safetensors"
CLASSIFIER_SHA256 = "640bd025ca574d4ceb927cfe5421408d84a6dc1acbf18657ff86f323a2d497da"
#: Generated samples each digits metric scores (the first ones given: the engine's draw is seeded).
DIGITS_SAMPLES = 1000
#: The classifier "sees" a class when at least this share of the samples (a fifth of the 10% a class holds in the
#: data) is classified as it with a softmax probability of at least CLASS_CONFIDENCE (uniform noise, classified
#: without confidence, would otherwise "cover" 8 classes).
CLASS_SHARE = 0.02
CLASS_CONFIDENCE = 0.9
DIGIT_CLASSES = 10

_classifier: dict[tuple[str, str], torch.nn.Module] = {}
_real_stats: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


class DigitsClassifier(torch.nn.Module):
    """zoo's small CNN (``zoo_vision``'s ``cnn`` with its defaults) with the run's input standardisation:
    ``features(x)`` are the 256 inputs of its last linear layer, ``forward(x)`` the 10 class logits, both for raw
    0..16 pixels ``(N, 1, 8, 8)``."""

    def __init__(self) -> None:
        super().__init__()
        from torch import nn

        self.register_buffer("input_mean", torch.zeros(1, 8, 8))
        self.register_buffer("input_std", torch.ones(1, 8, 8))
        self.net = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                 nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                 nn.Flatten(), nn.Dropout(0.25), nn.Linear(256, DIGIT_CLASSES))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net[:7]((x - self.input_mean) / self.input_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net[7:](self.features(x))


def load_classifier(path: str | Path = CLASSIFIER_PATH, sha256: str = CLASSIFIER_SHA256) -> DigitsClassifier:
    """The pinned digits classifier in eval mode (loaded once per process); a file whose sha256 is not ``sha256``
    is refused with one line."""
    import hashlib

    from safetensors.torch import load

    from zoo.errors import ZooError

    key = (str(path), sha256)
    if key not in _classifier:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise ZooError(f"the digits metrics' classifier {path} cannot be read ({exc.strerror or exc}); "
                           "reinstall zoo or regenerate it with python -m bench.digits_classifier") from None
        digest = hashlib.sha256(data).hexdigest()
        if digest != sha256:
            raise ZooError(f"the digits metrics' classifier {path} has sha256 {digest[:16]}..., not the pinned "
                           f"{sha256[:16]}...: the file was changed; reinstall zoo or regenerate it with python -m "
                           "bench.digits_classifier and update zoo_gan.metrics.CLASSIFIER_SHA256")
        model = DigitsClassifier()
        model.load_state_dict(load(data), strict=True)
        _classifier[key] = model.eval()
    return _classifier[key]


def _digits(x: torch.Tensor, what: str) -> torch.Tensor:
    x = x.detach()
    if x.numel() and x[0].numel() != 64:
        raise ValueError(f"digits metrics score 8x8 images (64 values each), not {what} of {x[0].numel()} values")
    return x.float().cpu().reshape(len(x), 1, 8, 8)


@torch.no_grad()
def digits_features(x: torch.Tensor) -> torch.Tensor:
    """The classifier's 256 penultimate features of images in raw pixels (0..16), float64."""
    clf = load_classifier()
    x = _digits(x, "samples")
    x = torch.nan_to_num(x, nan=0.0, posinf=16.0, neginf=0.0)
    return torch.cat([clf.features(x[i:i + 4096]) for i in range(0, len(x), 4096)]).double() if len(x) else \
        torch.zeros(0, 256, dtype=torch.float64)


def _stats(feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mu = feats.mean(0)
    d = feats - mu
    return mu, d.T @ d / max(len(feats) - 1, 1)


def _real(real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Feature mean and covariance of the real images, cached per process by their content (a validation split
    is scored every epoch)."""
    import hashlib

    x = _digits(real, "real images")
    key = (CLASSIFIER_SHA256, tuple(x.shape), hashlib.sha256(x.numpy().tobytes()).hexdigest())
    if key not in _real_stats:
        if len(_real_stats) > 16:
            _real_stats.clear()
        _real_stats[key] = _stats(digits_features(x))
    return _real_stats[key]


def frechet_distance(mu1, cov1, mu2, cov2) -> float:
    """|mu1 - mu2|^2 + tr(cov1 + cov2 - 2 (cov1 cov2)^(1/2)) of two Gaussians (float64; the trace of the square
    root from the eigenvalues of cov1^(1/2) cov2 cov1^(1/2), which are those of cov1 cov2)."""
    w, v = torch.linalg.eigh(cov1)
    root1 = (v * w.clamp(min=0).sqrt()) @ v.T
    cross = torch.linalg.eigvalsh(root1 @ cov2 @ root1).clamp(min=0).sqrt().sum()
    return float((mu1 - mu2).pow(2).sum() + torch.trace(cov1) + torch.trace(cov2) - 2 * cross)


def digits_fd(pred, y=None, *, target="value") -> float:
    """Fréchet distance between the classifier's penultimate features of the first 1,000 samples and of the real
    images ``y`` (both in raw pixels, 0..16): lower is better, 0 for identical feature statistics."""
    if y is None:
        raise ValueError("digits_fd compares samples with real images; none were given")
    mu_r, cov_r = _real(y)
    feats = digits_features(pred[:DIGITS_SAMPLES])
    if len(feats) < 2:
        return float("nan")
    mu_s, cov_s = _stats(feats)
    return max(frechet_distance(mu_s, cov_s, mu_r, cov_r), 0.0)


@torch.no_grad()
def digits_classes(pred, y=None, *, target="value") -> float:
    """Digit classes the classifier sees among the first 1,000 samples: those it assigns at least 2% of them with a
    probability of at least 0.9 each (0 to 10)."""
    x = _digits(pred[:DIGITS_SAMPLES], "samples")
    if not len(x):
        return 0.0
    x = torch.nan_to_num(x, nan=0.0, posinf=16.0, neginf=0.0)
    clf = load_classifier()
    conf, label = torch.cat([clf(x[i:i + 4096]) for i in range(0, len(x), 4096)]).softmax(1).max(1)
    counts = torch.bincount(label[conf >= CLASS_CONFIDENCE], minlength=DIGIT_CLASSES)
    return float((counts >= CLASS_SHARE * len(x)).sum())
