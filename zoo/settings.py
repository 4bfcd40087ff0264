"""Training settings: declared once, as :class:`zoo.spec.Param`, and used everywhere from that one
declaration: validated by ``zoo train`` and on every read of a run, listed by ``zoo info train``,
offered as ``zoo train`` flags (those marked ``FLAGS``), and read by the engine as the typed
:class:`Settings` generated from them (``settings.lr``, not ``cfg["lr"]``). Light: no torch.

The optimizer and the learning-rate schedule are parts of a run (kinds of :mod:`zoo.kinds`),
chosen by name with their own hyperparameters (``--optimizer sgd --set momentum=0.9``).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Mapping

from .errors import UsageError
from .spec import Param

#: Upper bounds of the settings where a huge value costs time, memory or processes (a run's
#: files may be edited by anyone): far above any real run, low enough to refuse a typo early.
MAX_EPOCHS = 1_000_000
MAX_BATCH = 100_000_000
MAX_THREADS = 1024
MAX_SECONDS = 1e9

TRAIN_PARAMS: dict[str, Param] = {
    "epochs": Param("int", 20, "total passes over the training split", min=1, max=MAX_EPOCHS),
    "batch_size": Param("int", 32, "samples per optimizer step", min=1, max=MAX_BATCH),
    "lr": Param("float", 1e-3, "learning rate", min=0.0, min_exclusive=True),
    "l1": Param("float", 0.0, "L1 penalty on the weights, added to the loss", min=0.0),
    "clip_grad": Param("float", 0.0, "clip the gradient norm to this value (0: off)", min=0.0),
    "warmup_epochs": Param("float", 0.0, "linear learning-rate warm-up over this many epochs (schedules that "
                           "support it)", min=0.0, max=MAX_EPOCHS),
    "monitor": Param("str", "val_loss", "validation figure for early stopping, best weights and plateau: "
                     "val_loss or val_<metric>"),
    "patience": Param("int", 0, "early stopping: epochs without improvement before stopping (0: off)", min=0,
                      max=MAX_EPOCHS),
    "min_delta": Param("float", 0.0, "the smallest change of the monitored figure that counts as an "
                       "improvement (early stopping, best weights)", min=0.0),
    "metrics": Param("str-list", (), "metrics to report besides the task's defaults (zoo list metrics)"),
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
    "init": Param("str", "", "fine-tuning: start from the weights of this run directory (strict: every key and "
                  "shape must match; the preprocessing is fitted on this run's data; '': a fresh start)"),
    "init_head": Param("str", "strict", "with init: strict, or reset (the output layer, whose shape follows the "
                       "number of classes or targets, keeps its fresh initialisation)",
                       choices=("strict", "reset")),
    "freeze": Param("str-list", (), "parameters whose names match these glob patterns (comma-separated, e.g. "
                    "net.0.*,net.1.*) are not trained: left out of the optimizer, kept bit-identical (batch-norm "
                    "running statistics still follow the data)"),
}

#: Keys a run's config holds beyond what a user sets; accepted (and recomputed) when a
#: run's config.json is given back with --config.
DERIVED_KEYS = ("task", "meta", "target", "out_features", "zoo_version", "distributed", "init_source")
#: Old spellings: training settings of zoo 0.1 that are now hyperparameters of a part.
MOVED_SETTINGS = {"momentum": "optimizer", "nesterov": "optimizer", "weight_decay": "optimizer",
                  "step_size": "schedule", "gamma": "schedule", "plateau_patience": "schedule"}
#: Their defaults in zoo 0.1 (a 0.1 config.json records every setting, used or not).
MOVED_DEFAULTS = {"momentum": 0.0, "nesterov": False, "weight_decay": 0.0, "step_size": 10, "gamma": 0.1,
                  "plateau_patience": 5}
#: Settings offered as ``zoo train`` flags (``--batch-size``); every setting also takes ``--set``.
FLAGS = ("epochs", "batch_size", "lr", "patience", "monitor", "seed", "device", "init", "init_head", "freeze")

#: Settings used only with a choice of another: (the setting, the values that use it, why).
USED_ONLY_WITH: dict[str, tuple[str, tuple, str]] = {
    "compile_backend": ("compile", (True,), "compile_backend is used only with compile=true"),
}

_PY_TYPES = {"int": int, "float": float, "bool": bool, "str": str, "int-list": tuple, "float-list": tuple,
             "str-list": tuple}


def _settings_class() -> type:
    fields = [(key, _PY_TYPES[p.type], dataclasses.field(default=p.default)) for key, p in TRAIN_PARAMS.items()]
    cls = dataclasses.make_dataclass("Settings", fields, frozen=True)
    cls.__module__ = __name__
    cls.__doc__ = ("The training settings of a run, typed: one attribute per setting of "
                   "``zoo.settings.TRAIN_PARAMS`` (generated from it).")
    return cls


Settings = _settings_class()


def settings_of(cfg: Mapping[str, Any]) -> Any:
    """The typed :data:`Settings` of a resolved (flat) config; missing settings take their defaults."""
    return Settings(**{key: (tuple(cfg[key]) if isinstance(cfg.get(key), list) else cfg[key])
                       for key in TRAIN_PARAMS if key in cfg})


def check_device(device: str) -> None:
    if not isinstance(device, str) or not re.fullmatch(r"auto|cpu|cuda(:\d{1,4})?", device):
        raise UsageError(f"--device must be auto, cpu, cuda or cuda:N, not '{device}'")
