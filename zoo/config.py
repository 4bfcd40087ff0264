"""Resolving what to train: a recipe or dataset + model + loss, overrides, checks.

Everything here is light (no torch): it runs before any data is loaded, so a bad
name, value or combination is refused before training starts.

A config has one spelling everywhere (see :mod:`zoo.configfile` for files)::

    recipe = "moons-mlp"          # optional
    [dataset]  name = "moons"   noise = 0.3      # --set dataset.noise=0.3
    [model]    name = "mlp"     hidden = [32, 32] # --set model.hidden=32,32
    [loss]     name = "cross-entropy"
    [train]    epochs = 20      lr = 0.01         # --set train.lr=0.01, --lr 0.01

Internally (and in :func:`resolve`'s result) the config is flat: ``dataset``,
``dataset_plugin``, ``dataset_params``, the same for model and loss, and every
training setting as a top-level key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from .errors import UsageError, did_you_mean
from .registry import Entry, Registry, get_registry
from .spec import Param

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
SCHEDULES = ("none", "cosine", "step", "plateau")

#: Training settings, validated like component hyperparameters. The CLI has a flag for
#: the common ones; every one can be set with ``--set train.KEY=VALUE`` or in a config file.
TRAIN_PARAMS: dict[str, Param] = {
    "epochs": Param("int", 20, "total passes over the training split", min=1),
    "batch_size": Param("int", 32, "samples per optimizer step", min=1),
    "lr": Param("float", 1e-3, "learning rate", min=0.0, min_exclusive=True),
    "optimizer": Param("str", "adam", "optimizer", choices=OPTIMIZERS),
    "momentum": Param("float", 0.0, "momentum (sgd, rmsprop)", min=0.0, max=1.0, max_exclusive=True),
    "nesterov": Param("bool", False, "Nesterov momentum (sgd; needs momentum > 0)"),
    "weight_decay": Param("float", 0.0, "L2 penalty (decoupled for adamw)", min=0.0),
    "l1": Param("float", 0.0, "L1 penalty on the weights, added to the loss", min=0.0),
    "clip_grad": Param("float", 0.0, "clip the gradient norm to this value (0: off)", min=0.0),
    "schedule": Param("str", "none", "learning-rate schedule", choices=SCHEDULES),
    "step_size": Param("int", 10, "step schedule: epochs between learning-rate drops", min=1),
    "gamma": Param("float", 0.1, "step and plateau schedules: factor of each drop", min=0.0, max=1.0,
                   min_exclusive=True),
    "plateau_patience": Param("int", 5, "plateau schedule: epochs without improvement before a drop", min=1),
    "warmup_epochs": Param("float", 0.0, "linear learning-rate warm-up over this many epochs", min=0.0),
    "monitor": Param("str", "val_loss", "validation figure for early stopping, best weights and plateau: "
                     "val_loss or val_<metric>"),
    "patience": Param("int", 0, "early stopping: epochs without improvement before stopping (0: off)", min=0),
    "min_delta": Param("float", 0.0, "the smallest change of the monitored figure that counts as an "
                       "improvement (early stopping, best weights)", min=0.0),
    "scale_targets": Param("bool", True, "regression: the loss is computed on standardised targets (metrics and "
                           "predictions stay in the data's units)"),
    "threads": Param("int", 0, "CPU threads for training (0: auto, one thread for small models, where more "
                     "threads only add synchronisation)", min=0),
    "checkpoint_every": Param("float", 30.0, "seconds between resumable checkpoints (0: every epoch); one is "
                              "always written at the end and on interruption", min=0.0),
    "precision": Param("str", "32", "32 (float32) or bf16 (bfloat16 autocast for forward passes; weights stay "
                       "float32)", choices=("32", "bf16")),
    "compile": Param("bool", False, "torch.compile the model for training (pays a compile time up front)"),
    "compile_backend": Param("str", "inductor", "torch.compile backend (inductor; eager checks the wiring only)"),
    "workers": Param("int", -1, "DataLoader workers for datasets that are not in-memory tensors (-1: auto)",
                     min=-1),
    "seed": Param("int", 0, "seed for data splits, initialisation and shuffling", min=0, max=2**32 - 1),
    "device": Param("str", "auto", "auto, cpu, cuda or cuda:N"),
}

#: Settings that only some choices use: (the setting they depend on, the values that use it, why).
#: A non-default value with another choice would be silently ignored, so it is refused.
USED_ONLY_WITH: dict[str, tuple[str, tuple, str]] = {
    "momentum": ("optimizer", ("sgd", "rmsprop"), "only sgd and rmsprop use momentum"),
    "nesterov": ("optimizer", ("sgd",), "only sgd has Nesterov momentum"),
    "step_size": ("schedule", ("step",), "only the step schedule uses step_size"),
    "gamma": ("schedule", ("step", "plateau"), "only the step and plateau schedules use gamma"),
    "plateau_patience": ("schedule", ("plateau",), "only the plateau schedule uses plateau_patience"),
    "compile_backend": ("compile", (True,), "compile_backend is used only with compile=true"),
}

COMPONENTS = ("dataset", "model", "loss")
#: Keys a run's config holds beyond what a user sets; accepted (and recomputed) when a
#: run's config.json is given back with --config.
DERIVED_KEYS = ("task", "meta", "target", "out_features", "zoo_version")
MINIMIZE = ("loss", "mse", "mae")


@dataclass(frozen=True)
class Combination:
    """The three resolved components of a run."""

    dataset: Entry
    model: Entry
    loss: Entry

    @property
    def out_features(self) -> str:
        return self.loss.spec.target


def check_combination(dataset: Entry, model: Entry, loss: Entry, registry: Registry | None = None,
                      task: str | None = None) -> None:
    """Refuse a combination that cannot train, naming both parts and the reason."""
    ds, m, lo = dataset.spec, model.spec, loss.spec
    task = task or ds.tasks[0]
    if ds.input not in m.inputs:
        raise UsageError(
            f"model '{m.name}' cannot take dataset '{ds.name}': the model needs "
            f"{' or '.join(m.inputs)} input and the dataset gives {ds.input} samples"
        )
    if task not in m.tasks:
        raise UsageError(
            f"model '{m.name}' cannot learn dataset '{ds.name}': the dataset is a {task} task and the "
            f"model supports {', '.join(m.tasks)}"
        )
    missing = [r for r in lo.reads if r not in m.outputs]
    if missing:
        raise UsageError(
            f"loss '{lo.name}' cannot train model '{m.name}': the loss reads {', '.join(missing)}, which the model "
            f"does not output (it outputs {', '.join(m.outputs)})"
        )
    if task not in lo.tasks:
        fits = [e.name for e in (registry.entries("loss") if registry else []) if task in e.spec.tasks]
        hint = f" (losses for {task}: {', '.join(sorted(set(fits)))})" if fits else ""
        raise UsageError(
            f"loss '{lo.name}' does not fit dataset '{ds.name}': the dataset is a {task} task and the "
            f"loss is for {', '.join(lo.tasks)}{hint}"
        )


def parse_sets(pairs: list[str] | tuple[str, ...]) -> dict[str, str]:
    """``["model.hidden=64,64", "lr=0.1"]`` -> ``{"model.hidden": "64,64", "lr": "0.1"}``; a key given twice is
    an error (it would otherwise be "last wins", silently)."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--set expects KEY=VALUE, got '{pair}'")
        if key in out:
            raise UsageError(f"--set {key} is given twice ({key}={out[key]} and {key}={value}); give it once")
        out[key] = value
    return out


