"""Config documents: what ``--config`` reads, ``--print-config`` prints and a run's ``config.json`` holds.

One structure everywhere, the same keys ``--set`` takes::

    recipe = "moons-mlp"            # optional: the recipe the rest overrides

    [dataset]                       # --dataset moons, --set dataset.noise=0.3
    name = "moons"
    noise = 0.3

    [model]                         # --model mlp, --set model.hidden=32,32
    name = "mlp"
    hidden = [32, 32]

    [loss]                          # --loss cross-entropy
    name = "cross-entropy"

    [train]                         # --epochs 20, --set train.lr=0.01 (or lr=0.01)
    epochs = 20
    lr = 0.01

``callbacks = [{name = "jsonl-log", file = "log.jsonl"}]`` enables callbacks (``--callback``);
``track = ["tensorboard", {name = "mlflow", uri = "http://host:5000"}]`` enables trackers
(``--track``), which are callbacks: a run records both as its ``callbacks``.

A section may also name the component's ``plugin`` (``--print-config`` and
``config.json`` do, so a run repeats with the same components even if another plugin
adds a clashing name). Files may use the flat spelling too: ``dataset = "moons"``,
``dataset_params = {...}`` (as recipes do) and training settings at the top level.
``task``, ``meta``, ``target``, ``out_features`` and ``zoo_version`` (written by a run)
are accepted and recomputed. TOML, YAML and JSON hold the same document.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

from .errors import UsageError, did_you_mean
from .kinds import PARTS
from .spec import SHOWN_CHARS, shown

COMPONENTS = PARTS  # every part of a run has a section: [dataset], [model], ..., [optimizer], [schedule]
FORMATS = ("toml", "yaml", "json")
SUFFIXES = {".toml": "toml", ".yaml": "yaml", ".yml": "yaml", ".json": "json"}


def _train_keys() -> tuple[str, ...]:
    from .settings import TRAIN_PARAMS

    return tuple(TRAIN_PARAMS)


def _moved() -> tuple[str, ...]:
    """zoo 0.1's training settings that are now hyperparameters of the optimizer or the schedule."""
    from .settings import MOVED_SETTINGS

    return tuple(MOVED_SETTINGS)


def _derived() -> tuple[str, ...]:
    from .settings import DERIVED_KEYS

    return DERIVED_KEYS


def top_level_keys() -> tuple[str, ...]:
    """Every key a config document may hold at its top level."""
    flat = ("recipe", *COMPONENTS, *(f"{c}_params" for c in COMPONENTS), *(f"{c}_plugin" for c in COMPONENTS))
    return (*flat, "train", "callbacks", "track", *_train_keys(), *_derived())


def _key(key: Any) -> str:
    """A key of a file for an error message: as it is, or shortened when it is long (or not text)."""
    return key if isinstance(key, str) and len(key) <= SHOWN_CHARS else shown(key)


def _did_you_mean(key: Any, choices) -> str:
    return did_you_mean(key, choices) if isinstance(key, str) and len(key) <= SHOWN_CHARS else ""


