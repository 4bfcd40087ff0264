"""Exporting a saved run's model for use without zoo: ``zoo export RUN --format onnx|pt2`` and :func:`zoo.export`.

What is exported is the run's :class:`zoo.parts.RunModel` in eval mode, in float32 on the CPU: raw inputs in
(the fitted standardisation is part of the graph), the data's units out, with a dynamic batch dimension (the
other dimensions are the run's input shape). The one output is the model's prediction (see
:func:`output_spec`): class logits for classification (softmax, or sigmoid for a one-logit binary model, gives
probabilities), predictions in the data's units for regression and reconstruction, the discriminator's score
for a generation model (drawing samples is not exported) and the action values for a control run. A VAE's
code (``mu``/``logvar``) is not an output.

- ``onnx``: torch's dynamo-based exporter (``torch.onnx.export(..., dynamo=True)``, through ``torch.export``
  and onnxscript), one self-contained ``.onnx`` file (no external data), input ``input``, output named after
  what it holds (``logits``, ``prediction``, ``reconstruction``, ``score``, ``action_values``); the run's
  facts are in the model's metadata (``zoo.*`` keys). Needs the ``export`` extra (onnx, onnxruntime,
  onnxscript), imported only here.
- ``pt2``: ``torch.export.export`` saved with ``torch.export.save`` (``torch.export.load(path).module()``
  gives a callable module); the run's facts are in the archive's extra file ``zoo.json``.

The export check: the file is written under a temporary name beside its target, then loaded back the way a
user would (an onnxruntime ``InferenceSession`` on the CPU; ``torch.export.load(...).module()``) and run on
the run's test split (rebuilt from the config as ``zoo eval`` does, in raw units as ``zoo predict`` takes
them; at most :data:`CHECK_SAMPLES` samples, the first one alone and then batches of :data:`CHECK_BATCH`, so
the dynamic batch is exercised). Its outputs must match the run's model within ``|exported - model| <= tol *
(1 + |model|)`` everywhere; otherwise nothing is kept and one line names the largest absolute difference,
its test sample and its output column. Only a file that passed is renamed into place.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import re
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

from .errors import UsageError, ZooError

FORMATS = ("onnx", "pt2")
SUFFIX = {"onnx": ".onnx", "pt2": ".pt2"}
#: The ONNX opset written unless asked otherwise (torch's dynamo exporter's own default, 18 and up supported).
DEFAULT_OPSET = 20
#: Default tolerance of the export check, per format: ``|exported - model| <= tol * (1 + |model|)``.
#: onnxruntime's kernels (fused matrix products, other summation orders) differ from torch's in the last
#: bits of float32; a loaded exported program runs torch's own kernels.
DEFAULT_TOLERANCE = {"onnx": 1e-4, "pt2": 1e-6}
#: At most this many test samples are checked, the first alone and then in batches of CHECK_BATCH.
CHECK_SAMPLES = 2048
CHECK_BATCH = 256
#: The batch size of the example input the model is traced with (the batch dimension stays dynamic; torch
#: specialises sizes 0 and 1, so the example must not have one of those).
EXAMPLE_BATCH = 3
INPUT_NAME = "input"


class ExportError(ZooError):
    """A model that cannot be exported, or an exported file that fails the export check."""


class _FixedBatch(Exception):
    """The ONNX exporter kept a fixed batch size (a forward that depends on it)."""


@dataclass
class OutputSpec:
    """What the exported model's output holds: its name, its columns and one sentence for people."""

    name: str
    columns: list[str]
    description: str


@dataclass
class ExportResult:
    """What :func:`export_run` made: the file, and the export check's figures."""

    path: Path
    format: str
    input_name: str
    input_shape: list[Any]  # ["batch", *the run's input shape]
    output: OutputSpec
    opset: int | None  # onnx only
    tolerance: float
    checked: int  # test samples compared
    max_abs_diff: float
    worst_sample: int  # where max_abs_diff is (test sample index, output column)
    worst_column: str
    seconds: float
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path)
        return data

    def summary(self) -> str:
        """Two lines for people: what was written, and how well it matched."""
        shape = "(" + ", ".join(str(d) for d in self.input_shape) + ")"
        kind = f"ONNX opset {self.opset}" if self.format == "onnx" else "torch.export program"
        first = (f"wrote {self.path} ({kind}): input '{self.input_name}' {shape} in raw units -> output "
                 f"'{self.output.name}' (batch, {len(self.output.columns)}): {self.output.description}")
        runner = "onnxruntime" if self.format == "onnx" else "torch.export.load"
        second = (f"export check passed: {self.checked} test samples through {runner}, max abs difference "
                  f"{self.max_abs_diff:.3g} (sample {self.worst_sample}, column '{self.worst_column}'; tolerance "
                  f"{self.tolerance:g} * (1 + |expected|))")
        return first + "\n" + second


