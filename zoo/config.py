"""Resolving what to train: a recipe or dataset + model + loss, overrides, checks.

Everything here is light (no torch): it runs before any data is loaded, so a bad
name, value or combination is refused before training starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

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
    "lr": Param("float", 1e-3, "learning rate", min=0.0),
    "optimizer": Param("str", "adam", "optimizer", choices=OPTIMIZERS),
    "momentum": Param("float", 0.0, "momentum (sgd, rmsprop)", min=0.0),
    "nesterov": Param("bool", False, "Nesterov momentum (sgd; needs momentum > 0)"),
    "weight_decay": Param("float", 0.0, "L2 penalty (decoupled for adamw)", min=0.0),
    "l1": Param("float", 0.0, "L1 penalty on the weights, added to the loss", min=0.0),
    "clip_grad": Param("float", 0.0, "clip the gradient norm to this value (0: off)", min=0.0),
    "schedule": Param("str", "none", "learning-rate schedule", choices=SCHEDULES),
    "step_size": Param("int", 10, "step schedule: epochs between learning-rate drops", min=1),
    "gamma": Param("float", 0.1, "step and plateau schedules: factor of each drop", min=0.0),
    "plateau_patience": Param("int", 5, "plateau schedule: epochs without improvement before a drop", min=1),
    "warmup_epochs": Param("float", 0.0, "linear learning-rate warm-up over this many epochs", min=0.0),
    "monitor": Param("str", "val_loss", "validation figure for early stopping, best weights and plateau: "
                     "val_loss or val_<metric>"),
    "patience": Param("int", 0, "early stopping: epochs without improvement before stopping (0: off)", min=0),
    "min_delta": Param("float", 0.0, "early stopping: the smallest change that counts as improvement", min=0.0),
    "scale_targets": Param("bool", True, "regression: the model learns standardised targets and its output "
                           "layer maps back to the data's units"),
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
    "seed": Param("int", 0, "seed for data splits, initialisation and shuffling"),
    "device": Param("str", "auto", "auto, cpu, cuda or cuda:N"),
}

#: Keys a run's config.json holds beyond the settings; accepted (and recomputed) when a
#: config.json is given back with --config.
DERIVED_KEYS = ("dataset_plugin", "model_plugin", "loss_plugin", "meta", "target", "out_features", "zoo_version")
CONFIG_KEYS = ("recipe", "dataset", "model", "loss", "dataset_params", "model_params", "loss_params", *TRAIN_PARAMS)
MINIMIZE = ("loss", "mse", "mae")


COMPONENTS = ("dataset", "model", "loss")


@dataclass(frozen=True)
class Combination:
    """The three resolved components of a run."""

    dataset: Entry
    model: Entry
    loss: Entry

    @property
    def out_features(self) -> str:
        return self.loss.spec.target


def check_combination(dataset: Entry, model: Entry, loss: Entry, registry: Registry | None = None) -> None:
    """Refuse a combination that cannot train, naming both parts and the reason."""
    ds, m, lo = dataset.spec, model.spec, loss.spec
    task = ds.tasks[0]
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


def load_config_file(path: str) -> dict[str, Any]:
    """Read a TOML, YAML or JSON config file; unknown keys and bad shapes are errors naming the key."""
    import json
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        raise UsageError(f"config file {p} does not exist")
    text = p.read_text(encoding="utf-8")
    suffix = p.suffix.lower()
    try:
        if suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        elif suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        elif suffix == ".json":
            data = json.loads(text)
        else:
            raise UsageError(f"config file {p} must end in .toml, .yaml, .yml or .json")
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - each parser has its own error type
        raise UsageError(f"config file {p} cannot be parsed: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise UsageError(f"config file {p} must hold a table of settings, not {type(data).__name__}")
    for key, value in data.items():
        if key not in CONFIG_KEYS and key not in DERIVED_KEYS:
            raise UsageError(f"config file {p}: unknown key '{key}'{did_you_mean(key, CONFIG_KEYS)}")
        if key.endswith("_params") and not isinstance(value, dict):
            raise UsageError(f"config file {p}: '{key}' must be a table of hyperparameters")
        if key in ("recipe", "dataset", "model", "loss") and value is not None and not isinstance(value, str):
            raise UsageError(f"config file {p}: '{key}' must be a name, not {value!r}")
    return {k: v for k, v in data.items() if k not in DERIVED_KEYS}


def parse_sets(pairs: list[str] | tuple[str, ...]) -> dict[str, str]:
    """``["model.hidden=64,64", "lr=0.1"]`` -> ``{"model.hidden": "64,64", "lr": "0.1"}``."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set expects KEY=VALUE, got '{pair}'")
        out[key.strip()] = value
    return out