def flatten(doc: Mapping[str, Any], where: str = "config") -> dict[str, Any]:
    """A config document (sections or flat keys) -> the flat form :func:`zoo.config.resolve` merges.

    Derived keys are kept (a caller that does not want them ignores them). A setting given
    twice (a section and a flat key, or a top-level setting and ``[train]``) is an error.
    """
    if not isinstance(doc, Mapping):
        raise UsageError(f"{where} must hold a table of settings, not {type(doc).__name__}")
    train_keys, derived = _train_keys(), _derived()
    out: dict[str, Any] = {}

    def put(key: str, value: Any, spelled: str) -> None:
        if key in out:
            raise UsageError(f"{where}: {spelled} is given twice; give it once")
        out[key] = value

    for key, value in doc.items():
        if not isinstance(key, str):
            raise UsageError(f"{where}: the key {shown(key)} is not a name")
        if key in COMPONENTS:
            if value is None or isinstance(value, str):
                put(key, value, f"the {key} name")
            elif isinstance(value, Mapping):
                section = dict(value)
                name, plugin = section.pop("name", None), section.pop("plugin", None)
                if name is not None:
                    if not isinstance(name, str):
                        raise UsageError(f"{where}: [{key}] name must be a name, not {shown(name)}")
                    put(key, name, f"the {key} name")
                if plugin is not None:
                    put(f"{key}_plugin", str(plugin), f"the {key} plugin")
                params = out.setdefault(f"{key}_params", {})
                for pname, pvalue in section.items():
                    if pname in params:
                        raise UsageError(f"{where}: {key}.{_key(pname)} is given twice; give it once")
                    params[pname] = pvalue
            else:
                raise UsageError(f"{where}: '{key}' must be a name or a table with its name and parameters, "
                                 f"not {shown(value)}")
        elif key.endswith("_params") and key[: -len("_params")] in COMPONENTS:
            if not isinstance(value, Mapping):
                raise UsageError(f"{where}: '{key}' must be a table of hyperparameters")
            params = out.setdefault(key, {})
            for pname, pvalue in value.items():
                if pname in params:
                    raise UsageError(f"{where}: {key[: -len('_params')]}.{_key(pname)} is given twice; give it once")
                params[pname] = pvalue
        elif key == "train":
            if not isinstance(value, Mapping):
                raise UsageError(f"{where}: 'train' must be a table of training settings")
            for tkey, tvalue in value.items():
                if tkey in COMPONENTS and isinstance(tvalue, str):  # a part chosen in [train]: optimizer = "sgd"
                    put(tkey, tvalue, f"the {tkey} name")
                    continue
                if tkey not in train_keys and tkey not in _moved():
                    raise UsageError(f"{where}: unknown training setting 'train.{_key(tkey)}'"
                                     f"{_did_you_mean(tkey, train_keys)}")
                put(tkey, tvalue, f"train.{tkey}")
        elif key in train_keys or key in _moved():
            put(key, value, f"train.{key}")
        elif key == "callbacks":
            if not isinstance(value, list):
                raise UsageError(f"{where}: 'callbacks' must be a list of names or tables, not {shown(value)}")
            put(key, value, key)
        elif key == "track":  # trackers are callbacks; one may be named alone: track = "mlflow"
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list):
                raise UsageError(f"{where}: 'track' must be a tracker's name or a list of names or tables, not "
                                 f"{shown(value)}")
            put(key, value, key)
        elif key == "recipe" or key in derived or (key.endswith("_plugin") and key[:-7] in COMPONENTS):
            if key == "recipe" and value is not None and not isinstance(value, str):
                raise UsageError(f"{where}: 'recipe' must be a name, not {shown(value)}")
            put(key, value, key)
        else:
            raise UsageError(f"{where}: unknown key '{_key(key)}'{_did_you_mean(key, top_level_keys())}")
    return out