def dataset_task(entry: Entry, params: Mapping[str, Any], note: Callable[[str], None] | None = None) -> str:
    """The dataset's task: its one declared task, or what its ``infer_task`` function decides."""
    spec = entry.spec
    if len(spec.tasks) == 1 or not spec.infer_task:
        return spec.tasks[0]
    module_name, _, attr = spec.infer_task.partition(":")
    try:
        import importlib

        fn: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            fn = getattr(fn, part)
    except Exception as exc:  # noqa: BLE001 - a broken plugin
        raise UsageError(f"dataset '{spec.name}' from plugin '{entry.plugin.name}': its infer_task "
                         f"'{spec.infer_task}' could not be imported: {type(exc).__name__}: {exc}") from None
    try:
        task, reason = fn(dict(params))
    except (ValueError, OSError) as exc:
        raise UsageError(f"dataset '{spec.name}': {' '.join(str(exc).split())}") from None
    if task not in spec.tasks:
        raise UsageError(f"dataset '{spec.name}' from plugin '{entry.plugin.name}' inferred task {task!r}, which it "
                         f"does not declare ({', '.join(spec.tasks)})")
    if note is not None and reason:
        note(f"dataset '{spec.name}': {task} task ({reason})")
    return task


def default_loss(task: str, model: Entry, registry: Registry) -> Entry:
    """The installed loss that declares itself the default for ``task`` and fits ``model``."""
    fits = [e for e in registry.entries("loss")
            if task in e.spec.default_for and all(r in model.spec.outputs for r in e.spec.reads)]
    # a loss that reads the model's extra outputs (a VAE's mu and logvar) is the more specific choice
    specific = [e for e in fits if e.spec.reads]
    fits = specific or fits
    if len(fits) == 1:
        return fits[0]
    losses = sorted({e.name for e in registry.entries("loss") if task in e.spec.tasks})
    if not fits:
        raise UsageError(f"no --loss given and no installed loss is the default for a {task} task; choose one "
                         f"with --loss ({', '.join(losses) or 'none installed'})")
    raise UsageError(f"no --loss given and several losses are defaults for a {task} task "
                     f"({', '.join(e.qualified for e in fits)}); choose one with --loss")


