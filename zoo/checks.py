"""Checks of a declaration against its implementation, shared by strict discovery and the contract suite.

Importing this module is light (no torch, numpy or scikit-learn); only the functions
that import a declaration's implementation load the plugin's code. Each function
returns a list of problems, one readable line each (empty when all is well), without
naming the component, so that callers can prefix whatever identifies it.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import pkgutil
import sys
import types
from typing import Any, Callable

from .errors import did_you_mean

#: Positional arguments each kind's implementation takes before its keyword parameters.
POSITIONAL = {"model": ("input_shape", "out_features"), "optimizer": ("params",), "schedule": ("optimizer",),
              "metric": ("pred", "y"), "procedure": ("ctx",), "strategy": ("settings",)}
#: Keyword arguments the core passes besides the declared parameters.
IMPLICIT = {"dataset": ("seed",), "optimizer": ("lr",), "schedule": ("plan",), "metric": ("target",)}
#: The positional arguments of a dataset's optional ``"module:attribute"`` references.
REFERENCE_ARGS = {"encode": ("table", "state"), "example": ("directory",), "infer_task": ("params",)}


def load_reference(ref: str) -> Any:
    """Import ``"module:attribute"`` (the attribute may be dotted) and return the object."""
    module_name, _, attr = ref.partition(":")
    obj = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def import_hint(ref: str, exc: BaseException) -> str:
    """``"; did you mean 'x'?"`` when ``exc`` comes from a misspelled module or attribute in ``ref``, else ``""``.

    Cheap: it lists the public names of the module (or the modules beside a missing one).
    """
    module_name, _, attr = str(ref).partition(":")
    try:
        if isinstance(exc, ModuleNotFoundError):
            missing = exc.name or ""
            if not missing or not (module_name == missing or module_name.startswith(missing + ".")):
                return ""  # the module exists but imports something that does not
            parent, _, leaf = missing.rpartition(".")
            if parent:
                path = getattr(importlib.import_module(parent), "__path__", None)
                found = pkgutil.iter_modules(path) if path else []
            else:  # what is on the path, and what is imported (editable installs may hide from the first)
                found = [*pkgutil.iter_modules(), *(types.SimpleNamespace(name=n) for n in list(sys.modules)
                                                    if "." not in n)]
            names = [m.name for m in found if leaf.startswith("_") or not m.name.startswith("_")]
            close = difflib.get_close_matches(leaf, sorted(set(names)), n=3, cutoff=0.6)
            return did_you_mean(missing, [f"{parent}.{n}" if parent else n for n in close])
        if isinstance(exc, AttributeError):
            obj = importlib.import_module(module_name)
            parts = attr.split(".")
            for part in parts:
                if not hasattr(obj, part):
                    return did_you_mean(part, [n for n in dir(obj) if not n.startswith("_")])
                obj = getattr(obj, part)
    except Exception:  # noqa: BLE001 - a hint is a courtesy, never a second failure
        return ""
    return ""


def describe_import_error(ref: str, exc: BaseException) -> str:
    """One line for a reference that failed to import, with a did-you-mean where cheap."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}{import_hint(ref, exc)}"


def _load(what: str, ref: str) -> tuple[Any, list[str]]:
    try:
        obj = load_reference(ref)
    except Exception as exc:  # noqa: BLE001 - anything a broken plugin raises on import
        return None, [f"{what} '{ref}' cannot be imported: {describe_import_error(ref, exc)}"]
    if not callable(obj):
        return None, [f"{what} '{ref}' is not callable (it is {type(obj).__name__})"]
    return obj, []


def signature_problems(spec: Any, impl: Callable) -> list[str]:
    """Whether ``impl`` accepts what the core passes: the declared parameters (and their defaults).

    Compares the declared ``spec.params`` with the implementation's keyword parameters:
    each declared one must be accepted (or ``**kwargs``), every required keyword must be
    declared, and a default given in both places must agree.
    """
    try:
        sig = inspect.signature(impl)
    except (TypeError, ValueError):  # a builtin or C callable: nothing to compare
        return []
    params = list(sig.parameters.values())
    positional = len(POSITIONAL.get(spec.kind, ()))
    pos = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(pos) < positional and not any(p.kind == p.VAR_POSITIONAL for p in params):
        return [f"the implementation must take ({', '.join(POSITIONAL[spec.kind])}, **params)"]
    kw = {p.name: p for p in params[positional:] if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    var_kw = any(p.kind == p.VAR_KEYWORD for p in params)
    implicit = set(IMPLICIT.get(spec.kind, ()))
    declared = set(spec.params)
    problems = []
    if not var_kw:
        lost = sorted(implicit - set(kw))
        if lost:
            problems.append(f"the implementation must accept {', '.join(k + '=' for k in lost)} "
                            f"(zoo passes it to every {spec.kind})")
        missing = sorted(declared - set(kw))
        if missing:
            problems.append(f"parameters declared but not accepted by the implementation: {', '.join(missing)}")
    undeclared = sorted(k for k, p in kw.items() if k not in declared | implicit and p.default is p.empty)
    if undeclared:
        problems.append(f"parameters required by the implementation but not declared: {', '.join(undeclared)}")
    for key, p in kw.items():
        if key in spec.params and p.default is not p.empty and not getattr(spec.params[key], "required", False):
            default = spec.params[key].default
            given = tuple(p.default) if isinstance(p.default, list) else p.default
            if given != default:
                problems.append(f"the default of '{key}' is {p.default!r} in the implementation but {default!r} "
                                "in the declaration")
    return problems


def _arity_problems(what: str, ref: str, fn: Callable, args: tuple[str, ...],
                    keywords: tuple[str, ...] = ()) -> list[str]:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin or C callable: nothing to compare
        return []
    try:
        sig.bind(*args, **{k: None for k in keywords})
    except TypeError as exc:
        shown = ", ".join([*args, *(f"{k}=" for k in keywords)])
        return [f"{what} '{ref}' must take ({shown}): {exc}"]
    return []


def implementation_problems(spec: Any) -> list[str]:
    """Import what ``spec`` names and check it fits the declaration; imports plugin code.

    For every kind but recipes: the implementation imports, is callable and accepts what the
    core passes it (:data:`POSITIONAL`, :data:`IMPLICIT`) and the declared parameters; for a
    dataset also its optional ``encode``, ``example`` and ``infer_task`` references, for a
    metric its ``fast`` version (each imports and takes its positional arguments).
    A recipe names no implementation.
    """
    if spec.kind == "recipe":
        return []
    impl, problems = _load("implementation", spec.impl)
    if impl is not None:
        problems += signature_problems(spec, impl)
    for field_name, args in REFERENCE_ARGS.items():
        ref = getattr(spec, field_name, None) if spec.kind == "dataset" else None
        if ref is None:
            continue
        fn, bad = _load(field_name, ref)
        problems += bad or _arity_problems(field_name, ref, fn, args)
    if spec.kind == "metric" and spec.fast:
        fn, bad = _load("fast", spec.fast)
        problems += bad or _arity_problems("fast", spec.fast, fn, POSITIONAL["metric"], IMPLICIT["metric"])
    return problems


__all__ = ["describe_import_error", "implementation_problems", "import_hint", "load_reference",
           "signature_problems"]
