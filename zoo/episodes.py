"""Episodes of an environment: what a ``control`` task has instead of a dataset.

An environment follows the gymnasium API (the field's standard; zoo itself imports no RL library, a
plugin's dataset makes the environments, see ``Splits.environment``):

- ``reset(seed=None) -> (observation, info)``;
- ``step(action) -> (observation, reward, terminated, truncated, info)``;
- ``action_space.n`` (discrete actions) and ``observation_space.shape`` (a vector).

Every episode zoo runs is seeded at its reset, so a run is reproducible and an episode's start is known
from its number alone: training episode ``k`` of a run seeded ``s`` resets with :func:`episode_seed`
``(s, k)``; evaluation episodes use fixed seeds per split (:data:`EVAL_SEEDS`), the same for every run,
so that runs are compared on the same episodes.

A policy is scored by the returns of its greedy actions (the model's largest output) over seeded
episodes (:func:`evaluate_policy`); the ``loss`` reported beside them is the run's loss between the
model's value of each action taken and its one-step bootstrapped target ``r + gamma * max Q(s')`` (``r``
alone when the episode terminated), on the transitions of those episodes: how well the values agree with
themselves along the policy's own path.

How a run is scored comes from its procedure's parameters, by convention (:func:`scoring`): ``gamma`` (the
discount, 0.99 when the procedure declares none), ``val_episodes`` (the validation split's episodes, also
used for the training split's) and ``test_episodes``. ``zoo eval`` re-scores a saved run with them, so it
reproduces the run's own figures exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch

from .errors import ZooError

#: The first seed of each split's evaluation episodes: episode i of split "test" resets with seed
#: ``EVAL_SEEDS["test"] + i``. Training episodes draw their seeds from the run's seed (:func:`episode_seed`).
EVAL_SEEDS = {"train": 3_000_000, "val": 2_000_000, "test": 1_000_000}
#: Evaluation episodes per split, unless a procedure says otherwise (the test figure is the field's usual
#: mean over 100 episodes).
EVAL_EPISODES = {"train": 10, "val": 10, "test": 100}
#: The discount of the reported TD loss when the run's procedure declares no ``gamma``.
DEFAULT_GAMMA = 0.99


def scoring(cfg: dict[str, Any]) -> tuple[float, dict[str, int]]:
    """``(gamma, {split: episodes})`` of a control run's config (see the module's description)."""
    params = cfg.get("procedure_params") or {}
    val = int(params.get("val_episodes", EVAL_EPISODES["val"]))
    return (float(params.get("gamma", DEFAULT_GAMMA)),
            {"train": val, "val": val, "test": int(params.get("test_episodes", EVAL_EPISODES["test"]))})


def episode_seed(seed: int, episode: int) -> int:
    """The reset seed of training episode ``episode`` (from 0) of a run seeded ``seed``."""
    return int(np.random.SeedSequence([int(seed), int(episode)]).generate_state(1)[0] & 0x7FFFFFFF)


def describe(env: Any, where: str) -> tuple[tuple[int, ...], int]:
    """``(observation shape, number of actions)`` of an environment, or a ZooError saying why zoo's value
    learners cannot use it (``where`` names it)."""
    space = getattr(env, "action_space", None)
    n = getattr(space, "n", None)
    if n is None or getattr(space, "shape", ()) not in ((), None):
        raise ZooError(f"{where} has a {type(space).__name__} action space; zoo's control procedures choose among "
                       "discrete actions (a Discrete space)")
    obs_space = getattr(env, "observation_space", None)
    shape = getattr(obs_space, "shape", None)
    if shape is None or len(shape) != 1:
        raise ZooError(f"{where} observes {type(obs_space).__name__} {shape}; zoo's control procedures need a vector "
                       "observation (a Box of shape (d,))")
    dtype = getattr(obs_space, "dtype", None)
    if dtype is not None and np.dtype(dtype).kind not in "fiub":
        raise ZooError(f"{where} observes values of type {dtype}; zoo's control procedures need numbers")
    return (int(shape[0]),), int(n)


def as_observation(obs: Any) -> np.ndarray:
    return np.asarray(obs, dtype=np.float32).reshape(-1)


def control_splits(make: Callable[[], Any], *, seed: int, where: str, observations: int = 1000,
                   val_fraction: float = 0.2, test_fraction: float = 0.2):
    """The :class:`zoo.data.Splits` of a control task: ``observations`` observations a uniformly random policy
    visits in seeded episodes (for probes, the reload check and predictions), split in order into train,
    validation and test parts; their targets are zeros (one per action); ``environment`` is ``make``."""
    from .data import DataMeta, Splits

    env = make()
    try:
        shape, n_actions = describe(env, where)
        rng = np.random.default_rng([int(seed), 7])
        rows: list[np.ndarray] = []
        episode = 0
        while len(rows) < observations:
            obs, _ = env.reset(seed=episode_seed(seed + 7919, episode))
            episode += 1
            rows.append(as_observation(obs))
            done = False
            while not done and len(rows) < observations:
                obs, _, terminated, truncated, _ = env.step(int(rng.integers(n_actions)))
                rows.append(as_observation(obs))
                done = terminated or truncated
    finally:
        close = getattr(env, "close", None)
        if callable(close):
            close()
    X = np.stack(rows).astype(np.float32)
    if X.shape[1:] != shape:
        raise ZooError(f"{where} returned observations of shape {X.shape[1:]}, not its declared {shape}")
    if not np.isfinite(X).all():
        raise ZooError(f"{where} returned observations that are not finite")
    n_test = max(1, int(round(observations * test_fraction)))
    n_val = max(1, int(round(observations * val_fraction)))
    n_train = observations - n_val - n_test
    if n_train < 1:
        raise ZooError(f"{where}: {observations} observations leave none for training; ask for more")
    Xt = torch.from_numpy(X)

    def part(lo: int, hi: int):
        return Xt[lo:hi].clone(), torch.zeros(hi - lo, n_actions)

    meta = DataMeta("control", shape, num_targets=n_actions)
    return Splits(part(0, n_train), part(n_train, n_train + n_val), part(n_train + n_val, observations), meta,
                  environment=make)


# -- running a policy --------------------------------------------------------------------------


@dataclass
class Episodes:
    """What :func:`run_episodes` saw: each episode's return and length, and every transition
    ``(observation, action, reward, next observation, terminated)`` as tensors, in order."""

    returns: torch.Tensor
    lengths: torch.Tensor
    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_obs: torch.Tensor
    terminated: torch.Tensor


@torch.no_grad()
def run_episodes(act: Callable[[torch.Tensor], torch.Tensor], envs: Sequence[Any], seeds: Sequence[int],
                 device: torch.device | str = "cpu", max_steps: int = 1_000_000) -> Episodes:
    """One episode per seed, run in lockstep on ``envs`` (at most one episode per environment at a time; as
    many environments as seeds is fastest): ``act(observations)`` maps a batch of observations (float32,
    on ``device``) to actions. ``max_steps`` bounds an episode that neither terminates nor truncates."""
    n = len(seeds)
    returns, lengths = [0.0] * n, [0] * n
    obs_l, act_l, rew_l, nxt_l, term_l = [], [], [], [], []
    todo = list(range(n))
    while todo:
        batch = todo[: len(envs)]
        todo = todo[len(envs):]
        current = {}
        for slot, ep in enumerate(batch):
            obs, _ = envs[slot].reset(seed=int(seeds[ep]))
            current[slot] = (ep, as_observation(obs))
        steps = 0
        while current:
            slots = list(current)
            x = torch.from_numpy(np.stack([current[s][1] for s in slots]))
            actions = act(x.to(device)).reshape(-1).cpu()
            for s, a in zip(slots, actions.tolist()):
                ep, o = current[s]
                nxt, r, terminated, truncated, _ = envs[s].step(int(a))
                nxt = as_observation(nxt)
                returns[ep] += float(r)
                lengths[ep] += 1
                obs_l.append(o)
                act_l.append(int(a))
                rew_l.append(float(r))
                nxt_l.append(nxt)
                term_l.append(bool(terminated))
                if terminated or truncated or lengths[ep] >= max_steps:
                    del current[s]
                else:
                    current[s] = (ep, nxt)
            steps += 1
    return Episodes(torch.tensor(returns, dtype=torch.float64), torch.tensor(lengths),
                    torch.from_numpy(np.stack(obs_l)), torch.tensor(act_l), torch.tensor(rew_l, dtype=torch.float32),
                    torch.from_numpy(np.stack(nxt_l)), torch.tensor(term_l, dtype=torch.bool))


def greedy(model: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """The greedy policy of a value model: the action of the largest output."""
    def act(x: torch.Tensor) -> torch.Tensor:
        return model(x).argmax(1)

    return act


def td_loss(model: torch.nn.Module, loss_fn, eps: Episodes, gamma: float, device: torch.device | str = "cpu",
            chunk: int = 65536) -> float:
    """The run's loss between the model's value of each action taken and ``r + gamma * max Q(s')`` (``r`` alone
    when the episode terminated) over ``eps``'s transitions."""
    total, n = 0.0, len(eps.actions)
    with torch.no_grad():
        for i in range(0, n, chunk):
            sl = slice(i, i + chunk)
            q = model(eps.obs[sl].to(device)).float()
            q_next = model(eps.next_obs[sl].to(device)).float().max(1).values
            taken = q.gather(1, eps.actions[sl].to(device).reshape(-1, 1))
            target = eps.rewards[sl].to(device) + gamma * (~eps.terminated[sl].to(device)).float() * q_next
            total += float(loss_fn(taken, target.reshape(-1, 1))) * len(taken)
    return total / max(n, 1)