# -- what the output is -----------------------------------------------------------------


def output_spec(cfg: dict[str, Any]) -> OutputSpec:
    """The exported output of a run with config ``cfg``: name, columns (in order) and meaning."""
    meta = cfg["meta"]
    task = meta["task"]
    k = int(cfg.get("out_features") or meta.get("num_targets") or 1)
    if task in ("binary", "multiclass"):
        names = [str(c) for c in meta.get("class_names") or range(int(meta["num_classes"]))]
        if cfg["target"] == "binary":
            return OutputSpec("logits", [f"logit_{names[-1]}"],
                              f"the logit of class '{names[-1]}' (sigmoid gives its probability); not probabilities")
        return OutputSpec("logits", [f"logit_{n}" for n in names],
                          f"one logit per class ({', '.join(names[:10])}{', ...' if len(names) > 10 else ''}); "
                          "softmax gives the probabilities, argmax the class; not probabilities")
    numbered = (lambda stem: [stem] if k == 1 else [f"{stem}_{i}" for i in range(k)])
    if task == "regression":
        return OutputSpec("prediction", numbered("prediction"), "the prediction in the data's units")
    if task == "reconstruction":
        return OutputSpec("reconstruction", numbered("value"),
                          "the reconstruction, flattened, in the input's units")
    if task == "generation":
        return OutputSpec("score", numbered("score"),
                          "the discriminator's score (a logit: real vs generated); drawing samples is not exported")
    if task == "control":
        return OutputSpec("action_values", [f"value_{i}" for i in range(k)],
                          "the value of each action (argmax is the greedy action)")
    return OutputSpec("output", numbered("output"), "the model's output")


# -- the exported module -----------------------------------------------------------------


def _prediction_module(model):
    """``model`` (a RunModel) as a module returning its prediction alone, as float32 (a VAE's ``mu`` and
    ``logvar`` dropped)."""
    import torch

    class Prediction(torch.nn.Module):
        def __init__(self, run_model: torch.nn.Module) -> None:
            super().__init__()
            self.model = run_model

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.model(x)
            if isinstance(out, dict):
                out = out["output"]
            return out.float()

    return Prediction(model).eval()


@contextlib.contextmanager
def _quiet() -> Iterator[io.StringIO]:
    """Keep the exporters' progress prints, warnings and log records off the terminal (they are kept in the
    yielded buffer); one line is what a user sees."""
    buffer = io.StringIO()
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            warnings.simplefilter("ignore")
            yield buffer
    finally:
        logging.disable(previous)


def _reason(exc: BaseException) -> str:
    """One line saying why an exporter failed: the innermost cause's first informative line."""
    for err in reversed(_chain(exc)):
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        useful = [ln for ln in lines if not ln.startswith(("Failed to export the model with torch.export",
                                                          "This is step", "For more information",
                                                          "(Refer to the full stack trace", "Set TORCHDYNAMO",
                                                          "The above exception", "Traceback",
                                                          "Exception summary", "Error message",
                                                          "Explanation:", "Hint:", "Developer debug context"))]
        if useful:
            text = " ".join(useful[0].split())
            if text.startswith(("Constraints violated", "Not all values")) and len(useful) > 1:
                text = text + " " + " ".join(useful[1].split())
            text = re.sub(r"\s*For more information, run with TORCH_LOGS=\S+\s*", " ", text).strip()
            text = re.sub(r"\s+- You marked", " You marked", text)
            text = re.split(r"\s+If you're using (mark_dynamic|Dim)", text)[0]
            if len(text) > 240:
                text = text[:237] + "..."
            name = type(err).__name__
            return text if name.startswith("_") else f"{name}: {text}"
    return type(exc).__name__


