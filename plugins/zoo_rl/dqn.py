"""The ``dqn`` procedure: deep Q-learning (Mnih et al. 2015) with the usual refinements.

An epoch is ``env_steps`` steps of the environment, finishing the episode in progress: checkpoints fall on
episode boundaries, where the environment holds nothing a resume needs. Each step the run's model (the
online network) acts epsilon-greedily; the transition goes into a replay buffer; every ``train_freq``
steps after ``learning_starts``, ``gradient_steps`` minibatches of ``batch_size`` transitions are drawn and
the model's value of each action taken moves towards ``r + gamma * Q_target(s', a')`` (``r`` alone at a
terminal state; an episode cut short by a time limit bootstraps), with the run's loss (Huber from zoo's loss
registry in the recipes), optimizer, learning rate, schedule and ``clip_grad``. ``a'`` is the online
network's choice with ``double`` (Double DQN), the target network's otherwise. Every ``target_update`` steps
the target network moves to the online one (``tau`` = 1: a copy; below 1, Polyak averaging). The
exploration rate falls linearly from ``eps_start`` to ``eps_end`` over the first ``eps_decay`` steps (a count
of steps, not a share of the plan: a run extended with ``--resume --epochs`` explores as it did).

Randomness: training episode ``k`` resets with :func:`zoo.episodes.episode_seed` ``(seed, k)``; the
exploration draws and the minibatches come from the run's seeded generator, which the trainer checkpoints.
The procedure's state (optimizer, schedule, target network, the replay buffer's contents and position, the
step and episode counts) is saved as tensors and JSON values, never pickled: a run resumed at an epoch's
end continues exactly as if it had not stopped.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Callable

import numpy as np
import torch

from zoo.episodes import EpisodeRunner, as_observation, describe, episode_seed, evaluate_policy, scoring
from zoo.errors import ZooError
from zoo.evaluation import head_inputs
from zoo.parts import RunModel, build_loss
from zoo.procedures import NonFiniteLoss, Procedure, RunContext


class ReplayBuffer:
    """A ring of the last ``capacity`` transitions (numpy arrays: cheap to write one at a time)."""

    def __init__(self, capacity: int, obs_dim: int) -> None:
        self.capacity = int(capacity)
        self.obs = np.zeros((self.capacity, obs_dim), np.float32)
        self.next_obs = np.zeros((self.capacity, obs_dim), np.float32)
        self.actions = np.zeros(self.capacity, np.int64)
        self.rewards = np.zeros(self.capacity, np.float32)
        self.terminated = np.zeros(self.capacity, np.float32)
        self.pos = 0
        self.size = 0

    def add(self, obs: np.ndarray, action: int, reward: float, next_obs: np.ndarray, terminated: bool) -> None:
        i = self.pos
        self.obs[i] = obs
        self.next_obs[i] = next_obs
        self.actions[i] = action
        self.rewards[i] = reward
        self.terminated[i] = terminated
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def batch(self, idx: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, ...]:
        i = idx.numpy()
        return tuple(torch.from_numpy(a[i]).to(device) for a in
                     (self.obs, self.actions, self.rewards, self.next_obs, self.terminated))

    def state_dict(self) -> dict[str, Any]:
        n = self.size
        return {"pos": self.pos, "size": n, "capacity": self.capacity,
                **{k: torch.from_numpy(getattr(self, k)[:n].copy()) for k in
                   ("obs", "next_obs", "actions", "rewards", "terminated")}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state["capacity"]) != self.capacity:
            raise ValueError(f"the checkpoint's replay buffer holds {state['capacity']} transitions, the run's "
                             f"{self.capacity}")
        n = int(state["size"])
        for k in ("obs", "next_obs", "actions", "rewards", "terminated"):
            getattr(self, k)[:n] = state[k].numpy()
        self.size, self.pos = n, int(state["pos"])


class DQN(Procedure):
    """Deep Q-learning (see the module's description)."""

    def __init__(self, ctx: RunContext, *, env_steps: int = 10000, buffer_size: int = 50000,
                 learning_starts: int = 1000, train_freq: int = 4, gradient_steps: int = 1, gamma: float = 0.99,
                 target_update: int = 1000, tau: float = 1.0, eps_start: float = 1.0, eps_end: float = 0.05,
                 eps_decay: int = 10000, double: bool = True, val_episodes: int = 10,
                 test_episodes: int = 100) -> None:
        super().__init__(ctx)
        s = self.settings
        self.require_one_process_fp32("dqn")
        if ctx.splits is None or not callable(ctx.splits.environment):
            raise ZooError("procedure 'dqn' needs a control dataset: an environment to act in (e.g. --dataset gym)")
        if learning_starts >= env_steps * s.epochs:
            raise ZooError(f"procedure 'dqn': learning_starts={learning_starts} leaves no update in the run's "
                           f"{s.epochs} epochs of {env_steps} environment steps; lower it or train longer")
        self.env_steps_per_epoch, self.learning_starts = int(env_steps), int(learning_starts)
        self.train_freq, self.gradient_steps, self.gamma = int(train_freq), int(gradient_steps), float(gamma)
        self.target_every, self.tau, self.double = int(target_update), float(tau), bool(double)
        self.eps_start, self.eps_end, self.eps_decay = float(eps_start), float(eps_end), int(eps_decay)
        self.episodes_for = scoring(ctx.cfg)[1]
        self.model = ctx.model
        self.device = ctx.strategy.device
        self.seed = int(ctx.cfg["seed"])
        self.n_actions = int(ctx.cfg["out_features"])
        self.obs_dim = int(math.prod(ctx.splits.meta.input_shape))
        self.loss_fn = build_loss(ctx.combo, ctx.cfg, self.device)
        self.target = copy.deepcopy(self.model).eval()
        self.target.requires_grad_(False)
        self.buffer = ReplayBuffer(buffer_size, self.obs_dim)
        updates = -(-self.env_steps_per_epoch // self.train_freq) * self.gradient_steps
        self.steps_per_epoch = max(1, updates)
        self.opt = self.build_optimizer(self.model.parameters())
        self.sched = self.build_schedule(self.opt, self.steps_per_epoch)
        self.env_step = 0  # environment steps so far
        self.episode = 0  # training episodes finished so far
        self.updates = 0  # gradient steps so far
        self._env = None
        self._runners: dict[str, EpisodeRunner] = {}

    # -- parts ----------------------------------------------------------------------------------

    def _where(self) -> str:
        return f"the environment of dataset '{self.ctx.combo.dataset.name}'"

    def env(self):
        if self._env is None:
            self._env = self.ctx.splits.environment()
            shape, n = describe(self._env, self._where())
            if (int(math.prod(shape)), n) != (self.obs_dim, self.n_actions):
                raise ZooError(f"{self._where()} observes {shape} with {n} actions; the run was built for "
                               f"{self.obs_dim} values and {self.n_actions} actions")
        return self._env

    def epsilon(self) -> float:
        frac = 1.0 if self.eps_decay <= 0 else min(1.0, self.env_step / self.eps_decay)
        return self.eps_start + frac * (self.eps_end - self.eps_start)

    # -- the step -------------------------------------------------------------------------------

    def _update(self) -> torch.Tensor:
        s, model = self.settings, self.model
        idx = torch.randint(0, self.buffer.size, (s.batch_size,), generator=self.ctx.generator)
        obs, actions, rewards, next_obs, terminated = self.buffer.batch(idx, self.device)
        with torch.no_grad():
            if self.double:
                pick = model(next_obs).argmax(1, keepdim=True)
                q_next = self.target(next_obs).gather(1, pick).squeeze(1)
            else:
                q_next = self.target(next_obs).max(1).values
            target = (rewards + self.gamma * (1.0 - terminated) * q_next).unsqueeze(1)
        q = model(obs).gather(1, actions.unsqueeze(1))
        loss = self.loss_fn(q, target)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if s.clip_grad:
            torch.nn.utils.clip_grad_norm_(model.parameters(), s.clip_grad)
        self.opt.step()
        if self.sched is not None:
            self.sched.step()
        self.updates += 1
        return loss.detach()

    @torch.no_grad()
    def _sync_target(self) -> None:
        if self.tau >= 1.0:
            self.target.load_state_dict(self.model.state_dict())
            return
        for t, o in zip(self.target.parameters(), self.model.parameters()):
            t.lerp_(o, self.tau)
        for t, o in zip(self.target.buffers(), self.model.buffers()):
            t.copy_(o)

    def train_epoch(self, epoch: int, on_batch: Callable[[int, Any], None] | None) -> dict[str, float]:
        env, model, gen, buf = self.env(), self.model, self.ctx.generator, self.buffer
        model.train()
        losses: list[torch.Tensor] = []
        returns: list[float] = []
        steps = 0
        while steps < self.env_steps_per_epoch:  # one episode per pass; the last may run past the epoch's steps
            obs, _ = env.reset(seed=episode_seed(self.seed, self.episode))
            obs = as_observation(obs)
            total, done = 0.0, False
            while not done:
                if float(torch.rand((), generator=gen)) < self.epsilon():
                    action = int(torch.randint(0, self.n_actions, (), generator=gen))
                else:
                    with torch.no_grad():
                        action = int(model(torch.from_numpy(obs).to(self.device).unsqueeze(0)).argmax())
                nxt, reward, terminated, truncated, _ = env.step(action)
                nxt = as_observation(nxt)
                buf.add(obs, action, float(reward), nxt, bool(terminated))
                total += float(reward)
                obs, done = nxt, bool(terminated or truncated)
                self.env_step += 1
                steps += 1
                if self.env_step > self.learning_starts and self.env_step % self.train_freq == 0:
                    for _ in range(self.gradient_steps):
                        losses.append(self._update())
                        if on_batch is not None:
                            on_batch(len(losses), losses[-1])
                if self.env_step % self.target_every == 0:
                    self._sync_target()
            self.episode += 1
            returns.append(total)
        loss = float(torch.stack(losses).mean()) if losses else 0.0
        if not math.isfinite(loss):
            raise NonFiniteLoss(f"the TD loss became {loss} in epoch {epoch + 1}: training diverged; lower the "
                                f"learning rate (now {self.settings.lr}) or clip gradients (--set clip_grad=10)")
        return {"train_loss": loss, "train_return": float(np.mean(returns)), "episodes": float(self.episode),
                "env_steps": float(self.env_step), "epsilon": round(self.epsilon(), 6)}

    def evaluate(self, split: str, fast: bool, model: RunModel | None = None) -> dict[str, float]:
        if split not in self._runners:
            self._runners[split] = EpisodeRunner(self.ctx.splits.environment, self._where())
        return evaluate_policy(model if model is not None else self.model, self.loss_fn, self._runners[split], split,
                               metrics=self.ctx.metrics, gamma=self.gamma, episodes=self.episodes_for[split],
                               device=self.device, fast=fast)

    # -- state ----------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "target": dict(self.target.state_dict()), "buffer": self.buffer.state_dict(),
                "env_step": self.env_step, "episode": self.episode, "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.target.load_state_dict(state["target"])
        self.buffer.load_state_dict(state["buffer"])
        self.env_step, self.episode, self.updates = int(state["env_step"]), int(state["episode"]), int(state["updates"])

    # -- checks ---------------------------------------------------------------------------------

    def probe(self, n: int = 4) -> None:
        """The environment fits the model (one value per action for a few observations; no state change)."""
        m = self.ctx.combo.model
        who = f"model '{m.name}' from plugin '{m.plugin.name}'"
        self.env()
        xb = head_inputs(self.ctx.splits.train, n).to(self.device)
        was = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                out = self.model(xb)
        except Exception as exc:  # noqa: BLE001 - a plugin's forward on a bad shape
            raise ZooError(f"{who} failed on a batch of observations of shape {tuple(xb.shape)}: "
                           f"{type(exc).__name__}: {' '.join(str(exc).split())}") from exc
        finally:
            self.model.train(was)
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (len(xb), self.n_actions):
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ZooError(f"{who} gave {got} for {len(xb)} observations; the dqn procedure needs "
                           f"({len(xb)}, {self.n_actions}): one value per action")
