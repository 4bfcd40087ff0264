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
  (or ``(N,)`` when a sample is a single number, ``(N, H, W)`` for a one-channel image
  model); pickled arrays are refused.
- ``.csv`` for a run whose dataset declares an ``encode`` function and stored its fitted
  state (``preprocess.json``), such as the ``csv`` datasets: raw rows WITH a header
  naming the columns (text categories included; extra columns such as the target are
  ignored). The encoder turns them into the features the model was trained on, in the
  trained column order; the stored mean/std is then applied as above. The file is read
  with the delimiter the state records (``"delimiter"``), else a comma.

In Python, :func:`predict` takes the same files, or arrays, tensors, lists, a pandas
DataFrame or a list of dicts (raw rows), and returns :class:`Predictions`, whose
``to_csv()`` is exactly what ``zoo predict`` prints.

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
import math
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from . import rundir as runs
from .errors import UsageError, ZooError
from .files import write_text
from .spec import shown as quoted

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


def _csv_rows(path: Path) -> list[tuple[int, list[str]]]:
    """``(line number, stripped cells)`` of every non-blank row of a CSV file."""
    text = _read_text(path)
    try:
        rows = [(n, [c.strip() for c in row]) for n, row in enumerate(csv.reader(io.StringIO(text)), 1)]
    except csv.Error as exc:
        raise UsageError(f"{path} is not a valid CSV file: {exc}") from None
    return [(n, row) for n, row in rows if any(row)]


def read_csv_input(path: Path, width: int, input_shape: Sequence[int] | None = None) -> np.ndarray:
    """Rows of ``width`` numbers from a CSV file (header row detected and skipped) as float32 ``(N, width)``."""
    rows = _csv_rows(path)
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
                what = quoted(cell) if cell else "an empty cell"
                raise UsageError(f"{path} line {line}, column {j + 1}: {what} is not a number") from None
            if not math.isfinite(v):
                raise UsageError(f"{path} line {line}, column {j + 1}: {quoted(cell)} is not a finite number")
            out[i, j] = v
    return out


def _npy_header(fh, source: str, size: int, kinds: str = "biuf") -> None:
    """Check an ``.npy`` stream's header before any data is read: a numeric dtype (no pickled objects) and a
    shape whose data the ``size`` bytes of the stream (header included) really hold, so that a header
    claiming 1e13 rows is one line, not an attempt to allocate terabytes."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = fmt.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, _, dtype = fmt.read_array_header_2_0(fh)
        elif hasattr(fmt, "_read_array_header"):
            shape, _, dtype = fmt._read_array_header(fh, version)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
        start = fh.tell()
    except Exception as exc:  # noqa: BLE001 - numpy's header parser raises several kinds
        detail = " ".join(str(exc).split())
        raise UsageError(f"{source} is not a .npy array ({detail[:200] or type(exc).__name__})") from None
    if dtype.hasobject:
        raise UsageError(f"{source} holds Python objects (a pickled array), which zoo never loads; save numbers")
    if dtype.kind not in kinds:
        raise UsageError(f"{source} holds {dtype} values, not numbers")
    if not all(isinstance(d, int) and d >= 0 for d in shape):
        raise UsageError(f"{source} has an invalid shape in its header")
    need = math.prod(shape) * dtype.itemsize
    if need > size - start:
        raise UsageError(f"{source}: its header claims shape {tuple(shape) if len(shape) <= 8 else '(...)'} of "
                         f"{dtype} ({need} bytes) but the file holds {max(size - start, 0)} bytes of data")


#: The most an ``.npz`` member may expand to, as a multiple of the archive's size (deflate, which
#: ``numpy.savez_compressed`` uses, cannot compress by more than about 1032:1).
NPZ_MAX_RATIO = 1100


def _check_npz(path: Path) -> None:
    """Check the header of every array in an ``.npz`` archive against the size the archive declares for it
    (which cannot exceed what its stored bytes can expand to), before any array is read."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            real = path.stat().st_size
            for info in zf.infolist():
                if info.filename.endswith(".npy"):
                    most = info.compress_size if info.compress_type == zipfile.ZIP_STORED else NPZ_MAX_RATIO * real
                    with zf.open(info) as fh:
                        _npy_header(fh, f"{path}: array '{info.filename[:-4][:80]}'",
                                    min(info.file_size, most, NPZ_MAX_RATIO * real), "biufUS")
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
        raise UsageError(f"{path} is not a plain .npz archive of arrays ({' '.join(str(exc).split())[:200]})") \
            from None


