"""Declarations: what a plugin contributes, readable without importing heavy code.

A plugin's entry-point module returns these from its hook implementations. They
name their implementation as an ``"module:attribute"`` string, which the core
imports only when the component is used (``zoo list`` and ``zoo info`` never do).
This module must stay free of torch, numpy and scikit-learn imports.
"""

from __future__ import annotations

import importlib
import math
import re
import reprlib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .errors import UsageError, did_you_mean

#: The tasks the core knows. A dataset has one; models and losses list those they support.
#: ``reconstruction``: the target is the (standardised, flattened) input itself.
#: ``generation``: no labels; a model learns to draw samples like the data's. Its targets are float32
#: ``(N, 1)`` ones (every sample is real), its forward scores samples (one value each, such as a
#: discriminator's logit) and it draws samples with ``sample(n, generator=None)`` in the standardised
#: input space; metrics compare its samples with the split's samples (see :mod:`zoo.evaluation`).
#: ``control``: an environment instead of a dataset (see :mod:`zoo.episodes`). The dataset's splits hold
#: observations a uniformly random policy visits (for probes, reload checks and predictions; their float32
#: ``(N, num_targets)`` targets are zeros) and ``Splits.environment`` makes the environment; the model maps an
#: observation to one value per action (``num_targets`` actions) and is scored by the returns of its greedy
#: policy over seeded episodes.
TASKS = ("regression", "binary", "multiclass", "reconstruction", "generation", "control")

#: Kinds of model input. ``tabular``: a feature vector ``(d,)``; ``image``: ``(C, H, W)``;
#: ``sequence``: ``(T, F)``, T time steps of F features.
INPUT_KINDS = ("tabular", "image", "sequence")

#: The shape rank of each input kind (without the batch dimension).
INPUT_RANK = {"tabular": 1, "image": 3, "sequence": 2}

#: Target layouts a loss can ask for; the engine adapts the dataset's targets to it.
#: ``index``: class indices, int64 ``(N,)``, the model outputs one logit per class;
#: ``binary``: float ``(N, 1)`` in {0, 1}, the model outputs one logit;
#: ``value``: float ``(N, k)``, the model outputs k values.
TARGETS = ("index", "binary", "value")

PARAM_TYPES = ("int", "float", "bool", "str", "int-list", "float-list", "str-list")

#: Parameter names a component may not declare: config-file sections use them for the
#: component's own name and plugin (``[model] name = "mlp"``).
RESERVED = ("name", "plugin")

_NAME = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")

#: The longest text an error message quotes of a value it was given (a file can hold any value).
SHOWN_CHARS = 80

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxtuple, _REPR.maxdict, _REPR.maxset = 3, 8, 8, 8, 8
_REPR.maxstring, _REPR.maxother, _REPR.maxlong = SHOWN_CHARS, SHOWN_CHARS, 40


