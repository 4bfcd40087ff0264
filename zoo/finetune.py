"""Fine-tuning: a run that starts from another run's weights (``init``), optionally re-creating the output
layer (``init_head=reset``) and freezing parameters (``freeze``).

- **What is loaded**: the source run's network weights (``net.*`` of its :class:`~zoo.parts.RunModel`). The
  preprocessing buffers (input standardisation, regression target scale) are *not* taken from the source:
  they are fitted on the new run's training data, as in any run, since the network is now fed that data.
- **Safely**: the source directory's config is checked as every run's is; the weights file's header
  (names, shapes, dtypes; no tensor data) is compared with the new model before any tensor is read; the
  tensors must be finite. ``strict`` (the default): every ``net.*`` key and shape must match, else one
  line names every mismatched key and shape (and suggests ``--init-head reset`` when only the output
  layer differs).
- **The output layer** is defined precisely as the network's tensors whose shape depends on the number of
  outputs (classes or targets): the model is built on PyTorch's ``meta`` device for ``n`` and ``n + 1``
  outputs and the tensors whose shapes differ are the output layer. ``reset`` keeps their fresh
  initialisation (whether or not their shapes match the source's: the outputs mean other things now);
  any other mismatch is still an error.
- **Traceability**: the run's ``config.json`` records ``init_source``: the source's path, recipe, dataset,
  model, best epoch and the sha256 of its weights file, and the reset keys.
- **Resume**: only a fresh run loads ``init``; a resumed one continues from its own checkpoint.
- **freeze**: parameters whose names match a glob pattern get ``requires_grad=False``; the optimizer is
  never given them (:meth:`zoo.procedures.Procedure.build_optimizer`), so neither the gradient nor a
  decoupled weight decay moves them. A pattern matching nothing is an error naming close names.
"""

from __future__ import annotations

import difflib
import fnmatch
import hashlib
from pathlib import Path
from typing import Any

import torch

from . import checkpoint
from .errors import CheckpointError, UsageError
from .rundir import RunDir

__all__ = ["freeze", "head_keys", "start_from"]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def head_keys(combo: Any, cfg: dict[str, Any], meta: Any) -> list[str]:
    """The output layer of the run's network: its ``net.*`` state-dict keys whose shapes depend on the number of
    outputs (built, on the ``meta`` device where the factory allows it, for ``n`` and ``n + 1`` outputs)."""
    from .parts import out_features

    factory = combo.model.load()
    shape, n = tuple(meta.input_shape), out_features(meta, cfg["target"])

    def shapes(k: int) -> dict[str, tuple[int, ...]]:
        with torch.random.fork_rng(devices=[]):  # a real build must not move the run's random numbers
            try:
                with torch.device("meta"):
                    net = factory(shape, k, **cfg["model_params"])
            except Exception:  # noqa: BLE001 - a factory that needs real tensors
                net = factory(shape, k, **cfg["model_params"])
        return {f"net.{name}": tuple(t.shape) for name, t in net.state_dict().items()}

    a, b = shapes(n), shapes(n + 1)
    return [k for k in a if a[k] != b.get(k)]


