"""Predicting with a saved run on new, raw inputs: what ``zoo predict`` does.

The inputs are raw (in the units of the original data): the run's stored
preprocessing (``preprocess.safetensors``: ``mean`` and ``std`` fitted on the
training split) is applied to them before the model sees them, exactly as it was
applied to the training data. It is never recomputed from the new inputs.

Input files:

- ``.csv``: numbers, one sample a row, ``prod(input_shape)`` values a row (an image
  run takes the flattened pixels). A first row whose cells are all non-numbers is a
  header and is skipped. Blank lines are ignored.
- ``.npy``: an array of shape ``(N, *input_shape)`` or ``(N, prod(input_shape))``
  (or ``(N,)`` when a sample is a single number); pickled arrays are refused.
- ``.csv`` for a run whose dataset declares an ``encode`` function and stored its fitted
  state (``preprocess.json``), such as the ``csv`` datasets: raw rows WITH a header
  naming the columns (text categories included; extra columns such as the target are
  ignored). The encoder turns them into the features the model was trained on, in the
  trained column order; the stored mean/std is then applied as above. The file is read
  with the delimiter the state records (``"delimiter"``), else a comma.

Output (CSV text, one row per input row, in order):

- regression: ``prediction`` (or ``prediction_0`` .. ``prediction_{k-1}`` for ``k``
  targets), in the data's units;
- classification: ``label`` (the class name) then ``prob_<class>`` per class
  (softmax for a model trained with a class-index loss such as cross-entropy,
  sigmoid for a one-output ``binary`` loss such as bce-with-logits).
"""

from __future__ import annotations

import csv
import importlib
import io
import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from . import checkpoint, runs
from .errors import UsageError, ZooError
from .files import write_text

INPUT_SUFFIXES = (".csv", ".npy")


# -- reading inputs --------------------------------------------------------------------


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _shape_text(shape: Sequence[int]) -> str:
    return "(N, " + ", ".join(str(d) for d in shape) + ")"


def _expects(width: int, input_shape: Sequence[int] | None) -> str:
    text = f"the model expects {width} feature{'s' if width != 1 else ''} per row"
    if input_shape is not None and len(input_shape) > 1:
        text += f" (input shape {'x'.join(str(d) for d in input_shape)}, flattened)"
    return text


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not a text CSV file (not UTF-8)") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None


def read_csv_input(path: Path, width: int, input_shape: Sequence[int] | None = None) -> np.ndarray:
    """Rows of ``width`` numbers from a CSV file (header row detected and skipped) as float32 ``(N, width)``."""
    text = _read_text(path)
    try:
        rows = [(n, [c.strip() for c in row]) for n, row in enumerate(csv.reader(io.StringIO(text)), 1)]
    except csv.Error as exc:
        raise UsageError(f"{path} is not a valid CSV file: {exc}") from None
    rows = [(n, row) for n, row in rows if any(row)]
    if rows and not any(_is_number(c) for c in rows[0][1]):
        header_line, header = rows.pop(0)
        if len(header) != width:
            raise UsageError(f"{path} has {len(header)} columns (header on line {header_line}) but "
                             f"{_expects(width, input_shape)}")
    if not rows:
        raise UsageError(f"{path} has no data rows")
    out = np.empty((len(rows), width), dtype=np.float32)
    for i, (line, row) in enumerate(rows):
        if len(row) != width:
            raise UsageError(f"{path} line {line} has {len(row)} value{'s' if len(row) != 1 else ''} but "
                             f"{_expects(width, input_shape)}")
        for j, cell in enumerate(row):
            try:
                v = float(cell)
            except ValueError:
                shown = repr(cell) if cell else "an empty cell"
                raise UsageError(f"{path} line {line}, column {j + 1}: {shown} is not a number") from None
            if not math.isfinite(v):
                raise UsageError(f"{path} line {line}, column {j + 1}: {cell!r} is not a finite number")
            out[i, j] = v
    return out


