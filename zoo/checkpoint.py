"""Weights as safetensors (never pickle), with strict, readable loading.

Tied parameters (two names for one tensor) are stored once; the other names are
recorded in the file's metadata and restored on load.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Iterable, Mapping

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .errors import CheckpointError
from .files import atomic_path, storage_error
from .spec import shown

ALIASES_KEY = "zoo.aliases"


def _storage_key(t: torch.Tensor) -> tuple:
    return (t.device, t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.stride(), t.dtype)


def save_weights(state: Mapping[str, torch.Tensor] | torch.nn.Module, path: str | os.PathLike,
                 metadata: Mapping[str, str] | None = None, fsync: bool = True, atomic: bool = True) -> None:
    """Write a state dict (or a module's) to ``path`` atomically (``atomic=False``: straight to ``path``, for a
    file inside a directory that is itself renamed into place, such as a checkpoint generation)."""
    if isinstance(state, torch.nn.Module):
        state = state.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple, str] = {}
    for name, t in state.items():
        t = t.detach()
        key = _storage_key(t)
        if key in seen:
            aliases[name] = seen[key]
            continue
        seen[key] = name
        tensors[name] = t.to("cpu").contiguous()
    # views of one storage that are not identical must not share memory in the file
    ptrs: dict[int, str] = {}
    for name, t in list(tensors.items()):
        p = t.untyped_storage().data_ptr()
        if p in ptrs and t.numel():
            tensors[name] = t.clone()
        ptrs[p] = name
    meta = {k: str(v) for k, v in (metadata or {}).items()}
    if aliases:
        meta[ALIASES_KEY] = json.dumps(aliases, sort_keys=True)
    if not atomic:
        try:
            # made first with the mode the umask gives: safetensors would recreate it readable by its owner only
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o666))
            mode = stat.S_IMODE(os.stat(path).st_mode)
            _save_file(tensors, path, meta)
            if stat.S_IMODE(os.stat(path).st_mode) != mode:
                os.chmod(path, mode)
        except OSError as exc:
            raise storage_error(exc, path) from exc
        return
    with atomic_path(path, fsync) as tmp:
        _save_file(tensors, tmp, meta)


def _save_file(tensors: dict[str, torch.Tensor], path: str | os.PathLike, meta: dict[str, str]) -> None:
    """safetensors' ``save_file``, its I/O failures raised as the OSError they are (a full disk is ENOSPC)."""
    try:
        save_file(tensors, str(path), metadata=meta)
    except SafetensorError as exc:
        code = re.search(r"os error (\d+)", str(exc))
        if code:
            raise OSError(int(code.group(1)), os.strerror(int(code.group(1)))) from exc
        raise CheckpointError(f"cannot write {path}: {exc}") from exc


#: safetensors' dtype names -> torch dtypes (those this torch has); another name is kept as text and never
#: fits a model.
_DTYPES = {name: getattr(torch, attr) for name, attr in (
    ("BOOL", "bool"), ("U8", "uint8"), ("I8", "int8"), ("U16", "uint16"), ("I16", "int16"), ("U32", "uint32"),
    ("I32", "int32"), ("U64", "uint64"), ("I64", "int64"), ("F16", "float16"), ("BF16", "bfloat16"),
    ("F32", "float32"), ("F64", "float64"), ("C64", "complex64"), ("F8_E4M3", "float8_e4m3fn"),
    ("F8_E5M2", "float8_e5m2"),
) if hasattr(torch, attr)}

#: The longest list of names one problem shows (a hostile file may hold millions of names).
MAX_LISTED = 20

#: One entry of a weights file's header: the tensor's shape and dtype.
Header = Mapping[str, "tuple[tuple[int, ...], torch.dtype | str]"]


def _unreadable(path: Path, exc: BaseException) -> CheckpointError:
    detail = " ".join(str(exc).split()) or type(exc).__name__
    if len(detail) > 200:
        detail = detail[:197] + "..."
    return CheckpointError(f"{path} is not a readable safetensors file ({detail})")


