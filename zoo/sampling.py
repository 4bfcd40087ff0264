"""Drawing samples from a saved run whose model can sample (``sample(n, generator=None)``, as generation
models have): ``zoo sample RUN -n 64 --out samples.npy`` and :func:`zoo.sample`. Samples come back in the
data's units (the run's stored standardisation undone), seeded: the same seed gives the same samples."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .errors import UsageError

#: The most samples one call draws (they are held in memory at once).
MAX_SAMPLES = 10_000_000


def _model(run: Any, device: str):
    """(RunModel, config, run name) of a run directory or a :class:`zoo.engine.Run`."""
    from .engine import Run
    from .inference import Predictor

    if isinstance(run, Run):
        return run.model, run.config, str(run.dir)
    p = Predictor(run, device)
    return p.model, p.cfg, str(run)


def sample(run: str | os.PathLike | Any, n: int = 64, *, seed: int = 0, device: str = "cpu") -> np.ndarray:
    """``n`` samples of a run's model as float32 ``(n, *input_shape)`` in the data's units; ``run`` is a run
    directory or a :class:`zoo.engine.Run`. A model without ``sample`` is a one-line error."""
    from .evaluation import can_sample, draw_samples

    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SAMPLES:
        raise UsageError(f"-n {n!r}: the number of samples must be an integer from 1 to {MAX_SAMPLES}")
    model, cfg, name = _model(run, device)
    if not can_sample(model.net):
        raise UsageError(f"{name}: model '{cfg.get('model')}' cannot sample (it has no sample(n, generator) method; "
                         f"its task is {cfg.get('meta', {}).get('task', cfg.get('task'))})")
    return draw_samples(model, n, seed=seed).cpu().numpy().astype(np.float32)


def write_samples(samples: np.ndarray, out: str | os.PathLike, cfg: dict[str, Any] | None = None,
                  title: str = "") -> Path:
    """Write samples as ``.npy`` (the array) or ``.png`` (a scatter of 2-D samples, or a grid of images)."""
    path = Path(out)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        from .files import atomic_path

        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.save(fh, samples, allow_pickle=False)
        return path
    if suffix == ".png":
        from .plots import plot_samples

        return plot_samples(samples, path, title=title)
    raise UsageError(f"--out {out}: write samples to a .npy or .png file")