def resolve(
    recipe: str | None = None,
    *,
    dataset: str | None = None,
    model: str | None = None,
    loss: str | None = None,
    sets: Mapping[str, Any] | None = None,
    registry: Registry | None = None,
    base: Mapping[str, Any] | None = None,
    **train: Any,
) -> dict[str, Any]:
    """Return the fully resolved run config (a JSON-able dict) or raise UsageError.

    ``sets`` maps ``component.param`` (or a bare ``param`` that only one component
    has) to a value; ``train`` holds training settings (``epochs``, ``lr``, ...).
    Explicit components override the recipe's. ``base`` is a config file's content
    (see :func:`load_config_file`): recipe < base < explicit arguments.
    """
    reg = registry or get_registry()
    base = dict(base or {})
    recipe = recipe or base.get("recipe")
    dataset, model, loss = dataset or base.get("dataset"), model or base.get("model"), loss or base.get("loss")
    rec = None
    if recipe is not None:
        rec = reg.get("recipe", recipe).spec
    names = {
        "dataset": dataset or (rec.dataset if rec else None),
        "model": model or (rec.model if rec else None),
        "loss": loss or (rec.loss if rec else None),
    }
    missing = [k for k, v in names.items() if not v]
    if missing:
        raise UsageError(
            "give a recipe or all of --dataset, --model and --loss (missing: "
            + ", ".join(f"--{k}" for k in missing) + ")"
        )
    entries = {k: reg.get(k, v) for k, v in names.items()}
    check_combination(entries["dataset"], entries["model"], entries["loss"], reg)

    # recipe defaults apply only to the component the recipe names
    given: dict[str, dict[str, Any]] = {k: {} for k in COMPONENTS}
    settings: dict[str, Any] = {}
    if rec is not None:
        for comp, params in (("dataset", rec.dataset_params), ("model", rec.model_params), ("loss", rec.loss_params)):
            if entries[comp].spec.name == getattr(rec, comp):
                given[comp].update(params)
        settings.update(rec.train)
    for comp in COMPONENTS:
        if base.get(f"{comp}_params"):
            given[comp].update(base[f"{comp}_params"])
    settings.update({k: v for k, v in base.items() if k in TRAIN_PARAMS})
    for key, value in (sets or {}).items():
        comp, dot, pname = key.partition(".")
        if dot:
            if comp == "train":
                settings[pname] = value
                continue
            if comp not in COMPONENTS:
                raise UsageError(f"unknown --set prefix '{comp}' in '{key}'; use dataset., model., loss. or train.")
            given[comp][pname] = value
            continue
        owners = [c for c in COMPONENTS if key in entries[c].spec.params]
        if key in TRAIN_PARAMS:
            owners.append("train")
        if len(owners) > 1:
            raise UsageError(
                f"--set {key} is ambiguous: " + ", ".join(owners) + " all have it; write "
                + " or ".join(f"{o}.{key}" for o in owners)
            )
        if not owners:
            known = {p for c in COMPONENTS for p in entries[c].spec.params} | set(TRAIN_PARAMS)
            raise UsageError(
                f"unknown parameter '{key}' for dataset '{names['dataset']}', model '{names['model']}' "
                f"and loss '{names['loss']}'{did_you_mean(key, known)}"
            )
        if owners[0] == "train":
            settings[key] = value
        else:
            given[owners[0]][key] = value
    settings.update({k: v for k, v in train.items() if v is not None})

    cfg: dict[str, Any] = {"recipe": rec.name if rec else None}
    for comp in COMPONENTS:
        e = entries[comp]
        cfg[comp] = e.name
        cfg[f"{comp}_plugin"] = e.plugin.name
        cfg[f"{comp}_params"] = _jsonable(e.spec.resolve_params(given[comp]))
    for key, value in settings.items():
        if key not in TRAIN_PARAMS:
            raise UsageError(f"unknown training setting '{key}'{did_you_mean(key, TRAIN_PARAMS)}")
    for key, p in TRAIN_PARAMS.items():
        cfg[key] = p.check(key, settings[key]) if key in settings else p.default
    check_device(cfg["device"])
    check_monitor(cfg["monitor"], entries["dataset"].spec.tasks[0])
    if cfg["nesterov"] and (cfg["optimizer"] != "sgd" or cfg["momentum"] <= 0):
        raise UsageError("nesterov needs --optimizer sgd and momentum > 0")
    return cfg


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
