"""Shared helpers: run the real ``zoo`` command, and install real plugin distributions.

A "distribution" here is what pip leaves in site-packages: a ``NAME-VERSION.dist-info``
folder with ``METADATA`` and ``entry_points.txt``, next to the plugin's module. Tests
put such a folder on ``PYTHONPATH`` of a subprocess, so discovery runs through
``importlib.metadata`` exactly as it does for a pip-installed plugin.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path


def run_zoo(*args: str, cwd: Path, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ZOO_")}
    full_env["ZOO_DEBUG"] = "1"  # an unexpected error shows its traceback, so that tests fail on it
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "zoo", *args], cwd=cwd, env=full_env, capture_output=True, text=True,
        timeout=timeout,
    )


def install_plugin(site: Path, dist: str, modules: dict[str, str], entry_points: dict[str, str],
                   version: str = "1.0") -> Path:
    """Write a real installed distribution into ``site``: modules plus a dist-info with entry points."""
    site.mkdir(parents=True, exist_ok=True)
    for name, source in modules.items():
        (site / f"{name}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    eps = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[zoo]\n{eps}")
    (info / "RECORD").write_text("")
    return site


def site_env(site: Path) -> dict[str, str]:
    old = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": str(site) + (os.pathsep + old if old else "")}
