"""Execution strategies: where and how the training step runs.

A strategy is a plugin kind (``zoo_strategies``). It owns the device, moves data there,
yields the shuffled training batches, wraps the network for training (a distributed strategy
wraps it for gradient synchronisation), says which process writes the run's files, and offers
the few collectives a run needs: sharding and gathering an evaluation, summing the training
loss, agreeing on a stop, sharing a value from the writer. :class:`Strategy` is one process on
one device, where each of those is the identity; a distributed strategy (``distributed =
True``, started by a launcher) overrides them.

What a procedure does with a strategy, per training step: take ``(x, y)`` from
:meth:`~Strategy.train_batches`, compute the loss, back-propagate :meth:`~Strategy.scale_loss`
of it (the share of this process's samples in the global batch), and count
:meth:`~Strategy.counted` samples for the epoch's mean loss.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import torch

from .data import is_tensor_split
from .parts import pick_device

#: Up to this size an in-memory training split is shuffled as a whole each epoch (one copy on the device)
#: and batched by slicing; a larger one is batched by a gather per batch.
SHUFFLED_COPY_BYTES = 256 * 2**20


class Strategy:
    """One process, one device (``settings.device``: auto, cpu, cuda, cuda:N)."""

    rank: int = 0
    world_size: int = 1
    #: Whether it runs on several processes started by a launcher (``torchrun``, ``zoo train --nproc``).
    distributed: bool = False

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
            if X.nbytes + T.nbytes <= SHUFFLED_COPY_BYTES:
                # the epoch's shuffled copy in two gathers, its batches views made by one call each (split),
                # not a gather per batch: the same batches, fewer calls per step
                yield from zip(X.index_select(0, perm).split(batch_size), T.index_select(0, perm).split(batch_size))
                return
            for i in range(0, len(X), batch_size):
                idx = perm[i : i + batch_size]
                yield X.index_select(0, idx), T.index_select(0, idx)
            return
        loader = torch.utils.data.DataLoader(split, batch_size=batch_size, shuffle=True, generator=generator,
                                             num_workers=workers, pin_memory=dev.type == "cuda")
        for xb, yb in loader:
            yb = yb.to(dev, non_blocking=True)
            yield xb.to(dev, non_blocking=True), (targets(yb) if targets is not None else yb)

    def scale_loss(self, loss: torch.Tensor) -> torch.Tensor:
        """The loss to back-propagate for the batch just yielded: weighted by this process's share of the global
        batch, so that averaging the processes' gradients gives the global batch's gradient."""
        return loss

    def counted(self, n: int) -> int:
        """How many of the ``n`` samples of the batch just yielded count in the epoch's mean loss."""
        return n

    # -- evaluation and collectives (each the identity for one process) --------------------

    def shard(self, split):
        """The part of an evaluation split this process scores (contiguous; :meth:`gather` joins them)."""
        return split

    def gather(self, t: torch.Tensor, n: int) -> torch.Tensor:
        """The processes' outputs on their :meth:`shard` of a split of ``n`` samples, joined in order."""
        return t

    def sync_buffers(self, net: torch.nn.Module) -> None:
        """Give every process the writer's buffers of ``net`` (batch-norm statistics), before scoring it."""

    def reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        """A tensor summed over the processes."""
        return t

    def agree(self, values: list[float]) -> list[float]:
        """The largest of each value over the processes (every process gets the same answer)."""
        return list(values)

    def broadcast(self, obj: Any, src: int = 0) -> Any:
        """``obj`` as process ``src`` has it (a small JSON-able value)."""
        return obj

    def barrier(self) -> None:
        """Wait until every process gets here."""

    def describe(self) -> dict[str, Any] | None:
        """What the run records about its processes (``config.json`` and ``run.json``: backend, world size,
        hosts); None for one process."""
        return None

    def explain(self, exc: BaseException) -> Exception | None:
        """A one-line error for a failure of the processes' collectives (another process died or hung), or None
        when ``exc`` is not one."""
        return None
