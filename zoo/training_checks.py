"""The contract checks of the training kinds: optimizers, schedules, metrics, callbacks, procedures and
strategies (see :mod:`zoo.testing`, which collects them with the checks of datasets, models and losses).

Optimizers, schedules and metrics are checked on their own (a few steps on a least-squares
problem; a planned run of steps; synthetic predictions). Callbacks, procedures and strategies
are checked in real runs of the engine on a small built-in harness (a synthetic regression
dataset, a linear model, a mean-squared-error loss), with the installed plugins providing the
other parts: a run trains, is checkpointed, and resumes; a procedure must resume *exactly*.
"""

from __future__ import annotations

import json
import math
import tempfile
import types
from pathlib import Path
from typing import Any

from .hookspecs import hookimpl
from .registry import Plugin, Registry, get_registry


def _fail(msg: str) -> None:
    raise AssertionError(msg)


# -- optimizers ------------------------------------------------------------------------------


def _least_squares(seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)
    X = torch.randn(64, 5, generator=g)
    y = X @ torch.randn(5, 1, generator=g) + 0.1 * torch.randn(64, 1, generator=g)
    torch.manual_seed(seed)
    model = torch.nn.Linear(5, 1)
    return model, X, y


def _step(model, opt, X, y) -> float:
    import torch

    loss = torch.nn.functional.mse_loss(model(X), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach())


def check_optimizer(spec) -> None:
    """Built with its defaults and ``lr=0.01``, it is a ``torch.optim.Optimizer`` that lowers a least-squares
    loss in 50 steps, and its state saved as tensors + JSON and loaded into a fresh one takes the exact
    same next step."""
    import torch

    from .resumable import pack, unpack

    factory = spec.load()
    hyper = spec.resolve_params()
    model, X, y = _least_squares()
    opt = factory(model.parameters(), lr=0.01, **hyper)
    if not isinstance(opt, torch.optim.Optimizer):
        _fail(f"optimizer '{spec.name}' returned {type(opt).__name__}, not a torch.optim.Optimizer")
    losses = [_step(model, opt, X, y) for _ in range(50)]
    if not all(math.isfinite(v) for v in losses) or not losses[-1] < losses[0]:
        _fail(f"optimizer '{spec.name}' did not lower a least-squares loss in 50 steps at lr=0.01 "
              f"({losses[0]:.4g} -> {losses[-1]:.4g})")
    tensors, plain = pack(opt.state_dict())
    try:
        plain = json.loads(json.dumps(plain))
    except (TypeError, ValueError) as exc:
        _fail(f"optimizer '{spec.name}': its state_dict() is not tensors and JSON values: {exc}")
    twin = type(model)(5, 1)
    twin.load_state_dict(model.state_dict())
    opt2 = factory(twin.parameters(), lr=0.01, **hyper)
    opt2.load_state_dict(unpack({k: v.clone() for k, v in tensors.items()}, plain))
    _step(model, opt, X, y)
    _step(twin, opt2, X, y)
    if not all(torch.equal(a, b) for a, b in zip(model.parameters(), twin.parameters())):
        _fail(f"optimizer '{spec.name}': a copy restored from its state_dict() takes a different step (its state "
              "is incomplete, so a resumed run would not continue exactly)")


# -- schedules -------------------------------------------------------------------------------


def check_schedule(spec) -> None:
    """Over a planned run (5 epochs of 10 steps, 1 epoch of warm-up if it applies warm-up) its learning rates
    are finite and >= 0; its state is JSON, and a fresh schedule restored from it mid-run continues with
    the same learning rates."""
    import torch

    from .procedures import SchedulePlan

    factory = spec.load()
    hyper = spec.resolve_params()
    plan = SchedulePlan(steps_per_epoch=10, total_steps=50, warmup_steps=10 if spec.warmup else 0)

    def build(params):
        opt = torch.optim.SGD(params, lr=0.1)
        sched = factory(opt, plan=plan, **hyper)
        for method in ("step", "state_dict", "load_state_dict"):
            if not callable(getattr(sched, method, None)):
                _fail(f"schedule '{spec.name}' returned {type(sched).__name__}, which has no {method}()")
        return opt, sched

    def epoch(opt, sched, value) -> list[float]:
        lrs = []
        for _ in range(10):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        if callable(getattr(sched, "epoch_end", None)):
            sched.epoch_end(value)
        return lrs

    p = torch.nn.Parameter(torch.zeros(3))
    opt, sched = build([p])
    values = [1.0, 0.9, 0.95, 0.97, 0.99]
    lrs = []
    for v in values[:3]:
        lrs += epoch(opt, sched, v)
    try:
        state = json.loads(json.dumps(sched.state_dict()))
    except (TypeError, ValueError) as exc:
        _fail(f"schedule '{spec.name}': its state_dict() is not JSON: {exc}")
    q = torch.nn.Parameter(torch.zeros(3))
    opt2, sched2 = build([q])
    opt2.load_state_dict(opt.state_dict())
    sched2.load_state_dict(state)
    for v in values[3:]:
        a, b = epoch(opt, sched, v), epoch(opt2, sched2, v)
        lrs += a
        if a != b:
            _fail(f"schedule '{spec.name}': restored from its state_dict() it gives learning rates {b[:3]}... where "
                  f"the original gives {a[:3]}... (a resumed run would not continue exactly)")
    bad = [x for x in lrs if not (isinstance(x, (int, float)) and math.isfinite(x) and x >= 0)]
    if bad:
        _fail(f"schedule '{spec.name}' set the learning rate to {bad[0]!r}")


