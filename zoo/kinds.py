"""The one table of component kinds: a new kind is one row here.

Every place that lists kinds (the hook specifications, the registry, ``zoo list`` and
``zoo plugins``, the contract suite, config resolution) reads this table. Light: no torch.

- ``part``: a run has exactly one of this kind, chosen by name (``--dataset``,
  ``--optimizer``, ...) with its hyperparameters in a config section of the same name;
  ``default`` names the one a run gets when nothing chooses (a name, never a plugin).
- Callbacks and metrics are lists (``callbacks``, ``metrics``); recipes name parts.
"""

from __future__ import annotations

from dataclasses import dataclass

from .spec import (CallbackSpec, DatasetSpec, LossSpec, MetricSpec, ModelSpec, OptimizerSpec, ProcedureSpec,
                   RecipeSpec, ScheduleSpec, StrategySpec)


@dataclass(frozen=True)
class Kind:
    name: str
    plural: str
    spec: type
    hook: str
    doc: str
    part: bool = False
    default: str | None = None


KIND_TABLE: tuple[Kind, ...] = (
    Kind("dataset", "datasets", DatasetSpec, "zoo_datasets", "data sets a run trains and is scored on", part=True),
    Kind("model", "models", ModelSpec, "zoo_models", "network architectures", part=True),
    Kind("loss", "losses", LossSpec, "zoo_losses", "training objectives", part=True),
    Kind("optimizer", "optimizers", OptimizerSpec, "zoo_optimizers", "optimizers over a model's parameters",
         part=True, default="adam"),
    Kind("schedule", "schedules", ScheduleSpec, "zoo_schedules", "learning-rate schedules", part=True,
         default="none"),
    Kind("procedure", "procedures", ProcedureSpec, "zoo_procedures", "training procedures: what one step is",
         part=True, default="supervised"),
    Kind("strategy", "strategies", StrategySpec, "zoo_strategies", "execution strategies: where the step runs",
         part=True, default="single"),
    Kind("metric", "metrics", MetricSpec, "zoo_metrics", "figures reported for a split"),
    Kind("callback", "callbacks", CallbackSpec, "zoo_callbacks", "observers of the training loop"),
    Kind("recipe", "recipes", RecipeSpec, "zoo_recipes", "named combinations with their defaults"),
)

KINDS: dict[str, Kind] = {k.name: k for k in KIND_TABLE}
PLURAL: dict[str, str] = {k.name: k.plural for k in KIND_TABLE}
HOOKS: dict[str, str] = {k.name: k.hook for k in KIND_TABLE}
#: The parts of a run, in the order configs print them.
PARTS: tuple[str, ...] = tuple(k.name for k in KIND_TABLE if k.part)
#: The parts a recipe or the user names explicitly (the others default).
DATA_PARTS: tuple[str, ...] = ("dataset", "model", "loss")
#: What ``zoo list`` accepts for a kind: singular or plural.
KIND_ARGS: dict[str, str] = {**{k.plural: k.name for k in KIND_TABLE}, **{k.name: k.name for k in KIND_TABLE}}
