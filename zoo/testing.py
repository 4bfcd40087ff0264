"""The plugin contract, as pytest cases a plugin runs in its own test suite, for every kind of component
(the training kinds' checks are in :mod:`zoo.training_checks`).

In a plugin's tests::

    from zoo.testing import parametrize_plugin_checks

    @parametrize_plugin_checks("myplugin")          # entry-point name or the module
    def test_contract(check):
        check()

Every component the plugin declares becomes pytest cases with readable ids such as
``model:mlp:gradients[binary]`` (so ``pytest -k mlp`` selects them). The components are
found as zoo finds them: the module is registered with pluggy, so only functions marked
``@hookimpl`` count (``plugin:NAME:hooks`` reports any that are not). The checks run
against an isolated registry holding the plugin under test, plus (for recipes only)
the installed plugins that provide the parts a recipe names.

A check that is known to fail can be marked with a reason::

    @parametrize_plugin_checks("myplugin", expected_failures={
        "model:odd:learns[regression]": "converges only with a tiny learning rate"})

Such a case is a strict xfail: if it passes, pytest reports it, so stale marks do not
linger. An id that names no check is an error.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Mapping

from .checks import implementation_problems
from .errors import one_line
from .registry import GROUP, Entry, Plugin, Registry, get_registry
from .spec import INPUT_KINDS, INPUT_RANK, KINDS, TASKS

#: The version of the contract these checks implement. Plugins declare the version they
#: were checked against as ``ZOO_CONTRACT`` in their entry-point module.
CONTRACT_VERSION = "1"

_TARGET_FOR_TASK = {"regression": "value", "binary": "index", "multiclass": "index", "reconstruction": "value",
                    "generation": "value", "control": "value"}
_SHAPES = {"tabular": (4,), "image": (1, 8, 8), "sequence": (12, 3)}
_N = 48  # samples in a synthetic batch
#: Shapes real datasets give, per input kind (``accepts-input``): 8x8 grey digits, 32x32 RGB
#: and 28x28 grey images; a long univariate and a short multivariate series; narrow and wide
#: feature vectors.
REALISTIC_SHAPES = {
    "image": ((1, 8, 8), (3, 32, 32), (1, 28, 28)),
    "sequence": ((64, 1), (12, 3)),
    "tabular": ((4,), (30,)),
}
_N_ACCEPTS = 4  # samples in an accepts-input batch (BatchNorm needs more than one)


@dataclass
class Check:
    """One contract check: call it to run it (raises AssertionError when it fails)."""

    id: str
    fn: Callable[[], None]

    def __call__(self) -> None:
        from .parts import intra_op_threads

        with intra_op_threads(1):  # tiny batches: one thread is faster and deterministic
            self.fn()

    def __repr__(self) -> str:
        return self.id


# -- finding the plugin ------------------------------------------------------------------


def _resolve(plugin: str | ModuleType) -> tuple[str, ModuleType, Plugin]:
    if isinstance(plugin, ModuleType):
        module = plugin
        name = next((ep.name for ep in metadata.entry_points(group=GROUP) if ep.value == module.__name__),
                    module.__name__)
    else:
        eps = [ep for ep in metadata.entry_points(group=GROUP) if ep.name == plugin]
        if eps:
            name, module = plugin, eps[0].load()
        else:
            try:
                name, module = plugin, importlib.import_module(plugin)
            except ImportError:
                known = sorted(ep.name for ep in metadata.entry_points(group=GROUP))
                raise LookupError(f"no plugin '{plugin}' in the '{GROUP}' entry-point group "
                                  f"(installed: {', '.join(known) or 'none'})") from None
    ep = next((e for e in metadata.entry_points(group=GROUP) if e.name == name), None)
    dist = ep.dist if ep is not None else None
    info = Plugin(name=name, dist=dist.metadata["Name"] if dist else "(not installed)",
                  version=dist.version if dist else "?", value=module.__name__)
    return name, module, info


def _register(name: str, module: ModuleType, info: Plugin) -> tuple[Registry, Plugin, dict[str, list]]:
    """Register the module the way zoo does (pluggy: only ``@hookimpl`` functions are called).

    Returns the registry, its copy of the plugin record (with the error registering recorded,
    if any) and every declaration the hooks returned, valid or not, so that invalid ones
    still get their ``declaration`` check.
    """
    reg = Registry()
    plugin = dataclasses.replace(info, module=None, error=None, contract=None, contributes={})
    declared = reg.add(plugin, module)
    return reg, plugin, declared


# -- the checks --------------------------------------------------------------------------


def _fail(msg: str) -> None:
    raise AssertionError(msg)


def _check_declaration(spec, plugin_name: str, all_specs: dict[str, list]) -> None:
    kind_cls = KINDS[spec.kind]
    if not isinstance(spec, kind_cls):
        _fail(f"{spec!r} is not a {kind_cls.__name__}")
    problems = spec.problems()
    if problems:
        _fail(f"{spec.kind} '{getattr(spec, 'name', '?')}' declaration: " + "; ".join(problems))
    same = [s for s in all_specs.get(spec.kind, []) if getattr(s, "name", None) == spec.name]
    if len(same) > 1:
        _fail(f"{spec.kind} '{spec.name}' is declared {len(same)} times by this plugin")
    others = [e for e in get_registry().entries(spec.kind) if e.name == spec.name and e.plugin.name != plugin_name]
    if others:
        _fail(f"{spec.kind} '{spec.name}' clashes with plugin '{others[0].plugin.name}' ({others[0].plugin.dist}); "
              "pick a unique name")
    problems = implementation_problems(spec)
    if problems:
        _fail(f"{spec.kind} '{spec.name}': " + "; ".join(problems))


def _check_hooks(reg: Registry, plugin: Plugin) -> None:
    problems = reg.hook_problems(plugin)
    if plugin.error:
        problems.append(f"registering it as zoo does fails: {plugin.error}")
    if problems:
        _fail(f"plugin '{plugin.name}': " + "; ".join(problems))


_EXAMPLES: dict[str, dict[str, Any]] = {}


def _example_params(spec) -> dict[str, Any]:
    """Parameters that load the dataset: its ``example`` (files written once per process) or defaults."""
    if spec.example is None:
        return spec.resolve_params()
    if spec.name not in _EXAMPLES:
        import atexit
        import shutil

        directory = Path(tempfile.mkdtemp(prefix=f"zoo-example-{spec.name}-"))
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        module, _, attr = spec.example.partition(":")
        try:
            params = getattr(importlib.import_module(module), attr)(directory)
        except Exception as exc:  # noqa: BLE001
            _fail(f"dataset '{spec.name}': its example '{spec.example}' failed: {type(exc).__name__}: {exc}")
        _EXAMPLES[spec.name] = spec.resolve_params(params)
    return _EXAMPLES[spec.name]


def _load_dataset(spec, seed: int = 0):
    from .data import Splits

    splits = spec.load()(seed=seed, **_example_params(spec))
    if not isinstance(splits, Splits):
        _fail(f"dataset '{spec.name}' returned {type(splits).__name__}, not zoo.data.Splits")
    return splits


def _infer_task(spec, params: dict) -> str:
    module, _, attr = spec.infer_task.partition(":")
    try:
        task, _ = getattr(importlib.import_module(module), attr)(dict(params))
    except Exception as exc:  # noqa: BLE001
        _fail(f"dataset '{spec.name}': its infer_task '{spec.infer_task}' failed on its example parameters: "
              f"{type(exc).__name__}: {exc}")
    return task


def _check_dataset_splits(spec) -> None:
    import torch

    s = _load_dataset(spec)
    task = s.meta.task
    if task not in spec.tasks:
        _fail(f"dataset '{spec.name}' declares task {', '.join(spec.tasks)} but its metadata says {task}")
    if len(spec.tasks) > 1 and spec.infer_task:
        inferred = _infer_task(spec, _example_params(spec))
        if inferred != task:
            _fail(f"dataset '{spec.name}': its infer_task says {inferred} for its example parameters, but the data "
                  f"it loads is a {task} task (zoo train would refuse the run)")
    shape = tuple(s.meta.input_shape)
    rank = INPUT_RANK.get(spec.input)
    if rank is not None and len(shape) != rank:
        _fail(f"dataset '{spec.name}' declares {spec.input} input but its samples have shape {shape} "
              f"(expected {rank} dimensions)")
    from .data import is_tensor_split

    for name in ("train", "val", "test"):
        split = s.split(name)
        if is_tensor_split(split):
            X, y = split
        else:  # a lazy Dataset: check a few samples
            if len(split) == 0:
                _fail(f"dataset '{spec.name}': the {name} split is empty")
            items = [split[i] for i in range(min(8, len(split)))]
            X = torch.stack([torch.as_tensor(x) for x, _ in items])
            y = torch.stack([torch.as_tensor(t) for _, t in items])
        if len(X) == 0:
            _fail(f"dataset '{spec.name}': the {name} split is empty")
        if len(X) != len(y):
            _fail(f"dataset '{spec.name}': {name} has {len(X)} inputs but {len(y)} targets")
        if X.dtype != torch.float32 or tuple(X.shape[1:]) != shape:
            _fail(f"dataset '{spec.name}': {name} X is {X.dtype} {tuple(X.shape)}; expected float32 (N, *{shape})")
        if not torch.isfinite(X).all():
            _fail(f"dataset '{spec.name}': {name} X has non-finite values")
        if task in ("regression", "reconstruction", "generation", "control"):
            if y.dtype != torch.float32 or y.dim() != 2 or y.shape[1] != s.meta.num_targets:
                _fail(f"dataset '{spec.name}': {name} y is {y.dtype} {tuple(y.shape)}; expected float32 "
                      f"(N, {s.meta.num_targets})")
            if not torch.isfinite(y).all():
                _fail(f"dataset '{spec.name}': {name} y has non-finite values")
        else:
            if y.dtype != torch.int64 or y.dim() != 1:
                _fail(f"dataset '{spec.name}': {name} y is {y.dtype} {tuple(y.shape)}; expected int64 class indices (N,)")
            k = s.meta.num_classes or 0
            if task == "binary" and k != 2:
                _fail(f"dataset '{spec.name}' is binary but declares {k} classes")
            if len(y) and (int(y.min()) < 0 or int(y.max()) >= k):
                _fail(f"dataset '{spec.name}': {name} has class indices outside [0, {k})")


def _check_dataset_reproducible(spec) -> None:
    import torch

    from .data import is_tensor_split

    a, b = _load_dataset(spec, seed=0), _load_dataset(spec, seed=0)
    for name in ("train", "val", "test"):
        sa, sb = a.split(name), b.split(name)
        if not is_tensor_split(sa):
            if len(sa) != len(sb):
                _fail(f"dataset '{spec.name}': the same seed gave {name} splits of different sizes")
            pairs = [(sa[i], sb[i]) for i in range(min(8, len(sa)))]
            sa = (torch.stack([torch.as_tensor(p[0][0]) for p in pairs]), torch.stack([torch.as_tensor(p[0][1]) for p in pairs]))
            sb = (torch.stack([torch.as_tensor(p[1][0]) for p in pairs]), torch.stack([torch.as_tensor(p[1][1]) for p in pairs]))
        for t1, t2, what in zip(sa, sb, ("X", "y")):
            if not torch.equal(t1, t2):
                _fail(f"dataset '{spec.name}': the same seed gave a different {name} {what}")


def _synthetic(task: str, input_kind: str, n: int = _N, seed: int = 0):
    """A small learnable batch: inputs, dataset-layout targets, metadata."""
    import torch

    from .data import DataMeta

    g = torch.Generator().manual_seed(seed)
    shape = _SHAPES[input_kind]
    X = torch.randn(n, *shape, generator=g)
    signal = X.reshape(n, -1)[:, :4].sum(1)
    if task == "regression":
        y, meta = signal.reshape(n, 1), DataMeta(task, shape, num_targets=1)
    elif task == "reconstruction":
        y = X.reshape(n, -1).clone()
        meta = DataMeta(task, shape, num_targets=y.shape[1])
    elif task == "generation":  # every sample real: the model's score learns to say so
        y, meta = torch.ones(n, 1), DataMeta(task, shape, num_targets=1)
    elif task == "control":  # observations -> a value per action (2 actions)
        y, meta = torch.stack([signal, -signal], 1), DataMeta(task, shape, num_targets=2)
    elif task == "binary":
        y, meta = (signal > 0).long(), DataMeta(task, shape, num_classes=2)
    else:
        y = torch.bucketize(signal, torch.tensor([-1.0, 1.0])).long()
        meta = DataMeta(task, shape, num_classes=3)
    return X, y, meta


def _model_setup(spec, task: str, seed: int = 0):
    import torch

    from .parts import adapt_targets, out_features

    input_kind = spec.inputs[0]
    X, y, meta = _synthetic(task, input_kind)
    target = _TARGET_FOR_TASK[task]
    out = out_features(meta, target)
    torch.manual_seed(seed)
    try:
        model = spec.load()(tuple(meta.input_shape), out, **spec.resolve_params())
    except Exception as exc:  # noqa: BLE001
        _fail(f"model '{spec.name}' could not be built for {task} with input {tuple(meta.input_shape)}: "
              f"{type(exc).__name__}: {exc}")
    if not isinstance(model, torch.nn.Module):
        _fail(f"model '{spec.name}' implementation returned {type(model).__name__}, not an nn.Module")
    T = adapt_targets(y, target)
    base = torch.nn.functional.mse_loss if target == "value" else torch.nn.functional.cross_entropy

    def loss_fn(output, targets):
        if isinstance(output, dict):
            if "output" not in output:
                _fail(f"model '{spec.name}' returned a dict without 'output' (keys: {', '.join(output)})")
            missing = [k for k in spec.outputs if k not in output]
            if missing:
                _fail(f"model '{spec.name}' declares outputs {', '.join(missing)} but did not return them")
            output = output["output"]
        if tuple(output.shape) != (len(X), out):
            _fail(f"model '{spec.name}' for {task}: output shape {tuple(output.shape)} for input {tuple(X.shape)}; "
                  f"expected ({len(X)}, {out})")
        return base(output, targets)

    return model, X, T, out, loss_fn


def _primary(out):
    return out["output"] if isinstance(out, dict) else out


def _check_model_forward(spec, task: str) -> None:
    model, X, T, out, loss_fn = _model_setup(spec, task)
    loss_fn(model(X), T)  # checks the output layout and shape
    y = _primary(model(X))
    if tuple(y.shape) != (len(X), out):
        _fail(f"model '{spec.name}' for {task}: output shape {tuple(y.shape)} for input {tuple(X.shape)}; "
              f"expected ({len(X)}, {out})")


def _check_model_gradients(spec, task: str) -> None:
    import torch

    model, X, T, _, loss_fn = _model_setup(spec, task)
    model.train()
    loss = loss_fn(model(X), T)
    if task == "generation" and callable(getattr(model, "sample", None)):  # the sampler learns through the score
        loss = loss + _primary(model(model.sample(len(X), generator=torch.Generator().manual_seed(0)))).mean()
    if not torch.isfinite(loss):
        _fail(f"model '{spec.name}' for {task}: the loss of its output is {loss.item()}")
    loss.backward()
    none = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    bad = [n for n, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    if not list(model.parameters()):
        _fail(f"model '{spec.name}' has no parameters to train")
    if none:
        _fail(f"model '{spec.name}' for {task}: no gradient reaches {', '.join(none)} (detached or unused?)")
    if bad:
        _fail(f"model '{spec.name}' for {task}: non-finite gradient in {', '.join(bad)}")


def _check_model_learns(spec, task: str) -> None:
    import torch

    model, X, T, _, loss_fn = _model_setup(spec, task)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)

    def full_loss() -> float:
        model.eval()
        with torch.no_grad():
            v = float(loss_fn(model(X), T))
        model.train()
        return v

    before = full_loss()
    for _ in range(25):
        opt.zero_grad(set_to_none=True)
        loss_fn(model(X), T).backward()
        opt.step()
    after = full_loss()
    if not math.isfinite(after) or not after < before:
        _fail(f"model '{spec.name}' for {task}: 25 Adam steps (lr 0.01) on a {len(X)}-sample batch took the loss "
              f"from {before:.4g} to {after:.4g}; it does not learn")


def _check_model_modes(spec, task: str) -> None:
    import torch

    model, X, _, _, _ = _model_setup(spec, task)
    model.eval()
    with torch.no_grad():
        a, b = _primary(model(X)), _primary(model(X))
    if not torch.equal(a, b):
        _fail(f"model '{spec.name}': two forward passes in eval() mode differ (dropout or randomness left on)")
    if not all(not m.training for m in model.modules()):
        _fail(f"model '{spec.name}': eval() did not reach every submodule")
    dropouts = [m for m in model.modules() if isinstance(m, torch.nn.modules.dropout._DropoutNd) and m.p > 0]
    if dropouts:
        model.train()
        with torch.no_grad():
            c, d = _primary(model(X)), _primary(model(X))
        if torch.equal(c, d):
            _fail(f"model '{spec.name}' has dropout but two train() forward passes are identical")


def _one_line(exc: BaseException, limit: int = 240) -> str:
    """``Type: message`` of an exception on one line (the message cut to ``limit``)."""
    text = one_line(exc, limit)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _accepts_problem(spec, task: str, shape: tuple[int, ...]) -> str | None:
    """Why the model fails on one input shape (None when it works): build, forward, backward."""
    import torch

    from .data import DataMeta
    from .parts import out_features

    n = _N_ACCEPTS
    meta = {
        "regression": DataMeta(task, shape, num_targets=1),
        "reconstruction": DataMeta(task, shape, num_targets=math.prod(shape)),
        "generation": DataMeta(task, shape, num_targets=1),
        "control": DataMeta(task, shape, num_targets=2),
        "binary": DataMeta(task, shape, num_classes=2),
    }.get(task) or DataMeta(task, shape, num_classes=10)
    out = out_features(meta, _TARGET_FOR_TASK[task])
    X = torch.randn(n, *shape, generator=torch.Generator().manual_seed(0))
    step = f"building it for {task} with out_features={out}"
    try:
        torch.manual_seed(0)
        model = spec.load()(shape, out, **spec.resolve_params())
        if not isinstance(model, torch.nn.Module):
            return f"the implementation returned {type(model).__name__}, not an nn.Module"
        for mode in ("train", "eval"):
            step = f"the {mode}-mode forward pass of a batch {tuple(X.shape)}"
            model.train(mode == "train")
            with torch.set_grad_enabled(mode == "train"):
                result = model(X)
            if isinstance(result, dict):
                if "output" not in result:
                    return f"{step} returned a dict without 'output' (keys: {', '.join(map(str, result))})"
                missing = [k for k in spec.outputs if k not in result]
                if missing:
                    return f"{step} did not return its declared outputs {', '.join(missing)}"
                result = result["output"]
            if not isinstance(result, torch.Tensor):
                return f"{step} returned {type(result).__name__}, not a tensor"
            if tuple(result.shape) != (n, out):
                return f"{step} gave output shape {tuple(result.shape)}; expected ({n}, {out})"
            if not torch.isfinite(result).all():
                return f"{step} gave non-finite outputs"
            if mode == "train":
                step = "backward"
                result.float().pow(2).mean().backward()
                bad = [k for k, p in model.named_parameters()
                       if p.grad is not None and not torch.isfinite(p.grad).all()]
                if bad:
                    return f"backward gave a non-finite gradient in {', '.join(bad)}"
    except AssertionError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the model raises is the finding
        return f"{step} raised {_one_line(exc)}"
    return None


def _check_model_accepts(spec, input_kind: str, task: str) -> None:
    """The model builds, runs forward (train and eval) and backward on every realistic shape of a kind."""
    failures = []
    for shape in REALISTIC_SHAPES[input_kind]:
        problem = _accepts_problem(spec, task, shape)
        if problem is not None:
            failures.append(f"on shape {shape}: {problem}")
    if failures:
        _fail(f"model '{spec.name}' declares {input_kind} input but fails " + "; ".join(failures))


def _check_model_roundtrip(spec, task: str) -> None:
    import torch

    from .checkpoint import load_weights, save_weights
    from .errors import CheckpointError

    model, X, _, _, _ = _model_setup(spec, task, seed=0)
    fresh, _, _, _, _ = _model_setup(spec, task, seed=1)
    model.eval()
    fresh.eval()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.safetensors"
        save_weights(model, path)
        try:
            load_weights(fresh, path)
        except CheckpointError as exc:
            _fail(f"model '{spec.name}': its state dict does not load back: {exc}")
    with torch.no_grad():
        a, b = _primary(model(X)), _primary(fresh(X))
    if not torch.equal(a, b):
        diff = (a - b).abs().max().item()
        _fail(f"model '{spec.name}': a fresh model loaded from the saved state dict predicts differently "
              f"(max abs difference {diff:.3g}); is some state outside the state dict?")


def _check_model_samples(spec, task: str) -> None:
    """A generation model draws samples: ``sample(n, generator=None)`` gives finite ``(n, *input_shape)``
    samples, the same for the same seeded generator (train and eval mode alike: drawing consumes only the
    generator given), through which a gradient reaches the parameters that make them."""
    import torch

    model, X, _, _, _ = _model_setup(spec, task)
    shape = tuple(X.shape[1:])
    if not callable(getattr(model, "sample", None)):
        _fail(f"model '{spec.name}' declares the generation task but has no sample(n, generator=None) method")
    draws = []
    for mode in (True, False, True):
        model.train(mode)
        try:
            draws.append(model.sample(7, generator=torch.Generator().manual_seed(3)))
        except Exception as exc:  # noqa: BLE001 - the finding
            _fail(f"model '{spec.name}': sample(7, generator=...) raised {_one_line(exc)}")
    out = draws[0]
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (7, *shape):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        _fail(f"model '{spec.name}': sample(7) gave {got}; expected a tensor of shape {(7, *shape)}")
    if not torch.isfinite(out).all():
        _fail(f"model '{spec.name}': sample(7) gave non-finite values")
    if not all(torch.equal(out.detach(), d.detach()) for d in draws[1:]):
        _fail(f"model '{spec.name}': sample(7) with the same seeded generator gave different samples (the samples "
              "must come from the generator given, and not depend on train/eval mode)")
    model.train(True)
    model.zero_grad(set_to_none=True)
    model.sample(7, generator=torch.Generator().manual_seed(3)).float().pow(2).mean().backward()
    if not any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in model.parameters()):
        _fail(f"model '{spec.name}': no gradient reaches any parameter from its samples")


def _check_loss(spec, task: str) -> None:
    import torch

    from .parts import adapt_targets, out_features

    _, y, meta = _synthetic(task, "tabular")
    n = len(y)
    out = out_features(meta, spec.target) if not (spec.target == "binary" and task != "binary") else 1
    g = torch.Generator().manual_seed(12345)  # not the synthetic data's seed: output != target
    output = torch.randn(n, out, generator=g, requires_grad=True)
    if spec.target == "index" and task in ("regression", "reconstruction", "generation", "control"):
        _fail(f"loss '{spec.name}' declares task {task} but needs class indices")
    extras = {k: torch.randn(n, 4, generator=g, requires_grad=True) for k in spec.reads}
    try:
        loss_fn = spec.load()(**spec.resolve_params())
        loss = loss_fn(output, adapt_targets(y, spec.target), **extras)
    except AssertionError:
        raise
    except Exception as exc:  # noqa: BLE001
        _fail(f"loss '{spec.name}' for {task} (targets '{spec.target}'): {type(exc).__name__}: {exc}")
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        _fail(f"loss '{spec.name}' returned {type(loss).__name__} {getattr(loss, 'shape', '')}, not a scalar tensor")
    if not torch.isfinite(loss):
        _fail(f"loss '{spec.name}' for {task}: value {loss.item()} on ordinary inputs")
    loss.backward()
    if output.grad is None or not torch.isfinite(output.grad).all() or not output.grad.abs().sum() > 0:
        _fail(f"loss '{spec.name}' for {task}: no finite, non-zero gradient flows to the model output")


def _check_recipe(spec, registry: Registry) -> None:
    from . import engine
    from .config import resolve
    from .saved import evaluate_run

    cfg = resolve(spec.name, registry=registry, epochs=1, device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        run = engine.fit(cfg, registry=registry, out=Path(tmp) / "run")
        again = evaluate_run(run.dir, split="test", device="cpu", registry=registry)
        for k, v in run.metrics["test"].items():
            if not (v == again[k] or (math.isnan(v) and math.isnan(again[k]))):
                _fail(f"recipe '{spec.name}': the saved run evaluates to {k}={again[k]} but training reported {v}")


def _recipe_registry(plugin_name: str, module: ModuleType, info: Plugin, recipe) -> Registry:
    """The plugin under test plus the installed plugins providing the parts the recipe names (or a run gets by
    default: the optimizer, schedule, procedure, strategy) and the metrics."""
    from .kinds import KINDS, PARTS

    reg = Registry()
    reg.add(dataclasses.replace(info, module=None, error=None, contract=None, contributes={}), module)
    installed = get_registry()

    def add(entry: Entry) -> None:
        if entry.plugin.name not in reg.plugins and entry.plugin.module is not None:
            reg.add(Plugin(entry.plugin.name, entry.plugin.dist, entry.plugin.version, entry.plugin.value),
                    entry.plugin.module)

    for kind in PARTS:
        name = getattr(recipe, kind, None) or recipe.train.get(kind) or KINDS[kind].default
        if name not in reg.names(kind):
            add(installed.get(kind, name))
    for entry in installed.entries("metric"):
        add(entry)
    return reg


def plugin_checks(plugin: str | ModuleType) -> list[Check]:
    """Every contract check for one plugin (an entry-point name or its module)."""
    name, module, info = _resolve(plugin)
    reg, registered, specs = _register(name, module, info)
    checks: list[Check] = []

    def add(cid: str, fn: Callable, *args: Any) -> None:
        checks.append(Check(cid, lambda: fn(*args)))

    def bad_tasks(spec) -> list[str]:
        return [t for t in getattr(spec, "tasks", ()) if t in TASKS]

    from . import training_checks as tc
    from .kinds import KIND_TABLE

    add(f"plugin:{name}:contract-version", _check_contract, module)
    add(f"plugin:{name}:hooks", _check_hooks, reg, registered)
    harness: list[Registry] = []

    def in_a_run(spec) -> None:  # one harness registry for the plugin's run checks, built when first needed
        if not harness:
            harness.append(tc.harness_registry(module, info))
        tc.check_in_a_run(spec, harness[0])

    for kind in (k.name for k in KIND_TABLE if k.name not in ("dataset", "model", "loss", "recipe")):
        for spec in specs.get(kind, []):
            sname = getattr(spec, "name", "?")
            add(f"{kind}:{sname}:declaration", _check_declaration, spec, name, specs)
            if kind == "optimizer":
                add(f"optimizer:{sname}:steps-and-restores", tc.check_optimizer, spec)
            elif kind == "schedule":
                add(f"schedule:{sname}:plans-and-restores", tc.check_schedule, spec)
            elif kind == "metric":
                for task in bad_tasks(spec):
                    add(f"metric:{sname}:scores[{task}]", tc.check_metric, spec, task)
            elif kind in ("callback", "strategy") or set(getattr(spec, "tasks", ())) & set(tc.HARNESS_TASKS):
                add(f"{kind}:{sname}:trains-and-resumes", in_a_run, spec)
    for kind in ("dataset", "model", "loss", "recipe"):
        for spec in specs.get(kind, []):
            sname = getattr(spec, "name", "?")
            add(f"{kind}:{sname}:declaration", _check_declaration, spec, name, specs)
            if kind == "dataset":
                add(f"dataset:{sname}:splits", _check_dataset_splits, spec)
                add(f"dataset:{sname}:reproducible", _check_dataset_reproducible, spec)
            elif kind == "model":
                for task in bad_tasks(spec):
                    add(f"model:{sname}:forward-shape[{task}]", _check_model_forward, spec, task)
                    add(f"model:{sname}:gradients[{task}]", _check_model_gradients, spec, task)
                    add(f"model:{sname}:learns[{task}]", _check_model_learns, spec, task)
                    if task == "generation":
                        add(f"model:{sname}:samples[{task}]", _check_model_samples, spec, task)
                task = bad_tasks(spec)[0] if bad_tasks(spec) else "regression"
                add(f"model:{sname}:train-eval-modes", _check_model_modes, spec, task)
                add(f"model:{sname}:state-dict-roundtrip", _check_model_roundtrip, spec, task)
                for input_kind in dict.fromkeys(k for k in getattr(spec, "inputs", ()) if k in INPUT_KINDS):
                    add(f"model:{sname}:accepts-input[{input_kind}]", _check_model_accepts, spec, input_kind, task)
            elif kind == "loss":
                for task in bad_tasks(spec):
                    add(f"loss:{sname}:finite-differentiable[{task}]", _check_loss, spec, task)
            else:
                add(f"recipe:{sname}:trains-and-reloads",
                    lambda spec=spec: _check_recipe(spec, _recipe_registry(name, module, info, spec)))
    return checks


def _check_contract(module: ModuleType) -> None:
    declared = getattr(module, "ZOO_CONTRACT", None)
    if declared is not None and str(declared) != CONTRACT_VERSION:
        _fail(f"the plugin declares ZOO_CONTRACT = {declared!r} but this zoo checks contract {CONTRACT_VERSION}")


def parametrize_plugin_checks(plugin: str | ModuleType, expected_failures: Mapping[str, str] | None = None):
    """A ``pytest.mark.parametrize`` over the argument ``check``, one case per contract check."""
    import pytest

    checks = plugin_checks(plugin)
    expected = dict(expected_failures or {})
    unknown = sorted(set(expected) - {c.id for c in checks})
    if unknown:
        raise ValueError(f"expected_failures names checks that do not exist: {', '.join(unknown)}")
    params = [
        pytest.param(c, id=c.id, marks=pytest.mark.xfail(reason=expected[c.id], strict=True) if c.id in expected else ())
        for c in checks
    ]
    return pytest.mark.parametrize("check", params)


__all__ = ["CONTRACT_VERSION", "Check", "parametrize_plugin_checks", "plugin_checks"]