def _why_not(exc: BaseException) -> str:
    """A plain-words hint for the common ways a model resists tracing with a dynamic batch."""
    text = " ".join(str(e) for e in _chain(exc))
    if "GuardOnDataDependentSymNode" in text or "data-dependent" in text or "data dependent" in text:
        return "its forward branches on the values of a tensor (data-dependent control flow)"
    if isinstance(exc, _FixedBatch) or "Constraints violated" in text \
            or ("batch" in text and ("specialized" in text or "guard" in text)):
        return "its forward depends on the batch size, which must stay dynamic"
    return ""


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and its causes, outermost first."""
    out: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and all(e is not seen for seen in out):
        out.append(e)
        e = e.__cause__ or e.__context__
    return out


def _export_onnx(module, example, path: Path, output: OutputSpec, opset: int, facts: dict[str, str]) -> None:
    import torch

    batch = torch.export.Dim("batch", min=1)
    program = torch.onnx.export(module, (example,), dynamo=True, dynamic_shapes=({0: batch},),
                                input_names=[INPUT_NAME], output_names=[output.name], opset_version=opset,
                                optimize=True, verify=False, report=False, verbose=False, external_data=False)
    batch_dim = program.model.graph.inputs[0].shape[0]
    if isinstance(batch_dim, int):  # the exporter fell back to a fixed batch: refuse, as torch.export does
        raise _FixedBatch(f"the exporter fixed the batch size at {batch_dim}")
    for key, value in facts.items():
        program.model.metadata_props[f"zoo.{key}"] = value
    program.save(str(path), external_data=False)


def _export_pt2(module, example, path: Path, facts: dict[str, str]) -> None:
    import torch

    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(module, (example,), dynamic_shapes=({0: batch},), strict=False)
    torch.export.save(program, str(path), extra_files={"zoo.json": json.dumps(facts, indent=2)})


# -- the export check --------------------------------------------------------------------


def _runner(fmt: str, path: Path):
    """A function running the exported file at ``path`` on a float32 numpy batch, loaded as a user would."""
    import numpy as np

    if fmt == "onnx":
        import onnxruntime as ort
        import torch

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, torch.get_num_threads())
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        inputs = session.get_inputs()
        if len(inputs) != 1 or len(session.get_outputs()) != 1:
            raise ValueError(f"it has {len(inputs)} inputs and {len(session.get_outputs())} outputs, not one each")
        name = inputs[0].name
        return lambda x: np.asarray(session.run(None, {name: x})[0])
    import torch

    loaded = torch.export.load(str(path)).module()

    def run(x):
        with torch.no_grad():
            return loaded(torch.from_numpy(x)).numpy()

    return run


def _batches(n: int) -> Iterator[slice]:
    yield slice(0, 1)  # one sample alone: the dynamic batch at its smallest
    for lo in range(1, n, CHECK_BATCH):
        yield slice(lo, min(n, lo + CHECK_BATCH))


def check_export(fmt: str, path: Path, module, X, columns: list[str], tolerance: float, where: str,
                 shown: str = "") -> tuple[float, int, str]:
    """Run the exported file at ``path`` on raw inputs ``X`` (a float32 tensor) and compare with ``module``; returns
    ``(max abs difference, its sample, its column)``, or raises ExportError naming them. ``shown``: the name
    to give ``path`` (a temporary file) in messages."""
    shown = shown or str(path)
    import numpy as np
    import torch

    try:
        with _quiet():
            run = _runner(fmt, path)
    except Exception as exc:  # noqa: BLE001 - whatever the runtime says about a file it cannot load
        loader = "onnxruntime" if fmt == "onnx" else "torch.export.load"
        raise ExportError(f"export check failed: {where} cannot be loaded by {loader} "
                          f"({_reason(exc).replace(str(path), shown)}); nothing was written") from exc
    worst, worst_at, bad = -1.0, (0, 0), False
    for part in _batches(len(X)):
        xb = X[part]
        with torch.no_grad():
            expected = module(xb).double().numpy()
        try:
            with _quiet():
                got = run(np.ascontiguousarray(xb.numpy(), dtype=np.float32))
        except Exception as exc:  # noqa: BLE001
            raise ExportError(f"export check failed: {where} could not be run on a batch of {len(xb)} test samples "
                              f"({_reason(exc).replace(str(path), shown)}); nothing was written") from exc
        if got.shape != expected.shape:
            raise ExportError(f"export check failed: {where} returned shape {tuple(got.shape)} for a batch of "
                              f"{len(xb)} test samples; the run's model returns {tuple(expected.shape)}; "
                              "nothing was written")
        diff = np.abs(got.astype(np.float64) - expected)
        same = (got == expected) | (np.isnan(got) & np.isnan(expected))  # the same inf or NaN is no difference
        diff = np.where(np.isfinite(diff), diff, np.where(same, 0.0, np.inf))
        flat = int(np.argmax(diff))
        if diff.reshape(-1)[flat] > worst:
            worst = float(diff.reshape(-1)[flat])
            row, col = np.unravel_index(flat, diff.shape) if diff.ndim > 1 else (flat, 0)
            worst_at = (part.start + int(row), int(col) if diff.ndim > 1 else 0)
        bad = bad or bool((diff > tolerance * (1.0 + np.abs(expected))).any())
    column = columns[worst_at[1]] if worst_at[1] < len(columns) else str(worst_at[1])
    if bad:
        raise ExportError(f"export check failed: {where} differs from the run's model by up to {worst:.3g} "
                          f"(test sample {worst_at[0]}, output column '{column}') on {len(X)} test samples, beyond "
                          f"the tolerance "
                          f"{tolerance:g} * (1 + |expected|); nothing was written")
    return worst, worst_at[0], column


# -- the command ---------------------------------------------------------------------------


def require_onnx(what: str = "zoo export --format onnx") -> None:
    """A one-line error when the ``export`` extra is missing (imports onnx, onnxruntime and onnxscript)."""
    import importlib.util

    missing = [m for m in ("onnx", "onnxruntime", "onnxscript") if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(f"{what} needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not "
                         "installed: pip install 'zoo[export]'")


def _check_args(fmt: str, opset: int | None, tolerance: float | None) -> None:
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if opset is not None:
        if fmt != "onnx":
            raise UsageError(f"--opset {opset} applies to --format onnx only")
        if isinstance(opset, bool) or not isinstance(opset, int) or not 18 <= opset <= 99:
            raise UsageError(f"--opset {opset!r}: the ONNX opset must be an integer of at least 18 (torch's "
                             "dynamo-based exporter)")
    if tolerance is not None and (isinstance(tolerance, bool) or not isinstance(tolerance, (int, float))
                                  or not math.isfinite(tolerance) or tolerance < 0):
        raise UsageError(f"--tolerance {tolerance!r}: the tolerance must be a finite number >= 0")


def check_inputs(model, cfg: dict[str, Any], combo, n: int = CHECK_SAMPLES):
    """The run's test split rebuilt from its config (as ``zoo eval`` does), at most ``n`` samples, in raw units."""
    from .evaluation import head_inputs, raw_inputs
    from .parts import load_data

    splits = load_data(combo, cfg)
    with __import__("torch").no_grad():
        return raw_inputs(model, head_inputs(splits.test, n).float()).float().contiguous()


