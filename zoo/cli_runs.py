"""Commands that work on saved runs: ``zoo runs``, ``zoo predict``, ``zoo plot``, ``zoo sample``, ``zoo play``.

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

    from .api import runs
    from .runlist import format_table
    from .rundir import default_root
    from .tables import output_width

    explicit = root is not None
    root_path = Path(root) if explicit else default_root()
    hint = "" if explicit else ": 'zoo train' saves runs there; use --root DIR to look elsewhere"
    rows = runs(root)  # nothing trained under the default root yet: no rows; a bad --root is a UsageError
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


@click.command("sample")
@click.argument("run_dir", type=click.Path())
@click.option("-n", "n", type=click.IntRange(1, 10_000_000), default=64, show_default=True,
              help="How many samples to draw.")
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False),
              help="samples.npy (float32, (n, *input_shape), the data's units) or samples.png (a picture: 2-D "
                   "samples or images; needs matplotlib).")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True,
              help="Seed of the latent draws: the same seed gives the same samples.")
@click.option("--device", default="cpu", show_default=True, help="auto, cpu, cuda or cuda:N.")
def sample_cmd(run_dir: str, n: int, out: str, seed: int, device: str) -> None:
    """Draw samples from a run whose model can sample (a generation model, such as a GAN).

    \b
    zoo sample runs/ring-gan-20261129-010000 -n 1000 --out samples.npy
    zoo sample runs/ring-gan-20261129-010000 -n 2000 --out samples.png
    """
    from pathlib import Path

    from .config import check_device
    from .errors import UsageError

    check_device(device)
    if Path(out).suffix.lower() not in (".npy", ".png"):
        raise UsageError(f"--out {out}: write samples to a .npy or .png file")
    if Path(out).suffix.lower() == ".png":
        from .plots import require_matplotlib

        require_matplotlib("zoo sample --out *.png")
    from .sampling import sample, write_samples

    samples = sample(run_dir, n, seed=seed, device=device)
    path = write_samples(samples, out, title=f"{n} samples of {Path(run_dir).name}")
    click.echo(f"wrote {n} samples of shape {tuple(samples.shape[1:])} to {path}", err=True)


@click.command("play")
@click.argument("run_dir", type=click.Path())
@click.option("--episodes", "-n", type=click.IntRange(1, 1_000_000), default=10, show_default=True,
              help="How many episodes to run.")
@click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=None,
              help="Reset seed of the first episode (then seed+1, ...); default: the test split's fixed seeds, "
                   "so the first episodes are those 'zoo eval' scores.")
@click.option("--device", default="cpu", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def play_cmd(run_dir: str, episodes: int, seed: int | None, device: str, as_json: bool) -> None:
    """Run a saved control run's greedy policy in its environment; print each episode's return and length.

    \b
    zoo play runs/cartpole-dqn-20261129-010000 --episodes 10
    """
    from .api import play
    from .config import check_device

    check_device(device)
    eps = play(run_dir, episodes, seed=seed, device=device)
    returns, lengths = eps.returns.tolist(), eps.lengths.tolist()
    if as_json:
        click.echo(json.dumps({"returns": returns, "lengths": lengths}, indent=2))
        return
    for i, (r, n) in enumerate(zip(returns, lengths)):
        click.echo(f"episode {i + 1:>{len(str(episodes))}}  return {r:10.2f}  steps {n}")
    mean = sum(returns) / len(returns)
    std = (sum((r - mean) ** 2 for r in returns) / len(returns)) ** 0.5
    click.echo(f"mean return {mean:.2f} +- {std:.2f} (min {min(returns):.2f}, max {max(returns):.2f}) over "
               f"{episodes} episode{'s' if episodes != 1 else ''}")


COMMANDS: list = [runs_cmd, predict_cmd, plot_cmd, sample_cmd, play_cmd]
