"""The hook specifications a plugin implements (all optional), one per kind of :mod:`zoo.kinds`.

A plugin is a module named by an entry point in the ``zoo`` group. Each hook returns a
list of declarations from :mod:`zoo.spec` (``zoo_datasets`` -> ``DatasetSpec``,
``zoo_optimizers`` -> ``OptimizerSpec``, ...); none of them may import torch or other heavy
code (the declarations name their implementation instead).
"""

from __future__ import annotations

import pluggy

from .kinds import KIND_TABLE

hookspec = pluggy.HookspecMarker("zoo")
hookimpl = pluggy.HookimplMarker("zoo")


def _make_hook(kind):
    def hook() -> list:
        pass

    hook.__name__ = hook.__qualname__ = kind.hook
    hook.__doc__ = f"Return the :class:`zoo.spec.{kind.spec.__name__}` this plugin contributes ({kind.doc})."
    return hookspec(hook)


for _kind in KIND_TABLE:
    globals()[_kind.hook] = _make_hook(_kind)
del _kind
