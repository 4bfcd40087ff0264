"""Weights as safetensors (never pickle), with strict, readable loading.

Tied parameters (two names for one tensor) are stored once; the other names are
recorded in the file's metadata and restored on load.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .errors import CheckpointError
from .files import atomic_path

ALIASES_KEY = "zoo.aliases"


def _storage_key(t: torch.Tensor) -> tuple:
    return (t.device, t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.stride(), t.dtype)


def save_weights(state: Mapping[str, torch.Tensor] | torch.nn.Module, path: str | os.PathLike,
                 metadata: Mapping[str, str] | None = None, fsync: bool = True) -> None:
    """Write a state dict (or a module's) to ``path`` atomically."""
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
    with atomic_path(path, fsync) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def read_weights(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Return ``(state_dict, metadata)``; a missing or corrupt file is a CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = dict(fh.metadata() or {})
            state = {k: fh.get_tensor(k) for k in fh.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file ({exc})") from None
    for alias, target in json.loads(meta.get(ALIASES_KEY, "{}")).items():
        if target in state:
            state[alias] = state[target]
    return state, meta


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    try:
        with safe_open(str(path), framework="pt") as fh:
            return dict(fh.metadata() or {})
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file ({exc})") from None


def mismatch(model: torch.nn.Module, state: Mapping[str, torch.Tensor]) -> list[str]:
    """Describe every missing, unexpected and shape-mismatched key (empty when they fit)."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = sorted(k for k in state if k not in own)
    shapes = [
        f"{k} (file {tuple(state[k].shape)}, model {tuple(own[k].shape)})"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    out = []
    if missing:
        out.append("missing: " + ", ".join(missing))
    if unexpected:
        out.append("unexpected: " + ", ".join(unexpected))
    if shapes:
        out.append("shape mismatch: " + ", ".join(shapes))
    return out


def load_weights(model: torch.nn.Module, path: str | os.PathLike) -> dict[str, str]:
    """Load ``path`` into ``model`` strictly; return the file's metadata.

    Any missing, unexpected or mis-shaped key fails with one message naming them all.
    """
    state, meta = read_weights(path)
    problems = mismatch(model, state)
    if problems:
        raise CheckpointError(f"weights in {path} do not fit the model: " + "; ".join(problems))
    model.load_state_dict(state, strict=True)
    return meta