def read_npy_input(path: Path, input_shape: Sequence[int]) -> np.ndarray:
    """An ``.npy`` array as float32 ``(N, *input_shape)``."""
    input_shape = tuple(input_shape)
    width = math.prod(input_shape)
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise UsageError(f"{path} is not a plain numeric .npy array ({exc})") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path} as a .npy array: {exc}") from None
    if not isinstance(arr, np.ndarray):
        raise UsageError(f"{path} is not a .npy array")
    if arr.dtype.kind not in "biuf":
        raise UsageError(f"{path} holds {arr.dtype} values, not numbers")
    shape = tuple(arr.shape)
    ok = (len(shape) >= 1 and (shape[1:] == input_shape or shape[1:] == (width,)
                                or (width == 1 and len(shape) == 1)))
    if not ok:
        expected = _shape_text(input_shape)
        if len(input_shape) > 1:
            expected += f" or {_shape_text((width,))}"
        raise UsageError(f"{path} has shape {shape} but the model expects {expected}")
    if shape[0] == 0:
        raise UsageError(f"{path} has no samples")
    arr = arr.astype(np.float32).reshape(shape[0], *input_shape)
    if not np.isfinite(arr).all():
        bad = int(np.argwhere(~np.isfinite(arr.reshape(len(arr), -1)))[0][0])
        raise UsageError(f"{path}: sample {bad} holds a value that is not a finite number")
    return arr


def read_input(path: str | os.PathLike, input_shape: Sequence[int]) -> np.ndarray:
    """Raw inputs from ``path`` (.csv or .npy) as float32 ``(N, *input_shape)``; bad files are UsageErrors."""
    path = Path(path)
    if path.suffix.lower() not in INPUT_SUFFIXES:
        raise UsageError(f"{path}: unsupported input file type '{path.suffix or '(none)'}'; use .csv or .npy")
    if not path.is_file():
        raise UsageError(f"input file {path} does not exist")
    input_shape = tuple(int(d) for d in input_shape)
    if path.suffix.lower() == ".npy":
        return read_npy_input(path, input_shape)
    return read_csv_input(path, math.prod(input_shape), input_shape).reshape(-1, *input_shape)


def read_table_input(path: str | os.PathLike, delimiter: str = ",") -> list[dict[str, str]]:
    """A CSV file with a header as one dict per data row (header -> stripped cell); blank lines skipped."""
    path = Path(path)
    if path.suffix.lower() != ".csv":
        raise UsageError(f"{path}: this run takes raw rows as a .csv file with a header, not "
                         f"'{path.suffix or '(none)'}'")
    if not path.is_file():
        raise UsageError(f"input file {path} does not exist")
    text = _read_text(path)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        rows = [(reader.line_num, [c.strip() for c in row]) for row in reader]
    except csv.Error as exc:
        raise UsageError(f"{path} is not a valid CSV file: {exc}") from None
    rows = [(n, row) for n, row in rows if any(row)]
    if not rows:
        raise UsageError(f"{path} is empty; it needs a header row naming the columns, then the data")
    _, header = rows.pop(0)
    if all(_is_number(c) for c in header if c):
        raise UsageError(f"{path} has no header row (its first line holds numbers); this run needs a first line "
                         "naming the columns")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise UsageError(f"{path}: the header names {', '.join(repr(d) for d in dupes)} more than once")
    if not rows:
        raise UsageError(f"{path} has no data rows")
    out = []
    for line, row in rows:
        if len(row) != len(header):
            raise UsageError(f"{path} line {line} has {len(row)} value{'s' if len(row) != 1 else ''} but the "
                             f"header names {len(header)} column{'s' if len(header) != 1 else ''}")
        out.append(dict(zip(header, row)))
    return out


