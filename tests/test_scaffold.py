"""``zoo new-plugin``: the scaffolded plugin installs, shows up and passes its own tests.

The main test does what a plugin author does, for real: scaffold a plugin with the
command, install it editable into a fresh virtual environment (offline: the venv sees
this environment's packages, torch and zoo included), list and explain it, and run the
plugin's own test suite unchanged.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import run_zoo
from zoo import scaffold
from zoo.errors import UsageError

NAME = "demo"
COMPONENTS = {"dataset": "demo-rings", "model": "demo-net", "loss": "demo-smooth-ce", "recipe": "demo-rings"}
FILES = ["README.md", "pyproject.toml", "tests/test_contract.py", "zoo_demo/__init__.py", "zoo_demo/impl.py"]
TEST_CONTRACT = '''\
from zoo.testing import parametrize_plugin_checks


@parametrize_plugin_checks("demo")
def test_contract(check):
    check()
'''


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZOO_")}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", PYTHONDONTWRITEBYTECODE="1")
    return env


def _run(args: list, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], cwd=cwd, env=_env(), capture_output=True, text=True,
                          timeout=timeout)


def _tree(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _make_venv(path: Path) -> Path:
    """A venv that sees this environment's packages; returns its python.

    ``--without-pip``: the venv uses this environment's pip and setuptools (ensurepip's
    bundled setuptools would shadow them and cannot build an editable wheel offline).
    When this interpreter is itself a venv, ``--system-site-packages`` would only reach
    the base interpreter, so a .pth file adds this environment's site directories too.
    """
    out = subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(path)],
                         env=_env(), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    python = path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    if sys.prefix != sys.base_prefix:
        dirs = [d for d in site.getsitepackages() if Path(d).is_dir()]
        purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], path).stdout
        (Path(purelib.strip()) / "_zoo_outer_env.pth").write_text(
            "import site; " + "; ".join(f"site.addsitedir({d!r})" for d in dirs) + "\n")
    return python


def _offline_editable_builds() -> str | None:
    """Why this environment cannot build an editable wheel offline, or None when it can."""
    try:
        import setuptools
    except ImportError:
        return "setuptools is not installed"
    version = tuple(int(p) for p in setuptools.__version__.split(".")[:2] if p.isdigit())
    if version >= (70, 1):  # bdist_wheel is part of setuptools from 70.1
        return None
    try:
        import wheel  # noqa: F401
    except ImportError:
        return f"setuptools {setuptools.__version__} needs the 'wheel' package to build wheels"
    return None if version >= (64,) else f"setuptools {setuptools.__version__} cannot build editable wheels"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """Scaffold ``demo`` with the real command and install it into a fresh venv."""
    why = _offline_editable_builds()
    if why:
        pytest.skip(f"an offline 'pip install --no-build-isolation -e' cannot work here: {why}")
    tmp = tmp_path_factory.mktemp("scaffold")
    out = run_zoo("new-plugin", NAME, "--dir", str(tmp), cwd=tmp, timeout=60)
    assert out.returncode == 0, out.stderr
    pkg = tmp / f"zoo-{NAME}"
    assert str(pkg) in out.stdout
    for step in (f"pip install -e {pkg}", "zoo list", f"cd {pkg} && python -m pytest"):
        assert step in out.stdout, step
    assert sorted(p.name for p in tmp.iterdir()) == [f"zoo-{NAME}"]  # no temporary directory left over
    files = {rel: (pkg / rel).read_text() for rel in _tree(pkg)}
    python = _make_venv(tmp / "venv")
    out = _run([python, "-m", "pip", "install", "--no-index", "--no-deps", "--no-build-isolation", "-e", pkg],
               tmp, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    return python, pkg, files


def test_scaffold_writes_the_package(installed):
    _, pkg, files = installed
    assert sorted(files) == FILES
    assert files["tests/test_contract.py"] == TEST_CONTRACT
    pyproject = files["pyproject.toml"]
    for line in ('name = "zoo-demo"', 'version = "0.1.0"', 'requires-python = ">=3.11"', 'dependencies = ["zoo"]',
                 'test = ["pytest"]', "[project.entry-points.zoo]", 'demo = "zoo_demo"',
                 'build-backend = "setuptools.build_meta"', 'testpaths = ["tests"]'):
        assert line in pyproject, line
    for text in ("pip install -e .", "zoo list", "python -m pytest", "zoo_demo/__init__.py", "zoo_demo/impl.py"):
        assert text in files["README.md"], text
    assert 'ZOO_CONTRACT = "1"' in files["zoo_demo/__init__.py"]


def test_installed_plugin_is_listed(installed):
    python, pkg, _ = installed
    out = _run([python, "-m", "zoo", "list"], pkg.parent)
    assert out.returncode == 0 and out.stderr == "", out.stderr
    rows = {tuple(line.split()[:2]) for line in out.stdout.splitlines() if line.startswith("  ")}
    for name in set(COMPONENTS.values()):
        assert (name, NAME) in rows, out.stdout
    data = json.loads(_run([python, "-m", "zoo", "list", "--json"], pkg.parent).stdout)
    mine = {(i["kind"], i["name"]) for i in data["items"] if i["plugin"] == NAME}
    assert mine == set(COMPONENTS.items())
    assert {i["distribution"] for i in data["items"] if i["plugin"] == NAME} == {"zoo-demo"}
    assert data["problems"] == []


def test_installed_plugin_info_and_light_declarations(installed):
    python, pkg, _ = installed
    out = _run([python, "-m", "zoo", "info", "demo-net"], pkg.parent)
    assert out.returncode == 0, out.stderr
    assert "contract" in out.stdout and "demo (zoo-demo 0.1.0)" in out.stdout and "width" in out.stdout
    probe = "import sys, zoo_demo; print(','.join(m for m in ('torch', 'numpy', 'sklearn') if m in sys.modules))"
    out = _run([python, "-c", probe], pkg.parent)
    assert out.returncode == 0 and out.stdout.strip() == "", out.stdout + out.stderr


def test_scaffolded_plugin_tests_pass_unchanged(installed):
    python, pkg, files = installed
    out = _run([python, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider"], pkg, timeout=120)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    summary = out.stdout.strip().splitlines()[-1]
    assert "passed" in summary and "failed" not in summary and "error" not in summary, summary
    for name in ("dataset:demo-rings:", "model:demo-net:", "loss:demo-smooth-ce:", "recipe:demo-rings"):
        assert name in out.stdout, name  # every component was checked
    assert {rel: (pkg / rel).read_text() for rel in FILES} == files  # nothing was edited along the way


def test_existing_target_is_refused_untouched(tmp_path):
    target = tmp_path / "zoo-demo"
    target.mkdir()
    (target / "mine.txt").write_text("keep me")
    out = run_zoo("new-plugin", NAME, "--dir", str(tmp_path), cwd=tmp_path, timeout=60)
    assert out.returncode == 2
    assert out.stderr.startswith("error: ") and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "already exists" in out.stderr and "Traceback" not in out.stderr
    assert _tree(tmp_path) == ["zoo-demo/mine.txt"]
    assert (target / "mine.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["zoo-demo"]


@pytest.mark.parametrize("bad", ["Demo", "1demo", "my.plugin", "my plugin", "demo-", "a--b", "démo", ""])
def test_bad_name_is_a_one_line_usage_error(bad, tmp_path):
    out = run_zoo("new-plugin", bad, "--dir", str(tmp_path), cwd=tmp_path, timeout=60)
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stderr.startswith("error: ") and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "Traceback" not in out.stderr and "lower-case" in out.stderr
    assert list(tmp_path.iterdir()) == []


def test_name_of_an_installed_plugin_is_refused(tmp_path):
    with pytest.raises(UsageError, match="already used"):
        scaffold.write_plugin("tabular", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_failure_while_writing_leaves_nothing(tmp_path, monkeypatch):
    def fail(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(scaffold.os, "rename", fail)
    with pytest.raises(UsageError, match="No space left"):
        scaffold.write_plugin("other", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_write_plugin_creates_missing_parent_and_returns_the_package(tmp_path):
    path = scaffold.write_plugin("my-thing", tmp_path / "a" / "b")
    assert path == tmp_path / "a" / "b" / "zoo-my-thing"
    assert (path / "zoo_my_thing" / "__init__.py").is_file()
    assert 'my-thing = "zoo_my_thing"' in (path / "pyproject.toml").read_text()
    assert '@parametrize_plugin_checks("my-thing")' in (path / "tests" / "test_contract.py").read_text()
    assert sorted(p.name for p in path.parent.iterdir()) == ["zoo-my-thing"]
