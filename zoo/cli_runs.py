"""Commands that work on saved runs: ``zoo runs``, ``zoo predict``, ``zoo plot``.

``zoo.cli`` registers every command in :data:`COMMANDS` on the ``zoo`` group. Keep
module-level imports light: torch, numpy, scikit-learn and matplotlib are imported
inside the commands that need them (``zoo runs`` needs none of them).
"""

from __future__ import annotations

import json
import sys

import click


@click.command("runs")
@click.option("--root", "--dir", "root", type=click.Path(), default=None, metavar="DIR",
              help="Directory holding run directories (default: runs in the current directory, "
                   "or $ZOO_RUNS_DIR).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def runs_cmd(root: str | None, as_json: bool) -> None:
    """List saved runs, newest first: status, epochs, best value and test figure."""
    from pathlib import Path

    from .runlist import format_table, list_runs
    from .runs import default_root
    from .tables import output_width

    explicit = root is not None
    root_path = Path(root) if explicit else default_root()
    hint = "" if explicit else ": 'zoo train' saves runs there; use --root DIR to look elsewhere"
    if not explicit and not root_path.exists():
        rows = []  # nothing trained here yet: not an error
    else:
        rows = list_runs(root_path)  # a missing or non-directory --root is a UsageError
    if as_json:
        click.echo(json.dumps(rows, indent=2, allow_nan=False))
        return
    if not rows:
        click.echo(f"no runs in {root_path.absolute()}{hint}")
        return
    click.echo(format_table(rows, max_width=output_width()))


@click.command("predict")
@click.argument("run_dir", type=click.Path())
@click.option("--input", "-i", "input_path", required=True, type=click.Path(),
              help="Raw inputs: a .csv (optional header row) or a .npy array.")
@click.option("--output", "-o", type=click.Path(dir_okay=False),
              help="Write the predictions CSV here (atomically) instead of to stdout.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
def predict_cmd(run_dir: str, input_path: str, output: str | None, device: str) -> None:
    """Predict with a saved run on new raw inputs; the run's preprocessing is applied.

    \b
    Output CSV: regression 'prediction' (or prediction_0..k-1) in the data's units;
    classification 'label' then one 'prob_<class>' column per class.
    """
    from .config import check_device

    check_device(device)
    from .inference import predict_file

    text = predict_file(run_dir, input_path, output, device=device)
    if output is None:
        sys.stdout.write(text)
    else:
        click.echo(f"wrote {text.count(chr(10)) - 1} predictions to {output}", err=True)


@click.command("plot")
@click.argument("run_dir", type=click.Path())
def plot_cmd(run_dir: str) -> None:
    """Draw a run's pictures (PNG, into the run directory) and print their paths.

    \b
    curves.png     training/validation loss and validation metrics by epoch
    fit.png        regression on one feature: the data and the fitted curve
    decision.png   classification on two features: decision regions and points
    confusion.png  multiclass: the test-split confusion matrix
    """
    from .plots import require_matplotlib

    require_matplotlib()
    from .plots import plot_run

    failed = []

    def warn(text: str) -> None:
        failed.append(text)
        click.secho(f"warning: {text}", err=True, fg="yellow")

    for path in plot_run(run_dir, warn=warn):
        click.echo(str(path))
    if failed:
        sys.exit(1)


COMMANDS: list = [runs_cmd, predict_cmd, plot_cmd]
