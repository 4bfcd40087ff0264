"""Resolving what to train: a recipe, or a dataset + model (+ loss), the other parts of a run, overrides,
checks.

Everything here is light (no torch): it runs before any data is loaded, so a bad name, value
or combination is refused before training starts, and again on every read of a run's files.

A run has one of each *part* (:data:`zoo.kinds.PARTS`: dataset, model, loss, optimizer,
schedule, procedure, strategy), chosen by name with its hyperparameters, plus training
settings (:mod:`zoo.settings`), callbacks and metrics. A config has one spelling everywhere
(see :mod:`zoo.configfile` for files)::

    recipe = "moons-mlp"                       # optional
    [dataset]   name = "moons"  noise = 0.3    # --set dataset.noise=0.3
    [model]     name = "mlp"    hidden = [32]  # --set model.hidden=32
    [optimizer] name = "sgd"    momentum = 0.9 # --optimizer sgd --set momentum=0.9
    [train]     epochs = 20     lr = 0.01      # --epochs 20, --set train.lr=0.01
    callbacks = [{name = "jsonl-log"}]         # --callback jsonl-log
    track = ["tensorboard"]                    # --track tensorboard (a tracker is a callback)

Internally (and in :func:`resolve`'s result) the config is flat: for each part ``PART``,
``PART_plugin`` and ``PART_params``; every training setting at the top level; ``callbacks``
(a list of ``{name, plugin, params}``); ``metrics`` (the names reported); ``task``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, NoReturn

from .errors import UsageError, did_you_mean
from .kinds import DATA_PARTS, KINDS, PARTS
from .registry import Entry, Registry, get_registry
from .settings import MOVED_DEFAULTS, MOVED_SETTINGS, TRAIN_PARAMS, USED_ONLY_WITH, check_device
from .spec import TARGETS, TASKS, shown

#: Figures where smaller is better when no metric declaration says (a run of an older zoo).
MINIMIZE = ("loss", "mse", "mae")


@dataclass(frozen=True)
class Combination:
    """The resolved parts of a run (each an :class:`~zoo.registry.Entry`)."""

    dataset: Entry
    model: Entry
    loss: Entry
    optimizer: Entry | None = None
    schedule: Entry | None = None
    procedure: Entry | None = None
    strategy: Entry | None = None

    def part(self, name: str) -> Entry:
        return getattr(self, name)


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



def _route_error(key: str, value: Any, names: Mapping[str, str | None], entries: Mapping[str, Entry], reg: Registry,
                 setting: bool = False) -> NoReturn:
    """A bare key no chosen part has: say which part would use it, or suggest close names. ``setting``: it was
    given as a training setting (a keyword argument or flag), so an unknown one is an unknown setting."""
    for part in PARTS:
        if part in entries and part not in DATA_PARTS:
            users = [e.name for e in reg.declared(part) if key in e.spec.params]
            users = list(dict.fromkeys(users))
            if users:
                who = (f"only the {users[0]} {part} uses {key}" if len(users) == 1
                       else f"only {', '.join(users[:-1])} and {users[-1]} use {key}")
                raise UsageError(f"{key}={_shown_value(value)} has no effect with {part}={names[part]}: {who}; "
                                 f"remove it or change {part}")
    if setting:
        known = set(TRAIN_PARAMS) | {p for part in ("optimizer", "schedule") if part in entries
                                     for p in entries[part].spec.params}
        raise UsageError(f"unknown training setting '{key}'{did_you_mean(key, known)}")
    known = {p for e in entries.values() for p in e.spec.params} | set(TRAIN_PARAMS) | set(PARTS)
    parts = ", ".join(f"{c} '{names[c]}'" for c in DATA_PARTS if names.get(c))
    raise UsageError(f"unknown parameter '{key}' for {parts}{did_you_mean(key, known)} (zoo info train lists "
                     "the training settings)")


def _shown_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


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
    callbacks: list[str] | None = None,
    track: str | list[str] | None = None,
    world_size: int | None = None,
    **train: Any,
) -> dict[str, Any]:
    """Return the fully resolved run config (a flat, JSON-able dict) or raise UsageError.

    ``sets`` maps ``part.param`` (``model.hidden``, ``optimizer.momentum``), ``train.setting``,
    ``callback.NAME.param`` or a bare name (a setting, a part's name, or a parameter only one
    chosen part has) to a value; ``train`` holds the same as keyword arguments (``epochs``,
    ``lr``, ``optimizer="sgd"``, ``momentum=0.9``). ``callbacks`` names registry callbacks;
    ``track`` too (trackers are callbacks: ``--track mlflow`` is ``--callback mlflow``), and
    ``track.KEY`` in ``sets`` sets ``KEY`` of every tracker enabled this way that declares it.
    Precedence: recipe < ``base`` (a config document, see :func:`zoo.configfile.load`) <
    explicit arguments; the same key given twice among the explicit ones is an error. ``note``
    receives one-line notes about choices made for the user (a default loss, an inferred task).
    ``world_size``: the processes the run will train on (default: what a launcher that started this
    process says, else 1); with several, a run that names no strategy gets a distributed one.
    """
    from .configfile import flatten

    reg = registry or get_registry()
    base = flatten(base or {}, "config file")
    recipe = recipe or base.get("recipe")
    rec_entry = reg.get("recipe", recipe) if recipe is not None else None
    rec = rec_entry.spec if rec_entry is not None else None
    rec_train = dict(rec.train) if rec is not None else {}

    explicit: list[tuple[str, Any, str]] = [(k, v, f"--{k} {v}") for k, v in
                                            (("dataset", dataset), ("model", model), ("loss", loss)) if v]
    explicit += [(k, v, f"--{k.replace('_', '-')} {v}") for k, v in train.items() if v is not None]
    explicit += [(k, v, f"--set {k}={v}") for k, v in (sets or {}).items()]

    # 1. which part: recipe < config file < explicit choices
    names: dict[str, str | None] = {p: KINDS[p].default for p in PARTS}
    plugins: dict[str, str | None] = {p: None for p in PARTS}
    from_recipe: set[str] = set()
    if rec is not None:
        for part in DATA_PARTS:
            names[part] = getattr(rec, part)
            from_recipe.add(part)
        for part in PARTS:
            if isinstance(rec_train.get(part), str):
                names[part] = rec_train.pop(part)
                from_recipe.add(part)
    for part in PARTS:
        if base.get(part):
            names[part], plugins[part] = base[part], base.get(f"{part}_plugin")
            from_recipe.discard(part)
    seen: dict[tuple[str, str], str] = {}

    def once(where: str, key: str, spelled: str) -> None:
        if (where, key) in seen:
            raise UsageError(f"{where}.{key} is given twice ({seen[(where, key)]} and {spelled}); give it once")
        seen[(where, key)] = spelled

    rest: list[tuple[str, Any, str]] = []
    for key, value, spelled in explicit:
        bare = key.removeprefix("train.")
        if bare in PARTS and isinstance(value, str):
            once("part", bare, spelled)
            names[bare], plugins[bare] = value, None
            from_recipe.discard(bare)
        else:
            rest.append((key, value, spelled))
    if rec is None and names["loss"] is None and not any(k == "loss" for k, _, _ in explicit):
        pass  # the task's default loss, once the task is known
    missing = [f"--{c}" for c in ("dataset", "model") if not names[c]]
    if missing:
        raise UsageError("give a recipe, or --dataset and --model (and optionally --loss) (missing: "
                         + ", ".join(missing) + ")")

    def lookup(part: str) -> Entry:
        name = names[part]
        if plugins[part] and ":" not in name:
            name = f"{plugins[part]}:{name}"
        prefer = rec_entry.plugin if part in from_recipe and rec_entry is not None else None
        return reg.get(part, name, prefer=prefer)

    entries = {p: lookup(p) for p in PARTS if names[p]}

    # 2. hyperparameters and settings: recipe < config file < explicit
    given: dict[str, dict[str, Any]] = {p: {} for p in PARTS}
    settings: dict[str, Any] = {}
    user_settings: set[str] = set()
    recipe_dropped: dict[str, tuple[str, Any]] = {}
    if rec is not None:
        for part, params in (("dataset", rec.dataset_params), ("model", rec.model_params), ("loss", rec.loss_params)):
            if names[part] == getattr(rec, part):
                given[part].update(params)
        for key, value in rec_train.items():  # settings, and the old spelling of part hyperparameters
            if key in TRAIN_PARAMS:
                settings[key] = value
                continue
            owner = next((p for p in ("optimizer", "schedule", "procedure", "strategy")
                          if p in entries and key in entries[p].spec.params), None)
            if owner is not None:
                given[owner][key] = value
            else:
                recipe_dropped[key] = (MOVED_SETTINGS.get(key, "train"), value)
    for part in PARTS:
        given[part].update(base.get(f"{part}_params") or {})
    for key, value in base.items():
        if key in TRAIN_PARAMS:
            settings[key] = value
            user_settings.add(key)
        elif key in MOVED_SETTINGS:  # a zoo 0.1 config file
            given[MOVED_SETTINGS[key]][key] = value
    callback_list: list[Any] = [_callback_item(c) for c in base.get("callbacks") or []]
    track = [track] if isinstance(track, str) else list(track or [])
    tracked = [_callback_item(c) for c in [*(base.get("track") or []), *track]]
    callback_list += tracked
    for name in callbacks or []:
        callback_list.append({"name": name, "params": {}})

    pending_loss: list[tuple[str, Any, str]] = []
    for key, value, spelled in rest:
        head, dot, tail = key.partition(".")
        if head == "callback" and dot:
            cb_name, dot2, pname = tail.rpartition(".")
            if not dot2 or not cb_name:
                raise UsageError(f"--set {key}: write callback.NAME.PARAM=VALUE")
            once(f"callback.{cb_name}", pname, spelled)
            match = [c for c in callback_list if isinstance(c, dict) and c.get("name") == cb_name]
            if not match:
                raise UsageError(f"{spelled}: callback '{cb_name}' is not enabled; add --callback {cb_name}")
            match[0].setdefault("params", {})[pname] = value
            continue
        if head == "track" and dot:
            _set_tracker_param(tracked, tail, value, spelled, reg, once)
            continue
        if dot:
            if head == "train":
                once("train", tail, spelled)
                settings[tail] = value
                user_settings.add(tail)
                continue
            if head not in PARTS:
                raise UsageError(f"unknown --set prefix '{head}' in '{key}'; use "
                                 + ", ".join(f"{p}." for p in PARTS) + ", train., callback.NAME. or track.")
            once(head, tail, spelled)
            given[head][tail] = value
            continue
        setting = not spelled.startswith("--set ")  # a keyword argument or flag: a setting or a training part's
        owners = [p for p in PARTS if p in entries and key in entries[p].spec.params
                  and (not setting or p not in DATA_PARTS)]
        if key in TRAIN_PARAMS:
            owners.append("train")
        if len(owners) > 1:
            raise UsageError(f"--set {key} is ambiguous: " + ", ".join(owners) + " all have it; write "
                             + " or ".join(f"{o}.{key}" for o in owners))
        if not owners:
            if names["loss"] is None and not setting:
                pending_loss.append((key, value, spelled))  # maybe a parameter of the default loss
                continue
            _route_error(key, value, names, entries, reg, setting)
        once(owners[0], key, spelled)
        if owners[0] == "train":
            settings[key] = value
            user_settings.add(key)
        else:
            given[owners[0]][key] = value

    # 3. the task, then the default loss, then the combination
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
                _route_error(key, value, names, entries, reg)
            once("loss", key, spelled)
            given["loss"][key] = value
    check_combination(entries["dataset"], entries["model"], entries["loss"], reg, task)
    if not entries["strategy"].spec.distributed and launched_processes(world_size) > 1:
        chosen = next((spelled for key, _, spelled in explicit if key.removeprefix("train.") == "strategy"), None)
        if chosen is not None or base.get("strategy"):
            raise UsageError(f"{chosen or 'the config file'}: strategy '{entries['strategy'].name}' runs one process, "
                             f"but {launched_processes(world_size)} were started; choose a distributed one "
                             "('zoo list strategies') or leave it out")
        entries["strategy"] = _distributed_default(reg)
        given["strategy"] = {}
    procedure = entries["procedure"].spec
    if task not in procedure.tasks:
        fits = sorted(e.name for e in reg.declared("procedure") if task in e.spec.tasks)
        hint = (f"; procedures that train it: {', '.join(fits)} (--procedure {fits[0]})" if fits
                else "; no installed procedure trains it")
        raise UsageError(f"procedure '{procedure.name}' cannot train dataset '{names['dataset']}': the dataset is a "
                         f"{task} task and the procedure trains {', '.join(procedure.tasks)}{hint}")
    for key, (part, value) in recipe_dropped.items():
        if note is not None:
            note(f"the recipe's {key}={value} does not apply with {part}={names.get(part)}; not used")

    cfg: dict[str, Any] = {"recipe": rec.name if rec else None}
    for part in PARTS:
        e = entries[part]
        cfg[part] = e.name
        cfg[f"{part}_plugin"] = e.plugin.name
        params = dataset_params if part == "dataset" else e.spec.resolve_params(given[part])
        cfg[f"{part}_params"] = _jsonable(params)
    cfg["task"] = task
    for key in settings:
        if key not in TRAIN_PARAMS:
            raise UsageError(f"unknown training setting '{key}'{did_you_mean(key, TRAIN_PARAMS)}")
    for key, p in TRAIN_PARAMS.items():
        cfg[key] = p.check(key, settings[key]) if key in settings else p.default
    cfg["metrics"] = list(cfg["metrics"])
    cfg["callbacks"] = _resolve_callbacks(callback_list, reg)
    _finish(cfg, reg, user_settings, note)
    return cfg


def _callback_item(item: Any) -> Any:
    """A callback as a config file or an argument names it (a name, or a table with its name and parameters)
    -> ``{"name", "plugin", "params"}``, so that ``--set callback.NAME.KEY`` overrides the file's value.
    Anything else is left as it is, for :func:`_resolve_callbacks` to refuse."""
    if isinstance(item, str):
        return {"name": item, "params": {}}
    if (not isinstance(item, Mapping) or not isinstance(item.get("name"), str)
            or not isinstance(item.get("params") or {}, Mapping)):
        return item
    params = {**(item.get("params") or {}), **{k: v for k, v in item.items() if k not in ("name", "plugin", "params")}}
    return {"name": item["name"], **({"plugin": item["plugin"]} if item.get("plugin") else {}), "params": params}


def _set_tracker_param(tracked: list[Any], key: str, value: Any, spelled: str, reg: Registry,
                       once: Callable[[str, str, str], None]) -> None:
    """``--set track.KEY=VALUE``: ``KEY`` of every tracker enabled with ``--track`` (or a config file's ``track``
    list) that declares it; an error when none is enabled or none has it."""
    if not key or "." in key:
        raise UsageError(f"{spelled}: write track.KEY=VALUE (or callback.NAME.KEY=VALUE)")
    items = [c for c in tracked if isinstance(c, dict)]
    if not items:
        raise UsageError(f"{spelled}: no tracker is enabled with --track; add --track NAME ('zoo list callbacks'), or "
                         f"write callback.NAME.{key} for one enabled with --callback")
    declared: dict[str, list[str]] = {}
    users = []
    for item in items:
        name = item["name"] if not item.get("plugin") else f"{item['plugin']}:{item['name']}"
        params = reg.get("callback", name).spec.params
        declared[item["name"]] = list(params)
        if key in params:
            users.append(item)
    if not users:
        known = {p for ps in declared.values() for p in ps}
        listed = "; ".join(f"{n}: {', '.join(ps) or 'none'}" for n, ps in declared.items())
        raise UsageError(f"{spelled}: no enabled tracker has a parameter '{key}'{did_you_mean(key, known)} "
                         f"(their parameters: {listed})")
    for item in users:
        once(f"callback.{item['name']}", key, spelled)
        item.setdefault("params", {})[key] = value


def _resolve_callbacks(items: list[Any], reg: Registry) -> list[dict[str, Any]]:
    out, names = [], set()
    for item in items:
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise UsageError(f"a callback is a name or a table with its name, not {shown(item)}")
        params = dict(item.get("params") or {})
        params.update({k: v for k, v in item.items() if k not in ("name", "plugin", "params")})
        name = item["name"] if not item.get("plugin") else f"{item['plugin']}:{item['name']}"
        entry = reg.get("callback", name)
        if entry.name in names:
            raise UsageError(f"callback '{entry.name}' is enabled twice; give it once")
        names.add(entry.name)
        try:
            resolved = entry.spec.resolve_params(params)
        except UsageError as exc:  # name the callback whose value it is
            text = str(exc)
            raise UsageError(text if text.startswith("callback '") else f"callback '{entry.name}': {text}") from None
        out.append({"name": entry.name, "plugin": entry.plugin.name, "params": _jsonable(resolved)})
    return out


def _finish(cfg: dict[str, Any], reg: Registry, user: set[str], note: Callable[[str], None] | None) -> None:
    """Checks across values: the metrics reported, the monitored figure, the device, settings used only with
    a choice of another, the schedule's warm-up."""
    task = cfg["task"]
    cfg["metrics"] = metric_names(task, cfg.get("metrics") or (), reg)
    check_device(cfg["device"])
    check_monitor(cfg["monitor"], task, cfg["metrics"])
    for key, (on, values, why) in USED_ONLY_WITH.items():
        if cfg[key] == TRAIN_PARAMS[key].default or cfg[on] in values:
            continue
        shown_on = f"{on}={str(cfg[on]).lower() if isinstance(cfg[on], bool) else cfg[on]}"
        if key in user:
            raise UsageError(f"{key}={cfg[key]} has no effect with {shown_on}: {why}; remove it or change {on}")
        cfg[key] = TRAIN_PARAMS[key].default
        if note is not None:
            note(f"{key} does not apply with {shown_on} ({why}); not used")
    if cfg.get("init_head", "strict") != "strict" and not cfg.get("init"):
        raise UsageError(f"init_head={cfg['init_head']} has no effect without init: it says how the weights of "
                         "the run given as init are loaded; add --init RUN or remove it")
    if cfg["warmup_epochs"] and not reg.get("schedule", f"{cfg['schedule_plugin']}:{cfg['schedule']}").spec.warmup:
        raise UsageError(f"warmup_epochs={cfg['warmup_epochs']} has no effect with schedule={cfg['schedule']}: it "
                         "does not apply a warm-up; remove it or choose another schedule")


