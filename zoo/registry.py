"""Plugin discovery and lookup.

Plugins are modules named by entry points in the ``zoo`` group. The registry
imports each (they are light by contract), asks it for its declarations through
the hooks in :mod:`zoo.hookspecs`, and indexes them by kind and name. A plugin
that fails to load is recorded, not fatal, unless ``ZOO_STRICT_PLUGINS=1``.

Discovery imports only the plugin modules, never the implementations their
declarations name. :meth:`Registry.verify` imports those too and checks that each
accepts its declared parameters; strict mode and ``zoo plugins --check`` run it.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy

from . import hookspecs
from .checks import describe_import_error, implementation_problems
from .errors import PluginLoadError, UsageError, ZooError, did_you_mean
from .kinds import HOOKS as _HOOKS
from .kinds import PLURAL
from .spec import KINDS

GROUP = "zoo"
STRICT_ENV = "ZOO_STRICT_PLUGINS"
ONLY_ENV = "ZOO_PLUGINS"
DISABLE_ENV = "ZOO_DISABLE_PLUGINS"



@dataclass
class Plugin:
    """One plugin: its entry point, distribution and what it contributed (or why it failed)."""

    name: str
    dist: str
    version: str
    value: str
    module: ModuleType | None = None
    error: str | None = None
    contract: str | None = None
    contributes: dict[str, list[str]] = field(default_factory=dict)

    def describe(self) -> dict:
        return {
            "name": self.name,
            "distribution": self.dist,
            "version": self.version,
            "entry_point": f"{self.name} = {self.value}",
            "contract": self.contract,
            "contributes": self.contributes,
            "error": self.error,
        }


@dataclass(frozen=True)
class Entry:
    """A declaration together with the plugin that contributed it (``order``: when it was registered)."""

    spec: Any
    plugin: Plugin
    order: int = 0

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def qualified(self) -> str:
        return f"{self.plugin.name}:{self.spec.name}"

    def load(self):
        """Import the implementation; a failure names the component and its plugin."""
        try:
            return self.spec.load()
        except Exception as exc:  # noqa: BLE001 - anything a broken plugin raises
            raise PluginLoadError(
                f"{self.spec.kind} '{self.name}' from plugin '{self.plugin.name}' "
                f"({self.plugin.dist} {self.plugin.version}) could not be imported from "
                f"'{self.spec.impl}': {describe_import_error(self.spec.impl, exc)}"
            ) from exc

    def problems(self) -> list[str]:
        """Import the implementation (and a dataset's optional references) and check it fits the
        declaration: one line per problem, naming the component, its plugin and distribution."""
        return [f"{self.spec.kind} '{self.name}' from plugin '{self.plugin.name}' "
                f"({self.plugin.dist} {self.plugin.version}): {p}" for p in implementation_problems(self.spec)]


def _env_set(name: str) -> set[str] | None:
    raw = os.environ.get(name, "").strip()
    return {p.strip() for p in raw.split(",") if p.strip()} if raw else None


def strict() -> bool:
    return os.environ.get(STRICT_ENV, "").strip().lower() in ("1", "true", "yes", "on")


class Registry:
    """Everything the installed plugins contribute, indexed by kind and name."""

    def __init__(self) -> None:
        self.plugins: dict[str, Plugin] = {}
        self._entries: dict[str, dict[str, list[Entry]]] = {k: {} for k in KINDS}
        self._count = 0
        self.pm = pluggy.PluginManager("zoo")
        self.pm.add_hookspecs(hookspecs)
        self._verified: list[str] | None = None

    # -- building --------------------------------------------------------------------

    @classmethod
    def discover(cls) -> "Registry":
        """Load every plugin published under the ``zoo`` entry-point group."""
        reg = cls()
        only, disabled = _env_set(ONLY_ENV), _env_set(DISABLE_ENV)
        eps = sorted(metadata.entry_points(group=GROUP), key=lambda ep: ep.name)
        for ep in eps:
            if (only is not None and ep.name not in only) or (disabled and ep.name in disabled):
                continue
            dist = ep.dist
            plugin = Plugin(
                name=ep.name,
                dist=dist.metadata["Name"] if dist else "?",
                version=dist.version if dist else "?",
                value=ep.value,
            )
            if ep.name in reg.plugins:
                other = reg.plugins[ep.name]
                plugin.error = (
                    f"plugin name '{ep.name}' is also used by {other.dist}; rename one entry point"
                )
                reg.plugins[f"{ep.name}@{plugin.dist}"] = plugin
                continue
            try:
                module = ep.load()
            except Exception as exc:  # noqa: BLE001
                plugin.error = _describe_exc(exc)
                reg.plugins[ep.name] = plugin
                continue
            reg.add(plugin, module)
        if only:
            for missing in sorted(only - {p.name for p in reg.plugins.values()}):
                raise UsageError(
                    f"{ONLY_ENV} names plugin '{missing}', which is not installed"
                    f"{did_you_mean(missing, [ep.name for ep in eps])}"
                )
        reg._check_strict()
        return reg

    @classmethod
    def from_modules(cls, modules: dict[str, ModuleType], dist: str = "(local)", version: str = "0") -> "Registry":
        """A registry of the given plugin modules only (for tests and the contract suite)."""
        reg = cls()
        for name, module in modules.items():
            reg.add(Plugin(name=name, dist=dist, version=version, value=module.__name__), module)
        reg._check_strict()
        return reg

    def add(self, plugin: Plugin, module: ModuleType) -> dict[str, list]:
        """Register one plugin module with pluggy and index its valid declarations.

        Only functions marked ``@hookimpl`` are called. Invalid declarations are not
        indexed; they are recorded in ``plugin.error``. Returns everything the hooks
        returned, by kind, valid or not (the contract suite checks each).
        """
        self._verified = None
        self.plugins[plugin.name] = plugin
        plugin.module = module
        plugin.contract = getattr(module, "ZOO_CONTRACT", None)
        declared: dict[str, list] = {}
        try:
            self.pm.register(module, name=plugin.name)
        except Exception as exc:  # noqa: BLE001 - pluggy validation of a bad hookimpl
            plugin.error = _describe_exc(exc)
            return declared
        problems = []
        for kind, hook in _HOOKS.items():
            impls = [i for i in getattr(self.pm.hook, hook).get_hookimpls() if i.plugin_name == plugin.name]
            for impl in impls:
                try:
                    specs = list(impl.function() or [])
                except Exception as exc:  # noqa: BLE001
                    problems.append(f"{hook}() raised {_describe_exc(exc)}")
                    continue
                declared.setdefault(kind, []).extend(specs)
                for spec in specs:
                    if not isinstance(spec, KINDS[kind]):
                        problems.append(f"{hook}() returned {type(spec).__name__}, not {KINDS[kind].__name__}")
                        continue
                    bad = spec.problems()
                    if bad:
                        problems.append(f"{kind} {getattr(spec, 'name', '?')!r}: " + "; ".join(bad))
                        continue
                    self._count += 1
                    self._entries[kind].setdefault(spec.name, []).append(Entry(spec, plugin, self._count))
                    plugin.contributes.setdefault(kind, []).append(spec.name)
        if problems:
            plugin.error = "invalid declarations: " + " | ".join(problems)
        return declared

    def hook_problems(self, plugin: Plugin) -> list[str]:
        """Hook functions zoo never calls: named like a hook but not marked ``@hookimpl``, or marked
        but named like no hook. Calls an unmarked hook function only to name what it hides."""
        module = plugin.module
        if module is None or self.pm.get_plugin(plugin.name) is not module:
            return []  # not registered: its error says why
        out = []
        for kind, hook in _HOOKS.items():
            fn = getattr(module, hook, None)
            registered = getattr(self.pm.hook, hook).get_hookimpls()
            if not callable(fn) or any(i.plugin_name == plugin.name for i in registered):
                continue
            try:
                names = [str(getattr(s, "name", "?")) for s in fn() or []]
            except Exception:  # noqa: BLE001 - naming what is hidden is a courtesy
                names = []
            verb = "is" if len(names) == 1 else "are"
            hidden = f": {', '.join(names)} {verb} invisible to `zoo list`" if names else ""
            out.append(f"{hook}() is not marked @hookimpl, so zoo never calls it{hidden} "
                       "(decorate it with @zoo.hookimpl)")
        for attr in sorted(vars(module)):
            if attr in _HOOKS.values():
                continue
            try:
                marked = self.pm.parse_hookimpl_opts(module, attr) is not None
            except Exception:  # noqa: BLE001
                marked = False
            if marked:
                out.append(f"{attr}() is marked @hookimpl but zoo has no hook of that name, so it is never called"
                           f"{did_you_mean(attr, _HOOKS.values()) or ' (hooks: ' + ', '.join(_HOOKS.values()) + ')'}")
        return out

    def verify(self) -> list[str]:
        """Import every implementation and check it against its declaration (imports plugin code).

        One line per problem, naming the component (or hook), its plugin and distribution:
        an implementation (or a dataset's ``encode``, ``example`` or ``infer_task``) that does
        not import or is not callable, a declared parameter the implementation does not
        accept (or a required one it does not declare, or a different default), and hook
        functions zoo never calls. Plugin load errors and name clashes are :meth:`problems`,
        not repeated here.
        """
        if self._verified is None:
            out = []
            for plugin in self.plugins.values():
                out += [f"plugin '{plugin.name}' ({plugin.dist} {plugin.version}): {p}"
                        for p in self.hook_problems(plugin)]
            for kind in KINDS:
                for entry in self.entries(kind):
                    out += entry.problems()
            self._verified = out
        return list(self._verified)

    def _check_strict(self) -> None:
        if strict():
            problems = self.problems() + self.verify()
            if problems:
                raise PluginLoadError(f"{STRICT_ENV} is set and plugins have problems: " + " | ".join(problems))

    # -- queries ---------------------------------------------------------------------

    def problems(self) -> list[str]:
        """Every plugin failure and name conflict, one line each."""
        out = [
            f"plugin '{p.name}' ({p.dist} {p.version}, entry point '{p.name} = {p.value}') failed: {p.error}"
            for p in self.plugins.values()
            if p.error
        ]
        for kind, names in self._entries.items():
            for name, entries in sorted(names.items()):
                if len(entries) > 1:
                    out.append(self._conflict(kind, name, entries))
        return out

    def broken(self) -> list[Plugin]:
        return [p for p in self.plugins.values() if p.error]

    def entries(self, kind: str) -> list[Entry]:
        """All entries of a kind, sorted by name (both sides of a conflict included)."""
        return [e for name in sorted(self._entries[kind]) for e in self._entries[kind][name]]

    def declared(self, kind: str) -> list[Entry]:
        """All entries of a kind in the order plugins declared them (plugins in entry-point order): the order
        metrics are reported in."""
        return sorted((e for entries in self._entries[kind].values() for e in entries), key=lambda e: e.order)

    def names(self, kind: str) -> list[str]:
        return sorted(self._entries[kind])

    def get(self, kind: str, name: str, prefer: Plugin | None = None) -> Entry:
        """Look up ``name`` or ``plugin:name``; errors suggest close matches.

        ``prefer`` (a recipe's plugin) settles a clash: a name its plugin contributes resolves
        there, else to the one candidate from the same distribution (built-in recipes use
        built-in components from several plugins). A clash matters only for names a user types.
        """
        if kind not in KINDS:
            raise UsageError(f"unknown kind '{kind}'{did_you_mean(kind, KINDS)}")
        plugin_name, sep, bare = name.rpartition(":")
        entries = self._entries[kind].get(bare if sep else name, [])
        if sep:
            picked = [e for e in entries if e.plugin.name == plugin_name]
            if picked:
                return picked[0]
            if plugin_name not in self.plugins:
                raise UsageError(
                    f"unknown plugin '{plugin_name}' in '{name}'{did_you_mean(plugin_name, self.plugins)}"
                )
            raise UsageError(f"plugin '{plugin_name}' contributes no {kind} '{bare}'")
        if len(entries) == 1:
            return entries[0]
        if len(entries) > 1 and prefer is not None:
            for same in (lambda e: e.plugin.name == prefer.name, lambda e: e.plugin.dist == prefer.dist):
                picked = [e for e in entries if same(e)]
                if len(picked) == 1:
                    return picked[0]
        if len(entries) > 1:
            raise UsageError(self._conflict(kind, name, entries))
        msg = f"unknown {kind} '{name}'{did_you_mean(name, self._entries[kind])}"
        other = [k for k in KINDS if k != kind and name in self._entries[k]]
        if other:
            msg += f" ('{name}' is a {other[0]})"
        broken = self.broken()
        if broken:
            msg += "; it may come from a plugin that failed to load: " + ", ".join(
                f"'{p.name}' ({p.dist}): {p.error}" for p in broken
            )
        elif not did_you_mean(name, self._entries[kind]) and not other:
            msg += f" (see 'zoo list {PLURAL[kind]}')"
        raise UsageError(msg)

    def find(self, name: str) -> list[Entry]:
        """Every entry of any kind with this name (for ``zoo info``)."""
        bare = name.rpartition(":")[2]
        out = []
        for kind in KINDS:
            for e in self._entries[kind].get(bare, []):
                if bare == name or e.qualified == name:
                    out.append(e)
        return out

    def all_names(self) -> list[str]:
        return sorted({n for names in self._entries.values() for n in names})

    @staticmethod
    def _conflict(kind: str, name: str, entries: list[Entry]) -> str:
        who = " and ".join(f"plugin '{e.plugin.name}' ({e.plugin.dist})" for e in entries)
        choose = " or ".join(f"'{e.qualified}'" for e in entries)
        return f"{kind} '{name}' is contributed by both {who}; choose one as {choose}"


def _describe_exc(exc: BaseException) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" (at {last[0].filename}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


_REGISTRY: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, discovered once."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = Registry.discover()
    return _REGISTRY


def reset_registry() -> None:
    """Forget the discovered plugins (the next :func:`get_registry` rediscovers)."""
    global _REGISTRY
    _REGISTRY = None


__all__ = ["Entry", "Plugin", "Registry", "ZooError", "get_registry", "reset_registry", "GROUP"]
