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

#: Training settings, validated like component hyperparameters.
TRAIN_PARAMS: dict[str, Param] = {
    "epochs": Param("int", 20, "number of passes over the training split", min=1),
    "batch_size": Param("int", 32, "samples per optimizer step", min=1),
    "lr": Param("float", 1e-3, "learning rate", min=0.0),
    "optimizer": Param("str", "adam", "optimizer", choices=OPTIMIZERS),
    "momentum": Param("float", 0.0, "momentum (sgd, rmsprop)", min=0.0),
    "weight_decay": Param("float", 0.0, "L2 penalty (decoupled for adamw)", min=0.0),
    "schedule": Param("str", "none", "learning-rate schedule over the run", choices=("none", "cosine", "step")),
    "scale_targets": Param("bool", True, "regression: the model learns standardised targets and its output "
                           "layer maps back to the data's units"),
    "seed": Param("int", 0, "seed for data splits, initialisation and shuffling"),
    "device": Param("str", "auto", "auto, cpu, cuda or cuda:N"),
}

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
    if task not in lo.tasks:
        fits = [e.name for e in (registry.entries("loss") if registry else []) if task in e.spec.tasks]
        hint = f" (losses for {task}: {', '.join(sorted(set(fits)))})" if fits else ""
        raise UsageError(
            f"loss '{lo.name}' does not fit dataset '{ds.name}': the dataset is a {task} task and the "
            f"loss is for {', '.join(lo.tasks)}{hint}"
        )


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
    **train: Any,
) -> dict[str, Any]:
    """Return the fully resolved run config (a JSON-able dict) or raise UsageError.

    ``sets`` maps ``component.param`` (or a bare ``param`` that only one component
    has) to a value; ``train`` holds training settings (``epochs``, ``lr``, ...).
    Explicit components override the recipe's.
    """
    reg = registry or get_registry()
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
    return cfg


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
