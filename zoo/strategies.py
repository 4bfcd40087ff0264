"""Execution strategies: where and how the training step runs.

A strategy is a plugin kind (``zoo_strategies``). It owns the device, moves data there,
yields the shuffled training batches and the evaluation batches, wraps the network for
training (a distributed strategy wraps it for gradient synchronisation), says which process
writes the run's files and reduces figures across processes. :class:`Strategy` is one process
on one device; a distributed strategy overrides what differs (``setup``, ``wrap``,
``train_batches``, ``reduce``, ``rank``/``world_size``).
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import torch

from .data import is_tensor_split
from .parts import pick_device


class Strategy:
    """One process, one device (``settings.device``: auto, cpu, cuda, cuda:N)."""

    rank: int = 0
    world_size: int = 1

    def __init__(self, settings: Any, **params: Any) -> None:
        self.settings = settings
        self.params = params
        self.device = torch.device("cpu")

    @property
    def is_writer(self) -> bool:
        """Whether this process writes the run's files (the first process of a distributed run)."""
        return self.rank == 0

    def setup(self) -> None:
        """Claim the device (and, for a distributed strategy, join the process group)."""
        self.device = pick_device(self.settings.device)

    def teardown(self) -> None:
        """Release what :meth:`setup` claimed."""

    def wrap(self, net: torch.nn.Module) -> torch.nn.Module:
        """The network the training step calls (the same one here; a DDP wrapper when distributed)."""
        return net

    def place(self, split, targets: Callable[[torch.Tensor], torch.Tensor] | None = None):
        """An in-memory ``(X, y)`` split on the device once, ``y`` passed through ``targets``; a lazy dataset
        is returned as it is (its batches are moved as they are read)."""
        if not is_tensor_split(split):
            return split
        X, y = split[0].to(self.device), split[1].to(self.device)
        return X, (targets(y) if targets is not None else y)

    def train_batches(self, split, batch_size: int, generator: torch.Generator, workers: int = 0,
                      targets: Callable[[torch.Tensor], torch.Tensor] | None = None) -> Iterator[tuple]:
        """Shuffled ``(x, y)`` training batches: index the on-device tensors of a :meth:`place`-d split, or
        read a lazy dataset with a ``DataLoader`` (``targets`` applied to each batch's targets)."""
        dev = self.device
        if isinstance(split, tuple):
            X, T = split
            perm = torch.randperm(len(X), generator=generator).to(dev, non_blocking=True)
            for i in range(0, len(X), batch_size):
                idx = perm[i : i + batch_size]
                yield X.index_select(0, idx), T.index_select(0, idx)
            return
        loader = torch.utils.data.DataLoader(split, batch_size=batch_size, shuffle=True, generator=generator,
                                             num_workers=workers, pin_memory=dev.type == "cuda")
        for xb, yb in loader:
            yb = yb.to(dev, non_blocking=True)
            yield xb.to(dev, non_blocking=True), (targets(yb) if targets is not None else yb)

    def reduce(self, value: float) -> float:
        """A figure summed over the processes (itself, with one process)."""
        return value