# -- metrics ---------------------------------------------------------------------------------

_LAYOUTS = {"regression": ("value",), "reconstruction": ("value",), "binary": ("index", "binary"),
            "multiclass": ("index",), "generation": ("value",), "control": ("value",)}


def mixture_points(n: int, generator, modes: int = 8, radius: float = 2.0, std: float = 0.02):
    """``n`` points of ``modes`` tight 2-D Gaussians evenly spaced on a circle (the contract's synthetic data
    for generation: what a good generator should match)."""
    import torch

    k = torch.randint(0, modes, (n,), generator=generator)
    angle = k.double() * (2 * math.pi / modes)
    centres = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], 1)
    return (centres + std * torch.randn(n, 2, generator=generator, dtype=torch.float64)).float()


def _metric_case(task: str, layout: str, perfect: bool, seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)
    n = 60
    if task == "control":  # pred: the returns of evaluation episodes, y: their lengths
        returns = 100 + 10 * torch.rand(n, generator=g) if perfect else -100 * torch.rand(n, generator=g)
        return returns.double(), torch.randint(1, 500, (n,), generator=g)
    if task == "generation":  # pred: generated samples, y: the real ones (2-D, in the data's units)
        real = mixture_points(2000, g)
        fake = mixture_points(2000, g) if perfect else 3 * torch.rand(2000, 2, generator=g) - 1.5
        return fake, real
    if task in ("regression", "reconstruction"):
        y = torch.randn(n, 2, generator=g)
        return (y.clone() if perfect else torch.randn(n, 2, generator=g)), y
    classes = 2 if task == "binary" else 4
    y = torch.arange(n) % classes
    if layout == "binary":
        pred = (y.float() * 2 - 1).reshape(-1, 1) * 3 if perfect else torch.randn(n, 1, generator=g)
    else:
        pred = torch.nn.functional.one_hot(y, classes).float() * 3 if perfect else torch.randn(n, classes, generator=g)
    return pred, y


def check_metric(spec, task: str) -> None:
    """On synthetic predictions for ``task`` (each target layout its losses use): a finite number, better for
    perfect predictions than for random ones (as ``higher_is_better`` says), and the ``fast`` version agrees
    with the exact one to 1e-6."""
    import importlib

    exact = spec.load()
    fast = exact
    if spec.fast:
        module, _, attr = spec.fast.partition(":")
        fast = getattr(importlib.import_module(module), attr)
    for layout in _LAYOUTS[task]:
        got = {}
        for perfect in (True, False):
            pred, y = _metric_case(task, layout, perfect)
            value = exact(pred, y, target=layout)
            quick = fast(pred, y, target=layout)
            for name, v in (("exact", value), ("fast", quick)):
                if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(float(v)):
                    _fail(f"metric '{spec.name}' ({name}) returned {v!r} for a {task} task with {layout} targets")
            if abs(float(value) - float(quick)) > 1e-6 * max(1.0, abs(float(value))):
                _fail(f"metric '{spec.name}': its fast version gives {quick} where the exact one gives {value} "
                      f"({task}, {layout} targets)")
            got[perfect] = float(value)
        better = got[True] > got[False] if spec.higher_is_better else got[True] < got[False]
        if not better:
            _fail(f"metric '{spec.name}' scores perfect predictions {got[True]:.4g} and random ones {got[False]:.4g}; "
                  f"with higher_is_better={spec.higher_is_better} the perfect ones must score better")


# -- the harness: real runs --------------------------------------------------------------------

#: The tasks the harness has a real run for (a procedure declaring one of them is run on it).
HARNESS_TASKS = ("regression", "generation", "control")


