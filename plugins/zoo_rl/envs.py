"""The ``gym`` dataset: a gymnasium environment (imported only here, when a control run is set up)."""

from __future__ import annotations

import functools

from zoo.data import Splits
from zoo.episodes import control_splits
from zoo.errors import ZooError, did_you_mean


def _gymnasium():
    try:
        import gymnasium
    except ImportError:
        raise ZooError("dataset 'gym' needs gymnasium, which is not installed: pip install 'zoo[rl]' "
                       "(or pip install gymnasium)") from None
    return gymnasium


def maker(env: str):
    """A callable making fresh instances of gymnasium environment ``env`` (checked to exist)."""
    gym = _gymnasium()
    if env not in gym.registry:
        ids = sorted(gym.registry)
        raise ZooError(f"dataset 'gym': no gymnasium environment '{env}'{did_you_mean(env, ids)} "
                       f"({len(ids)} are installed; e.g. CartPole-v1, Acrobot-v1, MountainCar-v0)")
    return functools.partial(_make, env)


def _make(env: str):
    gym = _gymnasium()
    try:
        return gym.make(env)
    except ZooError:
        raise
    except Exception as exc:  # noqa: BLE001 - a missing optional dependency of the environment, ...
        raise ZooError(f"dataset 'gym': gymnasium could not make '{env}': {type(exc).__name__}: "
                       f"{' '.join(str(exc).split())}") from exc


def gym_env(*, seed: int, env: str = "CartPole-v1", observations: int = 1000) -> Splits:
    """Environment ``env``; the splits are ``observations`` observations of a random policy (see
    :func:`zoo.episodes.control_splits`)."""
    return control_splits(maker(env), seed=seed, where=f"gymnasium environment '{env}'", observations=observations)
