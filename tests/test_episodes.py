"""The control task's core (zoo.episodes), on the contract's own small environment (no RL library needed):
seeded episodes, lockstep evaluation that does not depend on how many environments run at once, the TD
loss reported beside the returns, and the checks of what an environment offers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zoo.episodes import (EpisodeRunner, control_splits, describe, episode_seed, evaluate_policy, run_episodes,
                          scoring, split_seeds, td_loss)
from zoo.errors import ZooError
from zoo.evaluation import MetricSet
from zoo.training_checks import ChainEnv


class Right(torch.nn.Module):
    """Values that always prefer action 1 (step right): the chain's optimal policy."""

    def forward(self, x):
        return torch.stack([torch.zeros(len(x)), torch.ones(len(x))], 1)


def test_episodes_are_seeded_and_lockstep_runs_match_one_environment_at_a_time():
    seeds = split_seeds("test", 12)
    one = run_episodes(lambda x: torch.ones(len(x), dtype=torch.long), [ChainEnv()], seeds)
    many = run_episodes(lambda x: torch.ones(len(x), dtype=torch.long), [ChainEnv() for _ in range(5)], seeds)
    assert torch.equal(one.returns, many.returns) and torch.equal(one.lengths, many.lengths)
    # walking right from cell s takes 6 - s steps; the return is 1 - 0.01 per step before the last
    starts = [6 - int(n) for n in one.lengths]
    assert all(s in (0, 1, 2) for s in starts) and len(set(starts)) > 1
    assert torch.allclose(one.returns, 1 - 0.01 * (one.lengths.double() - 1))
    assert int(one.terminated.sum()) == 12 and len(one.actions) == int(one.lengths.sum())


def test_a_policy_that_never_finishes_is_cut_by_the_time_limit_and_its_td_target_bootstraps():
    eps = run_episodes(lambda x: torch.zeros(len(x), dtype=torch.long), [ChainEnv()], [0, 1])
    assert eps.lengths.tolist() == [20, 20] and not eps.terminated.any()
    model = Right()
    # Q(s, 0) = 0 and max Q(s') = 1: every target is -0.01 + 0.5 * 1 (nothing terminated), every error 0.49
    loss = td_loss(model, torch.nn.functional.mse_loss, eps, gamma=0.5)
    assert loss == pytest.approx(0.49 ** 2)


def test_evaluate_policy_reports_the_td_loss_and_the_metrics_of_the_returns():
    runner = EpisodeRunner(ChainEnv)
    try:
        out = evaluate_policy(Right(), torch.nn.functional.mse_loss, runner, "val",
                              metrics=MetricSet(["mean_return", "min_return"]), episodes=8)
    finally:
        runner.close()
    assert set(out) == {"loss", "mean_return", "min_return"}
    assert 0.94 <= out["min_return"] <= out["mean_return"] <= 0.96


def test_training_episode_seeds_differ_by_run_and_episode_and_evaluation_seeds_are_fixed():
    seeds = {episode_seed(s, k) for s in range(3) for k in range(100)}
    assert len(seeds) == 300 and all(0 <= x < 2**31 for x in seeds)
    assert split_seeds("test") == list(range(1_000_000, 1_000_100))
    assert scoring({"procedure_params": {"gamma": 0.9, "val_episodes": 4, "test_episodes": 50}}) == (
        0.9, {"train": 4, "val": 4, "test": 50})


def test_control_splits_are_observations_of_the_environment_with_one_zero_target_per_action():
    s = control_splits(ChainEnv, seed=0, where="the chain", observations=50)
    assert s.meta.task == "control" and s.meta.input_shape == (2,) and s.meta.num_targets == 2
    assert [len(s.split(n)[0]) for n in ("train", "val", "test")] == [30, 10, 10]
    assert s.environment is ChainEnv and not s.train[1].any()
    assert torch.equal(control_splits(ChainEnv, seed=0, where="x", observations=50).val[0], s.val[0])


class _Box:
    def __init__(self, shape, n=None):
        self.shape, self.n, self.dtype = shape, n, np.float32


@pytest.mark.parametrize("action, obs, words", [
    (_Box((2,)), _Box((3,)), "Box action space"),
    (_Box((), n=2), _Box((3, 3)), "vector observation"),
])
def test_describe_names_what_an_environment_lacks(action, obs, words):
    env = type("Env", (), {"action_space": action, "observation_space": obs})()
    with pytest.raises(ZooError, match=words):
        describe(env, "environment 'x'")