def read_npy_input(path: Path, input_shape: Sequence[int]) -> np.ndarray:
    """An ``.npy`` array as float32 ``(N, *input_shape)``; its header is checked before the data is read."""
    try:
        with open(path, "rb") as fh:
            _npy_header(fh, str(path), os.fstat(fh.fileno()).st_size)
    except OSError as exc:
        raise UsageError(f"cannot read {path} as a .npy array: {exc}") from None
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise UsageError(f"{path} is not a plain numeric .npy array ({exc})") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path} as a .npy array: {exc}") from None
    if not isinstance(arr, np.ndarray):
        raise UsageError(f"{path} is not a .npy array")
    return as_inputs(arr, input_shape, str(path))


def as_inputs(arr, input_shape: Sequence[int], source: str = "the inputs") -> np.ndarray:
    """Numbers shaped ``(N, *input_shape)``, ``(N, prod(input_shape))``, ``(N,)`` for one-number samples or
    ``(N, H, W)`` for one-channel images -> float32 ``(N, *input_shape)``; anything else is a UsageError."""
    input_shape = tuple(int(d) for d in input_shape)
    width = math.prod(input_shape)
    arr = np.asarray(arr)
    if arr.dtype.kind not in "biuf":
        raise UsageError(f"{source} holds {arr.dtype} values, not numbers")
    shape = tuple(arr.shape)
    ok = (len(shape) >= 1 and (shape[1:] == input_shape or shape[1:] == (width,)
                                or (width == 1 and len(shape) == 1)
                                or (len(input_shape) == 3 and input_shape[0] == 1 and shape[1:] == input_shape[1:])))
    if not ok:
        expected = _shape_text(input_shape)
        if len(input_shape) == 3 and input_shape[0] == 1:
            expected += f" or {_shape_text(input_shape[1:])}"
        if len(input_shape) > 1:
            expected += f" or {_shape_text((width,))}"
        raise UsageError(f"{source} has shape {shape} but the model expects {expected}")
    if shape[0] == 0:
        raise UsageError(f"{source} has no samples")
    arr = arr.astype(np.float32).reshape(shape[0], *input_shape)
    if not np.isfinite(arr).all():
        bad = int(np.argwhere(~np.isfinite(arr.reshape(len(arr), -1)))[0][0])
        raise UsageError(f"{source}: sample {bad} holds a value that is not a finite number")
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
        raise UsageError(f"{path}: the header names {', '.join(quoted(d) for d in dupes[:20])} more than once")
    if not rows:
        raise UsageError(f"{path} has no data rows")
    out = []
    for line, row in rows:
        if len(row) != len(header):
            raise UsageError(f"{path} line {line} has {len(row)} value{'s' if len(row) != 1 else ''} but the "
                             f"header names {len(header)} column{'s' if len(header) != 1 else ''}")
        out.append(dict(zip(header, row)))
    return out


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


# -- the run's model -------------------------------------------------------------------