def _open(path: str | os.PathLike, tensors: bool) -> tuple[dict[str, object], dict[str, str]]:
    """The tensors (or, with ``tensors=False``, only their header entries: no tensor data is read) of a
    weights file, aliases included, and its metadata; any problem with the file is one CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = dict(fh.metadata() or {})
            out: dict[str, object] = {}
            for k in fh.keys():
                if tensors:
                    out[k] = fh.get_tensor(k)
                else:
                    sl = fh.get_slice(k)
                    dtype = sl.get_dtype()
                    out[k] = (tuple(int(d) for d in sl.get_shape()), _DTYPES.get(dtype, dtype))
    except Exception as exc:  # noqa: BLE001 - safetensors, the OS and torch each raise their own errors
        raise _unreadable(path, exc) from None
    for alias, target in _aliases(meta, out, path).items():
        out[alias] = out[target]
    return out, meta


def _aliases(meta: Mapping[str, str], names: Mapping[str, object], path: Path) -> dict[str, str]:
    """The file's tied names (``zoo.aliases``: alias -> stored tensor), checked."""
    raw = meta.get(ALIASES_KEY)
    if raw is None:
        return {}
    try:
        aliases = json.loads(raw)
    except (ValueError, RecursionError):
        raise CheckpointError(f"{path}: its '{ALIASES_KEY}' metadata is not valid JSON") from None
    if not isinstance(aliases, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                for k, v in aliases.items()):
        raise CheckpointError(f"{path}: its '{ALIASES_KEY}' metadata must map tensor names to tensor names, "
                              f"not {shown(aliases)}")
    dangling = [f"{a} -> {t}" for a, t in aliases.items() if t not in names]
    if dangling:
        raise CheckpointError(f"{path}: its '{ALIASES_KEY}' metadata names tensors the file does not hold: "
                              + _listed(dangling))
    clash = sorted(a for a in aliases if a in names)
    if clash:
        raise CheckpointError(f"{path}: its '{ALIASES_KEY}' metadata gives a second tensor names the file already "
                              "holds: " + _listed(clash))
    return aliases


