"""Synthetic sequence datasets: generated from ``data_seed``, split by the run's seed.

Samples are float32 ``(T, F)`` arrays (T time steps of F features). Standardisation is
global: one mean and one standard deviation over every value of the training split, so
the shape of a waveform over time is kept (per-time-step statistics would distort it).
"""

from __future__ import annotations

import numpy as np

from zoo.data import Splits, split_arrays

#: The waveform classes, in label order.
SHAPES = ("sine", "square", "sawtooth", "triangle")


def wave(shape: str, u: np.ndarray) -> np.ndarray:
    """A unit-amplitude waveform of ``shape`` at phase ``u`` (in cycles): values in [-1, 1]."""
    frac = np.mod(u, 1.0)
    if shape == "sine":
        return np.sin(2.0 * np.pi * u)
    if shape == "square":
        return np.where(frac < 0.5, 1.0, -1.0)
    if shape == "sawtooth":
        return 2.0 * frac - 1.0
    if shape == "triangle":
        return 1.0 - 4.0 * np.abs(frac - 0.5)
    raise ValueError(f"unknown waveform shape {shape!r}; use one of {', '.join(SHAPES)}")


def _check_range(name: str, lo: float, hi: float) -> None:
    if lo > hi:
        raise ValueError(f"min_{name} ({lo}) must not exceed max_{name} ({hi})")


def generate_waveforms(*, n_samples: int, length: int, channels: int, noise: float, min_cycles: float,
                       max_cycles: float, min_amplitude: float, max_amplitude: float,
                       data_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The raw, unsplit waveforms: ``X`` float32 ``(n, length, channels)`` and labels ``y`` in 0..3.

    The labels are balanced (``n // 4`` or one more per shape) and shuffled. A sample's
    channels share its shape and frequency; each has its own phase, amplitude and noise.
    """
    _check_range("cycles", min_cycles, max_cycles)
    _check_range("amplitude", min_amplitude, max_amplitude)
    rng = np.random.default_rng(data_seed)
    y = rng.permutation(np.arange(n_samples) % len(SHAPES))
    cycles = rng.uniform(min_cycles, max_cycles, size=(n_samples, 1, 1))
    phase = rng.uniform(0.0, 1.0, size=(n_samples, 1, channels))
    amplitude = rng.uniform(min_amplitude, max_amplitude, size=(n_samples, 1, channels))
    t = np.arange(length, dtype=np.float64).reshape(1, length, 1) / length
    u = cycles * t + phase  # (n, T, F), in cycles
    X = np.empty((n_samples, length, channels))
    for k, shape in enumerate(SHAPES):
        rows = y == k
        X[rows] = wave(shape, u[rows])
    X = amplitude * X + rng.normal(0.0, noise, size=X.shape)
    return X.astype(np.float32), y.astype(np.int64)


def waveforms(*, seed: int, n_samples: int, length: int, channels: int, noise: float, min_cycles: float,
              max_cycles: float, min_amplitude: float, max_amplitude: float, data_seed: int,
              val_size: float, test_size: float, standardize: bool) -> Splits:
    X, y = generate_waveforms(n_samples=n_samples, length=length, channels=channels, noise=noise,
                              min_cycles=min_cycles, max_cycles=max_cycles, min_amplitude=min_amplitude,
                              max_amplitude=max_amplitude, data_seed=data_seed)
    return split_arrays(X, y, task="multiclass", seed=seed, val_size=val_size, test_size=test_size,
                        standardize="global" if standardize else None, class_names=SHAPES)


def generate_forecast(*, n_samples: int, length: int, horizon: int, components: int, noise: float,
                      min_cycles: float, max_cycles: float, data_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The raw, unsplit forecasting data: ``X`` float32 ``(n, length, 1)``, ``y`` float32 ``(n, horizon)``.

    Each sequence is a sum of ``components`` sines with random frequency (in periods per
    ``length`` steps), phase and amplitude (in [0.5, 1]), plus Gaussian noise; ``X`` holds
    its first ``length`` values and ``y`` the ``horizon`` values that follow.
    """
    _check_range("cycles", min_cycles, max_cycles)
    rng = np.random.default_rng(data_seed)
    cycles = rng.uniform(min_cycles, max_cycles, size=(n_samples, 1, components))
    phase = rng.uniform(0.0, 1.0, size=(n_samples, 1, components))
    amplitude = rng.uniform(0.5, 1.0, size=(n_samples, 1, components))
    t = np.arange(length + horizon, dtype=np.float64).reshape(1, -1, 1) / length
    signal = (amplitude * np.sin(2.0 * np.pi * (cycles * t + phase))).sum(axis=2)
    series = signal + rng.normal(0.0, noise, size=signal.shape)
    X = series[:, :length, None]
    y = series[:, length:]
    return X.astype(np.float32), y.astype(np.float32)


def waveform_forecast(*, seed: int, n_samples: int, length: int, horizon: int, components: int, noise: float,
                      min_cycles: float, max_cycles: float, data_seed: int,
                      val_size: float, test_size: float, standardize: bool) -> Splits:
    X, y = generate_forecast(n_samples=n_samples, length=length, horizon=horizon, components=components,
                             noise=noise, min_cycles=min_cycles, max_cycles=max_cycles, data_seed=data_seed)
    return split_arrays(X, y, task="regression", seed=seed, val_size=val_size, test_size=test_size,
                        standardize="global" if standardize else None)
