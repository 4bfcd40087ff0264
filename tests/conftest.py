"""Fixtures shared by the core tests (helpers live in helpers.py)."""

from __future__ import annotations

import pytest

from helpers import run_zoo


@pytest.fixture

def zoo_cli(tmp_path):
    """``zoo_cli("list", env=...)`` runs ``python -m zoo list`` in a temporary directory."""

    def call(*args: str, env: dict | None = None, timeout: float = 120):
        return run_zoo(*args, cwd=tmp_path, env=env, timeout=timeout)

    return call