def start_from(model: torch.nn.Module, cfg: dict[str, Any], combo: Any, meta: Any,
               registry: Any = None) -> tuple[dict[str, Any], str]:
    """Load the network weights of the run ``cfg["init"]`` into ``model`` (see the module's description).
    Returns ``(init_source, note)``: what ``config.json`` records and a one-line note for the user."""
    from .saved import WEIGHTS_FORMAT

    src = Path(cfg["init"])
    where = f"--init {src}"
    if not src.is_dir():
        raise UsageError(f"{where}: no such run directory")
    try:
        src_cfg = RunDir(src).read_config(registry)
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from None
    path = RunDir(src).weights
    if not path.is_file():
        raise UsageError(f"{where}: the run has no {path.name} yet (a run's weights are saved after its first "
                         "epoch); give a run that has trained")
    header, file_meta = checkpoint.read_header(path)
    if file_meta.get("format") != WEIGHTS_FORMAT:
        raise CheckpointError(f"{where}: {path} is in the weights format {file_meta.get('format')!r}; fine-tuning "
                              f"reads {WEIGHTS_FORMAT}")
    reset = cfg.get("init_head", "strict") == "reset"
    head = head_keys(combo, cfg, meta)
    expected = {k: v for k, v in checkpoint.header_of(model.state_dict()).items() if k.startswith("net.")}
    found = {k: v for k, v in header.items() if k.startswith("net.")}
    skip = set(head) if reset else set()
    problems = checkpoint.compare({k: v for k, v in expected.items() if k not in skip},
                                  {k: v for k, v in found.items() if k not in skip})
    if problems:
        what = f"model '{src_cfg['model']}' of {src}"
        hint = ""
        if not reset and head:
            rest = checkpoint.compare({k: v for k, v in expected.items() if k not in head},
                                      {k: v for k, v in found.items() if k not in head})
            if not rest:
                hint = (f" (only the output layer differs: {cfg['out_features']} outputs here, "
                        f"{src_cfg['out_features']} there; add --init-head reset to re-create it)")
        raise CheckpointError(f"{where}: the weights of {what} do not fit model '{cfg['model']}' of this run: "
                              + "; ".join(problems) + hint)
    state, _ = checkpoint.read_weights(path)
    keep = {k: state[k] for k in expected if k not in skip}
    checkpoint.check_finite(model, keep, path)
    own = model.state_dict()
    with torch.no_grad():
        for key, value in keep.items():
            own[key].copy_(value)
    reset_keys = [k for k in head if k in skip]
    source = {"path": str(src.resolve()), "recipe": src_cfg.get("recipe"), "dataset": src_cfg["dataset"],
              "model": src_cfg["model"], "epoch": file_meta.get("epoch"), "sha256": _sha256(path),
              "head": "reset" if reset else "strict", "reset": reset_keys}
    text = (f"init: {len(keep)} weight tensors from {src} (model '{src_cfg['model']}', sha256 "
            f"{source['sha256'][:12]}); the preprocessing is fitted on this run's data")
    if reset_keys:
        text += f"; output layer re-created (fresh initialisation): {', '.join(reset_keys)}"
    return source, text


def freeze(model: torch.nn.Module, patterns: tuple[str, ...] | list[str], model_name: str = "") -> str:
    """Freeze (``requires_grad=False``) every parameter whose name matches one of the glob ``patterns``; return a
    note counting frozen and trainable parameters. A pattern matching nothing, or freezing everything, is a
    UsageError."""
    named = list(model.named_parameters())
    names = [n for n, _ in named]
    for pat in patterns:
        if not fnmatch.filter(names, pat):
            close = difflib.get_close_matches(pat, names, n=3, cutoff=0.5)
            prefixed = [f"net.{pat}"] if not pat.startswith("net.") and fnmatch.filter(names, f"net.{pat}") else []
            tops = sorted({".".join(n.split(".")[:2]) + ".*" for n in names})
            hint = "; did you mean " + " or ".join(f"'{c}'" for c in (prefixed or close)) + "?" if (
                prefixed or close) else ""
            shown_tops = ", ".join(tops[:12]) + (f" and {len(tops) - 12} more" if len(tops) > 12 else "")
            raise UsageError(f"--freeze {pat}: matches no parameter of model{f' {model_name!r}' if model_name else ''}"
                             f"{hint} (its parameters: {shown_tops})")
    frozen = [(n, p) for n, p in named if any(fnmatch.fnmatchcase(n, pat) for pat in patterns)]
    if len(frozen) == len(named):
        raise UsageError(f"--freeze {','.join(patterns)} freezes every parameter of the model: nothing would train")
    for _, p in frozen:
        p.requires_grad_(False)
    n_frozen = sum(p.numel() for _, p in frozen)
    n_all = sum(p.numel() for _, p in named)
    return (f"frozen: {len(frozen)} of {len(named)} parameter tensors ({n_frozen:,} of {n_all:,} weights, "
            f"matching {', '.join(patterns)}); trainable: {n_all - n_frozen:,} weights")