def shown(value: Any, limit: int = SHOWN_CHARS) -> str:
    """``repr(value)`` for an error message, at most about ``limit`` characters (ending in ``...`` when cut).

    Its cost is bounded too: a huge list or a string of a billion characters is never turned into
    text whole, and an integer too long for ``repr`` is described by its size.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"<an integer of {len(str(value)) if value.bit_length() < 12000 else 'over 3600'} digits>"
    try:
        text = _REPR.repr(value)
    except Exception:  # noqa: BLE001 - a value whose repr fails is still described
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: max(limit - 3, 1)] + "..."


@dataclass(frozen=True)
class Param:
    """One hyperparameter: its type name, default, help and allowed values.

    ``min``/``max`` bound numbers (and every item of a list), inclusively unless
    ``min_exclusive``/``max_exclusive``. Floats must be finite. A ``required`` parameter has
    no default (``None``): a run must set it, and resolving a config without it is an error.
    ``requires`` names another parameter of the same component that must be set (true, or
    non-zero) whenever this one is (Nesterov momentum needs momentum).
    """

    type: str
    default: Any = None
    help: str = ""
    choices: tuple | None = None
    min: float | None = None
    max: float | None = None
    required: bool = False
    min_exclusive: bool = False
    max_exclusive: bool = False
    requires: str | None = None

    def __post_init__(self) -> None:
        if self.type not in PARAM_TYPES:
            raise ValueError(f"unknown parameter type {self.type!r}; use one of {', '.join(PARAM_TYPES)}")
        if self.required and self.default is not None:
            raise ValueError("a required parameter has no default (leave default as None)")
        if self.default is not None:
            object.__setattr__(self, "default", self.check("default", self.default))

    def check(self, key: str, value: Any) -> Any:
        """Coerce ``value`` (a Python value or the string from ``--set``) or raise UsageError."""
        v = _coerce(key, self.type, value)
        if self.choices is not None and v not in self.choices:
            choices = ", ".join(map(str, self.choices))
            raise UsageError(f"{key}={shown(value)} is not one of: {choices}"
                             f"{did_you_mean(str(v), map(str, self.choices)) if len(str(v)) <= SHOWN_CHARS else ''}")
        items = v if isinstance(v, tuple) else (v,)
        if self.min is not None and any(x < self.min or (self.min_exclusive and x == self.min) for x in items):
            raise UsageError(f"{key}={shown(value)} must be {'>' if self.min_exclusive else '>='} {_num(self.min)}")
        if self.max is not None and any(x > self.max or (self.max_exclusive and x == self.max) for x in items):
            raise UsageError(f"{key}={shown(value)} must be {'<' if self.max_exclusive else '<='} {_num(self.max)}")
        return v

    def bounds(self) -> str:
        """The allowed range in words (``> 0``, ``0 to 0.99``, ``>= 1``), or ``""`` when unbounded."""
        lo = None if self.min is None else f"{'>' if self.min_exclusive else '>='} {_num(self.min)}"
        hi = None if self.max is None else f"{'<' if self.max_exclusive else '<='} {_num(self.max)}"
        if lo and hi:
            if not self.min_exclusive and not self.max_exclusive:
                return f"{_num(self.min)} to {_num(self.max)}"
            return f"{lo} and {hi}"
        return lo or hi or ""

    def describe(self) -> dict:
        d = {"type": self.type, "default": list(self.default) if isinstance(self.default, tuple) else self.default}
        if self.required:
            d["required"] = True
        if self.help:
            d["help"] = self.help
        if self.choices is not None:
            d["choices"] = list(self.choices)
        if self.min is not None:
            d["min"] = self.min
            if self.min_exclusive:
                d["min_exclusive"] = True
        if self.max is not None:
            d["max"] = self.max
            if self.max_exclusive:
                d["max_exclusive"] = True
        if self.requires:
            d["requires"] = self.requires
        return d


def _num(x: float) -> str:
    """A bound in words: whole numbers in full (``4294967295``, ``1000000``), others as ``:g`` (``0.99``)."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e16 else f"{x:g}"


def _coerce(key: str, type_: str, value: Any) -> Any:
    def bad() -> UsageError:  # made only when needed: quoting a value has a cost
        return UsageError(f"{key}={shown(value)} is not a valid {type_}")

    if type_ == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
            return False
        raise bad()
    if type_ in ("int", "float"):
        cast = int if type_ == "int" else float
        if isinstance(value, bool):
            raise bad()
        given = value
        if isinstance(value, str):
            try:
                value = cast(value.strip())
            except ValueError:
                raise bad() from None
        if isinstance(value, (int, float)):
            if isinstance(value, float) and not math.isfinite(value):
                raise UsageError(f"{key}={shown(given)} is not a finite number")
            if type_ == "int" and isinstance(value, float) and not value.is_integer():
                raise bad()
            return cast(value)
        raise bad()
    if type_ == "str":
        if isinstance(value, str):
            return value
        raise bad()
    # lists: "64,64", [64, 64], (64,) or a single number
    item = type_.split("-")[0]
    if isinstance(value, str):
        parts = [p for p in re.split(r"[,\s]+", value.strip().strip("[]()")) if p]
    elif isinstance(value, (list, tuple)):
        parts = list(value)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        parts = [value]
    else:
        raise bad()
    try:
        return tuple(_coerce(key, item, p) for p in parts)
    except UsageError:
        raise bad() from None


