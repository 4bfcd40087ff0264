"""The hook specifications a plugin implements (all optional).

A plugin is a module named by an entry point in the ``zoo`` group. Each hook
returns a list of declarations from :mod:`zoo.spec`; none of them may import
torch or other heavy code (the declarations name their implementation instead).
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("zoo")
hookimpl = pluggy.HookimplMarker("zoo")


@hookspec
def zoo_datasets() -> list:
    """Return the :class:`zoo.spec.DatasetSpec` this plugin contributes."""


@hookspec
def zoo_models() -> list:
    """Return the :class:`zoo.spec.ModelSpec` this plugin contributes."""


@hookspec
def zoo_losses() -> list:
    """Return the :class:`zoo.spec.LossSpec` this plugin contributes."""


@hookspec
def zoo_recipes() -> list:
    """Return the :class:`zoo.spec.RecipeSpec` this plugin contributes."""