def resolve(
    recipe: str | None = None,
    *,
    dataset: str | None = None,
    model: str | None = None,
    loss: str | None = None,
    sets: Mapping[str, Any] | None = None,
    registry: Registry | None = None,
    base: Mapping[str, Any] | None = None,
    note: Callable[[str], None] | None = None,
    **train: Any,
) -> dict[str, Any]:
    """Return the fully resolved run config (a flat, JSON-able dict) or raise UsageError.

    ``sets`` maps ``component.param`` (or a bare ``param`` that only one component
    has, or a training setting, ``train.`` optional) to a value; ``train`` holds
    training settings (``epochs``, ``lr``, ...). Explicit components override the
    recipe's. ``base`` is a config document (a file's content, see
    :func:`zoo.configfile.load`): recipe < base < explicit arguments. The same setting
    given twice among the explicit arguments is an error. ``note`` receives one-line
    notes about choices made for the user (a default loss, an inferred task).
    """
    from .configfile import flatten

    reg = registry or get_registry()
    base = flatten(base or {}, "config file")
    recipe = recipe or base.get("recipe")
    rec_entry = reg.get("recipe", recipe) if recipe is not None else None
    rec = rec_entry.spec if rec_entry is not None else None
    explicit = {"dataset": dataset, "model": model, "loss": loss}
    names = {c: explicit[c] or base.get(c) or (getattr(rec, c) if rec else None) for c in COMPONENTS}
    plugins = {c: base.get(f"{c}_plugin") if not explicit[c] and base.get(c) else None for c in COMPONENTS}
    missing = [f"--{c}" for c in ("dataset", "model") if not names[c]]
    if missing:
        raise UsageError("give a recipe, or --dataset and --model (and optionally --loss) (missing: "
                         + ", ".join(missing) + ")")

    def lookup(comp: str) -> Entry:
        name = names[comp]
        if plugins[comp] and ":" not in name:
            name = f"{plugins[comp]}:{name}"
        from_recipe = rec_entry is not None and not explicit[comp] and names[comp] == getattr(rec, comp)
        return reg.get(comp, name, prefer=rec_entry.plugin if from_recipe else None)

    entries = {c: lookup(c) for c in COMPONENTS if names[c]}

    # component hyperparameters: recipe defaults (only for the component the recipe names) < file < explicit
    given: dict[str, dict[str, Any]] = {c: {} for c in COMPONENTS}
    settings: dict[str, Any] = {}
    if rec is not None:
        for comp, params in (("dataset", rec.dataset_params), ("model", rec.model_params), ("loss", rec.loss_params)):
            if names[comp] == getattr(rec, comp):
                given[comp].update(params)
        settings.update(rec.train)
    for comp in COMPONENTS:
        given[comp].update(base.get(f"{comp}_params") or {})
    settings.update({k: v for k, v in base.items() if k in TRAIN_PARAMS})
    recipe_settings = dict(rec.train) if rec is not None else {}

    # explicit values: each key once, whichever way it is spelled
    seen: dict[tuple[str, str], str] = {}
    user_settings: set[str] = set(k for k in base if k in TRAIN_PARAMS)

    def take(where: str, key: str, value: Any, spelled: str) -> None:
        if (where, key) in seen:
            raise UsageError(f"{where}.{key} is given twice ({seen[(where, key)]} and {spelled}); give it once")
        seen[(where, key)] = spelled
        if where == "train":
            settings[key] = value
            user_settings.add(key)
        else:
            given[where][key] = value

    for key, value in train.items():
        if value is not None:
            take("train", key, value, f"--{key.replace('_', '-')} {value}")
    loss_name_known = names["loss"] is not None
    pending_loss: list[tuple[str, Any, str]] = []
    for key, value in (sets or {}).items():
        spelled = f"--set {key}={value}"
        comp, dot, pname = key.partition(".")
        if dot:
            if comp not in (*COMPONENTS, "train"):
                raise UsageError(f"unknown --set prefix '{comp}' in '{key}'; use dataset., model., loss. or train.")
            take(comp, pname, value, spelled)
            continue
        owners = [c for c in COMPONENTS if c in entries and key in entries[c].spec.params]
        if key in TRAIN_PARAMS:
            owners.append("train")
        if len(owners) > 1:
            raise UsageError(
                f"--set {key} is ambiguous: " + ", ".join(owners) + " all have it; write "
                + " or ".join(f"{o}.{key}" for o in owners)
            )
        if not owners:
            if not loss_name_known:
                pending_loss.append((key, value, spelled))  # maybe a parameter of the default loss
                continue
            _unknown_parameter(key, names, entries)
        take(owners[0], key, value, spelled)

    dataset_params = entries["dataset"].spec.resolve_params(given["dataset"])
    task = dataset_task(entries["dataset"], dataset_params, note)
    if names["loss"] is None:
        entries["loss"] = default_loss(task, entries["model"], reg)
        names["loss"] = entries["loss"].name
        if note is not None:
            note(f"no --loss given: using '{entries['loss'].name}', the default loss for a {task} task "
                 f"(from plugin '{entries['loss'].plugin.name}')")
        for key, value, spelled in pending_loss:
            if key not in entries["loss"].spec.params:
                _unknown_parameter(key, names, entries)
            take("loss", key, value, spelled)
    check_combination(entries["dataset"], entries["model"], entries["loss"], reg, task)

    cfg: dict[str, Any] = {"recipe": rec.name if rec else None}
    for comp in COMPONENTS:
        e = entries[comp]
        cfg[comp] = e.name
        cfg[f"{comp}_plugin"] = e.plugin.name
        params = dataset_params if comp == "dataset" else e.spec.resolve_params(given[comp])
        cfg[f"{comp}_params"] = _jsonable(params)
    cfg["task"] = task
    for key in settings:
        if key not in TRAIN_PARAMS:
            raise UsageError(f"unknown training setting '{key}'{did_you_mean(key, TRAIN_PARAMS)}")
    for key, p in TRAIN_PARAMS.items():
        cfg[key] = p.check(key, settings[key]) if key in settings else p.default
    check_device(cfg["device"])
    check_monitor(cfg["monitor"], task)
    _check_used(cfg, user_settings, recipe_settings, note)
    if cfg["nesterov"] and cfg["momentum"] <= 0:
        raise UsageError("nesterov needs momentum > 0 (--set momentum=0.9)")
    return cfg


