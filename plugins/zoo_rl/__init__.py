"""zoo plugin: deep Q-networks on gymnasium environments (the ``control`` task).

This module is what the ``rl`` entry point names. It only declares; the implementations in
``zoo_rl.envs``, ``zoo_rl.models``, ``zoo_rl.dqn`` and ``zoo_rl.metrics`` are imported when a
component is used, and gymnasium (the optional extra ``zoo[rl]``) only when an environment is made.

A ``control`` run has an environment instead of a dataset: the ``gym`` dataset makes any installed
gymnasium environment with a vector observation and discrete actions (``--set env=Acrobot-v1``). Its
model maps an observation to one value per action; the ``dqn`` procedure learns those values from
a replay buffer of the run's own episodes, and the run is scored by the returns of its greedy policy
over seeded episodes (``mean_return``: the test split is 100 episodes with fixed seeds).
"""

from zoo import DatasetSpec, MetricSpec, ModelSpec, Param, ProcedureSpec, RecipeSpec, hookimpl

ZOO_CONTRACT = "1"

_CONTROL = ("control",)


@hookimpl
def zoo_datasets():
    return [
        DatasetSpec(
            name="gym",
            summary="A gymnasium environment (vector observations, discrete actions) to learn to act in: needs zoo[rl].",
            tasks=_CONTROL,
            input="tabular",
            impl="zoo_rl.envs:gym_env",
            params={
                "env": Param("str", "CartPole-v1", "the gymnasium environment id (any installed one whose observation "
                             "is a vector and whose actions are discrete: CartPole-v1, Acrobot-v1, MountainCar-v0, "
                             "LunarLander-v3 with Box2D, ...)"),
                "observations": Param("int", 1000, "observations of a random policy kept as the run's splits (probes, "
                                      "the reload check, predictions)", min=10, max=1_000_000),
            },
        ),
    ]


@hookimpl
def zoo_models():
    return [
        ModelSpec(
            name="q-mlp",
            summary="An MLP from an observation to one value per action, optionally duelling (value + advantages).",
            tasks=_CONTROL,
            inputs=("tabular",),
            impl="zoo_rl.models:q_mlp",
            params={
                "hidden": Param("int-list", (256, 256), "hidden layer sizes", min=1, max=65536),
                "dueling": Param("bool", False, "duelling heads: Q = V + A - mean(A) (Wang et al. 2016)"),
            },
        ),
    ]


@hookimpl
def zoo_metrics():
    return [
        MetricSpec(name="mean_return", summary="Mean return of the greedy policy over the split's seeded episodes.",
                   tasks=_CONTROL, default_for=_CONTROL, impl="zoo_rl.metrics:mean_return",
                   fast="zoo_rl.metrics:mean_return"),
        MetricSpec(name="min_return", summary="The worst return of the greedy policy over the split's episodes.",
                   tasks=_CONTROL, impl="zoo_rl.metrics:min_return", fast="zoo_rl.metrics:min_return"),
    ]


@hookimpl
def zoo_procedures():
    return [
        ProcedureSpec(
            name="dqn",
            summary="Deep Q-learning: epsilon-greedy episodes into a replay buffer, TD steps against a target network.",
            tasks=_CONTROL,
            impl="zoo_rl.dqn:DQN",
            params={
                "env_steps": Param("int", 10000, "environment steps in an epoch (it ends with the episode in "
                                   "progress, so checkpoints fall on episode boundaries)", min=1, max=100_000_000),
                "buffer_size": Param("int", 50000, "transitions the replay buffer holds (the oldest are replaced)",
                                     min=1, max=100_000_000),
                "learning_starts": Param("int", 1000, "environment steps taken before the first update", min=0,
                                         max=100_000_000),
                "train_freq": Param("int", 4, "environment steps between updates", min=1, max=1_000_000),
                "gradient_steps": Param("int", 1, "gradient steps (minibatches of batch_size) per update", min=1,
                                        max=100_000),
                "gamma": Param("float", 0.99, "the discount", min=0.0, max=1.0),
                "target_update": Param("int", 1000, "environment steps between target-network updates", min=1,
                                       max=100_000_000),
                "tau": Param("float", 1.0, "target-network update: target = tau * online + (1 - tau) * target "
                             "(1: a hard copy; Polyak averaging below 1)", min=0.0, max=1.0, min_exclusive=True),
                "eps_start": Param("float", 1.0, "exploration rate at the first step", min=0.0, max=1.0),
                "eps_end": Param("float", 0.05, "exploration rate after the decay", min=0.0, max=1.0),
                "eps_decay": Param("int", 10000, "environment steps over which the exploration rate falls linearly "
                                   "from eps_start to eps_end (0: eps_end from the start)", min=0, max=1_000_000_000),
                "double": Param("bool", True, "Double DQN: the online network picks the next action, the target "
                                "network values it (van Hasselt et al. 2016)"),
                "val_episodes": Param("int", 10, "greedy episodes scored after every epoch (fixed seeds)", min=1,
                                      max=100_000),
                "test_episodes": Param("int", 100, "greedy episodes of the final test figure (fixed seeds)", min=1,
                                       max=100_000),
            },
        ),
    ]


@hookimpl
def zoo_recipes():
    return [
        RecipeSpec(
            name="cartpole-dqn",
            summary="Double DQN on CartPole-v1: balance the pole for 500 steps (solved at a mean return >= 475).",
            dataset="gym",
            model="q-mlp",
            loss="huber",
            dataset_params={"env": "CartPole-v1"},
            train={"procedure": "dqn", "epochs": 10, "env_steps": 5000, "batch_size": 64, "lr": 0.0023,
                   "optimizer": "adam", "buffer_size": 100000, "learning_starts": 1000, "train_freq": 256,
                   "gradient_steps": 128, "target_update": 10, "eps_decay": 8000, "eps_end": 0.04,
                   "clip_grad": 10.0, "val_episodes": 10, "monitor": "val_mean_return"},
        ),
        RecipeSpec(
            name="acrobot-dqn",
            summary="Double DQN on Acrobot-v1: swing the arm above the line in few steps (target: mean return >= -100).",
            dataset="gym",
            model="q-mlp",
            loss="huber",
            dataset_params={"env": "Acrobot-v1"},
            train={"procedure": "dqn", "epochs": 10, "env_steps": 10000, "batch_size": 128, "lr": 0.00063,
                   "optimizer": "adam", "buffer_size": 50000, "learning_starts": 1000, "train_freq": 4,
                   "gradient_steps": 1, "target_update": 250, "eps_decay": 12000, "eps_end": 0.1,
                   "clip_grad": 10.0, "val_episodes": 10, "monitor": "val_mean_return"},
        ),
    ]
