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


def reporter_for(quiet: bool, stream=None) -> Reporter:
    """The right reporter: none when quiet, a bar on a terminal, lines otherwise."""
    if quiet:
        return Reporter()
    stream = stream or sys.stderr
    return BarReporter() if stream.isatty() else LineReporter()
