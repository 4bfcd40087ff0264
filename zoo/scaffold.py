"""``zoo new-plugin NAME``: write a ready third-party plugin package.

The package is a complete distribution that installs with ``pip install -e``, shows
in ``zoo list`` and passes its own contract tests without edits: one example each of
a dataset, a model, a loss and a recipe, all prefixed with NAME so that two
scaffolded plugins never clash. Everything is written into a temporary sibling
directory that is renamed into place at the end, so an interrupted or failed run
never leaves a half-written package behind, and an existing directory is never
touched.

Like the rest of the CLI, this module imports no torch, numpy or scikit-learn.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path
from string import Template

from .errors import UsageError

#: Same rule as component names (``zoo.spec``): NAME prefixes every component name.
_NAME = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")


def module_name(name: str) -> str:
    """The import name of the plugin's package: ``zoo_`` + NAME with '-' as '_'."""
    return "zoo_" + name.replace("-", "_")


def check_name(name: str) -> None:
    """Raise UsageError unless ``name`` is usable as a plugin (entry point) name."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise UsageError(
            f"plugin name {name!r} is not valid: use lower-case letters, digits, '-' or '_', "
            "starting with a letter (e.g. 'my-plugin')"
        )
    for ep in metadata.entry_points(group="zoo"):
        if ep.name == name:
            dist = ep.dist.metadata["Name"] if ep.dist else "?"
            raise UsageError(f"plugin name '{name}' is already used by the installed distribution {dist}; "
                             "choose another name")
    mod = module_name(name)
    try:
        taken = find_spec(mod) is not None
    except (ImportError, ValueError):
        taken = False
    if taken:
        raise UsageError(f"a module named '{mod}' is already importable here; choose another plugin name")


def files(name: str) -> dict[str, str]:
    """The package's files (relative path -> text) for plugin ``name``."""
    module = module_name(name)
    subst = {"name": name, "module": module}
    return {
        path.replace("MODULE", module): Template(text).substitute(subst)
        for path, text in _TEMPLATES.items()
    }