def harness_dataset(seed: int = 0, n_samples: int = 96):
    """A synthetic linear regression problem (4 features)."""
    import torch

    from .data import split_arrays

    g = torch.Generator().manual_seed(1234)
    X = torch.randn(n_samples, 4, generator=g)
    y = X @ torch.tensor([[1.0], [-2.0], [0.5], [0.0]]) + 0.1 * torch.randn(n_samples, 1, generator=g)
    return split_arrays(X.numpy(), y.numpy(), task="regression", seed=seed)


def harness_model(input_shape, out_features):
    import torch

    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(int(math.prod(input_shape)), out_features))


def harness_loss():
    import torch

    return torch.nn.MSELoss()


def harness_generation_dataset(seed: int = 0, n_samples: int = 96):
    """A synthetic generation problem: 2-D points of a ring of tight Gaussians."""
    import torch

    from .data import split_arrays

    X = mixture_points(n_samples, torch.Generator().manual_seed(1234))
    return split_arrays(X.numpy(), task="generation", seed=seed)


def harness_sampler(input_shape, out_features):
    """A small generation model: ``forward`` scores samples (a discriminator with one hidden layer),
    ``sample`` maps 2 Gaussian latents through a linear generator."""
    import torch

    class Sampler(torch.nn.Module):
        def __init__(self):
            super().__init__()
            d = int(math.prod(input_shape))
            self.shape = tuple(input_shape)
            self.generator = torch.nn.Linear(2, d)
            self.discriminator = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(d, 8), torch.nn.Tanh(),
                                                     torch.nn.Linear(8, out_features))

        def forward(self, x):
            return self.discriminator(x)

        def sample(self, n, generator=None):
            z = torch.randn(n, 2, generator=generator).to(self.generator.weight.device)
            return self.generator(z).reshape(n, *self.shape)

    return Sampler()


def harness_bce():
    import torch

    return torch.nn.BCEWithLogitsLoss()


class _Space:
    def __init__(self, n=None, shape=(), dtype="float32"):
        self.n, self.shape, self.dtype = n, shape, dtype


class ChainEnv:
    """A small environment of the gymnasium API for contract runs of control procedures: a walk on 7 cells,
    starting on a seeded random cell of the first three; action 1 steps right, 0 left; reaching the last cell
    ends the episode with reward 1, every other step costs 0.01; 20 steps truncate it."""

    cells, limit = 7, 20

    def __init__(self) -> None:
        import numpy as np

        self.action_space = _Space(n=2)
        self.observation_space = _Space(shape=(2,))
        self._rng = np.random.default_rng()
        self.pos, self.t = 0, 0

    def _obs(self):
        import numpy as np

        return np.array([self.pos / (self.cells - 1), 1.0], dtype=np.float32)

    def reset(self, seed=None):
        import numpy as np

        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self.pos, self.t = int(self._rng.integers(0, 3)), 0
        return self._obs(), {}

    def step(self, action):
        self.pos = max(0, min(self.cells - 1, self.pos + (1 if int(action) == 1 else -1)))
        self.t += 1
        terminated = self.pos == self.cells - 1
        return self._obs(), 1.0 if terminated else -0.01, terminated, self.t >= self.limit and not terminated, {}


def harness_control_dataset(seed: int = 0, observations: int = 64):
    """The chain environment (:class:`ChainEnv`) as a control task."""
    from .episodes import control_splits

    return control_splits(ChainEnv, seed=seed, where="the contract's chain environment", observations=observations)


def _harness_module() -> types.ModuleType:
    from .spec import DatasetSpec, LossSpec, ModelSpec

    mod = types.ModuleType("zoo_contract_harness")
    mod.zoo_losses = hookimpl(lambda: [LossSpec(
        name="contract-mse", summary="Mean squared error.", tasks=("regression",), target="value",
        impl="zoo.training_checks:harness_loss"), LossSpec(
        name="contract-bce", summary="Binary cross-entropy on scores: real 1, generated 0.", tasks=("generation",),
        target="value", impl="zoo.training_checks:harness_bce"), LossSpec(
        name="contract-td", summary="Mean squared error of action values.", tasks=("control",), target="value",
        impl="zoo.training_checks:harness_loss")])
    mod.zoo_datasets = hookimpl(lambda: [DatasetSpec(
        name="contract-data", summary="Synthetic linear regression for contract runs.", tasks=("regression",),
        impl="zoo.training_checks:harness_dataset"), DatasetSpec(
        name="contract-ring", summary="Synthetic 2-D ring of Gaussians for contract runs of generation.",
        tasks=("generation",), impl="zoo.training_checks:harness_generation_dataset"), DatasetSpec(
        name="contract-chain", summary="A 7-cell walk to the right end for contract runs of control.",
        tasks=("control",), impl="zoo.training_checks:harness_control_dataset")])
    mod.zoo_models = hookimpl(lambda: [ModelSpec(
        name="contract-linear", summary="A linear layer.", tasks=("regression",), inputs=("tabular",),
        impl="zoo.training_checks:harness_model"), ModelSpec(
        name="contract-sampler", summary="A linear generator and a small discriminator.", tasks=("generation",),
        inputs=("tabular",), impl="zoo.training_checks:harness_sampler"), ModelSpec(
        name="contract-q", summary="A linear layer: one value per action.", tasks=("control",), inputs=("tabular",),
        impl="zoo.training_checks:harness_model")])
    return mod