def check_run(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The run's config, after checking it has saved weights to predict with."""
    files = runs.RunDir(run_dir)
    cfg = files.read_config()
    if not files.weights.is_file():
        status = files.read_status()
        state = status.get("status", "unknown") if isinstance(status, dict) else "unknown"
        raise UsageError(f"{run_dir} has no {runs.WEIGHTS} to predict with (run status: {state}); "
                         "it ended before any epoch finished")
    return cfg


class Predictor:
    """A saved run ready to predict: its :class:`zoo.parts.RunModel` (raw inputs in) and config."""

    def __init__(self, run_dir: str | os.PathLike, device: str = "cpu") -> None:
        from .saved import load_run_model

        self.run_dir = Path(run_dir)
        self.cfg = check_run(run_dir)
        self.model, self.cfg, self.combo = load_run_model(run_dir, device)
        self.device = next(iter(self.model.parameters()), torch.empty(0)).device
        meta = self.cfg["meta"]
        self.task = meta["task"]
        self.input_shape = tuple(int(d) for d in meta["input_shape"])
        self.target = self.cfg["target"]

    def outputs(self, X_raw: np.ndarray | torch.Tensor) -> torch.Tensor:
        """The model's outputs for raw inputs ``(N, *input_shape)``, in the data's units (logits for classes)."""
        from .evaluation import predict

        X = torch.as_tensor(np.asarray(X_raw, dtype=np.float32)).to(self.device)
        out = predict(self.model, X, self.cfg).float().cpu()
        k = len(self.class_names()) if self.target == "index" else int(self.cfg.get("out_features") or 1)
        if out.dim() != 2 or out.shape[1] != k or len(out) != len(X):
            raise ZooError(f"model '{self.cfg['model']}' of {self.run_dir} returned shape {tuple(out.shape)} for "
                           f"{len(X)} samples; its run expects ({len(X)}, {k})")
        finite = torch.isfinite(out).all(dim=1)
        if not bool(finite.all()):
            bad = int((~finite).nonzero()[0, 0])
            raise ZooError(f"model '{self.cfg['model']}' of {self.run_dir} returned NaN or infinity for sample {bad} "
                           f"({int((~finite).sum())} of {len(X)} samples): its weights or these inputs overflow "
                           "float32; no prediction is written")
        return out

    def columns(self) -> list[str]:
        meta = self.cfg["meta"]
        if self.task in ("regression", "reconstruction"):
            k = int(self.cfg.get("out_features") or meta.get("num_targets") or 1)
            return ["prediction"] if k == 1 else [f"prediction_{i}" for i in range(k)]
        if self.task == "generation":  # the model's score of each sample (a GAN: its discriminator's logit)
            k = int(self.cfg.get("out_features") or 1)
            return ["score"] if k == 1 else [f"score_{i}" for i in range(k)]
        if self.task == "control":  # the greedy action, then the value of each action
            return ["action", *(f"value_{i}" for i in range(int(self.cfg.get("out_features") or 1)))]
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

    def predictions(self, X_raw: np.ndarray | torch.Tensor) -> "Predictions":
        out = self.outputs(X_raw)
        if self.task in ("regression", "reconstruction", "generation"):
            values = out.reshape(len(out), -1)
            return Predictions(self.columns(), values.tolist(), self.task, values.numpy())
        if self.task == "control":
            actions = out.argmax(dim=1)
            rows = [[int(a), *v] for a, v in zip(actions.tolist(), out.tolist())]
            return Predictions(self.columns(), rows, self.task, out.numpy(), [str(a) for a in actions.tolist()])
        if self.target == "binary":
            label_idx = (out.reshape(-1) > 0).long()  # as the accuracy metric decides
        else:
            label_idx = out.argmax(dim=1)
        names = self.class_names()
        probs = self.probabilities(out)
        labels = [names[int(i)] for i in label_idx.tolist()]
        rows = [[label, *p] for label, p in zip(labels, probs.tolist())]
        return Predictions(self.columns(), rows, self.task, out.numpy(), labels, probs.numpy())

    def rows(self, X_raw: np.ndarray | torch.Tensor) -> list[list[Any]]:
        """One row per sample, matching :meth:`columns`: floats, or a label then floats."""
        return self.predictions(X_raw).rows


class Predictions:
    """What :func:`predict` returns: the rows ``zoo predict`` writes, and the same as arrays.

    - ``columns``, ``rows``: the CSV's header and rows; ``to_csv()`` is exactly ``zoo predict``'s output;
    - ``outputs``: the model's outputs ``(N, k)`` (the data's units; logits for classification);
    - regression and reconstruction: ``values`` (= ``outputs``);
    - classification: ``labels`` (class names) and ``probabilities`` ``(N, num_classes)``;
    - control: ``labels`` (the greedy action of each observation, as text) and ``values`` (each action's).
    """

    def __init__(self, columns: list[str], rows: list[list[Any]], task: str, outputs: np.ndarray,
                 labels: list[str] | None = None, probabilities: np.ndarray | None = None) -> None:
        self.columns, self.rows, self.task = columns, rows, task
        self.outputs, self.labels, self.probabilities = outputs, labels, probabilities

    @property
    def values(self) -> np.ndarray:
        return self.outputs

    def __len__(self) -> int:
        return len(self.rows)

    def to_csv(self) -> str:
        return to_csv(self.columns, self.rows)

    def __repr__(self) -> str:
        shown = ", ".join(self.labels[:3]) if self.labels is not None else \
            ", ".join(f"{v:.4g}" for v in self.outputs.reshape(len(self.outputs), -1)[:3, 0])
        return f"Predictions({len(self)} {self.task} rows: {shown}{', ...' if len(self) > 3 else ''})"


def to_csv(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """CSV text; floats with 9 significant digits (exact for float32)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([format(v, ".9g") if isinstance(v, float) else v for v in row])
    return buf.getvalue()


def _is_table(X: Any) -> bool:
    """A pandas DataFrame (duck-typed: no pandas import) or a list of dicts: raw rows with column names."""
    return (hasattr(X, "columns") and hasattr(X, "to_dict") and hasattr(X, "to_numpy")) or \
        (isinstance(X, (list, tuple)) and len(X) > 0 and all(isinstance(r, dict) for r in X))


def _table_rows(X: Any) -> list[dict[str, str]]:
    if isinstance(X, (list, tuple)):
        records = X
    else:
        records = X.to_dict(orient="records")

    def cell(v: Any) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return ""
        return str(v).strip()

    return [{str(k): cell(v) for k, v in r.items()} for r in records]


def encode_table(rows: list[dict[str, str]], cfg: dict[str, Any], encode: Callable[..., Any],
                 state: dict[str, Any], source: str) -> np.ndarray:
    """Raw rows (dicts of strings keyed by column) -> the un-standardised features ``(N, *input_shape)``."""
    try:
        X = encode(rows, state)
    except ValueError as exc:
        raise UsageError(f"{source}: {' '.join(str(exc).split())}") from None
    except Exception as exc:  # noqa: BLE001 - a plugin's bug, not the user's
        raise ZooError(f"dataset '{cfg['dataset']}' could not encode {source}: {type(exc).__name__}: {exc}") from exc
    input_shape = tuple(int(d) for d in cfg["meta"]["input_shape"])
    width = math.prod(input_shape)
    X = np.asarray(X, dtype=np.float32)
    if X.shape[:1] != (len(rows),) or math.prod(X.shape[1:]) != width:
        raise ZooError(f"dataset '{cfg['dataset']}' encoded the {len(rows)} rows of {source} as shape {X.shape}, "
                       f"but the model expects {_shape_text(input_shape)}")
    if not np.isfinite(X).all():
        bad = int(np.argwhere(~np.isfinite(X.reshape(len(X), -1)))[0][0])
        raise UsageError(f"{source}: data row {bad + 1} encodes to a value that is not a finite number")
    return X.reshape(len(rows), *input_shape)


def raw_inputs(run_dir: str | os.PathLike, X: Any, cfg: dict[str, Any] | None = None) -> np.ndarray:
    """Any input :func:`predict` takes -> raw float32 ``(N, *input_shape)`` (rows encoded by the dataset)."""
    cfg = cfg or check_run(run_dir)
    input_shape = cfg["meta"]["input_shape"]
    state = runs.RunDir(run_dir).read_preprocess_state()
    encode = dataset_encoder(cfg) if state is not None else None
    if isinstance(X, (str, os.PathLike)):
        if encode is not None and Path(X).suffix.lower() == ".csv":
            delimiter = state.get("delimiter")
            rows = read_table_input(X, delimiter if isinstance(delimiter, str) and len(delimiter) == 1 else ",")
            return encode_table(rows, cfg, encode, state, str(X))
        return read_input(X, input_shape)
    if _is_table(X):
        if encode is not None:
            rows = _table_rows(X)
            if not rows:
                raise UsageError("the table has no rows")
            return encode_table(rows, cfg, encode, state, "the table")
        if isinstance(X, (list, tuple)):
            raise UsageError("rows of named columns need a run whose dataset encodes raw rows (such as csv); "
                             "give this run an array of numbers")
        X = X.to_numpy()
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    return as_inputs(X, input_shape)


def predict(run_dir: str | os.PathLike, X: Any, device: str = "cpu") -> Predictions:
    """Predict with the saved run on raw inputs, exactly as ``zoo predict`` does.

    ``X``: a ``.csv``/``.npy`` file path (as ``zoo predict --input``), an array, tensor or
    nested list of numbers shaped as the data's samples (``(N, *input_shape)``, flattened
    ``(N, features)``, ``(N,)`` for one-number samples, ``(N, H, W)`` for a one-channel image
    model), or, for a run whose dataset encodes raw rows (``csv``), a pandas DataFrame or a
    list of dicts keyed by column name. The run's fitted preprocessing is applied by its
    model (never refitted on ``X``).
    """
    from .config import check_device

    check_device(device)
    cfg = check_run(run_dir)
    X_raw = raw_inputs(run_dir, X, cfg)
    return Predictor(run_dir, device).predictions(X_raw)


def predict_file(run_dir: str | os.PathLike, input_path: str | os.PathLike,
                 output: str | os.PathLike | None = None, device: str = "cpu") -> str:
    """Predict with the run in ``run_dir`` on the raw inputs in ``input_path``; return the CSV text.

    The CSV (columns as described in this module's docstring) is also written to
    ``output`` atomically when given. Every user mistake (a missing or malformed file, a wrong
    width or missing column, a run without weights) raises :class:`zoo.errors.UsageError`
    with a one-line message.
    """
    if output is not None:
        out_path = Path(output)
        if out_path.is_dir():
            raise UsageError(f"--output {out_path} is a directory; name a file")
        if not out_path.parent.is_dir():
            raise UsageError(f"--output {out_path}: directory {out_path.parent} does not exist")
    text = predict(run_dir, Path(input_path), device).to_csv()
    if output is not None:
        write_text(output, text)
    return text


# -- scoring a new labelled file --------------------------------------------------------


def _targets(values: Sequence[Any], cfg: dict[str, Any], source: str) -> torch.Tensor:
    """Labelled targets in the dataset's layout: class indices (by class name, or index) or floats ``(N, k)``."""
    meta = cfg["meta"]
    task = meta["task"]
    if task in ("binary", "multiclass"):
        names = [str(c) for c in meta.get("class_names") or range(int(meta["num_classes"]))]
        index = {n: i for i, n in enumerate(names)}
        texts = [_label_text(v) for v in values]
        if all(t in index for t in texts):
            return torch.tensor([index[t] for t in texts], dtype=torch.int64)
        unknown = next(t for t in texts if t not in index)
        if all(t.lstrip("-").isdigit() for t in texts) and all(0 <= int(t) < len(names) for t in texts):
            return torch.tensor([int(t) for t in texts], dtype=torch.int64)
        raise UsageError(f"{source}: label {quoted(unknown)} is not one of the run's classes "
                         f"({_listed(names)})")
    try:
        y = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError):
        raise UsageError(f"{source}: the targets are not all numbers") from None
    k = int(meta.get("num_targets") or 1)
    if y.ndim == 1 and k == 1:
        y = y.reshape(-1, 1)
    if y.ndim != 2 or y.shape[1] != k:
        raise UsageError(f"{source}: the targets have shape {y.shape}; the run predicts {k} value(s) per sample")
    if not np.isfinite(y).all():
        raise UsageError(f"{source}: a target is not a finite number")
    return torch.from_numpy(y)


def _listed(names: Sequence[str], limit: int = 20) -> str:
    """Class names for a message: the first ``limit``, each shortened, then how many more."""
    text = ", ".join(n if len(n) <= 80 else n[:77] + "..." for n in names[:limit])
    return text + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _label_text(v: Any) -> str:
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    if isinstance(v, bytes):
        return v.decode()
    return str(v).strip()


def read_labelled(run_dir: str | os.PathLike, path: str | os.PathLike, cfg: dict[str, Any]):
    """A labelled file -> (raw inputs ``(N, *input_shape)``, targets in the dataset's layout).

    - ``.npz``: arrays ``X`` (raw inputs, shaped as :func:`predict` takes them) and ``y``
      (class names or indices; numbers for regression; not needed for reconstruction);
    - ``.csv`` for a run whose dataset encodes raw rows: a header naming the columns, the
      target column among them (its name as in training);
    - other ``.csv``: the input values, then the target (one column; ``k`` for a ``k``-target
      regression); an optional header row.
    """
    path = Path(path)
    task = cfg["meta"]["task"]
    input_shape = tuple(int(d) for d in cfg["meta"]["input_shape"])
    if not path.is_file():
        raise UsageError(f"input file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        _check_npz(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (ValueError, OSError) as exc:
            raise UsageError(f"{path} is not a plain .npz archive of arrays ({exc})") from None
        if "X" not in arrays or ("y" not in arrays and task not in ("reconstruction", "generation")):
            raise UsageError(f"{path} must hold arrays 'X' (raw inputs) and 'y' (targets); it holds "
                             f"{', '.join(arrays) or 'nothing'}")
        X = as_inputs(arrays["X"], input_shape, str(path))
        y = arrays.get("y")
    elif suffix == ".csv":
        state = runs.RunDir(run_dir).read_preprocess_state()
        encode = dataset_encoder(cfg) if state is not None else None
        if encode is not None:
            delimiter = state.get("delimiter")
            rows = read_table_input(path, delimiter if isinstance(delimiter, str) and len(delimiter) == 1 else ",")
            target = state.get("target")
            if target not in rows[0]:
                raise UsageError(f"{path} has no target column '{target}' (its columns: {', '.join(rows[0])})")
            X, y = encode_table(rows, cfg, encode, state, str(path)), [r[target] for r in rows]
        else:
            X, y = _read_labelled_csv(path, input_shape, 0 if task in ("reconstruction", "generation")
                                      else int(cfg.get("out_features") or 1) if task == "regression" else 1)
    else:
        raise UsageError(f"{path}: a labelled file is .npz (arrays X and y) or .csv, not '{suffix or '(none)'}'")
    if task in ("reconstruction", "generation"):  # the target is the input itself / every sample is real
        return X, None
    if y is None or len(y) != len(X):
        raise UsageError(f"{path} has {len(X)} inputs but {0 if y is None else len(y)} targets")
    return X, _targets(list(np.asarray(y).tolist()) if not isinstance(y, list) else y, cfg, str(path))


def _read_labelled_csv(path: Path, input_shape: Sequence[int], k: int):
    width = math.prod(input_shape)
    rows = _csv_rows(path)
    if rows and not any(_is_number(c) for c in rows[0][1][:width]):
        rows.pop(0)  # a header
    if not rows:
        raise UsageError(f"{path} has no data rows")
    X = np.empty((len(rows), width), dtype=np.float32)
    y: list[Any] = []
    for i, (line, row) in enumerate(rows):
        if len(row) != width + k:
            raise UsageError(f"{path} line {line} has {len(row)} values; a labelled row is the {width} input "
                             f"value{'s' if width != 1 else ''} then {k} target value{'s' if k != 1 else ''}")
        for j, cell in enumerate(row[:width]):
            try:
                X[i, j] = float(cell)
            except ValueError:
                raise UsageError(f"{path} line {line}, column {j + 1}: {quoted(cell)} is not a number") from None
        y.append(row[width] if k == 1 else row[width:])
    if not np.isfinite(X).all():
        raise UsageError(f"{path}: an input value is not a finite number")
    return X.reshape(len(rows), *input_shape), y


def evaluate_file(run_dir: str | os.PathLike, path: str | os.PathLike, device: str = "cpu") -> dict[str, float]:
    """Score a saved run on a new labelled file (see :func:`read_labelled`): the loss and the metrics
    ``zoo eval`` reports for a split, computed the same way."""
    from .data import DataMeta
    from .evaluation import MetricSet, evaluate_saved
    from .parts import build_loss, workers_for

    predictor = Predictor(run_dir, device)
    model, cfg, combo = predictor.model, predictor.cfg, predictor.combo
    X_raw, y = read_labelled(run_dir, path, cfg)
    dev = predictor.device
    with torch.no_grad():
        X = model.standardize(torch.from_numpy(X_raw).to(predictor.device))
    if y is None and cfg["meta"]["task"] == "generation":  # no labels: every sample is real
        y = torch.ones(len(X), 1)
    elif y is None:  # reconstruction: the target is the standardised input itself
        y = X.reshape(len(X), -1).cpu()
    task = DataMeta.from_json(cfg["meta"]).task
    return evaluate_saved(model, f"model '{cfg['model']}' of {run_dir}", build_loss(combo, cfg, dev),
                          (X, y.to(dev)), task, cfg["target"], dev, tuple(combo.loss.spec.reads),
                          workers_for(cfg.get("workers", -1)), cfg=cfg, metrics=MetricSet.for_config(cfg))