def read_weights(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Return ``(state_dict, metadata)``; a missing or corrupt file (or bad ``zoo.aliases``) is a CheckpointError."""
    state, meta = _open(path, tensors=True)
    return state, meta  # type: ignore[return-value]


def read_header(path: str | os.PathLike) -> tuple[dict[str, tuple[tuple[int, ...], torch.dtype | str]], dict[str, str]]:
    """``({name: (shape, dtype)}, metadata)`` of a weights file from its header alone: no tensor data is read,
    so a file claiming enormous tensors costs nothing to check. Aliases are included."""
    header, meta = _open(path, tensors=False)
    return header, meta  # type: ignore[return-value]


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    try:
        with safe_open(str(path), framework="pt") as fh:
            return dict(fh.metadata() or {})
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one line
        raise _unreadable(Path(path), exc) from None


def _name(key: str) -> str:
    return key if len(key) <= 200 else key[:197] + "..."


def _listed(items: list[str]) -> str:
    shown_items = ", ".join(_name(k) for k in items[:MAX_LISTED])
    return shown_items + (f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")


def _dtype_name(dtype: torch.dtype | str) -> str:
    return str(dtype).removeprefix("torch.")


def lossless_cast(file_dtype: torch.dtype | str, model_dtype: torch.dtype | str) -> bool:
    """Whether a tensor stored as ``file_dtype`` loads into a ``model_dtype`` tensor exactly: the same dtype, or
    a floating dtype of fewer bits whose every value the model's dtype holds (float16 or bfloat16 into float32
    or float64, float32 into float64). Anything else (bool, integers or complex into floats, float32 into
    float16, an integer buffer of another width) would change the numbers silently and is refused."""
    if file_dtype == model_dtype:
        return True
    if not (isinstance(file_dtype, torch.dtype) and isinstance(model_dtype, torch.dtype)):
        return False
    if not (file_dtype.is_floating_point and model_dtype.is_floating_point):
        return False
    try:
        a, b = torch.finfo(file_dtype), torch.finfo(model_dtype)
    except TypeError:
        return False
    return a.bits < b.bits and a.eps >= b.eps and a.max <= b.max and a.smallest_normal >= b.smallest_normal


def compare(expected: Header, found: Header) -> list[str]:
    """Describe every missing, unexpected, shape- and dtype-mismatched key of ``found`` (a file's
    ``{name: (shape, dtype)}``) against ``expected`` (the model's); empty when the file fits."""
    missing = [k for k in expected if k not in found]
    unexpected = sorted(k for k in found if k not in expected)
    both = [k for k in expected if k in found]
    shapes = [f"{_name(k)} (file {tuple(found[k][0])}, model {tuple(expected[k][0])})" for k in both
              if tuple(found[k][0]) != tuple(expected[k][0])]
    dtypes = [f"{_name(k)} (file {_dtype_name(found[k][1])}, model {_dtype_name(expected[k][1])})" for k in both
              if tuple(found[k][0]) == tuple(expected[k][0]) and not lossless_cast(found[k][1], expected[k][1])]
    out = []
    if missing:
        out.append("missing: " + _listed(missing))
    if unexpected:
        out.append("unexpected: " + _listed(unexpected))
    if shapes:
        out.append("shape mismatch: " + _listed(shapes))
    if dtypes:
        out.append("dtype mismatch: " + _listed(dtypes))
    return out


def header_of(state: Mapping[str, torch.Tensor]) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """``{name: (shape, dtype)}`` of a state dict (of real or ``meta``-device tensors)."""
    return {k: (tuple(v.shape), v.dtype) for k, v in state.items()}


def mismatch(model: torch.nn.Module, state: Mapping[str, torch.Tensor]) -> list[str]:
    """Describe every missing, unexpected, shape- and dtype-mismatched key (empty when they fit)."""
    return compare(header_of(model.state_dict()), header_of(state))


def nonfinite(state: Mapping[str, torch.Tensor], allowed: Iterable[str] = ()) -> list[str]:
    """``"<name> holds NaN"`` (or an infinite value) for each floating tensor of ``state`` that is not finite,
    except the names in ``allowed``."""
    allowed = set(allowed)
    out = []
    for k, t in state.items():
        if k in allowed or not (t.is_floating_point() or t.is_complex()) or t.is_meta:
            continue
        try:
            nan, inf = bool(torch.isnan(t).any()), bool(torch.isinf(t).any())
        except (RuntimeError, TypeError):  # a dtype without these kernels (float8)
            nan, inf = bool(torch.isnan(t.float()).any()), bool(torch.isinf(t.float()).any())
        if nan or inf:
            out.append(f"{_name(k)} holds {'NaN' if nan else 'an infinite value'}")
    return out


def check_finite(model: torch.nn.Module, state: Mapping[str, torch.Tensor], path: str | os.PathLike) -> None:
    """Refuse weights holding NaN or infinity (a model that loaded them would answer NaN, or nonsense, with no
    error). A tensor the freshly built model itself holds non-finite values in (such as an attention mask
    of ``-inf``) may hold them in the file too."""
    own = [k for k, v in model.state_dict().items()
           if (v.is_floating_point() or v.is_complex()) and not v.is_meta and not bool(torch.isfinite(v).all())]
    bad = nonfinite(state, own)
    if bad:
        raise CheckpointError(f"{path}: {_listed(bad)}; weights must be finite numbers")


def load_weights(model: torch.nn.Module, path: str | os.PathLike) -> dict[str, str]:
    """Load ``path`` into ``model`` strictly; return the file's metadata.

    Any missing, unexpected, mis-shaped key or a dtype that would not load exactly (see
    :func:`lossless_cast`) fails with one message naming them all; so do weights that are not finite.
    """
    state, meta = read_weights(path)
    problems = mismatch(model, state)
    if problems:
        raise CheckpointError(f"weights in {path} do not fit the model: " + "; ".join(problems))
    check_finite(model, state, path)
    model.load_state_dict(state, strict=True)
    return meta