@dataclass(frozen=True)
class Component:
    """Fields every contribution declares. ``tasks`` are required of the kinds that serve some tasks
    only (datasets, models, losses, metrics, procedures); optimizers, schedules, callbacks and
    strategies serve every task."""

    name: str
    summary: str
    tasks: tuple[str, ...] = ()
    impl: str = ""
    params: Mapping[str, Param] = field(default_factory=dict)

    kind = "component"
    needs_tasks = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", tuple(self.tasks))
        object.__setattr__(self, "params", dict(self.params))

    def problems(self) -> list[str]:
        """What is wrong with this declaration (empty when valid)."""
        out = []
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            out.append(f"name {self.name!r} must be lower-case letters, digits, '-' or '_', starting with a letter")
        if not isinstance(self.summary, str) or not self.summary.strip() or "\n" in self.summary.strip():
            out.append("summary must be one non-empty line")
        if self.needs_tasks and not self.tasks:
            out.append("declares no tasks")
        out += [f"unknown task {t!r}" for t in self.tasks if t not in TASKS]
        if not isinstance(self.impl, str) or not re.match(r"^[\w.]+:[\w.]+$", self.impl):
            out.append(f"impl {self.impl!r} must be 'module:attribute'")
        out += [f"parameter {k!r} is not a Param" for k, p in self.params.items() if not isinstance(p, Param)]
        out += [f"parameter {k!r} requires {p.requires!r}, which it does not declare" for k, p in self.params.items()
                if isinstance(p, Param) and p.requires and p.requires not in self.params]
        out += [f"parameter name {k!r} is reserved (config sections use it)" for k in self.params if k in RESERVED]
        return out

    def load(self) -> Callable[..., Any]:
        """Import and return the implementation (the only place heavy code is imported)."""
        module_name, _, attr = self.impl.partition(":")
        obj = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj

    def resolve_params(self, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Defaults overlaid with ``given``, each validated; unknown keys and missing required
        parameters are usage errors."""
        out = {k: p.default for k, p in self.params.items()}
        for key, value in (given or {}).items():
            if key not in self.params:
                known = ", ".join(sorted(self.params)) or "none"
                raise UsageError(
                    f"{self.kind} '{self.name}' has no parameter '{key}'{did_you_mean(key, self.params)} "
                    f"(its parameters: {known})"
                )
            out[key] = self.params[key].check(key, value)
        missing = [k for k, p in self.params.items() if p.required and out[k] is None]
        if missing:
            sets = " ".join(f"--set {self.kind}.{k}=..." for k in missing)
            what = "; ".join(f"{k}: {self.params[k].help}" if self.params[k].help else k for k in missing)
            raise UsageError(f"{self.kind} '{self.name}' needs {', '.join(missing)} ({what}): give {sets}")
        for key, p in self.params.items():
            if p.requires and out[key] and not out.get(p.requires):
                need = f"{p.requires}=true" if self.params[p.requires].type == "bool" else f"{p.requires} > 0"
                raise UsageError(f"{self.kind} '{self.name}': {key} needs {need} (--set {self.kind}.{p.requires}=...)")
        return out

    def describe(self) -> dict:
        return {
            "kind": self.kind,
            "name": self.name,
            "summary": self.summary,
            "tasks": list(self.tasks),
            "params": {k: p.describe() for k, p in self.params.items()},
            "impl": self.impl,
        }


@dataclass(frozen=True)
class OptimizerSpec(Component):
    """An optimizer. ``impl(params, *, lr, **hyperparameters)`` returns a ``torch.optim.Optimizer``
    over ``params`` (the trained model's parameters)."""

    kind = "optimizer"
    needs_tasks = False


@dataclass(frozen=True)
class ScheduleSpec(Component):
    """A learning-rate schedule. ``impl(optimizer, *, plan, **hyperparameters)`` returns a scheduler in
    the ``torch.optim.lr_scheduler`` manner: ``step()`` after every optimizer step, ``state_dict()`` /
    ``load_state_dict()`` with JSON-able state, and optionally ``epoch_end(value)``, called with the
    monitored validation figure after each epoch (a plateau schedule). ``plan`` is a
    :class:`zoo.procedures.SchedulePlan` (steps per epoch, total steps, warm-up steps, whether
    smaller is better). ``warmup``: the schedule applies ``warmup_epochs`` itself."""

    warmup: bool = False
    kind = "schedule"
    needs_tasks = False

    def describe(self) -> dict:
        return {**super().describe(), "warmup": self.warmup}


@dataclass(frozen=True)
class MetricSpec(Component):
    """A metric. ``impl(pred, y, *, target)`` returns a float for one split: ``pred`` the model's outputs
    in the data's units (logits for classification), ``y`` the dataset's targets. ``fast`` optionally
    names a torch version for the per-epoch history (it must agree with ``impl``). ``default_for``:
    the tasks every run reports it for; others are reported when a run names them (``metrics``)."""

    fast: str | None = None
    higher_is_better: bool = True
    default_for: tuple[str, ...] = ()
    kind = "metric"

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "default_for", tuple(self.default_for))

    def problems(self) -> list[str]:
        out = super().problems()
        out += [f"default_for {t!r} is not one of its tasks" for t in self.default_for if t not in self.tasks]
        if self.fast is not None and not re.match(r"^[\w.]+:[\w.]+$", str(self.fast)):
            out.append(f"fast {self.fast!r} must be 'module:attribute'")
        return out

    def describe(self) -> dict:
        return {**super().describe(), "fast": self.fast, "higher_is_better": self.higher_is_better,
                "default_for": list(self.default_for)}


@dataclass(frozen=True)
class CallbackSpec(Component):
    """A callback. ``impl(**hyperparameters)`` returns a :class:`zoo.callbacks.Callback`, which the training
    loop calls at its events; its state travels in the resumable checkpoint."""

    kind = "callback"
    needs_tasks = False


@dataclass(frozen=True)
class ProcedureSpec(Component):
    """A training procedure: what one training step is. ``impl(run)`` returns a
    :class:`zoo.procedures.Procedure` for the run being set up (its config, data, model and the chosen
    optimizer and schedule); it owns the optimizers, performs a step on a batch and evaluates a split."""

    kind = "procedure"


@dataclass(frozen=True)
class StrategySpec(Component):
    """An execution strategy: where and how the step runs. ``impl(**hyperparameters)`` returns a
    :class:`zoo.strategies.Strategy` (device placement, batching, which process writes files, how
    metrics are reduced). ``distributed``: it runs on the several processes a launcher (``torchrun``,
    ``zoo train --nproc``) starts; a launched run that names no strategy gets one that is."""

    kind = "strategy"
    needs_tasks = False
    distributed: bool = False


@dataclass(frozen=True)
class DatasetSpec(Component):
    """A dataset. ``impl(seed=..., **params)`` returns a :class:`zoo.data.Splits`.

    ``input`` is the kind of each sample (``tabular`` or ``image``) so that
    compatibility is checked before any data is loaded.
    """

    input: str = "tabular"
    #: Optional ``"module:attribute"`` of a light function ``infer(params) -> (task, reason)`` for a
    #: dataset that declares several ``tasks`` and decides which from its parameters (e.g. a CSV
    #: file's target column). It runs before training, so it must not import heavy code.
    infer_task: str | None = None
    #: Optional ``"module:attribute"`` of ``encode(table, state) -> float32 array``: turns raw
    #: rows (a list of dicts of strings, as read from a CSV with a header) into features,
    #: using the JSON-able ``Splits.state`` the dataset fitted. Used by ``zoo predict``.
    encode: str | None = None
    #: Optional ``"module:attribute"`` of ``example(directory: Path) -> dict``: writes whatever
    #: the dataset needs into ``directory`` (a CSV, an image folder) and returns parameters that
    #: load it. The contract suite uses it for datasets that need user files.
    example: str | None = None
    kind = "dataset"

    def problems(self) -> list[str]:
        out = super().problems()
        if len(self.tasks) != 1 and self.infer_task is None:
            out.append("a dataset declares exactly one task, or several with an infer_task function")
        if self.input not in INPUT_KINDS:
            out.append(f"unknown input kind {self.input!r}")
        for field_name in ("encode", "example", "infer_task"):
            value = getattr(self, field_name)
            if value is not None and not re.match(r"^[\w.]+:[\w.]+$", str(value)):
                out.append(f"{field_name} {value!r} must be 'module:attribute'")
        return out

    def describe(self) -> dict:
        return {**super().describe(), "input": self.input, "encode": self.encode, "example": self.example,
                "infer_task": self.infer_task}


@dataclass(frozen=True)
class ModelSpec(Component):
    """A model. ``impl(input_shape, out_features, **params)`` returns an ``nn.Module``.

    Its forward returns the prediction tensor ``(N, out_features)``, or, when it declares
    more ``outputs`` than ``("output",)``, a dict holding ``"output"`` and the extra
    tensors (a VAE's ``mu`` and ``logvar``) that losses may read.
    """

    inputs: tuple[str, ...] = ("tabular",)
    outputs: tuple[str, ...] = ("output",)
    kind = "model"

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "outputs", tuple(self.outputs))

    def problems(self) -> list[str]:
        out = super().problems()
        out += [f"unknown input kind {k!r}" for k in self.inputs if k not in INPUT_KINDS]
        if "output" not in self.outputs:
            out.append("outputs must include 'output'")
        return out

    def describe(self) -> dict:
        return {**super().describe(), "inputs": list(self.inputs), "outputs": list(self.outputs)}


