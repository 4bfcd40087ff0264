"""``zoo plot`` and ``zoo.plots.plot_run`` on real runs trained in-process."""

from __future__ import annotations

import struct
import subprocess
import sys

import pytest

import zoo
from helpers import run_zoo
from zoo.errors import UsageError

pytest.importorskip("matplotlib")

from zoo.plots import plot_run  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

NO_MATPLOTLIB = """
import sys
sys.modules["matplotlib"] = None  # as if it were not installed: importing it raises ImportError
from zoo.cli import main
main(["plot", *sys.argv[1:]], prog_name="zoo")
"""


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert data[12:16] == b"IHDR" and data[-8:-4] == b"IEND", f"{path} is truncated"
    return struct.unpack(">II", data[16:24])


def _train(out, *args, **kwargs):
    return zoo.train(*args, device="cpu", quiet=True, out=out, **kwargs).dir


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    base = tmp_path_factory.mktemp("plots")
    failed = base / "failed"
    with pytest.raises(zoo.ZooError):
        _train(failed, "regression-mlp", lr=1e30, optimizer="sgd", epochs=2, params={"n_samples": 300})
    return {
        "reg": _train(base / "reg", "regression-mlp", params={"n_samples": 300}, epochs=2),
        "moons": _train(base / "moons", "moons-mlp", params={"n_samples": 300}, epochs=2),
        "digits": _train(base / "digits", dataset="digits", model="linear", loss="cross-entropy", epochs=2),
        "failed": failed,
    }


@pytest.mark.parametrize("name, pictures", [
    ("reg", ["curves.png", "fit.png"]),
    ("moons", ["curves.png", "decision.png"]),
    ("digits", ["curves.png", "confusion.png"]),
])
def test_plot_run_writes_the_pictures_that_fit_the_run(trained, name, pictures):
    run_dir = trained[name]
    paths = plot_run(run_dir)
    assert [p.name for p in paths] == pictures
    for path in paths:
        assert path.parent == run_dir
        width, height = png_size(path)
        assert 500 <= width <= 2500 and 400 <= height <= 2000, (path.name, width, height)
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]  # written atomically


def test_pictures_are_not_blank(trained):
    from matplotlib.image import imread

    for path in plot_run(trained["moons"]):
        pixels = imread(path)
        assert pixels.std() > 0.05, path.name


def test_nothing_to_plot_for_a_run_that_failed_before_an_epoch(trained):
    with pytest.raises(UsageError, match="nothing to plot .*status: failed"):
        plot_run(trained["failed"])


def test_cli_prints_the_paths(trained, tmp_path):
    run_dir = trained["reg"]
    out = run_zoo("plot", str(run_dir), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [str(run_dir / "curves.png"), str(run_dir / "fit.png")]


def test_missing_matplotlib_names_the_install_command(trained, tmp_path):
    out = subprocess.run([sys.executable, "-c", NO_MATPLOTLIB, str(trained["reg"])], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert out.stdout == ""
    assert out.stderr.splitlines() == [
        "error: zoo plot needs matplotlib, which is not installed: pip install 'zoo[plot]'"]