def _unknown_parameter(key: str, names: Mapping[str, str | None], entries: Mapping[str, Entry]) -> None:
    known = {p for e in entries.values() for p in e.spec.params} | set(TRAIN_PARAMS)
    parts = ", ".join(f"{c} '{names[c]}'" for c in COMPONENTS if names.get(c))
    raise UsageError(f"unknown parameter '{key}' for {parts}{did_you_mean(key, known)}")


def _check_used(cfg: dict[str, Any], user: set[str], recipe: Mapping[str, Any],
                note: Callable[[str], None] | None) -> None:
    """Refuse a setting the user gave that the chosen optimizer, schedule or option ignores; drop
    (back to its default, with a note) one that only the recipe set, for a choice the user changed."""
    for key, (on, values, why) in USED_ONLY_WITH.items():
        default = TRAIN_PARAMS[key].default
        if cfg[key] == default or cfg[on] in values:
            continue
        shown = f"{on}={str(cfg[on]).lower() if isinstance(cfg[on], bool) else cfg[on]}"
        if key in user:
            raise UsageError(f"{key}={cfg[key]} has no effect with {shown}: {why}; remove it or change {on}")
        if key in recipe:
            cfg[key] = default
            if note is not None:
                note(f"the recipe's {key}={recipe[key]} does not apply with {shown} ({why}); not used")


def check_monitor(monitor: str, task: str) -> None:
    from .metric_names import TASK_METRICS

    valid = ["val_loss"] + [f"val_{m}" for m in TASK_METRICS[task]]
    if monitor not in valid:
        raise UsageError(f"monitor '{monitor}' is not reported for a {task} task{did_you_mean(monitor, valid)} "
                         f"(choose from {', '.join(valid)})")


def minimize(monitor: str) -> bool:
    """Whether a smaller value of the monitored figure is better."""
    return monitor.removeprefix("val_") in MINIMIZE


def check_device(device: str) -> None:
    import re

    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", device):
        raise UsageError(f"--device must be auto, cpu, cuda or cuda:N, not '{device}'")


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}


def entries_for(cfg: Mapping[str, Any], registry: Registry | None = None) -> Combination:
    """Look the components of a resolved config up again (preferring the recorded plugin)."""
    reg = registry or get_registry()
    out = {}
    for comp in COMPONENTS:
        name, plugin = cfg[comp], cfg.get(f"{comp}_plugin")
        try:
            out[comp] = reg.get(comp, f"{plugin}:{name}" if plugin else name)
        except UsageError:
            out[comp] = reg.get(comp, name)
    return Combination(**out)


def run_task(cfg: Mapping[str, Any]) -> str:
    """The task of a resolved config (older configs record it only in ``meta``)."""
    return cfg.get("task") or cfg["meta"]["task"]