def write_plugin(name: str, parent_dir: Path) -> Path:
    """Create ``parent_dir / f"zoo-{name}"`` holding a ready plugin package; return its path.

    Raises UsageError for a bad name or an existing target (which is left untouched).
    """
    check_name(name)
    parent_dir = Path(parent_dir)
    target = parent_dir / f"zoo-{name}"
    if target.exists() or target.is_symlink():
        raise UsageError(f"{target} already exists; not overwriting it (remove it or pick another --dir or name)")
    if parent_dir.exists() and not parent_dir.is_dir():
        raise UsageError(f"{parent_dir} is not a directory")
    try:
        parent_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".zoo-{name}.", suffix=".tmp", dir=parent_dir))
    except OSError as exc:
        raise UsageError(f"cannot create a directory in {parent_dir}: {exc.strerror or exc}") from None
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the package should not be
        for rel, text in files(name).items():
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        if target.exists() or target.is_symlink():  # appeared while we were writing
            raise UsageError(f"{target} already exists; not overwriting it")
        try:
            os.rename(tmp, target)
        except OSError as exc:
            raise UsageError(f"cannot create {target}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


_PYPROJECT = '''\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "zoo-$name"
version = "0.1.0"
description = "A zoo plugin: an example dataset, model, loss and recipe."
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["zoo"]

[project.optional-dependencies]
test = ["pytest"]

# This entry point is how zoo finds the plugin: NAME = "module with the hook implementations".
[project.entry-points.zoo]
$name = "$module"

[tool.setuptools]
packages = ["$module"]

[tool.pytest.ini_options]
testpaths = ["tests"]
'''

_INIT = '''\
"""zoo plugin '$name': declarations only.

This module is what the ``$name`` entry point names. zoo imports it for ``zoo list``
and ``zoo info``, so keep it light: no torch, numpy or scikit-learn here. Each
declaration names its implementation as "module:attribute" (in ``$module.impl``),
which zoo imports only when the component is used.
"""

from zoo import DatasetSpec, LossSpec, ModelSpec, Param, RecipeSpec, hookimpl

ZOO_CONTRACT = "1"  # the plugin contract version this plugin was written against


@hookimpl
def zoo_datasets():
    return [
        DatasetSpec(
            name="$name-rings",
            summary="Two noisy concentric rings (scikit-learn make_circles), 2 features, binary.",
            tasks=("binary",),
            input="tabular",
            impl="$module.impl:rings",
            params={
                "n_samples": Param("int", 600, "points in total", min=10),
                "noise": Param("float", 0.1, "standard deviation of the Gaussian noise", min=0.0),
            },
        ),
    ]


@hookimpl
def zoo_models():
    return [
        ModelSpec(
            name="$name-net",
            summary="One hidden ReLU layer on the flattened input.",
            tasks=("regression", "binary", "multiclass"),
            inputs=("tabular", "image"),
            impl="$module.impl:net",
            params={"width": Param("int", 32, "hidden units", min=1)},
        ),
    ]


@hookimpl
def zoo_losses():
    return [
        LossSpec(
            name="$name-smooth-ce",
            summary="Cross-entropy over class logits with label smoothing (targets: class indices).",
            tasks=("binary", "multiclass"),
            target="index",
            impl="$module.impl:smooth_ce",
            params={"label_smoothing": Param("float", 0.1, "label smoothing in [0, 1)", min=0.0, max=0.99)},
        ),
    ]


@hookimpl
def zoo_recipes():
    return [
        RecipeSpec(
            name="$name-rings",
            summary="The rings with the one-hidden-layer net and label-smoothed cross-entropy.",
            dataset="$name-rings",
            model="$name-net",
            loss="$name-smooth-ce",
            train={"epochs": 5, "lr": 0.01},
        ),
    ]
'''

_IMPL = '''\
"""Implementations of the '$name' plugin's components (imported only when used)."""

from __future__ import annotations

import math

from torch import nn

from zoo.data import Splits, split_arrays


def rings(*, seed: int, n_samples: int, noise: float) -> Splits:
    """Dataset: ``rings(*, seed, **params) -> Splits``; the run's seed picks the split."""
    from sklearn.datasets import make_circles

    X, y = make_circles(n_samples=n_samples, noise=noise, factor=0.5, random_state=0)
    return split_arrays(X, y, task="binary", seed=seed)  # seeded, stratified, standardised


def net(input_shape, out_features: int, *, width: int) -> nn.Module:
    """Model: ``net(input_shape, out_features, **params) -> nn.Module``."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(math.prod(input_shape), width),
        nn.ReLU(),
        nn.Linear(width, out_features),
    )


def smooth_ce(*, label_smoothing: float) -> nn.Module:
    """Loss: ``smooth_ce(**params)`` returns ``(logits, class_indices) -> scalar``."""
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    return nn.CrossEntropyLoss(label_smoothing=label_smoothing)
'''

_README = '''\
# zoo-$name

A plugin for zoo, the plugin-style PyTorch model zoo. It contributes one example of
each kind of component:

| kind | name | what it is |
| --- | --- | --- |
| dataset | `$name-rings` | two noisy concentric rings (scikit-learn `make_circles`), binary |
| model | `$name-net` | one hidden ReLU layer (`width`) on the flattened input |
| loss | `$name-smooth-ce` | cross-entropy with `label_smoothing` |
| recipe | `$name-rings` | the three together, 5 epochs |

## Install

Into the environment where zoo is installed:

```bash
pip install -e .
zoo list              # shows $name-rings, $name-net, $name-smooth-ce with plugin '$name'
zoo info $name-net
zoo train $name-rings
```

## Test

```bash
pip install -e ".[test]"
python -m pytest
```

`tests/test_contract.py` runs zoo's plugin contract checks (`zoo.testing`) on every
component this plugin declares: declarations, imports, dataset splits, model output
shapes, losses and recipes. `ZOO_STRICT_PLUGINS=1 zoo list` fails if anything about
an installed plugin is wrong.

## Where to edit

- `$module/__init__.py`: the declarations (names, summaries, tasks, input kinds,
  target layouts, hyperparameters, recipes). zoo imports this module for `zoo list`,
  so keep it free of torch, numpy and scikit-learn.
- `$module/impl.py`: the implementations the declarations name as
  `"$module.impl:attribute"`; imported only when a component is used.
- `pyproject.toml`: the distribution name, version, dependencies and the `zoo` entry
  point (`$name = "$module"`), which is how zoo finds this plugin.

Rename or add components freely; keep the `$name-` prefix (or another unique one)
so that names do not clash with other plugins'.
'''

_TEST = '''\
from zoo.testing import parametrize_plugin_checks


@parametrize_plugin_checks("$name")
def test_contract(check):
    check()
'''

_TEMPLATES = {
    "pyproject.toml": _PYPROJECT,
    "README.md": _README,
    "MODULE/__init__.py": _INIT,
    "MODULE/impl.py": _IMPL,
    "tests/test_contract.py": _TEST,
}