def metric_names(task: str, extra: Any, reg: Registry) -> list[str]:
    """The metrics a run of ``task`` reports: the task's defaults (in declaration order; the first is its
    headline figure), then the ``extra`` names asked for."""
    names = [e.name for e in reg.declared("metric") if task in e.spec.default_for]
    for name in extra:
        entry = reg.get("metric", str(name))
        if task not in entry.spec.tasks:
            raise UsageError(f"metric '{entry.name}' is not defined for a {task} task (it serves "
                             f"{', '.join(entry.spec.tasks)})")
        if entry.name not in names:
            names.append(entry.name)
    return names


def check_monitor(monitor: str, task: str, metrics: list[str] | None = None) -> None:
    valid = ["val_loss"] + [f"val_{m}" for m in (metrics if metrics is not None
                                                  else metric_names(task, (), get_registry()))]
    if monitor not in valid:
        raise UsageError(f"monitor '{monitor}' is not reported for a {task} task{did_you_mean(monitor, valid)} "
                         f"(choose from {', '.join(valid)})")


def minimize(monitor: str, registry: Registry | None = None) -> bool:
    """Whether a smaller value of the monitored figure (``val_loss``, ``val_<metric>``) is better."""
    name = monitor.removeprefix("val_")
    if name == "loss":
        return True
    reg = registry or get_registry()
    entries = [e for e in reg.entries("metric") if e.name == name]
    if len(entries) == 1:
        return not entries[0].spec.higher_is_better
    return name in MINIMIZE


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}


