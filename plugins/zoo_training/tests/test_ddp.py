"""How the DDP strategy splits the work: each process's share of every global batch, and the evaluation shards.

These check the arithmetic for every rank of a world without starting processes (the rank and world
size are set as the process group would set them); ``tests/test_distributed.py`` runs the real thing.
"""

from __future__ import annotations

import pytest
import torch

from zoo.settings import settings_of
from zoo_training.ddp import DistributedDataParallel


class Lazy(torch.utils.data.Dataset):
    """A dataset read one sample at a time (as an image folder is)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        return torch.tensor([float(i)]), torch.tensor(float(i))


def strategy(rank: int, world: int) -> DistributedDataParallel:
    s = DistributedDataParallel(settings_of({}))
    s.rank, s.world_size = rank, world
    return s


def global_batches(split, batch: int, seed: int, world: int, epochs: int = 2):
    """Per epoch: the global batches' sample ids, rebuilt from every rank's shares, and the loss weights."""
    gens = [torch.Generator().manual_seed(seed) for _ in range(world)]  # each process holds the same generator
    out = []
    for _ in range(epochs):
        per_rank = []
        for r in range(world):
            s = strategy(r, world)
            per_rank.append([(xb[:, 0].long().tolist(), s._share) for xb, _ in s.train_batches(split, batch, gens[r])])
        out.append(per_rank)
    return out


@pytest.mark.parametrize("lazy", [False, True])
@pytest.mark.parametrize("world", [2, 3])
def test_every_global_batch_is_the_one_process_batch_split_across_the_ranks(lazy, world):
    n, batch = 103, 16  # the last batch (7) divides unevenly
    split = Lazy(n) if lazy else (torch.arange(n, dtype=torch.float32)[:, None], torch.arange(n, dtype=torch.float32))
    one = global_batches(split, batch, seed=5, world=1)
    many = global_batches(split, batch, seed=5, world=world)
    for epoch_one, epoch_many in zip(one, many):
        singles = [ids for ids, _ in epoch_one[0]]
        assert len({len(r) for r in epoch_many}) == 1  # every rank steps the same number of times
        for step, ids in enumerate(singles):
            shares = [epoch_many[r][step] for r in range(world)]
            assert sum((s_ids for s_ids, _ in shares), []) == ids  # contiguous shares, in order
            # DDP averages the ranks' gradients of (weight x their batch's mean loss): every sample of the
            # global batch must then count 1/N, as in the one-process mean
            for s_ids, w in shares:
                assert w / (world * len(s_ids)) == pytest.approx(1 / len(ids))
    assert one[0][0] != one[1][0]  # a new shuffle each epoch, the same on every rank


def test_a_batch_smaller_than_the_world_gives_idle_ranks_a_sample_that_weighs_nothing():
    split = (torch.arange(5, dtype=torch.float32)[:, None], torch.arange(5, dtype=torch.float32))
    gen = torch.Generator().manual_seed(0)
    shares = []
    for r in range(4):
        s = strategy(r, 4)
        gen_r = torch.Generator().manual_seed(0)
        shares.append([(len(xb), s._share, s.counted(len(xb))) for xb, _ in s.train_batches(split, 3, gen_r)])
    del gen
    last = [rank_batches[-1] for rank_batches in shares]  # the global batch of 2 samples over 4 ranks
    assert [counted for _, _, counted in last] == [1, 1, 0, 0]
    assert [share for _, share, _ in last[2:]] == [0.0, 0.0]


@pytest.mark.parametrize("n, world", [(67, 2), (10, 3), (2, 3)])
def test_evaluation_shards_cover_the_split_once_in_order(n, world):
    X, y = torch.arange(n, dtype=torch.float32)[:, None], torch.arange(n)
    parts = [strategy(r, world).shard((X, y)) for r in range(world)]
    if n < world:  # too few to share: every process scores the whole split
        assert all(p[0].shape[0] == n for p in parts)
        return
    assert torch.equal(torch.cat([p[1] for p in parts]), y)
    assert [len(p[1]) for p in parts] == [strategy(r, world)._bounds_of(r, n) for r in range(world)]
    lazy = [strategy(r, world).shard(Lazy(n)) for r in range(world)]
    assert [i for part in lazy for i in part.indices] == list(range(n))