def read_preprocess_state(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The run's JSON fitted state (``preprocess.json``), or None when the dataset stored none."""
    path = Path(run_dir) / runs.PREPROCESS_STATE
    if not path.is_file():
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ZooError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(state, dict):
        raise ZooError(f"{path} must hold a JSON object, not {type(state).__name__}")
    return state


def dataset_encoder(cfg: dict[str, Any]) -> Callable[..., Any] | None:
    """The ``encode`` function the run's dataset declares (imported now), or None."""
    from .config import entries_for

    spec = entries_for(cfg).dataset.spec
    ref = getattr(spec, "encode", None)
    if not ref:
        return None
    module_name, _, attr = ref.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as exc:  # noqa: BLE001 - anything a broken plugin raises
        raise ZooError(f"dataset '{spec.name}' declares encode '{ref}', which could not be imported: "
                       f"{type(exc).__name__}: {exc}") from exc
    return obj


def encode_rows(path: str | os.PathLike, cfg: dict[str, Any], encode: Callable[..., Any],
                state: dict[str, Any]) -> np.ndarray:
    """Raw rows of a CSV with a header -> the un-standardised features ``(N, *input_shape)``."""
    path = Path(path)
    delimiter = state.get("delimiter")
    rows = read_table_input(path, delimiter if isinstance(delimiter, str) and len(delimiter) == 1 else ",")
    try:
        X = encode(rows, state)
    except ValueError as exc:
        raise UsageError(f"{path}: {' '.join(str(exc).split())}") from None
    except Exception as exc:  # noqa: BLE001 - a plugin's bug, not the user's
        raise ZooError(f"dataset '{cfg['dataset']}' could not encode {path}: {type(exc).__name__}: {exc}") from exc
    input_shape = tuple(int(d) for d in cfg["meta"]["input_shape"])
    width = math.prod(input_shape)
    X = np.asarray(X, dtype=np.float32)
    if X.shape[:1] != (len(rows),) or math.prod(X.shape[1:]) != width:
        raise ZooError(f"dataset '{cfg['dataset']}' encoded the {len(rows)} rows of {path} as shape {X.shape}, but "
                       f"the model expects {_shape_text(input_shape)}")
    if not np.isfinite(X).all():
        bad = int(np.argwhere(~np.isfinite(X.reshape(len(X), -1)))[0][0])
        raise UsageError(f"{path}: data row {bad + 1} encodes to a value that is not a finite number")
    return X.reshape(len(rows), *input_shape)


# -- the run's preprocessing and model -------------------------------------------------


def read_preprocess(run_dir: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The run's fitted ``mean``/``std`` (empty when the run was trained without standardisation)."""
    path = Path(run_dir) / runs.PREPROCESS
    if not path.exists():
        return {}
    state, _ = checkpoint.read_weights(path)
    unknown = sorted(set(state) - {"mean", "std"})
    if unknown:
        raise ZooError(f"{path} holds preprocessing zoo cannot apply ({', '.join(unknown)}); "
                       "only mean/std standardisation is supported")
    return {k: v.float() for k, v in state.items()}


def standardize(X: torch.Tensor, preprocess: dict[str, torch.Tensor]) -> torch.Tensor:
    """Apply the stored transform to raw inputs ``X`` ``(N, *input_shape)``: ``(X - mean) / std``."""
    if "mean" in preprocess:
        X = X - preprocess["mean"].to(X.device)
    if "std" in preprocess:
        X = X / preprocess["std"].to(X.device)
    return X


def check_run(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The run's config, after checking it has saved weights to predict with."""
    cfg = runs.read_config(run_dir)
    if not (Path(run_dir) / runs.WEIGHTS).is_file():
        status = runs.read_status(run_dir)
        state = status.get("status", "unknown") if isinstance(status, dict) else "unknown"
        raise UsageError(f"{run_dir} has no {runs.WEIGHTS} to predict with (run status: {state}); "
                         "it ended before any epoch finished")
    return cfg


class Predictor:
    """A saved run ready to predict: its model, config and stored preprocessing."""

    def __init__(self, run_dir: str | os.PathLike, device: str = "cpu") -> None:
        from .engine import load_run_model

        self.run_dir = Path(run_dir)
        self.cfg = check_run(run_dir)
        self.model, self.cfg, self.combo = load_run_model(run_dir, device)
        self.device = next(iter(self.model.parameters()), torch.empty(0)).device
        self.preprocess = read_preprocess(run_dir)
        meta = self.cfg["meta"]
        self.task = meta["task"]
        self.input_shape = tuple(int(d) for d in meta["input_shape"])
        self.target = self.cfg["target"]

    def outputs(self, X_raw: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Raw model outputs for raw inputs ``(N, *input_shape)`` (preprocessing applied here)."""
        from .engine import predict

        X = torch.as_tensor(np.asarray(X_raw, dtype=np.float32)).to(self.device)
        return predict(self.model, standardize(X, self.preprocess), self.cfg).float().cpu()

    def columns(self) -> list[str]:
        meta = self.cfg["meta"]
        if self.task in ("regression", "reconstruction"):
            k = int(self.cfg.get("out_features") or meta.get("num_targets") or 1)
            return ["prediction"] if k == 1 else [f"prediction_{i}" for i in range(k)]
        return ["label", *(f"prob_{c}" for c in self.class_names())]

    def class_names(self) -> list[str]:
        meta = self.cfg["meta"]
        names = meta.get("class_names")
        return [str(c) for c in names] if names else [str(i) for i in range(int(meta["num_classes"]))]

    def probabilities(self, out: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``(N, num_classes)`` from raw classification outputs."""
        if self.target == "binary":
            p = torch.sigmoid(out.reshape(-1))
            return torch.stack([1.0 - p, p], dim=1)
        return torch.softmax(out, dim=1)

    def rows(self, X_raw: np.ndarray | torch.Tensor) -> list[list[Any]]:
        """One row per sample, matching :meth:`columns`: floats, or a label then floats."""
        out = self.outputs(X_raw)
        if self.task == "reconstruction":
            # the model reconstructs the standardised input: back to the data's units
            out = out.reshape(len(out), -1)
            if "mean" in self.preprocess and "std" in self.preprocess:
                shape = tuple(self.cfg["meta"]["input_shape"])
                mean = self.preprocess["mean"].float().cpu().expand(shape).reshape(-1)
                std = self.preprocess["std"].float().cpu().expand(shape).reshape(-1)
                out = out * std + mean
            return out.tolist()
        if self.task == "regression":
            return out.reshape(len(out), -1).tolist()
        if self.target == "binary":
            label_idx = (out.reshape(-1) > 0).long()  # as zoo.metrics.predictions decides
        else:
            label_idx = out.argmax(dim=1)
        names = self.class_names()
        probs = self.probabilities(out).tolist()
        return [[names[int(i)], *p] for i, p in zip(label_idx.tolist(), probs)]


def to_csv(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """CSV text; floats with 9 significant digits (exact for float32)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([format(v, ".9g") if isinstance(v, float) else v for v in row])
    return buf.getvalue()


def predict_file(run_dir: str | os.PathLike, input_path: str | os.PathLike,
                 output: str | os.PathLike | None = None, device: str = "cpu") -> str:
    """Predict with the run in ``run_dir`` on the raw inputs in ``input_path``; return the CSV text.

    The CSV (columns as described in this module's docstring) is also written to
    ``output`` atomically when given. The input's shape is checked against the run's
    ``meta.input_shape`` before the model is loaded. A run whose dataset declares ``encode``
    and stored ``preprocess.json`` reads a ``.csv`` input as raw rows with a header and
    encodes them first. Every user mistake (a missing or malformed file, a wrong width or
    missing column, a run without weights) raises :class:`zoo.errors.UsageError`
    with a one-line message.
    """
    cfg = check_run(run_dir)
    state = read_preprocess_state(run_dir)
    encode = dataset_encoder(cfg) if state is not None else None
    if encode is not None and Path(input_path).suffix.lower() == ".csv":
        X = encode_rows(input_path, cfg, encode, state)
    else:
        X = read_input(input_path, cfg["meta"]["input_shape"])
    if output is not None:
        out_path = Path(output)
        if out_path.is_dir():
            raise UsageError(f"--output {out_path} is a directory; name a file")
        if not out_path.parent.is_dir():
            raise UsageError(f"--output {out_path}: directory {out_path.parent} does not exist")
    predictor = Predictor(run_dir, device)
    text = to_csv(predictor.columns(), predictor.rows(X))
    if output is not None:
        write_text(output, text)
    return text