def entries_for(cfg: Mapping[str, Any], registry: Registry | None = None) -> Combination:
    """Look the parts of a resolved config up again (preferring the recorded plugin); a config of an older
    zoo that names no optimizer, schedule, procedure or strategy gets the defaults."""
    reg = registry or get_registry()
    out = {}
    for part in PARTS:
        name, plugin = cfg.get(part) or KINDS[part].default, cfg.get(f"{part}_plugin")
        try:
            out[part] = reg.get(part, f"{plugin}:{name}" if plugin else name)
        except UsageError:
            out[part] = reg.get(part, name)
    return Combination(**out)


def launched_processes(world_size: int | None = None) -> int:
    """The processes a run trains on: ``world_size`` if given, else the launcher's ``WORLD_SIZE``, else 1."""
    if world_size is not None:
        return world_size
    from .launch import launch_env

    env = launch_env()
    return env.world_size if env is not None else 1


def _distributed_default(reg: Registry) -> Entry:
    from .launch import DISTRIBUTED_DEFAULT

    try:
        entry = reg.get("strategy", DISTRIBUTED_DEFAULT)
    except UsageError:
        entry = None
    if entry is None or not entry.spec.distributed:
        raise UsageError("several processes were started but no installed strategy runs on several ('zoo list "
                         "strategies'); install one or start one process")
    return entry


