"""The ``zoo`` command: a thin shell over the Python API.

Start-up matters: nothing here imports torch or scikit-learn at module level;
``train``/``eval`` import the engine inside the command.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

import click

from . import __version__
from .errors import UsageError, ZooError, did_you_mean
from .errors import one_line as _one_line
from .launch import RECORD_ENV
from .kinds import KIND_TABLE, KINDS, PLURAL
from .registry import get_registry
from .settings import FLAGS, TRAIN_PARAMS


DEBUG_ENV = "ZOO_DEBUG"


def _process_rank() -> int:
    """This process's rank in a run a launcher started (0 otherwise)."""
    try:
        return int(os.environ.get("RANK", "0")) if "LOCAL_RANK" in os.environ else 0
    except ValueError:
        return 0


class ZooGroup(click.Group):
    """Turns ZooError into one line on stderr and a non-zero exit, never a traceback.

    It is also the last line of defence: any other exception (a bug in zoo or in a plugin)
    is one line too, with the way to get its traceback (``ZOO_DEBUG=1``, which the test
    suite sets, so that such bugs still fail tests with their traceback).
    """

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ZooError as exc:
            rank = _process_rank()
            if rank and exc.shared:  # every process raised it: the first one reports
                sys.exit(exc.exit_code)
            if getattr(exc, "peer_failure", False) and os.environ.get(RECORD_ENV):
                sys.exit(exc.exit_code)  # another process died: the 'zoo train --nproc' that started us says which
            click.echo(f"error: {f'[process {rank}] ' if rank else ''}{_one_line(exc)}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except BrokenPipeError:  # `zoo list | head`: the reader left; nothing more to say
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(0)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            if os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on"):
                raise
            where = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
            at = f" (at {Path(where[0].filename).name}:{where[0].lineno})" if where else ""
            click.echo(f"error: unexpected {type(exc).__name__}: {_one_line(exc, 500)}{at}; this is a bug in zoo or "
                       f"in a plugin: run again with {DEBUG_ENV}=1 for the traceback, and please report it",
                       err=True)
            sys.exit(1)

    def resolve_command(self, ctx, args):
        name = args[0] if args else None
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            raise click.UsageError(f"no command '{name}'{did_you_mean(name, self.list_commands(ctx))}", ctx)
        return super().resolve_command(ctx, args)


@click.group(cls=ZooGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="zoo")
def main() -> None:
    """A plugin-style PyTorch model zoo: list, explain, train and evaluate models.

    \b
    zoo list                      what the installed plugins contribute
    zoo info mlp                  one component in detail
    zoo train regression-mlp      train a recipe, save a run
    zoo train --dataset moons --model mlp --loss cross-entropy
    zoo eval runs/<run>           reload a run and recompute its metrics
    """


def _tasks(spec) -> str:
    if spec.kind == "recipe":
        return ""
    return ",".join(spec.tasks)


@main.command("list")
@click.argument("kind", required=False, metavar="[KIND|settings]")
@click.argument("pattern", required=False)
@click.option("--task",
              help="Only what supports this task (regression, binary, multiclass, reconstruction, generation).")
@click.option("--input", "input_kind", help="Only what takes this input kind (tabular, image, sequence).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def list_cmd(kind: str | None, pattern: str | None, task: str | None, input_kind: str | None, as_json: bool) -> None:
    """List what the installed plugins contribute, of one KIND or all (optionally filtered by PATTERN).

    KIND is one of: datasets, models, losses, optimizers, schedules, procedures, strategies,
    metrics, callbacks, recipes. 'zoo list settings' lists the training settings (as 'zoo info train').
    """
    from .api import _component_rows, components

    if kind == "settings":
        _print_settings(as_json)
        return
    if as_json:
        items = components(kind, pattern, task=task, input=input_kind)
        click.echo(json.dumps({"items": items, "problems": get_registry().problems()}, indent=2))
        return
    reg = get_registry()
    kinds, rows = _component_rows(kind, pattern, task=task, input=input_kind, registry=reg)
    from .tables import format_table, output_width

    width = output_width()
    for k in kinds:
        section = [e for kk, e in rows if kk == k]
        if not section:
            continue
        click.secho(PLURAL[k], bold=True)
        header = ("NAME", "PLUGIN", "COMPONENTS" if k == "recipe" else "TASKS", "SUMMARY")
        default = KINDS[k].default
        table = [
            (e.name, e.plugin.name, _tasks(e.spec) if k != "recipe" else f"{e.spec.dataset}+{e.spec.model}+{e.spec.loss}",
             ("(default) " if e.name == default else "") + e.spec.summary)
            for e in section
        ]
        click.echo(format_table(header, table, max_width=width, shrink=(3,), min_width=20, indent="  "))
    if not rows:
        click.echo("nothing matches" if pattern else "no plugins installed")
    for problem in reg.problems():
        click.secho(f"warning: {problem}", err=True, fg="yellow")


@main.command("info")
@click.argument("name")
@click.option("--input-shape", "input_shape", metavar="SHAPE",
              help="For a model or recipe: build it for one sample of this shape (1,8,8 as digits' images, C,H,W; "
                   "T,F for sequences; D for tabular) and report its parameters and multiply-accumulates.")
@click.option("--outputs", type=click.IntRange(min=1), metavar="N",
              help="With --input-shape: the model's outputs (default 10; for a reconstruction-only model, the "
                   "input's size).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="With --input-shape: a model hyperparameter (repeatable; a recipe's own are the defaults).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def info_cmd(name: str, input_shape: str | None, outputs: int | None, sets: tuple[str, ...], as_json: bool) -> None:
    """Explain a component (a dataset, model, loss, optimizer, schedule, metric, callback, procedure,
    strategy or recipe): summary, plugin, tasks, hyperparameters and how to use it.

    'zoo info train' lists every training setting (type, default, bounds, what it does).
    'zoo info resnet --input-shape 1,8,8' also builds a model (or a recipe's model) for that input
    and gives its size: parameters and multiply-accumulates of one sample's forward pass.
    """
    from .api import _check_info_args, _info_entries, info
    from .config import parse_sets

    _check_info_args(name, input_shape, outputs, sets)
    overrides = parse_sets(sets)
    if name == "train" and not get_registry().find(name):
        if input_shape is not None:
            raise UsageError("--input-shape applies to models and recipes, not to 'zoo info train'")
        _print_settings(as_json)
        return
    if as_json:
        click.echo(json.dumps(info(name, input_shape=input_shape, outputs=outputs, params=overrides), indent=2,
                              default=str))
        return
    reg, found, sizes = _info_entries(name, input_shape, outputs, overrides)
    for i, e in enumerate(found):
        if i:
            click.echo()
        s, p = e.spec, e.plugin
        click.secho(f"{s.name} ({s.kind})", bold=True)
        click.echo(f"  {s.summary}")
        click.echo(f"  plugin:   {p.name} ({p.dist} {p.version})")
        if p.contract:
            click.echo(f"  contract: checked against zoo contract {p.contract}")
        if s.kind == "recipe":
            click.echo(f"  dataset:  {s.dataset}  {_fmt_params(s.dataset_params)}")
            click.echo(f"  model:    {s.model}  {_fmt_params(s.model_params)}")
            click.echo(f"  loss:     {s.loss}  {_fmt_params(s.loss_params)}")
            if s.train:
                click.echo(f"  training: {_fmt_params(s.train)}")
            click.echo(f"  run it:   zoo train {s.name}")
            click.echo(f"  size:     {_size_line(reg, e, name, sizes[id(e)])}")
            continue
        if s.tasks:
            click.echo(f"  tasks:    {', '.join(s.tasks)}")
        use = _how_to_use(s)
        if use:
            click.echo(f"  use:      {use}")
        if s.kind == "dataset":
            click.echo(f"  input:    {s.input}")
            if s.infer_task:
                click.echo(f"            (the task is inferred from its parameters: {s.infer_task})")
        elif s.kind == "model":
            click.echo(f"  inputs:   {', '.join(s.inputs)}")
            if tuple(s.outputs) != ("output",):
                click.echo(f"  outputs:  {', '.join(s.outputs)}")
            click.echo(f"  size:     {_size_line(reg, e, name, sizes[id(e)])}")
        elif s.kind == "loss":
            click.echo(f"  targets:  {s.target}")
            if s.reads:
                click.echo(f"  reads:    {', '.join(s.reads)} (model outputs beside the prediction)")
            if s.default_for:
                click.echo(f"  default:  the loss 'zoo train' picks for {', '.join(s.default_for)} tasks "
                           "when none is named")
        elif s.kind == "metric":
            click.echo(f"  better:   {'higher' if s.higher_is_better else 'lower'}")
            if s.default_for:
                click.echo(f"  default:  reported by every {', '.join(s.default_for)} run")
        elif s.kind == "schedule" and s.warmup:
            click.echo("  warm-up:  applies warmup_epochs (a linear warm-up) itself")
        click.echo(f"  implementation: {s.impl}")
        if getattr(s, "fast", None):
            click.echo(f"  per epoch:      {s.fast} (torch; the history's figures)")
        if s.params:
            prefix = f"callback.{s.name}" if s.kind == "callback" else s.kind
            click.echo(f"  hyperparameters (zoo train --set {prefix}.KEY=VALUE):")
            click.echo(_param_table(s.params, indent="    "))
        else:
            click.echo("  hyperparameters: none")


#: How to write one sample's shape for --input-shape, by input kind: (the form, an example).
_SHAPE_FORMS = {"image": ("C,H,W", "1,8,8"), "sequence": ("T,F", "64,1"), "tabular": ("D", "30")}


def _si(n: float) -> str:
    """1234 -> '1.23 k', 5786880 -> '5.79 M' (three significant digits)."""
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return str(int(n))


def _size_line(reg, entry, name: str, size: dict | None) -> str:
    """The 'size:' line of 'zoo info': the measured size, or how to ask for it."""
    spec = entry.spec
    if size is not None:
        defaults = {k: list(p.default) if isinstance(p.default, tuple) else p.default
                    for k, p in reg.get("model", size["model"]).spec.params.items()}
        changed = {k: v for k, v in size["model_params"].items() if v != defaults[k]}
        settings = f" ({_fmt_params(changed)})" if changed else ""
        outputs = f"{size['outputs']} output{'s' if size['outputs'] != 1 else ''}"
        return (f"for input {tuple(size['input_shape'])} with {outputs}{settings}: "
                f"{size['parameters']:,} parameters, {_si(size['macs'])} multiply-accumulates")
    if spec.kind == "recipe":  # its dataset's shape is only known once the data is loaded
        try:
            kind = reg.get("dataset", spec.dataset).spec.input
        except ZooError:
            kind = None
        form = _SHAPE_FORMS[kind][0] if kind in _SHAPE_FORMS else "SHAPE"
        return f"depends on the input: zoo info {name} --input-shape {form} (one sample of dataset '{spec.dataset}')"
    forms = [f"{_SHAPE_FORMS[k][0]} ({k})" for k in spec.inputs if k in _SHAPE_FORMS] or ["SHAPE"]
    example = f", e.g. {_SHAPE_FORMS[spec.inputs[0]][1]}" if len(forms) == 1 and spec.inputs[0] in _SHAPE_FORMS else ""
    forms = forms[0] if len(forms) == 1 else ", ".join(forms[:-1]) + " or " + forms[-1]
    return f"depends on the input: zoo info {name} --input-shape {forms}{example}"


def _how_to_use(spec) -> str:
    """How a user chooses this component, or '' (datasets, models, losses and recipes say it elsewhere)."""
    kind = KINDS[spec.kind]
    if kind.part and spec.kind not in ("dataset", "model", "loss"):
        default = " (the default)" if spec.name == kind.default else ""
        return f"zoo train ... --{spec.kind} {spec.name}{default}"
    if spec.kind == "metric":
        return f"zoo train ... --set metrics={spec.name} (reported as val_{spec.name}; monitor=val_{spec.name})"
    if spec.kind == "callback":
        return f"zoo train ... --callback {spec.name}, or zoo.train(..., callbacks=['{spec.name}'])"
    return ""


def _param_default(prm) -> str:
    if prm.required:
        return "required"
    d = prm.default
    if isinstance(d, (list, tuple)):
        return ",".join(map(str, d))
    if isinstance(d, bool):
        return "true" if d else "false"
    return '""' if d == "" else str(d)


def _param_allowed(prm) -> str:
    if prm.choices:
        return "one of " + ", ".join(map(str, prm.choices))
    return prm.bounds()


def _param_table(params, indent: str = "  ") -> str:
    """KEY  TYPE  DEFAULT  ALLOWED  HELP, one parameter a line, from the declarations themselves."""
    from .tables import format_table, output_width

    rows = [(k, p.type, _param_default(p), _param_allowed(p), p.help) for k, p in params.items()]
    return format_table(("KEY", "TYPE", "DEFAULT", "ALLOWED", "WHAT IT DOES"), rows, max_width=output_width(),
                        shrink=(4, 3), min_width=28, indent=indent, wrap=(4, 3))


def _print_settings(as_json: bool) -> None:
    if as_json:
        from .api import training_settings

        click.echo(json.dumps(training_settings(), indent=2))
        return
    click.secho("training settings", bold=True)
    click.echo("  zoo train --set KEY=VALUE (or train.KEY), a [train] table in a config file, or zoo.train(KEY=...);")
    click.echo("  the common ones also have flags (" + ", ".join(f"--{k.replace('_', '-')}" for k in FLAGS[:3])
               + ", ...).")
    click.echo(_param_table(TRAIN_PARAMS))
    click.secho("parts of a run chosen by name (each with its own hyperparameters: zoo info NAME)", bold=True)
    for kind in KIND_TABLE:
        if kind.part and kind.default:
            click.echo(f"  --{kind.name:<10} {kind.doc}; default {kind.default} (zoo list {kind.plural})")
    click.echo("  --callback   observers of the loop, repeatable (zoo list callbacks); --set metrics=NAME,... adds "
               "metrics (zoo list metrics)")
    click.echo("  --track      trackers (callbacks): tensorboard, mlflow; --set track.KEY=VALUE (zoo info mlflow)")


@main.command("plugins")
@click.option("--check", is_flag=True,
              help="Also import every implementation and check it accepts its declared parameters; exit 1 on any "
                   "problem.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def plugins_cmd(check: bool, as_json: bool) -> None:
    """Each plugin: distribution, version, entry point, contributions, and its error if it failed.

    With --check, also verify every plugin as ZOO_STRICT_PLUGINS=1 does: each implementation
    imports and accepts its declared parameters. Prints each problem and exits 1 if there are any.
    """
    reg = get_registry()
    plugins = sorted(reg.plugins.values(), key=lambda p: p.name)
    problems = reg.problems() + (reg.verify() if check else [])
    if as_json:
        out = {"plugins": [p.describe() for p in plugins], "problems": problems}
        if check:
            out["verified"] = not problems
        click.echo(json.dumps(out, indent=2))
        if check and problems:
            sys.exit(1)
        return
    if not plugins:
        click.echo("no plugins installed (entry-point group 'zoo')")
    for p in plugins:
        state = click.style("failed", fg="red") if p.error else click.style("ok", fg="green")
        click.secho(f"{p.name}", bold=True, nl=False)
        click.echo(f"  {p.dist} {p.version}  [{state}]")
        click.echo(f"  entry point: {p.name} = {p.value}")
        if p.contract:
            click.echo(f"  contract:    {p.contract}")
        for kind in KINDS:
            names = p.contributes.get(kind)
            if names:
                click.echo(f"  {PLURAL[kind] + ':':<12} {', '.join(names)}")
        if p.error:
            click.echo(f"  error:       {p.error}")
    if check:
        if plugins:
            click.echo()
        for problem in problems:
            click.secho(f"problem: {problem}", fg="red")
        if problems:
            click.echo(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} found")
            sys.exit(1)
        impls = sum(len(names) for p in plugins for kind, names in p.contributes.items() if kind != "recipe")
        click.echo(f"all {len(plugins)} plugin{'s' if len(plugins) != 1 else ''} verified: {impls} "
                   f"implementation{'s' if impls != 1 else ''} checked (each imports and accepts its declared "
                   "parameters)")
        return
    conflicts = [x for x in problems if "contributed by both" in x]
    for c in conflicts:
        click.secho(f"warning: {c}", err=True, fg="yellow")


def _fmt_params(params) -> str:
    return " ".join(f"{k}={','.join(map(str, v)) if isinstance(v, (list, tuple)) else v}" for k, v in params.items())


_CLICK_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


def _setting_flags(command):
    """The ``zoo train`` flags generated from the declarations: the settings in :data:`zoo.settings.FLAGS`, a
    flag per part of a run chosen by name (``--optimizer``, ``--schedule``, ...), ``--weight-decay``."""
    for key in reversed(FLAGS):
        p = TRAIN_PARAMS[key]
        command = click.option(f"--{key.replace('_', '-')}", key, type=_CLICK_TYPES.get(p.type, str),
                               help=p.help[:1].upper() + p.help[1:] + ".")(command)
    command = click.option("--weight-decay", "weight_decay", type=float,
                           help="The optimizer's weight decay (as --set optimizer.weight_decay).")(command)
    for kind in reversed([k for k in KIND_TABLE if k.part and k.default]):
        command = click.option(f"--{kind.name}", kind.name,
                               help=f"The {kind.name} ({kind.doc}): a name from 'zoo list {kind.plural}' "
                                    f"(default {kind.default}).")(command)
    return command


@main.command("train")
@click.argument("recipe", required=False)
@click.option("--dataset", "-d", help="Dataset name (overrides the recipe's).")
@click.option("--model", "-m", help="Model name (overrides the recipe's).")
@click.option("--loss", "-l", help="Loss name (overrides the recipe's; default: the dataset task's default loss).")
@_setting_flags
@click.option("--callback", "callbacks", multiple=True, metavar="NAME",
              help="Enable a callback ('zoo list callbacks'; repeatable; --set callback.NAME.KEY=VALUE sets its "
                   "parameters).")
@click.option("--track", "track", multiple=True, metavar="NAME",
              help="Send the run to a tracker: tensorboard, mlflow (a callback; repeatable; --set track.KEY=VALUE "
                   "sets its parameters, e.g. track.uri=...; needs pip install 'zoo[track]').")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="A hyperparameter or setting, e.g. model.hidden=64,64, dropout=0.1, clip_grad=1 (repeatable; "
                   "'zoo info train' lists every training setting).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="TOML, YAML or JSON file: [dataset], [model], [loss], [train] tables with the keys --set takes "
                   "(a run's config.json repeats the run).")
@click.option("--print-config", is_flag=True, help="Print the fully resolved config (what --config reads) and exit.")
@click.option("--format", "config_format", type=click.Choice(["toml", "yaml", "json"]), default="toml",
              show_default=True, help="The format --print-config prints.")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False),
              help="Continue this run directory (only --epochs, the total, and --device may change).")
@click.option("--out", type=click.Path(file_okay=False), help="Run directory to create (default runs/<name>-<time>).")
@click.option("--plot", is_flag=True, help="Also write the run's pictures (as 'zoo plot').")
@click.option("--nproc", type=click.IntRange(1, 1024), metavar="N",
              help="Train on N processes of this machine (distributed data parallel, started by torchrun; one per "
                   "GPU on CUDA).")
@click.option("--max-restarts", type=click.IntRange(0, 1000), default=0, show_default=True, metavar="N",
              help="With --nproc: restart the processes up to N times after a failure; they continue from the last "
                   "checkpoint.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
def train_cmd(recipe, dataset, model, loss, callbacks, track, sets, config_file, print_config, config_format,
              resume_dir, out, plot, nproc, max_restarts, quiet, **flags):
    """Train RECIPE, or --dataset/--model/--loss, and save a run directory.

    \b
    zoo train regression-mlp
    zoo train --dataset moons --model mlp --loss cross-entropy --set hidden=32,32
    zoo train --dataset moons --model mlp          (the task's default loss)
    zoo train moons-mlp --print-config > experiment.toml
    zoo train --config experiment.toml --epochs 50
    zoo train --resume runs/regression-mlp-20261126-151201 --epochs 120
    zoo train moons-mlp --track tensorboard --track mlflow
    zoo train digits-resnet --nproc 2
    """
    from .config import parse_sets, resolve
    from .launch import launch_env
    from .restarts import previous_attempt
    from .progress import reporter_for

    env = launch_env()
    if env is not None and nproc is not None:
        raise UsageError("--nproc starts the processes; under torchrun (which started this one) leave it out")
    if max_restarts and nproc is None:
        raise UsageError("--max-restarts needs --nproc (under torchrun, give torchrun --max-restarts)")
    writer = env is None or env.rank == 0
    quiet = quiet or not writer  # one process reports; the others train silently
    if plot:  # fail before training, not after, when matplotlib is missing
        from .plots import require_matplotlib

        require_matplotlib()

    if resume_dir is not None:
        extra = [f"--{k.replace('_', '-')}" for k, v in flags.items() if v is not None and k not in ("epochs", "device")]
        extra += [f for f, v in (("RECIPE", recipe), ("--dataset", dataset), ("--model", model), ("--loss", loss),
                                 ("--callback", callbacks), ("--track", track), ("--set", sets),
                                 ("--config", config_file), ("--out", out), ("--print-config", print_config)) if v]
        if extra:
            raise UsageError(f"--resume continues a run with its own config; only --epochs (the total) and --device "
                             f"may be given, not {', '.join(extra)}")
        from . import engine
        from .settings import check_device

        if flags["device"]:
            check_device(flags["device"])
        if nproc is not None:
            from .rundir import RunDir

            RunDir(resume_dir).read_config()  # a run that cannot be resumed is refused before any process starts
            _launch(nproc, max_restarts)
        run = engine.resume(resume_dir, epochs=flags["epochs"], device=flags["device"], reporter=reporter_for(quiet))
    else:
        from .configfile import dump, load, to_document

        base = load(config_file) if config_file else None
        cfg = resolve(recipe, dataset=dataset, model=model, loss=loss, sets=parse_sets(sets), base=base,
                      note=None if quiet or nproc else (lambda text: click.echo(f"note: {text}", err=True)),
                      callbacks=list(callbacks), track=list(track), world_size=nproc, **flags)
        if print_config:
            click.echo(dump(to_document(cfg), config_format), nl=False)
            return
        if nproc is not None:  # the config is checked (for nproc processes): now start them
            _launch(nproc, max_restarts)
        from . import engine

        earlier = previous_attempt(out)  # restarted by the launcher: continue the run the failed attempt began
        if earlier is not None:
            run = engine.resume(earlier, reporter=reporter_for(quiet))
        else:
            run = engine.fit(cfg, out=out, reporter=reporter_for(quiet))
    if not writer:
        _leave_worker()
        return
    for split in ("val", "test"):
        click.echo(f"{split:<5} " + "  ".join(f"{k} {v:.4f}" for k, v in run.metrics[split].items()))
    note = f", best epoch {run.best_epoch} of {len(run.history)}" if run.best_epoch != len(run.history) else ""
    click.echo(f"saved {run.dir}/model.safetensors ({run.status}{note}; reload check passed)")
    if plot:  # the run is finished and saved: a picture that fails is a warning, never a failed run
        from .plots import plot_run

        try:
            for path in plot_run(run.dir, warn=lambda text: click.secho(f"warning: {text}", err=True, fg="yellow")):
                click.echo(f"wrote {path}")
        except ZooError as exc:
            click.secho(f"warning: no pictures: {exc}", err=True, fg="yellow")
    _leave_worker()


def _leave_worker() -> None:
    """A process a launcher started, its run finished and saved (the process group already destroyed): exit now,
    without the interpreter's finalisation. There, collective-library objects the run still references (the DDP
    reducer's buffers, gloo's worker threads) were torn down in an arbitrary order and, on a loaded machine, one
    process in a few aborted ("terminate called without an active exception"), so the launcher reported a
    finished run as failed. Nothing is left to write: every file of the run is complete and closed."""
    from .launch import launch_env

    env = launch_env()
    if env is None or env.world_size < 2:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _launch(nproc: int, max_restarts: int) -> None:
    """Run this same ``zoo train`` command (without ``--nproc``) on ``nproc`` processes under torchrun; exit with
    their outcome."""
    from .launch import run_torchrun

    argv, skip = [], False
    for arg in sys.argv[1:]:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in ("--nproc", "--max-restarts"):
            skip = "=" not in arg
            continue
        argv.append(arg)
    sys.exit(run_torchrun(argv, nproc, max_restarts))


@main.command("eval")
@click.argument("run_dir", type=click.Path())
@click.option("--split", type=click.Choice(["test", "val", "train"]), default="test", show_default=True)
@click.option("--input", "-i", "input_path", type=click.Path(dir_okay=False),
              help="Score a new labelled file instead of a split: .npz with arrays X (raw inputs) and y, or .csv "
                   "(inputs then the target column; a CSV-trained run: raw rows with a header naming the target).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def eval_cmd(run_dir: str, split: str, input_path: str | None, device: str, as_json: bool) -> None:
    """Rebuild a run's model, load its weights strictly and recompute its metrics.

    \b
    zoo eval runs/moons-mlp-20261126-151201               the test split, rebuilt from the seed
    zoo eval runs/moons-mlp-20261126-151201 --split val
    zoo eval runs/moons-mlp-20261126-151201 --input new.npz   a new labelled file
    """
    from .api import evaluate
    from .settings import check_device

    check_device(device)
    source = f"{input_path}" if input_path else split
    result = evaluate(run_dir, split=split, device=device, input=input_path)
    if as_json:
        click.echo(json.dumps({"input" if input_path else "split": source, **result}, indent=2))
    else:
        click.echo(f"{'file' if input_path else split:<5} " + "  ".join(f"{k} {v:.4f}" for k, v in result.items()))


@main.command("new-plugin")
@click.argument("name")
@click.option("--dir", "parent_dir", default=".", show_default=True, type=click.Path(file_okay=False),
              help="Where to create the zoo-NAME package directory.")
def new_plugin_cmd(name: str, parent_dir: str) -> None:
    """Write a ready plugin package zoo-NAME: an example dataset, model, loss, recipe and tests."""
    import shlex
    from pathlib import Path

    from .scaffold import module_name, write_plugin

    path = write_plugin(name, Path(parent_dir)).resolve()
    shown = shlex.quote(str(path))
    click.echo(f"created {path} (plugin '{name}', module {module_name(name)})")
    click.echo("next steps:")
    click.echo(f"  pip install -e {shown}")
    click.echo("  zoo list")
    click.echo(f"  cd {shown} && python -m pytest")


def _register_run_commands() -> None:
    from .cli_export import COMMANDS as EXPORT_COMMANDS
    from .cli_runs import COMMANDS
    from .cli_tune import COMMANDS as TUNE_COMMANDS

    for command in COMMANDS + TUNE_COMMANDS + EXPORT_COMMANDS:
        main.add_command(command)


_register_run_commands()