def to_document(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """A flat resolved config -> the sectioned document (what --print-config prints, config.json holds)."""
    train_keys = _train_keys()
    doc: dict[str, Any] = {}
    if cfg.get("recipe"):
        doc["recipe"] = cfg["recipe"]
    if cfg.get("task"):
        doc["task"] = cfg["task"]
    for comp in COMPONENTS:
        if comp not in cfg:
            continue
        section = {"name": cfg[comp]}
        if cfg.get(f"{comp}_plugin"):
            section["plugin"] = cfg[f"{comp}_plugin"]
        section.update(cfg.get(f"{comp}_params") or {})
        doc[comp] = section
    doc["train"] = {k: cfg[k] for k in train_keys if k in cfg}
    if cfg.get("callbacks"):
        doc["callbacks"] = [{"name": c["name"], "plugin": c["plugin"], **c.get("params", {})}
                            for c in cfg["callbacks"]]
    for key in _derived():
        if key != "task" and key in cfg:
            doc[key] = cfg[key]
    return doc


def from_document(doc: Mapping[str, Any], where: str = "config") -> dict[str, Any]:
    """A config document (sectioned or flat, e.g. an older run's config.json) -> the flat resolved form."""
    flat = flatten(doc, where)
    flat.setdefault("recipe", None)
    for comp in COMPONENTS:
        flat.setdefault(f"{comp}_params", {})
    return flat


# -- files ---------------------------------------------------------------------------------


def load(path: str) -> dict[str, Any]:
    """Read a TOML, YAML or JSON config file; bad shapes and unknown keys are errors naming the key."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"config file {p} does not exist")
    fmt = SUFFIXES.get(p.suffix.lower())
    if fmt is None:
        raise UsageError(f"config file {p} must end in .toml, .yaml, .yml or .json")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read config file {p}: {exc}") from None
    try:
        data = parse(text, fmt)
    except YamlAliasError as exc:
        raise UsageError(f"config file {p} line {exc.line}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - each parser has its own error type
        detail = " ".join(str(exc).split())
        if len(detail) > 300:
            detail = detail[:297] + "..."
        raise UsageError(f"config file {p} cannot be parsed: {detail}") from None
    if data is None:
        data = {}
    flatten(data, f"config file {p}")  # validates every key now, naming the file
    return data


def parse(text: str, fmt: str) -> Any:
    if fmt == "toml":
        import tomllib

        return tomllib.loads(text)
    if fmt == "yaml":
        loader = _yaml_loader()(text)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    return json.loads(text)


class YamlAliasError(ValueError):
    """A YAML anchor (``&name``) or alias (``*name``): refused, since a few aliased lines can expand into
    gigabytes (an "alias bomb"), and a config never needs them."""

    def __init__(self, line: int, what: str) -> None:
        super().__init__(f"YAML {what} are not accepted in a config (a few aliased lines can expand to "
                         "gigabytes); write the value out")
        self.line = line


_LOADER: Any = None


def _yaml_loader() -> Any:
    """``yaml.SafeLoader`` (no Python objects) that refuses anchors and aliases as it meets them, before any
    value is expanded."""
    global _LOADER
    if _LOADER is None:
        import yaml

        class NoAliasLoader(yaml.SafeLoader):
            def compose_node(self, parent: Any, index: Any) -> Any:
                event = self.peek_event()
                if isinstance(event, yaml.AliasEvent):
                    raise YamlAliasError(event.start_mark.line + 1, "aliases (*name)")
                if getattr(event, "anchor", None) is not None:
                    raise YamlAliasError(event.start_mark.line + 1, "anchors (&name)")
                return super().compose_node(parent, index)

        _LOADER = NoAliasLoader
    return _LOADER


def dump(doc: Mapping[str, Any], fmt: str = "json") -> str:
    """The document as TOML, YAML or JSON text (read back by :func:`load` to the same config)."""
    if fmt == "json":
        return json.dumps(doc, indent=2) + "\n"
    if fmt == "yaml":
        import yaml

        return yaml.safe_dump(dict(doc), sort_keys=False, default_flow_style=None)
    if fmt == "toml":
        return _toml(doc)
    raise UsageError(f"unknown config format '{fmt}'{did_you_mean(fmt, FORMATS)} (formats: {', '.join(FORMATS)})")


def _toml_value(value: Any, key: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise UsageError(f"{key}={value} cannot be written as a config value")
        text = repr(value)
        return text if any(c in text for c in ".en") else text + ".0"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a TOML basic string: JSON's escapes are TOML's
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v, key) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v, key)}" for k, v in value.items()
                               if v is not None) + "}"
    raise UsageError(f"{key}={shown(value)} cannot be written as TOML")


def _toml_key(key: str) -> str:
    import re

    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml(doc: Mapping[str, Any]) -> str:
    """TOML for a config document: top-level values first, then one table per section (None omitted:
    TOML has no null)."""
    lines, tables = [], []
    for key, value in doc.items():
        if value is None:
            continue
        if isinstance(value, Mapping):
            tables.append((key, value))
        else:
            lines.append(f"{_toml_key(key)} = {_toml_value(value, key)}")
    for name, table in tables:
        lines.append("")
        lines.append(f"[{_toml_key(name)}]")
        for key, value in table.items():
            if value is not None:
                lines.append(f"{_toml_key(key)} = {_toml_value(value, f'{name}.{key}')}")
    return "\n".join(lines).lstrip("\n") + "\n"
