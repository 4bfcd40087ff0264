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
from typing import Any, Callable, Mapping, NoReturn

from .errors import UsageError, did_you_mean
from .registry import Entry, Registry, get_registry
from .spec import TARGETS, TASKS, Param, shown

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
SCHEDULES = ("none", "cosine", "step", "plateau")

#: Upper bounds of the settings where a huge value costs time, memory or processes (a run's
#: files may be edited by anyone): far above any real run, low enough to refuse a typo early.
MAX_EPOCHS = 1_000_000
MAX_BATCH = 100_000_000
MAX_THREADS = 1024
MAX_SECONDS = 1e9

#: Training settings, validated like component hyperparameters. The CLI has a flag for
#: the common ones; every one can be set with ``--set train.KEY=VALUE`` or in a config file.
TRAIN_PARAMS: dict[str, Param] = {
    "epochs": Param("int", 20, "total passes over the training split", min=1, max=MAX_EPOCHS),
    "batch_size": Param("int", 32, "samples per optimizer step", min=1, max=MAX_BATCH),
    "lr": Param("float", 1e-3, "learning rate", min=0.0, min_exclusive=True),
    "optimizer": Param("str", "adam", "optimizer", choices=OPTIMIZERS),
    "momentum": Param("float", 0.0, "momentum (sgd, rmsprop)", min=0.0, max=1.0, max_exclusive=True),
    "nesterov": Param("bool", False, "Nesterov momentum (sgd; needs momentum > 0)"),
    "weight_decay": Param("float", 0.0, "L2 penalty (decoupled for adamw)", min=0.0),
    "l1": Param("float", 0.0, "L1 penalty on the weights, added to the loss", min=0.0),
    "clip_grad": Param("float", 0.0, "clip the gradient norm to this value (0: off)", min=0.0),
    "schedule": Param("str", "none", "learning-rate schedule", choices=SCHEDULES),
    "step_size": Param("int", 10, "step schedule: epochs between learning-rate drops", min=1,
                       max=MAX_EPOCHS),
    "gamma": Param("float", 0.1, "step and plateau schedules: factor of each drop", min=0.0, max=1.0,
                   min_exclusive=True),
    "plateau_patience": Param("int", 5, "plateau schedule: epochs without improvement before a drop", min=1,
                              max=MAX_EPOCHS),
    "warmup_epochs": Param("float", 0.0, "linear learning-rate warm-up over this many epochs", min=0.0,
                           max=MAX_EPOCHS),
    "monitor": Param("str", "val_loss", "validation figure for early stopping, best weights and plateau: "
                     "val_loss or val_<metric>"),
    "patience": Param("int", 0, "early stopping: epochs without improvement before stopping (0: off)", min=0,
                      max=MAX_EPOCHS),
    "min_delta": Param("float", 0.0, "the smallest change of the monitored figure that counts as an "
                       "improvement (early stopping, best weights)", min=0.0),
    "scale_targets": Param("bool", True, "regression: the loss is computed on standardised targets (metrics and "
                           "predictions stay in the data's units)"),
    "threads": Param("int", 0, "CPU threads for training (0: auto, one thread for small models, where more "
                     "threads only add synchronisation)", min=0, max=MAX_THREADS),
    "checkpoint_every": Param("float", 30.0, "seconds between resumable checkpoints (0: every epoch); one is "
                              "always written at the end and on interruption", min=0.0,
                              max=MAX_SECONDS),
    "precision": Param("str", "32", "32 (float32) or bf16 (bfloat16 autocast for forward passes; weights stay "
                       "float32)", choices=("32", "bf16")),
    "compile": Param("bool", False, "torch.compile the model for training (pays a compile time up front)"),
    "compile_backend": Param("str", "inductor", "torch.compile backend (inductor; eager checks the wiring only)"),
    "workers": Param("int", -1, "DataLoader workers for datasets that are not in-memory tensors (-1: auto)",
                     min=-1, max=MAX_THREADS),
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


# -- a run's config, read back -------------------------------------------------------------

#: The most values one sample may declare (``meta.input_shape``): far above any real input, and
#: the most a tensor dimension indexes cheaply. The weights file is checked before anything this
#: large is built (see :func:`zoo.engine.load_run_model`).
MAX_SAMPLE_VALUES = 2**31 - 1
MAX_INPUT_RANK = 8


def check_run_config(cfg: dict[str, Any], where: str, registry: Registry | None = None) -> dict[str, Any]:
    """Check a run's flat config read back from its ``config.json`` as ``zoo train`` checks what it is given.

    The file may have been edited by anyone, so nothing in it is trusted: component names must be
    installed components, their hyperparameters pass their declared :class:`~zoo.spec.Param` checks,
    every training setting passes its ``TRAIN_PARAMS`` check (a missing one takes its default, as
    older runs lack newer settings), and the data metadata (``meta``), ``target`` and
    ``out_features`` are well formed and agree with each other and with the components. Returns the
    config with values coerced; a problem is a UsageError naming ``where`` (the file) and the key.
    """
    def fail(message: str) -> NoReturn:
        raise UsageError(f"{where}: {message}")

    def checked(fn: Callable[[], Any], prefix: str = "") -> Any:
        try:
            return fn()
        except UsageError as exc:
            raise UsageError(f"{where}: {prefix}{exc}") from None

    cfg = dict(cfg)
    for comp in COMPONENTS:
        name, plugin = cfg.get(comp), cfg.get(f"{comp}_plugin")
        if not isinstance(name, str) or not name.strip():
            fail(f"'{comp}' must name a {comp}, not {shown(name)}")
        if plugin is not None and not isinstance(plugin, str):
            fail(f"{comp}.plugin must name a plugin, not {shown(plugin)}")
        if not isinstance(cfg.get(f"{comp}_params") or {}, Mapping):
            fail(f"the {comp} hyperparameters must be a table, not {shown(cfg.get(f'{comp}_params'))}")
    if cfg.get("recipe") is not None and not isinstance(cfg["recipe"], str):
        fail(f"'recipe' must be a name, not {shown(cfg['recipe'])}")
    combo = checked(lambda: entries_for(cfg, registry))

    # component hyperparameters, each through its declared Param (as resolve() does)
    for comp in COMPONENTS:
        spec = getattr(combo, comp).spec
        given = dict(cfg.get(f"{comp}_params") or {})
        params = {k: p.default for k, p in spec.params.items()}
        for key, value in given.items():
            if key not in spec.params:
                known = ", ".join(sorted(spec.params)) or "none"
                fail(f"{comp} '{spec.name}' has no parameter {shown(key)}"
                     f"{did_you_mean(str(key), spec.params) if len(str(key)) <= 80 else ''} (its parameters: {known})")
            params[key] = checked(lambda: spec.params[key].check(f"{comp}.{key}", value))
        missing = [k for k, p in spec.params.items() if p.required and params[k] is None]
        if missing:
            fail(f"{comp} '{spec.name}' needs {', '.join(f'{comp}.{k}' for k in missing)}, which the file lacks")
        cfg[f"{comp}_params"] = _jsonable(params)

    # training settings
    for key, p in TRAIN_PARAMS.items():
        cfg[key] = checked(lambda: p.check(f"train.{key}", cfg[key])) if key in cfg else p.default

    # the data metadata the model is built from
    meta = _check_meta(cfg.get("meta"), fail)
    task = meta["task"]
    cfg["meta"] = meta
    if cfg.get("task") is not None and cfg["task"] != task:
        fail(f"task={shown(cfg['task'])} disagrees with meta.task={task!r}")
    cfg["task"] = task
    if task not in combo.dataset.spec.tasks:
        fail(f"meta.task={task!r} is not a task of dataset '{combo.dataset.name}' "
             f"({', '.join(combo.dataset.spec.tasks)})")
    checked(lambda: check_combination(combo.dataset, combo.model, combo.loss, registry, task))
    target = cfg.get("target")
    if target not in TARGETS:
        fail(f"target={shown(target)} must be one of {', '.join(TARGETS)}")
    if target != combo.loss.spec.target:
        fail(f"target={target!r} is not the layout loss '{combo.loss.name}' trains on "
             f"({combo.loss.spec.target!r})")
    if target == "binary" and meta["num_classes"] != 2:
        fail(f"target 'binary' needs meta.num_classes=2, not {meta['num_classes']}")
    expected = {"index": meta["num_classes"], "binary": 1}.get(target, meta["num_targets"])
    given = cfg.get("out_features", expected)
    if not isinstance(given, int) or isinstance(given, bool) or given != expected:
        fail(f"out_features={shown(given)} disagrees with meta and target {target!r} (which give {expected})")
    cfg["out_features"] = expected

    # what zoo train checks beyond each value
    dev = cfg["device"]
    import re

    if not re.fullmatch(r"auto|cpu|cuda(:\d{1,4})?", dev):
        fail(f"train.device={shown(dev)} must be auto, cpu, cuda or cuda:N")
    checked(lambda: check_monitor(cfg["monitor"], task), "train.")
    checked(lambda: _check_used(cfg, set(TRAIN_PARAMS), {}, None), "train.")
    if cfg["nesterov"] and cfg["momentum"] <= 0:
        fail("train.nesterov needs train.momentum > 0")
    return cfg


def _check_meta(meta: Any, fail: Callable[[str], NoReturn]) -> dict[str, Any]:
    """``meta`` of a run's config, checked and normalised (as :meth:`zoo.data.DataMeta.to_json` writes it)."""
    import math

    if not isinstance(meta, Mapping):
        fail(f"'meta' must be a table describing the data, not {shown(meta)}")
    task = meta.get("task")
    if task is None:
        fail("meta.task is missing")
    if task not in TASKS:
        fail(f"meta.task={shown(task)} must be one of {', '.join(TASKS)}")

    def count(key: str, value: Any, lo: int = 1, hi: int = MAX_SAMPLE_VALUES) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
            fail(f"meta.{key}={shown(value)} must be a whole number from {lo} to {hi}")
        return value

    shape = meta.get("input_shape")
    if not isinstance(shape, list) or not 1 <= len(shape) <= MAX_INPUT_RANK:
        fail(f"meta.input_shape={shown(shape)} must be a list of 1 to {MAX_INPUT_RANK} sizes")
    shape = [count("input_shape", d) for d in shape]
    if math.prod(shape) > MAX_SAMPLE_VALUES:
        fail(f"meta.input_shape={shown(shape)} makes {math.prod(shape)} values a sample, more than "
             f"{MAX_SAMPLE_VALUES}")
    classification = task in ("binary", "multiclass")
    num_classes = meta.get("num_classes")
    if classification:
        num_classes = count("num_classes", num_classes, 2)
    elif num_classes is not None:  # unused by other tasks
        num_classes = count("num_classes", num_classes, 0)
    if task == "binary" and num_classes != 2:
        fail(f"meta.num_classes={num_classes} but a binary task has 2 classes")
    num_targets = count("num_targets", meta.get("num_targets", 1))
    names = meta.get("class_names")
    if names is not None:
        if not isinstance(names, list) or not all(isinstance(n, (str, int)) and not isinstance(n, bool)
                                                  for n in names):
            fail(f"meta.class_names={shown(names)} must be a list of class names")
        if classification and len(names) != num_classes:
            fail(f"meta.class_names names {len(names)} classes but meta.num_classes is {num_classes}")
    return {"task": task, "input_shape": shape, "num_classes": num_classes, "num_targets": num_targets,
            "class_names": names}