def harness_registry(module: types.ModuleType, info: Plugin) -> Registry:
    """The plugin under test, the harness, and the installed plugins that provide the default parts of a run
    and the metrics."""
    import dataclasses

    from .kinds import KINDS, PARTS

    reg = Registry()
    reg.add(dataclasses.replace(info, module=None, error=None, contract=None, contributes={}), module)
    reg.add(Plugin("contract-harness", "zoo", "", "zoo.training_checks"), _harness_module())
    installed = get_registry()
    for part in PARTS:
        default = KINDS[part].default
        if default and default not in reg.names(part):
            entry = installed.get(part, default)
            if entry.plugin.name not in reg.plugins and entry.plugin.module is not None:
                reg.add(Plugin(entry.plugin.name, entry.plugin.dist, entry.plugin.version, entry.plugin.value),
                        entry.plugin.module)
    for entry in installed.entries("metric"):
        if entry.plugin.name not in reg.plugins and entry.plugin.module is not None:
            reg.add(Plugin(entry.plugin.name, entry.plugin.dist, entry.plugin.version, entry.plugin.value),
                    entry.plugin.module)
    return reg


def _weights(run_dir: Path) -> dict[str, Any]:
    from .checkpoint import read_weights

    return read_weights(run_dir / "model.safetensors")[0]


def check_in_a_run(spec, reg: Registry) -> None:
    """A real run on the harness with this callback, procedure or strategy: 2 epochs, then the same run
    stopped after epoch 1 and resumed to 2 from its checkpoint. Both must finish, reload exactly (the
    engine's reload check) and, for a procedure or strategy, end with identical weights."""
    import torch

    from . import engine
    from .config import resolve

    kw: dict[str, Any] = {spec.kind: spec.name} if spec.kind != "callback" else {"callbacks": [spec.name]}
    tasks = getattr(spec, "tasks", ()) if spec.kind == "procedure" else ()
    if tasks and "regression" not in tasks and "generation" in tasks:
        parts = {"dataset": "contract-ring", "model": "contract-sampler", "loss": "contract-bce"}
    elif tasks and "regression" not in tasks and "control" in tasks:
        parts = {"dataset": "contract-chain", "model": "contract-q", "loss": "contract-td"}
    else:
        parts = {"dataset": "contract-data", "model": "contract-linear", "loss": "contract-mse"}
    cfg = resolve(**parts, registry=reg, epochs=2, batch_size=16, device="cpu", checkpoint_every=0, **kw)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            straight = engine.fit(cfg, registry=reg, out=Path(tmp) / "straight")
            engine.fit({**cfg, "epochs": 1}, registry=reg, out=Path(tmp) / "resumed")
            resumed = engine.resume(Path(tmp) / "resumed", epochs=2, registry=reg)
        except Exception as exc:  # noqa: BLE001 - whatever the component raises, as one line
            _fail(f"{spec.kind} '{spec.name}': a 2-epoch run on the contract harness failed: "
                  f"{type(exc).__name__}: {' '.join(str(exc).split())[:500]}")
        if len(resumed.history) != 2:
            _fail(f"{spec.kind} '{spec.name}': the resumed run has {len(resumed.history)} epochs of history, not 2")
        if spec.kind in ("procedure", "strategy"):
            a, b = _weights(straight.dir), _weights(resumed.dir)
            differ = sorted(k for k in a if k not in b or not torch.equal(a[k], b[k]))
            if differ:
                _fail(f"{spec.kind} '{spec.name}': stopped after epoch 1 and resumed, the run ends with different "
                      f"weights ({', '.join(differ)}) than the same run trained straight through: its state is not "
                      "fully checkpointed")