def strategy_for_launch(cfg: Mapping[str, Any], registry: Registry | None = None) -> dict[str, Any]:
    """The strategy keys a saved run's config needs to continue on the processes that run it now: a run
    trained by one process and resumed by several gets the distributed default; otherwise nothing changes
    (a distributed strategy runs on one process too)."""
    reg = registry or get_registry()
    if launched_processes() <= 1 or entries_for(cfg, reg).strategy.spec.distributed:
        return {}
    entry = _distributed_default(reg)
    return {"strategy": entry.name, "strategy_plugin": entry.plugin.name, "strategy_params": {}}


def run_task(cfg: Mapping[str, Any]) -> str:
    """The task of a resolved config (older configs record it only in ``meta``)."""
    return cfg.get("task") or cfg["meta"]["task"]


# -- a run's config, read back -----------------------------------------------------------------

#: The most values one sample may have (``meta.input_shape``), and the most dimensions.
MAX_SAMPLE_VALUES = 2**31 - 1
MAX_INPUT_RANK = 8


def check_run_config(cfg: dict[str, Any], where: str, registry: Registry | None = None) -> dict[str, Any]:
    """Check a run's flat config read back from its ``config.json`` as ``zoo train`` checks what it is given.

    The file may have been edited by anyone, so nothing in it is trusted: every part must be an
    installed component and its hyperparameters pass their declared :class:`~zoo.spec.Param`
    checks, every training setting passes its check (a missing one takes its default, as older
    runs lack newer settings), the callbacks and metrics are installed, and the data metadata
    (``meta``), ``target`` and ``out_features`` are well formed and agree with each other and with
    the parts. Returns the config with values coerced; a problem is a UsageError naming ``where``
    (the file) and the key.
    """
    reg = registry or get_registry()

    def fail(message: str) -> NoReturn:
        raise UsageError(f"{where}: {message}")

    def checked(fn: Callable[[], Any], prefix: str = "") -> Any:
        try:
            return fn()
        except UsageError as exc:
            raise UsageError(f"{where}: {prefix}{exc}") from None

    cfg = dict(cfg)
    moved: dict[str, dict[str, Any]] = {}
    for key, part in MOVED_SETTINGS.items():  # a zoo 0.1 config.json: settings that are now part parameters
        if key in cfg:
            moved.setdefault(part, {})[key] = cfg.pop(key)
    for part in PARTS:
        name, plugin = cfg.get(part, KINDS[part].default), cfg.get(f"{part}_plugin")
        if not isinstance(name, str) or not name.strip():
            fail(f"'{part}' must name a {part}, not {shown(name)}")
        cfg[part] = name
        if plugin is not None and not isinstance(plugin, str):
            fail(f"{part}.plugin must name a plugin, not {shown(plugin)}")
        if not isinstance(cfg.get(f"{part}_params") or {}, Mapping):
            fail(f"the {part} hyperparameters must be a table, not {shown(cfg.get(f'{part}_params'))}")
    if cfg.get("recipe") is not None and not isinstance(cfg["recipe"], str):
        fail(f"'recipe' must be a name, not {shown(cfg['recipe'])}")
    combo = checked(lambda: entries_for(cfg, reg))

    for part in PARTS:
        spec = combo.part(part).spec
        given = dict(cfg.get(f"{part}_params") or {})
        for key, value in moved.get(part, {}).items():  # used if the part takes it; else it must be 0.1's default
            if key in spec.params:
                given.setdefault(key, value)
            elif value != MOVED_DEFAULTS[key]:
                fail(f"train.{key}={_shown_value(value)} has no effect with {part}={spec.name}; remove it or change "
                     f"{part}")
        params = {k: p.default for k, p in spec.params.items()}
        for key, value in given.items():
            if key not in spec.params:
                known = ", ".join(sorted(spec.params)) or "none"
                fail(f"{part} '{spec.name}' has no parameter {shown(key)}"
                     f"{did_you_mean(str(key), spec.params) if len(str(key)) <= 80 else ''} (its parameters: {known})")
            params[key] = checked(lambda: spec.params[key].check(f"{part}.{key}", value))
        missing = [k for k, p in spec.params.items() if p.required and params[k] is None]
        if missing:
            fail(f"{part} '{spec.name}' needs {', '.join(f'{part}.{k}' for k in missing)}, which the file lacks")
        cfg[f"{part}_params"] = _jsonable(params)
        cfg[f"{part}_plugin"] = combo.part(part).plugin.name

    for key, p in TRAIN_PARAMS.items():
        cfg[key] = checked(lambda: p.check(f"train.{key}", cfg[key])) if key in cfg else p.default
    callbacks = cfg.get("callbacks") or []
    if not isinstance(callbacks, list):
        fail(f"'callbacks' must be a list, not {shown(callbacks)}")
    tracked = cfg.pop("track", None) or []  # a hand-written file's trackers: callbacks, as a run records them
    callbacks = [*callbacks, *([tracked] if isinstance(tracked, str) else tracked)]
    cfg["callbacks"] = checked(lambda: _resolve_callbacks(callbacks, reg))

    meta = _check_meta(cfg.get("meta"), fail)
    task = meta["task"]
    cfg["meta"] = meta
    if cfg.get("task") is not None and cfg["task"] != task:
        fail(f"task={shown(cfg['task'])} disagrees with meta.task={task!r}")
    cfg["task"] = task
    if task not in combo.dataset.spec.tasks:
        fail(f"meta.task={task!r} is not a task of dataset '{combo.dataset.name}' "
             f"({', '.join(combo.dataset.spec.tasks)})")
    checked(lambda: check_combination(combo.dataset, combo.model, combo.loss, reg, task))
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
    import re

    if not re.fullmatch(r"auto|cpu|cuda(:\d{1,4})?", cfg["device"]):
        fail(f"train.device={shown(cfg['device'])} must be auto, cpu, cuda or cuda:N")
    checked(lambda: _finish(cfg, reg, set(TRAIN_PARAMS), None), "train.")
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
