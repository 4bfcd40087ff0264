"""How a training run reports progress: a tqdm bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
from typing import Callable


def format_row(row: dict[str, float], epochs: int) -> str:
    width = len(str(epochs))
    parts = [f"epoch {int(row['epoch']):>{width}}/{epochs}", f"train_loss {row['train_loss']:.4f}"]
    parts += [f"{k} {v:.4f}" for k, v in row.items() if k.startswith("val_")]
    return "  ".join(parts)


class Reporter:
    """Silent base: the engine calls these hooks; subclasses print."""

    def message(self, text: str) -> None:
        pass

    def epoch_start(self, epoch: int, epochs: int, batches: int) -> None:
        pass

    def batch(self, loss) -> None:
        pass

    def epoch_end(self, row: dict[str, float], epochs: int) -> None:
        pass

    def close(self) -> None:
        pass


class LineReporter(Reporter):
    """One line per epoch (for logs, pipes and CI)."""

    def __init__(self, write: Callable[[str], None] | None = None) -> None:
        self.write = write or (lambda s: print(s, file=sys.stderr, flush=True))

    def message(self, text: str) -> None:
        self.write(text)

    def epoch_end(self, row: dict[str, float], epochs: int) -> None:
        self.write(format_row(row, epochs))


class BarReporter(LineReporter):
    """A tqdm bar per epoch (batches, loss, rate, ETA), then the epoch's line."""

    EVERY = 10  # batches between loss read-outs (each one is a host sync on CUDA)

    def __init__(self) -> None:
        super().__init__()
        self.bar = None
        self.n = 0

    def epoch_start(self, epoch: int, epochs: int, batches: int) -> None:
        from tqdm.auto import tqdm

        self.n = 0
        self.bar = tqdm(total=batches, desc=f"epoch {epoch}/{epochs}", unit="batch", leave=False,
                        file=sys.stderr, dynamic_ncols=True)

    def batch(self, loss) -> None:
        self.n += 1
        if self.n % self.EVERY == 1:
            self.bar.set_postfix(loss=f"{float(loss):.4f}", refresh=False)
        self.bar.update(1)

    def epoch_end(self, row: dict[str, float], epochs: int) -> None:
        self.close()
        super().epoch_end(row, epochs)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class EpochBarReporter(Reporter):
    """One bar for the whole run, advanced per epoch, the latest figures beside it (the Python API's
    default: a widget in a notebook through ``tqdm.auto``, a single line in a terminal)."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.bar = None

    def epoch_start(self, epoch: int, epochs: int, batches: int) -> None:
        if self.bar is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=epochs, initial=epoch - 1, desc="training", unit="epoch", file=self.stream,
                            dynamic_ncols=True, leave=True)

    def epoch_end(self, row: dict[str, float], epochs: int) -> None:
        if self.bar is None:
            return
        shown = {k: row[k] for k in ("train_loss", "val_loss") if k in row}
        shown.update((k, v) for k, v in row.items() if k.startswith("val_") and k != "val_loss" and len(shown) < 3)
        self.bar.set_postfix({k: f"{v:.4g}" for k, v in shown.items()}, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def in_notebook() -> bool:
    """Whether this runs inside a Jupyter (IPython kernel) session."""
    shell = sys.modules.get("IPython")
    if shell is None or "ipykernel" not in sys.modules:
        return False
    try:
        return shell.get_ipython() is not None
    except Exception:  # noqa: BLE001
        return False


PROGRESS = ("auto", "bar", "lines", "none")


def api_reporter(progress: str = "auto", stream=None) -> Reporter:
    """The reporter ``zoo.train(progress=...)`` uses: ``auto`` is one epoch bar in a notebook or terminal and
    silence otherwise (a script's log gets no bar noise), ``bar``, ``lines`` (one line an epoch) or ``none``."""
    from .errors import UsageError, did_you_mean

    if progress not in PROGRESS:
        raise UsageError(f"progress={progress!r} is not one of {', '.join(PROGRESS)}{did_you_mean(progress, PROGRESS)}")
    stream = stream or sys.stderr
    if progress == "auto":
        progress = "bar" if in_notebook() or getattr(stream, "isatty", lambda: False)() else "none"
    if progress == "bar":
        return EpochBarReporter(stream)
    if progress == "lines":
        return LineReporter(lambda text: print(text, file=stream, flush=True))
    return Reporter()


def reporter_for(quiet: bool, stream=None) -> Reporter:
    """The right reporter: none when quiet, a bar on a terminal, lines otherwise."""
    if quiet:
        return Reporter()
    stream = stream or sys.stderr
    return BarReporter() if stream.isatty() else LineReporter()
