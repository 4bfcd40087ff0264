"""Distributed data parallel: one process per device, gradients averaged by ``torch.distributed``.

The processes are started by PyTorch's elastic launcher (``torchrun``, or ``zoo train --nproc N``,
which calls it); each reads its rank from the launcher's environment. Started without a launcher
(``zoo train --strategy ddp``) it is a process group of one.

What it promises beyond ``DistributedDataParallel`` itself:

- **The same batches as one process.** ``batch_size`` is the global batch. Every process draws the
  same seeded permutation and takes its contiguous share of each global batch, and its loss is
  weighted by its share (``n_local * world / n_global``) so that DDP's gradient average is the
  gradient of the global batch's mean loss, also when the last batch does not divide evenly. A
  run with 2 processes follows the 1-process run's sequence of batches; only the order of the
  floating-point reductions differs. A lazily read dataset is split the same way (each sample
  read by one process per epoch, a new shuffle each epoch, the same on every process).
- **Exact evaluation.** Each process scores a contiguous shard of a split and the outputs are
  gathered in order, so every sample counts once (no padded duplicates) and the loss and metrics
  are those of one process on the whole split.
- **Agreement.** Stop decisions (early stopping, a signal, a non-finite loss) go through a
  collective, so every process stops at the same point and none waits in a collective forever;
  the process group has a timeout for the rest (a process that died or hangs).
"""

from __future__ import annotations

import os
import socket
import time
from datetime import timedelta
from typing import Any, Callable, Iterator

import torch
import torch.distributed as dist

from zoo.data import is_tensor_split
from zoo.errors import ZooError
from zoo.launch import launch_env
from zoo.parts import pick_device
from zoo.strategies import Strategy


class DistributedFailure(ZooError):
    """Another process of the run failed, hung or was lost."""

    peer_failure = True


