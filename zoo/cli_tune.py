"""``zoo tune``: a hyperparameter search on Optuna (see :mod:`zoo.tuning`).

``zoo.cli`` registers :data:`COMMANDS` on the ``zoo`` group. Nothing here imports optuna, torch or
matplotlib at module level, so ``zoo --help`` and ``zoo tune --help`` stay fast.
"""

from __future__ import annotations

import sys

import click


@click.command("tune")
@click.argument("recipe", required=False)
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="A config file (TOML, YAML or JSON, as zoo train --config reads) to start every trial from.")
@click.option("--trials", type=click.IntRange(1, 1_000_000), default=50, show_default=True,
              help="The study's total of complete and pruned trials; a resumed study trains only the rest.")
@click.option("--space", "spaces", multiple=True, metavar="KEY=DIST",
              help="A searched key, as --set names it: lr=log(1e-4,1e-1), dropout=float(0,0.5), "
                   "batch_size=int(16,128), model.hidden=choice(32;64,64) (repeatable; default: the space derived "
                   "from the declarations, see --print-space).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="A value fixed for every trial, as zoo train --set takes it (epochs=10, dataset.noise=0.3).")
@click.option("--storage", metavar="URL",
              help="Optuna database URL (default sqlite:///DIR/study.db); a PostgreSQL or MySQL URL shared by "
                   "several machines runs one study on all of them.")
@click.option("--study", "study_name", metavar="NAME", help="Study name (default: the recipe's name).")
@click.option("--dir", "study_dir", type=click.Path(file_okay=False), metavar="DIR",
              help="Where the trials' run directories and the outputs go (default runs/tune-STUDY, or under "
                   "$ZOO_RUNS_DIR).")
@click.option("--jobs", type=click.IntRange(1, 256), default=1, show_default=True, metavar="N",
              help="Worker processes on this machine, sharing the storage.")
@click.option("--pruner", type=click.Choice(["hyperband", "median", "none"]), default="hyperband",
              show_default=True, help="Stop unpromising trials early, judged on the monitored figure after each "
                                      "epoch (Hyperband: Optuna's advice with its TPE sampler).")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              help="Seed of the TPE sampler and of every trial's training (data split, initialisation).")
@click.option("--top", type=click.IntRange(1, 1000), default=10, show_default=True, metavar="N",
              help="How many of the best trials the table shows.")
@click.option("--no-plots", is_flag=True, help="Do not draw history.png, intermediate.png and importances.png.")
@click.option("--print-space", is_flag=True, help="Print the search space (one --space per line) and exit.")
@click.option("--quiet", "-q", is_flag=True, help="Only the table of the best trials.")
def tune_cmd(recipe, config_file, trials, spaces, sets, storage, study_name, study_dir, jobs, pruner, seed, top,
             no_plots, print_space, quiet):
    """Search RECIPE's hyperparameters with Optuna; every trial is a zoo run.

    \b
    zoo tune moons-mlp --trials 30
    zoo tune moons-mlp --space 'lr=log(1e-4,1e-1)' --space 'model.hidden=choice(32;64,64)'
    zoo tune diabetes-mlp --trials 50 --jobs 2 --pruner median
    zoo tune moons-mlp --storage postgresql://user:pw@db/zoo --study moons   (same command on each machine)
    zoo train --config runs/tune-moons-mlp/best.toml                          (re-train the best trial)

    \b
    Outputs in DIR: trial-NNNN/ (one run each), best.toml, trials.csv, summary.json, history.png,
    intermediate.png, importances.png; the same command again resumes the study up to --trials.
    """
    import time

    from .config import parse_sets
    from .tuning import open_study, prepare, require_optuna, run_workers, summarize

    t0 = time.perf_counter()
    base = None
    if config_file:
        from .configfile import load

        base = load(config_file)
    job, dims = prepare(recipe, config=base, trials=trials, space=list(spaces), params=parse_sets(sets),
                        storage=storage, study=study_name, dir=study_dir, pruner=pruner, seed=seed, quiet=quiet)
    if print_space:
        for d in dims:
            click.echo(d.text)
        return
    require_optuna()
    say = (lambda text: None) if quiet else (lambda text: click.echo(text, err=True))
    if not no_plots:
        from .plots import require_matplotlib

        require_matplotlib("zoo tune (for its pictures; --no-plots skips them)")
    open_study(job, note=lambda text: say(f"note: {text}"))
    direction = "minimise" if job.minimize else "maximise"
    say(f"study '{job.study}' ({direction} {job.monitor}, {job.pruner} pruner, {jobs} worker"
        f"{'s' if jobs != 1 else ''}) -> {job.dir}")
    say("space: " + "  ".join(job.space))
    run_workers(job, jobs, say)
    summary = summarize(job, plots=not no_plots, warn=lambda text: click.secho(f"warning: {text}", err=True,
                                                                                fg="yellow"),
                        seconds=time.perf_counter() - t0)
    from .tables import output_width

    if summary.best is None:
        click.echo(summary.counts_line())
        click.echo("no trial completed, so there is no best config")
        sys.exit(1)
    click.echo(summary.table(top, max_width=max(output_width(), 100)))
    click.echo(summary.counts_line())
    click.echo(f"best: trial {summary.best.number}, {job.monitor} {summary.best.value:.6g}; "
               f"re-train it: zoo train --config {summary.best_config}")
    for name in ("history", "intermediate", "importances", "trials", "summary"):
        if name in summary.files:
            say(f"wrote {summary.files[name]}")


COMMANDS: list = [tune_cmd]