def export_run(run_dir: str | os.PathLike | Any, format: str = "onnx",  # noqa: A002 - the CLI's --format
               out: str | os.PathLike | None = None, *, opset: int | None = None,
               tolerance: float | None = None, samples: int = CHECK_SAMPLES,
               registry: Any = None) -> ExportResult:
    """Export a saved run's model (raw inputs in, the data's units out, dynamic batch) to ``out`` (default
    ``RUN_DIR/model.onnx`` or ``RUN_DIR/model.pt2``) and run the export check (see the module's docstring).

    ``run_dir``: a run directory or a :class:`zoo.engine.Run`. ``tolerance``: of the export check,
    ``|exported - model| <= tolerance * (1 + |model|)`` (default :data:`DEFAULT_TOLERANCE` of the format).
    A model that cannot be exported, or a file that fails the check, is one :class:`ExportError` line and
    leaves no file. Returns an :class:`ExportResult`.
    """
    start = time.perf_counter()
    run_dir = Path(getattr(run_dir, "dir", run_dir))
    format = str(format).lower()  # noqa: A001
    _check_args(format, opset, tolerance)
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise UsageError(f"samples={samples!r}: the export check needs at least one test sample")
    if format == "onnx":
        require_onnx()
    opset = (opset or DEFAULT_OPSET) if format == "onnx" else None
    tol = float(DEFAULT_TOLERANCE[format] if tolerance is None else tolerance)
    path = Path(out) if out is not None else run_dir / f"model{SUFFIX[format]}"
    if out is not None and path.suffix.lower() != SUFFIX[format]:
        raise UsageError(f"--out {path}: a {format} export is written to a {SUFFIX[format]} file")

    import torch

    from . import __version__
    from .files import atomic_path
    from .inference import check_run
    from .saved import load_run_model

    check_run(run_dir)
    if path.is_dir():
        raise UsageError(f"--out {path} is a directory; name the {SUFFIX[format]} file to write")
    if not path.parent.is_dir():
        raise UsageError(f"--out {path}: the directory {path.parent} does not exist")
    model, cfg, combo = load_run_model(run_dir, "cpu", registry)
    model = model.float().eval()
    module = _prediction_module(model)
    output = output_spec(cfg)
    notes = []
    if cfg.get("precision") == "bf16":
        notes.append("the run predicts under bf16 autocast; the export computes in float32 and is checked against "
                     "the run's model in float32")
    if getattr(combo.dataset.spec, "encode", None):
        notes.append(f"dataset '{cfg['dataset']}' encodes raw rows (text categories, columns by name) before the "
                     "model; the exported model takes the encoded features, standardisation included")
    X = check_inputs(model, cfg, combo, samples)
    example = X[:EXAMPLE_BATCH]
    if len(example) < EXAMPLE_BATCH:  # a tiny test split: repeat its samples
        example = example.repeat(math.ceil(EXAMPLE_BATCH / len(example)), *([1] * (X.dim() - 1)))[:EXAMPLE_BATCH]
    shape = [int(d) for d in cfg["meta"]["input_shape"]]
    facts = {"version": __version__, "run": run_dir.resolve().name, "model": str(cfg["model"]),
             "dataset": str(cfg["dataset"]), "task": cfg["meta"]["task"],
             "input": f"{INPUT_NAME}: float32 (batch, {', '.join(map(str, shape))}), "
             "raw units (the run's standardisation is inside)", "output": f"{output.name}: {output.description}",
             "columns": json.dumps(output.columns)}
    what = f"model '{cfg['model']}' of {run_dir}"
    label = "ONNX" if format == "onnx" else "torch.export (pt2)"
    with atomic_path(path) as tmp:
        try:
            with _quiet(), torch.no_grad():
                if format == "onnx":
                    _export_onnx(module, example, tmp, output, opset, facts)
                else:
                    _export_pt2(module, example, tmp, facts)
        except (OSError, KeyboardInterrupt, ZooError):
            raise
        except Exception as exc:  # noqa: BLE001 - the exporters raise many kinds; one line says why
            hint = _why_not(exc)
            raise ExportError(f"{what} cannot be exported to {label}{': ' + hint if hint else ''} "
                              f"({_reason(exc)}); nothing was written") from exc
        worst, worst_sample, worst_column = check_export(format, tmp, module, X, output.columns, tol,
                                                         f"the {label} export of {what}", str(path))
    return ExportResult(path=path, format=format, input_name=INPUT_NAME, input_shape=["batch", *shape], output=output,
                        opset=opset, tolerance=tol, checked=len(X), max_abs_diff=worst, worst_sample=worst_sample,
                        worst_column=worst_column, seconds=time.perf_counter() - start, notes=notes)


def export(run: str | os.PathLike | Any, format: str = "onnx", out: str | os.PathLike | None = None,  # noqa: A002
           *, opset: int | None = None, tolerance: float | None = None) -> ExportResult:
    """Export a saved run (a directory or a :class:`zoo.engine.Run`) as ``zoo export`` does: ``format`` ``"onnx"``
    or ``"pt2"``, written to ``out`` (default ``RUN_DIR/model.onnx`` / ``model.pt2``) after the export check
    passed. Returns an :class:`ExportResult` (``path``, ``max_abs_diff``, ``output``, ...)."""
    return export_run(run, format, out, opset=opset, tolerance=tolerance)