@dataclass(frozen=True)
class LossSpec(Component):
    """A loss. ``impl(**params)`` returns a callable ``(output, target, **reads) -> scalar``.

    ``reads`` names extra model outputs the loss needs (e.g. ``("mu", "logvar")``); they
    are passed as keyword arguments, and only models declaring them can pair with it.
    """

    target: str = "value"
    reads: tuple[str, ...] = ()
    #: Tasks for which this is the loss ``zoo train`` picks when none is named.
    default_for: tuple[str, ...] = ()
    kind = "loss"

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "reads", tuple(self.reads))
        object.__setattr__(self, "default_for", tuple(self.default_for))

    def problems(self) -> list[str]:
        out = super().problems()
        if self.target not in TARGETS:
            out.append(f"unknown target layout {self.target!r}")
        out += [f"reads {r!r}: 'output' and 'target' are always passed" for r in self.reads
                if r in ("output", "target")]
        out += [f"default_for {t!r} is not one of its tasks" for t in self.default_for if t not in self.tasks]
        return out

    def describe(self) -> dict:
        return {**super().describe(), "target": self.target, "reads": list(self.reads),
                "default_for": list(self.default_for)}


@dataclass(frozen=True)
class RecipeSpec:
    """A named dataset + model + loss with default hyperparameters and training settings."""

    name: str
    summary: str
    dataset: str
    model: str
    loss: str
    dataset_params: Mapping[str, Any] = field(default_factory=dict)
    model_params: Mapping[str, Any] = field(default_factory=dict)
    loss_params: Mapping[str, Any] = field(default_factory=dict)
    train: Mapping[str, Any] = field(default_factory=dict)

    kind = "recipe"

    def problems(self) -> list[str]:
        out = []
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            out.append(f"name {self.name!r} must be lower-case letters, digits, '-' or '_', starting with a letter")
        if not isinstance(self.summary, str) or not self.summary.strip():
            out.append("summary must be one non-empty line")
        return out

    def describe(self) -> dict:
        return {
            "kind": "recipe",
            "name": self.name,
            "summary": self.summary,
            "dataset": self.dataset,
            "model": self.model,
            "loss": self.loss,
            "dataset_params": dict(self.dataset_params),
            "model_params": dict(self.model_params),
            "loss_params": dict(self.loss_params),
            "train": dict(self.train),
        }


#: Kind name -> declaration class (the table of kinds, with plurals and hooks, is :mod:`zoo.kinds`).
KINDS = {cls.kind: cls for cls in (DatasetSpec, ModelSpec, LossSpec, RecipeSpec, OptimizerSpec, ScheduleSpec,
                                   MetricSpec, CallbackSpec, ProcedureSpec, StrategySpec)}