class EpisodeRunner:
    """Evaluation episodes of one environment factory, with the environments made once and kept."""

    def __init__(self, make: Callable[[], Any], where: str = "the environment") -> None:
        self.make = make
        self.where = where
        self.envs: list[Any] = []

    def run(self, act: Callable[[torch.Tensor], torch.Tensor], seeds: Sequence[int], device="cpu") -> Episodes:
        while len(self.envs) < min(len(seeds), 128):
            self.envs.append(self.make())
        return run_episodes(act, self.envs[: len(seeds)], seeds, device)

    def close(self) -> None:
        for env in self.envs:
            close = getattr(env, "close", None)
            if callable(close):
                close()
        self.envs = []


def split_seeds(split: str, episodes: int | None = None) -> list[int]:
    """The fixed reset seeds of a split's evaluation episodes."""
    n = EVAL_EPISODES[split] if episodes is None else int(episodes)
    return [EVAL_SEEDS[split] + i for i in range(n)]


def evaluate_policy(model: torch.nn.Module, loss_fn, runner: EpisodeRunner, split: str, *, metrics: Any,
                    gamma: float = DEFAULT_GAMMA, episodes: int | None = None,
                    device: torch.device | str = "cpu", fast: bool = False) -> dict[str, float]:
    """``{"loss": TD loss, metric: ...}`` of a value model's greedy policy on a split's seeded episodes; the
    metrics (:class:`zoo.evaluation.MetricSet`) score the episodes' returns."""
    was = model.training
    model.eval()
    try:
        eps = runner.run(greedy(model), split_seeds(split, episodes), device)
        loss = td_loss(model, loss_fn, eps, gamma, device)
    finally:
        model.train(was)
    out = {"loss": loss}
    out.update(metrics.compute(eps.returns, eps.lengths, "value", fast=fast))
    if not all(math.isfinite(v) for v in out.values()):
        bad = next(k for k, v in out.items() if not math.isfinite(v))
        raise ZooError(f"evaluating the policy on the {split} episodes gave {bad} = {out[bad]}")
    return out
