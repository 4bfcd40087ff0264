"""``zoo export``: a saved run's model as an ONNX file or a ``torch.export`` program, checked before it is kept.

``zoo.cli`` registers every command in :data:`COMMANDS`. Module-level imports stay light: torch, onnx and
onnxruntime are imported inside the command (``zoo --help`` imports none of them).
"""

from __future__ import annotations

import json

import click


@click.command("export")
@click.argument("run_dir", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["onnx", "pt2"]), required=True,
              help="onnx: one .onnx file (torch's dynamo-based exporter; needs zoo[export]); pt2: a torch.export "
                   "program (torch.export.load(path).module()).")
@click.option("--out", "-o", type=click.Path(dir_okay=False), default=None,
              help="Where to write it (default: RUN_DIR/model.onnx or RUN_DIR/model.pt2).")
@click.option("--opset", type=click.IntRange(18, 99), default=None,
              help="ONNX opset (default 20); --format onnx only.")
@click.option("--tolerance", type=click.FloatRange(0, None), default=None,
              help="Export check: every output within X * (1 + |model's|) of the run's model on its test split "
                   "(default 1e-4 for onnx, 1e-6 for pt2; 0: identical).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def export_cmd(run_dir: str, fmt: str, out: str | None, opset: int | None, tolerance: float | None,
               as_json: bool) -> None:
    """Export a run's model: raw inputs in, the data's units out (logits for classes), dynamic batch.

    The exported file is run on the run's test split (onnxruntime, or torch.export.load) and must match the
    run's model within the tolerance; otherwise it is not kept and one line names the largest difference.

    \b
    zoo export runs/digits-cnn-20261129-010000 --format onnx
    zoo export runs/digits-cnn-20261129-010000 --format pt2 --out digits.pt2
    """
    import math

    from .errors import UsageError

    if tolerance is not None and not math.isfinite(tolerance):
        raise UsageError(f"--tolerance {tolerance}: the tolerance must be a finite number >= 0")
    from .exporting import export_run

    result = export_run(run_dir, fmt, out, opset=opset, tolerance=tolerance)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2, allow_nan=False))
        return
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(result.summary())


COMMANDS: list = [export_cmd]
