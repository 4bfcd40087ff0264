"""Deep Q-networks on gymnasium environments: the gym dataset's checks, the DQN update (Double DQN, Polyak
target, epsilon schedule, replay ring), bit-identical seeded runs, exact resumes at an episode boundary with
nothing pickled, and the commands (zoo train, eval, play, plot) on a real run."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from safetensors.torch import load_file

pytest.importorskip("gymnasium", reason="the rl plugin's environments need the optional extra zoo[rl]")

import zoo  # noqa: E402
from helpers import run_zoo  # noqa: E402
from zoo.errors import ZooError  # noqa: E402
from zoo_rl import envs  # noqa: E402
from zoo_rl.dqn import ReplayBuffer  # noqa: E402

#: A short CartPole run: 2 epochs of ~400 steps, updates from step 100 on.
SHORT = {"env_steps": 400, "learning_starts": 100, "train_freq": 4, "gradient_steps": 1, "target_update": 50,
         "eps_decay": 300, "val_episodes": 3, "test_episodes": 5, "buffer_size": 500, "model.hidden": "32,32"}


def _train(tmp_path, name, epochs=2, recipe="cartpole-dqn", **params):
    return zoo.train(recipe, out=tmp_path / name, epochs=epochs, params={**SHORT, **params}, quiet=True,
                     checkpoint_every=0)


def _rows(run_dir):
    with open(run_dir / "history.csv") as fh:
        return [{k: v for k, v in row.items() if k != "time"} for row in csv.DictReader(fh)]


def _weights(run_dir, name="model.safetensors"):
    return load_file(str(run_dir / name))


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# -- the environment -------------------------------------------------------------------------


def test_gym_dataset_holds_random_policy_observations_and_makes_the_environment():
    s = envs.gym_env(seed=0, env="Acrobot-v1", observations=200)
    assert s.meta.task == "control" and s.meta.input_shape == (6,) and s.meta.num_targets == 3
    assert [len(s.split(n)[0]) for n in ("train", "val", "test")] == [120, 40, 40]
    assert s.train[1].shape == (120, 3) and not s.train[1].any()
    env = s.environment()
    obs, _ = env.reset(seed=1)
    assert obs.shape == (6,) and env.action_space.n == 3
    assert torch.equal(envs.gym_env(seed=0, env="Acrobot-v1", observations=200).test[0], s.test[0])


@pytest.mark.parametrize("env, words", [
    ("CartPol-v1", ["no gymnasium environment 'CartPol-v1'", "did you mean 'CartPole-v1'"]),
    ("Pendulum-v1", ["Box action space", "discrete actions"]),
])
def test_environments_zoo_cannot_use_are_one_line_errors(env, words):
    with pytest.raises(ZooError) as err:
        envs.gym_env(seed=0, env=env, observations=20)
    assert all(w in str(err.value) for w in words) and "\n" not in str(err.value)


# -- the pieces of the update -------------------------------------------------------------------


def test_replay_buffer_is_a_ring_and_its_state_round_trips():
    buf = ReplayBuffer(3, 2)
    for i in range(5):
        buf.add([i, i], i % 2, float(i), [i + 1, i + 1], i == 4)
    assert buf.size == 3 and buf.pos == 2
    assert sorted(buf.rewards.tolist()) == [2.0, 3.0, 4.0]  # the oldest two were replaced
    again = ReplayBuffer(3, 2)
    again.load_state_dict(buf.state_dict())
    for k in ("obs", "next_obs", "actions", "rewards", "terminated"):
        assert (getattr(again, k) == getattr(buf, k)).all()
    assert (again.pos, again.size) == (2, 3)
    with pytest.raises(ValueError, match="holds 3 transitions"):
        ReplayBuffer(4, 2).load_state_dict(buf.state_dict())


def _procedure(tmp_path, **params):
    """A built dqn procedure of a short CartPole run (through the trainer: the real parts)."""
    from zoo.config import resolve
    from zoo.engine import Trainer

    cfg = resolve("cartpole-dqn", sets={**SHORT, **params}, epochs=1, device="cpu")
    return Trainer(cfg, None, out=tmp_path / "run").procedure


def test_td_target_double_dqn_lets_the_online_network_choose_and_the_target_network_value(tmp_path):
    for double in (True, False):
        proc = _procedure(tmp_path / str(double), double=double, gamma=0.9)
        with torch.no_grad():  # make the online and target networks disagree
            for p in proc.target.parameters():
                p.add_(0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
        g = torch.Generator().manual_seed(0)
        for _ in range(64):
            o, o2 = torch.randn(4, generator=g).numpy(), torch.randn(4, generator=g).numpy()
            proc.buffer.add(o, int(torch.randint(2, (), generator=g)), 1.0, o2, bool(torch.rand((), generator=g) < .2))
        state = proc.ctx.generator.get_state()
        idx = torch.randint(0, proc.buffer.size, (proc.settings.batch_size,), generator=proc.ctx.generator)
        proc.ctx.generator.set_state(state)
        obs, actions, rewards, next_obs, term = proc.buffer.batch(idx, torch.device("cpu"))
        with torch.no_grad():
            q_t = proc.target(next_obs)
            pick = proc.model(next_obs).argmax(1) if double else q_t.argmax(1)
            target = rewards + 0.9 * (1 - term) * q_t.gather(1, pick[:, None]).squeeze(1)
            expected = torch.nn.functional.huber_loss(proc.model(obs).gather(1, actions[:, None]), target[:, None])
        assert torch.allclose(proc._update(), expected)


def test_polyak_update_moves_the_target_part_of_the_way_and_a_hard_one_copies(tmp_path):
    proc = _procedure(tmp_path / "soft", tau=0.25)
    before = {k: v.clone() for k, v in proc.target.state_dict().items()}
    with torch.no_grad():
        for p in proc.model.parameters():
            p.add_(1.0)
    proc._sync_target()
    for k, v in proc.target.state_dict().items():
        if k.startswith("net."):
            assert torch.allclose(v, before[k] + 0.25 * (proc.model.state_dict()[k] - before[k]), atol=1e-6)
    hard = _procedure(tmp_path / "hard", tau=1.0)
    with torch.no_grad():
        for p in hard.model.parameters():
            p.add_(1.0)
    hard._sync_target()
    assert _same(dict(hard.target.state_dict()), dict(hard.model.state_dict()))


def test_exploration_rate_falls_linearly_over_eps_decay_steps_then_stays(tmp_path):
    proc = _procedure(tmp_path, eps_start=1.0, eps_end=0.1, eps_decay=1000)
    got = []
    for step in (0, 500, 1000, 5000):
        proc.env_step = step
        got.append(round(proc.epsilon(), 6))
    assert got == [1.0, 0.55, 0.1, 0.1]


# -- real runs -----------------------------------------------------------------------------------


def test_seeded_runs_are_bit_identical_and_a_resume_at_an_episode_boundary_continues_exactly(tmp_path):
    a = _train(tmp_path, "a")
    b = _train(tmp_path, "b")
    assert _rows(a.dir) == _rows(b.dir) and _same(_weights(a.dir), _weights(b.dir))
    assert json.loads((a.dir / "metrics.json").read_text()) == json.loads((b.dir / "metrics.json").read_text())
    rows = _rows(a.dir)
    assert set(rows[0]) >= {"train_loss", "train_return", "episodes", "env_steps", "epsilon", "val_mean_return",
                            "val_loss"}
    assert float(rows[0]["env_steps"]) >= 400  # an epoch ends with the episode in progress

    _train(tmp_path, "r", epochs=1)
    ckpt = next((tmp_path / "r" / "checkpoints").glob("epoch-*"))
    assert {p.suffix for p in ckpt.iterdir()} <= {".safetensors", ".json"}  # nothing pickled
    state = load_file(str(ckpt / "procedure.safetensors"))
    assert any(k.startswith("buffer.") for k in state) and any(k.startswith("target.") for k in state)
    resumed = zoo.resume(tmp_path / "r", epochs=2, quiet=True)
    assert _rows(resumed.dir) == rows
    assert _same(_weights(resumed.dir), _weights(a.dir))
    last_a = next((a.dir / "checkpoints").glob("epoch-000002*"))
    last_r = next((resumed.dir / "checkpoints").glob("epoch-000002*"))
    assert _same(load_file(str(last_a / "procedure.safetensors")), load_file(str(last_r / "procedure.safetensors")))


def test_a_short_cartpole_run_learns_well_beyond_a_random_policy(tmp_path):
    run = _train(tmp_path, "learn", epochs=1, env_steps=2000, learning_starts=500, train_freq=64, gradient_steps=32,
                 target_update=10, eps_decay=1500, val_episodes=5, **{"model.hidden": "256,256"})
    # a uniformly random policy keeps the pole up about 22 steps
    assert run.history["val_mean_return"][0] > 100


def test_train_eval_play_and_plot_from_the_command_line(tmp_path):
    run_dir = tmp_path / "cp"
    sets = [x for k, v in SHORT.items() for x in ("--set", f"{k}={v}")]
    r = run_zoo("train", "cartpole-dqn", "--epochs", "1", *sets, "--out", str(run_dir), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "environment of dataset 'gym'" in r.stderr
    saved = json.loads((run_dir / "metrics.json").read_text())
    r = run_zoo("eval", str(run_dir), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"mean_return {saved['test']['mean_return']:.4f}" in r.stdout + r.stderr
    r = run_zoo("play", str(run_dir), "--episodes", "3", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    played = json.loads(r.stdout)
    assert len(played["returns"]) == 3 and played["returns"] == [float(n) for n in played["lengths"]]
    r = run_zoo("play", str(run_dir), "-n", "2", cwd=tmp_path)
    assert r.returncode == 0 and "mean return" in r.stdout and r.stdout.count("episode ") == 2
    (tmp_path / "obs.csv").write_text("0.01,0.02,0.03,0.04\n0.1,0.5,-0.2,-0.9\n")
    r = run_zoo("predict", str(run_dir), "--input", str(tmp_path / "obs.csv"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "action,value_0,value_1" and len(lines) == 3
    for line in lines[1:]:
        action, *values = line.split(",")
        assert int(action) == max(range(2), key=lambda i: float(values[i]))  # the greedy action
    pytest.importorskip("matplotlib")
    r = run_zoo("plot", str(run_dir), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (run_dir / "returns.png").stat().st_size > 10_000


def test_play_refuses_a_run_that_is_not_a_control_run(tmp_path):
    run = zoo.train("ring-gan", out=tmp_path / "gan", epochs=1, params={"dataset.n_samples": 300}, quiet=True)
    r = run_zoo("play", str(run.dir), cwd=tmp_path)
    assert r.returncode != 0 and "generation run" in r.stderr and "Traceback" not in r.stderr


def test_unusable_parts_fail_before_a_run_directory_is_made(tmp_path):
    r = run_zoo("train", "--dataset", "gym", "--model", "q-mlp", "--out", str(tmp_path / "x"), cwd=tmp_path)
    assert r.returncode != 0 and "procedures that train it: dqn (--procedure dqn)" in r.stderr
    r = run_zoo("train", "--dataset", "gym", "--set", "env=Pendulum-v1", "--model", "q-mlp", "--procedure", "dqn",
                "--out", str(tmp_path / "y"), cwd=tmp_path)
    assert r.returncode != 0 and "Box action space" in r.stderr and "Traceback" not in r.stderr
    r = run_zoo("train", "cartpole-dqn", "--epochs", "1", "--set", "learning_starts=6000", "--out",
                str(tmp_path / "z"), cwd=tmp_path)
    assert r.returncode != 0 and "learning_starts=6000 leaves no update" in r.stderr
    assert not any(p.exists() for p in (tmp_path / "x", tmp_path / "y", tmp_path / "z"))


@pytest.mark.parametrize("recipe", ["cartpole-dqn", "ring-gan"])
@pytest.mark.parametrize("setting, words", [("l1=0.01", "does not apply an L1 penalty"),
                                            ("precision=bf16", "trains in 32-bit precision")])
def test_one_process_procedures_refuse_settings_they_do_not_apply(tmp_path, recipe, setting, words):
    r = run_zoo("train", recipe, "--epochs", "1", "--set", setting, "--out", str(tmp_path / "x"), cwd=tmp_path)
    procedure = "dqn" if recipe.endswith("dqn") else "gan"
    assert r.returncode != 0 and f"procedure '{procedure}' {words}" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x").exists()