class DistributedDataParallel(Strategy):
    """``torch.nn.parallel.DistributedDataParallel`` over the processes the launcher started."""

    distributed = True

    def __init__(self, settings: Any, backend: str = "auto", timeout: float = 300.0, sync_batchnorm: bool = True,
                 **params: Any) -> None:
        super().__init__(settings, **params)
        self.backend_choice = backend
        self.timeout = float(timeout)
        self.sync_batchnorm = sync_batchnorm
        self.backend = "gloo"
        self.env = launch_env()
        self.local_rank = 0
        self._owns_group = False
        self._share = 1.0
        self._stamp = 0

    # -- the process group ---------------------------------------------------------------

    def setup(self) -> None:
        env = self.env
        self.local_rank = env.local_rank if env else 0
        want = self.settings.device
        if want in ("auto", "cuda") and torch.cuda.is_available():
            if self.local_rank >= torch.cuda.device_count():
                raise ZooError(f"process {env.rank if env else 0} has local rank {self.local_rank} but this machine "
                               f"has {torch.cuda.device_count()} CUDA device(s): start at most one process per GPU")
            self.device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(self.device)
        else:
            self.device = pick_device(want if want != "auto" else "cpu")
        backend = self.backend_choice
        if backend == "auto":
            backend = "nccl" if self.device.type == "cuda" else "gloo"
        if backend == "nccl" and self.device.type != "cuda":
            raise ZooError("the nccl backend needs CUDA devices; use backend=gloo (--set strategy.backend=gloo) on CPU")
        self.backend = backend
        timeout = timedelta(seconds=self.timeout)
        if dist.is_initialized():  # the caller made the group (a notebook, a test harness)
            pass
        elif env is None:  # no launcher: a group of one, in this process
            dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1, timeout=timeout)
            self._owns_group = True
        else:
            try:
                # The launcher's store outlives a restart of the workers (--max-restarts), and with it the
                # addresses the previous attempt's processes published: a prefix per attempt keeps the new
                # processes from connecting to the dead ones.
                store, rank, world = next(dist.rendezvous("env://", timeout=timeout))
                store = dist.PrefixStore(f"zoo/attempt-{env.restart}", store)
                dist.init_process_group(backend, store=store, rank=rank, world_size=world, timeout=timeout,
                                        device_id=self.device if self.device.type == "cuda" else None)
            except Exception as exc:  # noqa: BLE001 - the rendezvous failed: say where
                raise DistributedFailure(f"process {env.rank} could not join the process group at "
                                         f"{os.environ.get('MASTER_ADDR')}:{os.environ.get('MASTER_PORT')}: "
                                         f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}") from None
            self._owns_group = True
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()

    def teardown(self) -> None:
        if self._owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self._owns_group = False

    def describe(self) -> dict[str, Any]:
        hosts = [None] * self.world_size
        dist.all_gather_object(hosts, socket.gethostname())
        nodes = int(os.environ.get("GROUP_WORLD_SIZE", "1")) if self.env else 1
        out = {"backend": self.backend, "world_size": self.world_size, "nodes": nodes,
               "hosts": list(dict.fromkeys(hosts)), "device": self.device.type}
        if self.env is not None and self.env.run_id:
            out["launch_id"] = self.env.run_id  # how the launcher's restarts find the run again
        return out

    # -- the model -----------------------------------------------------------------------

    def wrap(self, net: torch.nn.Module) -> torch.nn.Module:
        if self.world_size == 1:
            return net  # nothing to average: the network as one process trains it (and its fast optimizer)
        if self.sync_batchnorm and self.device.type == "cuda" and self.world_size > 1:
            torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)  # replaces the BatchNorm children in place
        ids = [self.device] if self.device.type == "cuda" else None
        # gradient_as_bucket_view: each .grad is a view into DDP's bucket (no copy back after the all-reduce).
        # forward_sync_buffers=False: no broadcast of the buffers (batch-norm running statistics) before every
        # forward pass (a millisecond a step for a small ResNet on CPU); training-mode forwards do not read
        # them, and evaluation first takes the writer's (sync_buffers), the ones the run saves.
        return torch.nn.parallel.DistributedDataParallel(net, device_ids=ids, gradient_as_bucket_view=True,
                                                         forward_sync_buffers=False)

    def sync_buffers(self, net: torch.nn.Module) -> None:
        if self.world_size == 1:
            return
        buffers = [b for b in net.buffers() if b.numel()]
        if not buffers:
            return
        from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

        by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
        for b in buffers:
            by_dtype.setdefault(b.dtype, []).append(b)
        for group in by_dtype.values():
            flat = _flatten_dense_tensors(group)
            self._guard(lambda: dist.broadcast(flat, src=0), "sharing the model's buffers")
            with torch.no_grad():
                for b, v in zip(group, _unflatten_dense_tensors(flat, group)):
                    b.copy_(v)

    # -- batches -------------------------------------------------------------------------

    def _mine(self, idx: torch.Tensor) -> torch.Tensor:
        """This process's contiguous share of a global batch's indices, its loss weight set for the step."""
        n = len(idx)
        mine = torch.tensor_split(idx, self.world_size)[self.rank]
        if len(mine) == 0:  # fewer samples than processes: a stand-in sample that weighs nothing
            self._share = 0.0
            return idx[-1:]
        self._share = len(mine) * self.world_size / n
        return mine

    def train_batches(self, split, batch_size: int, generator: torch.Generator, workers: int = 0,
                      targets: Callable[[torch.Tensor], torch.Tensor] | None = None) -> Iterator[tuple]:
        dev = self.device
        if isinstance(split, tuple):
            X, T = split
            perm = torch.randperm(len(X), generator=generator).to(dev, non_blocking=True)
            for i in range(0, len(X), batch_size):
                idx = self._mine(perm[i : i + batch_size])
                yield X.index_select(0, idx), T.index_select(0, idx)
            self._share = 1.0
            return
        perm = torch.randperm(len(split), generator=generator)  # what a 1-process DataLoader's sampler draws
        starts = range(0, len(split), batch_size)
        plan = [(self._mine(perm[i : i + batch_size]).tolist(), self._share) for i in starts]
        loader = torch.utils.data.DataLoader(split, batch_sampler=[ix for ix, _ in plan], num_workers=workers,
                                             pin_memory=dev.type == "cuda")
        for (xb, yb), (_, share) in zip(loader, plan):
            self._share = share
            yb = yb.to(dev, non_blocking=True)
            yield xb.to(dev, non_blocking=True), (targets(yb) if targets is not None else yb)
        self._share = 1.0

    def scale_loss(self, loss: torch.Tensor) -> torch.Tensor:
        return loss if self._share == 1.0 else loss * self._share

    def counted(self, n: int) -> int:
        return 0 if self._share == 0.0 else n

    # -- evaluation ----------------------------------------------------------------------

    def _bounds(self, n: int) -> tuple[int, int]:
        base, extra = divmod(n, self.world_size)
        start = self.rank * base + min(self.rank, extra)
        return start, start + base + (1 if self.rank < extra else 0)

    def shard(self, split):
        from zoo.evaluation import split_len

        n = split_len(split)
        if self.world_size == 1 or n < self.world_size:
            return split  # too few samples to share: every process scores them all
        start, end = self._bounds(n)
        if is_tensor_split(split):
            return split[0][start:end], split[1][start:end]
        return torch.utils.data.Subset(split, range(start, end))

    def gather(self, t: torch.Tensor, n: int) -> torch.Tensor:
        if self.world_size == 1 or n < self.world_size or len(t) == n:
            return t
        sizes = [self._bounds_of(r, n) for r in range(self.world_size)]
        width = max(sizes)
        padded = torch.zeros((width, *t.shape[1:]), dtype=t.dtype, device=t.device)
        padded[: len(t)] = t
        parts = [torch.empty_like(padded) for _ in range(self.world_size)]
        self._guard(lambda: dist.all_gather(parts, padded), "gathering evaluation outputs")
        return torch.cat([p[:s] for p, s in zip(parts, sizes)])

    def _bounds_of(self, rank: int, n: int) -> int:
        base, extra = divmod(n, self.world_size)
        return base + (1 if rank < extra else 0)

    # -- collectives -----------------------------------------------------------------------

    def reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        if self.world_size == 1:
            return t
        t = t.clone()
        self._guard(lambda: dist.all_reduce(t, dist.ReduceOp.SUM), "summing the training loss")
        return t

    def agree(self, values: list[float]) -> list[float]:
        if self.world_size == 1:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        self._guard(lambda: dist.all_reduce(t, dist.ReduceOp.MAX), "agreeing whether to stop")
        return t.tolist()

    def broadcast(self, obj: Any, src: int = 0) -> Any:
        if self.world_size == 1:
            return obj
        box = [obj]
        self._guard(lambda: dist.broadcast_object_list(box, src=src), "sharing the run's directory")
        return box[0]

    def barrier(self) -> None:
        if self.world_size > 1:
            self._guard(lambda: dist.barrier(), "waiting for every process")

    def _guard(self, fn: Callable[[], Any], what: str) -> Any:
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - a collective failed: a process died, hung or left
            raise self.explain(exc, what) from None

    # -- failures ------------------------------------------------------------------------

    def explain(self, exc: BaseException, what: str = "training") -> ZooError | None:
        """A collective's failure as one line naming the processes that are gone (None: not such a failure)."""
        if isinstance(exc, ZooError):
            return exc if isinstance(exc, DistributedFailure) else None
        backend_error = getattr(dist, "DistBackendError", ())
        text = " ".join(str(exc).split())
        if not (isinstance(exc, backend_error) or any(w in text for w in (
                "Connection closed", "Connection reset", "Timed out", "timed out", "Broken pipe", "NCCL",
                "gloo", "Gloo", "peer"))):
            return None
        gone = self._missing_peers()
        who = (f"process{'es' if len(gone) > 1 else ''} {', '.join(map(str, gone))} of {self.world_size} "
               "stopped responding (killed, crashed or hung)" if gone else
               f"another of the {self.world_size} processes stopped responding")
        return DistributedFailure(f"{who} while {what} on process {self.rank}; the run stops here "
                                  f"({type(exc).__name__}: {text[:160]})")

    def _missing_peers(self, wait: float = 3.0) -> list[int]:
        """The ranks that do not answer through the launcher's store within ``wait`` seconds ([]: unknown)."""
        try:
            store = dist.distributed_c10d._get_default_store()
        except Exception:  # noqa: BLE001 - no store: nothing to ask
            return []
        self._stamp += 1
        key = f"zoo/alive/{self._stamp}"
        try:
            store.set(f"{key}/{self.rank}", "1")
            deadline = time.monotonic() + wait
            while True:
                missing = [r for r in range(self.world_size) if not store.check([f"{key}/{r}"])]
                if not missing or time.monotonic() > deadline:
                    return missing
                time.sleep(0.1)
        except Exception:  # noqa: BLE001 - the store went with the process that hosted it
            return []
