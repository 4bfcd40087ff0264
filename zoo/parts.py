"""Building the parts of a run: the device, the data (checked), the model (:class:`RunModel`), the loss,
the thread count. Used by training and by everything that reads a saved run."""

from __future__ import annotations

import contextlib
import math
from typing import Any, Callable

import torch

from .config import Combination
from .data import DataMeta, Splits, check_splits, is_tensor_split
from .errors import UsageError, ZooError

def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(f"--device {name}: CUDA is not available here (torch {torch.__version__}); use --device cpu")
        dev = torch.device(name)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UsageError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) present")
        return dev
    return torch.device(name)


def out_features(meta: DataMeta, target: str) -> int:
    if target == "index":
        return int(meta.num_classes)
    if target == "binary":
        return 1
    return int(meta.num_targets)


def adapt_targets(y: torch.Tensor, target: str) -> torch.Tensor:
    """Dataset targets -> the layout the loss wants (so users never fight shapes/dtypes)."""
    if target == "index":
        return y.reshape(-1).long()
    if target == "binary":
        return y.reshape(-1, 1).float()
    return y.reshape(len(y), -1).float()


class RunModel(torch.nn.Module):
    """A run's model as users call it: raw inputs in, predictions in the data's units out.

    ``forward(x) = to_data_units(net((x - input_mean) / input_std))``. ``net`` is the plugin's
    network, which trains on standardised inputs and (for regression) standardised targets;
    the four buffers are the fitted preprocessing, saved in the same safetensors file as the
    weights, so a reloaded model needs nothing else to take raw inputs:

    - ``input_mean``/``input_std`` (the input shape): the dataset's standardisation, fitted on
      the training split (zeros and ones when the dataset standardises nothing);
    - ``output_mean``/``output_std`` (one per output): regression, the training targets' mean
      and std (the loss is computed on standardised targets); reconstruction, the input
      standardisation flattened, so a reconstruction comes back in the input's units;
      classification, zeros and ones (the outputs are logits and are left alone).

    ``classes`` names the class of each output for classification (``meta.class_names``).
    """

    def __init__(self, net: torch.nn.Module, meta: DataMeta, out_features: int) -> None:
        super().__init__()
        self.net = net
        shape = tuple(int(d) for d in meta.input_shape)
        self.register_buffer("input_mean", torch.zeros(shape))
        self.register_buffer("input_std", torch.ones(shape))
        self.register_buffer("output_mean", torch.zeros(out_features))
        self.register_buffer("output_std", torch.ones(out_features))
        self.task = meta.task
        self.classes = list(meta.class_names) if meta.class_names is not None else None
        self.scales_output = meta.task in ("regression", "reconstruction")

    def standardize(self, x: torch.Tensor) -> torch.Tensor:
        """Raw inputs -> what ``net`` was trained on."""
        return (x - self.input_mean) / self.input_std

    def to_data_units(self, out: torch.Tensor) -> torch.Tensor:
        """``net``'s prediction -> the data's units (classification logits are returned as they are)."""
        if not self.scales_output:
            return out
        return torch.addcmul(self.output_mean, out.float(), self.output_std)

    def forward(self, x: torch.Tensor):
        out = self.net(self.standardize(x))
        if isinstance(out, dict):
            return {**out, "output": self.to_data_units(out["output"])}
        return self.to_data_units(out)

    def set_input_scale(self, preprocess: dict[str, torch.Tensor], where: str) -> None:
        """Copy a dataset's fitted ``mean``/``std`` (any shape that broadcasts to the input) into the buffers."""
        unknown = sorted(set(preprocess) - {"mean", "std"})
        if unknown:
            raise ZooError(f"{where} returned preprocessing zoo cannot apply ({', '.join(unknown)}); only mean/std "
                           "standardisation is supported")
        for key, buf in (("mean", self.input_mean), ("std", self.input_std)):
            if key not in preprocess:
                continue
            value = torch.as_tensor(preprocess[key]).float()
            try:
                buf.copy_(value.expand(buf.shape))
            except RuntimeError:
                raise ZooError(f"{where} returned a preprocessing {key} of shape {tuple(value.shape)}, which does "
                               f"not broadcast to its input shape {tuple(buf.shape)}") from None
        if not torch.isfinite(self.input_std).all() or (self.input_std == 0).any():
            raise ZooError(f"{where} returned a preprocessing std with zero or non-finite values")


def build_net(combo: Combination, cfg: dict[str, Any], meta: DataMeta) -> torch.nn.Module:
    """The plugin's network for this run (trains on standardised inputs)."""
    factory = combo.model.load()
    try:
        net = factory(tuple(meta.input_shape), out_features(meta, cfg["target"]), **cfg["model_params"])
    except ZooError:
        raise
    except Exception as exc:
        raise ZooError(
            f"model '{combo.model.name}' from plugin '{combo.model.plugin.name}' could not be built for input shape "
            f"{tuple(meta.input_shape)} with {cfg['model_params']}: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(net, torch.nn.Module):
        raise ZooError(f"model '{combo.model.name}' from plugin '{combo.model.plugin.name}' returned "
                       f"{type(net).__name__}, not an nn.Module")
    return net


def build_model(combo: Combination, cfg: dict[str, Any], meta: DataMeta) -> RunModel:
    """The run's :class:`RunModel` (its buffers at identity until fitted or loaded)."""
    return RunModel(build_net(combo, cfg, meta), meta, out_features(meta, cfg["target"]))


def fit_scales(model: RunModel, splits: Splits, cfg: dict[str, Any], combo: Combination) -> str | None:
    """Fill the model's preprocessing buffers: the dataset's input standardisation and, for regression with
    ``scale_targets``, the training targets' mean and std. Returns a note when the targets stay unscaled."""
    ds = combo.dataset
    model.set_input_scale(splits.preprocess, f"dataset '{ds.name}' from plugin '{ds.plugin.name}'")
    if model.task == "reconstruction" and model.output_mean.numel() == model.input_mean.numel():
        model.output_mean.copy_(model.input_mean.reshape(-1))
        model.output_std.copy_(model.input_std.reshape(-1))
    elif model.task == "regression" and cfg["scale_targets"] and cfg["target"] == "value":
        y = splits.train[1] if is_tensor_split(splits.train) else getattr(splits.train, "targets", None)
        if y is None:
            cfg["scale_targets"] = False
            return (f"dataset '{ds.name}' is read lazily and exposes no 'targets': its targets are not "
                    "standardised (scale_targets=false)")
        y = adapt_targets(torch.as_tensor(y), cfg["target"]).double()
        std = y.std(0) if len(y) > 1 else torch.ones(y.shape[1:], dtype=y.dtype)
        model.output_mean.copy_(y.mean(0))
        model.output_std.copy_(torch.where(std > 0, std, torch.ones_like(std)))
    return None


def build_loss(combo: Combination, cfg: dict[str, Any], device: torch.device | None = None) -> Callable:
    try:
        loss_fn = combo.loss.load()(**cfg["loss_params"])
    except ZooError:
        raise
    except Exception as exc:
        raise ZooError(f"loss '{combo.loss.name}' could not be built with {cfg['loss_params']}: "
                       f"{type(exc).__name__}: {exc}") from exc
    if isinstance(loss_fn, torch.nn.Module) and device is not None:
        loss_fn = loss_fn.to(device)  # buffers such as pos_weight follow the model
    return loss_fn


def load_data(combo: Combination, cfg: dict[str, Any]) -> Splits:
    ds = combo.dataset
    try:
        splits = ds.load()(seed=cfg["seed"], **cfg["dataset_params"])
    except ZooError:
        raise
    except (ValueError, OSError) as exc:  # the dataset's own message for a bad file or value
        raise ZooError(f"dataset '{ds.name}': {' '.join(str(exc).split())}") from exc
    except Exception as exc:
        raise ZooError(f"dataset '{ds.name}' from plugin '{ds.plugin.name}' could not be loaded with "
                       f"{cfg['dataset_params']}: {type(exc).__name__}: {' '.join(str(exc).split())}") from exc
    if not isinstance(splits, Splits):
        raise ZooError(f"dataset '{ds.name}' from plugin '{ds.plugin.name}' returned {type(splits).__name__}, "
                       "not zoo.data.Splits")
    problem = check_splits(splits)
    if problem:
        raise ZooError(f"dataset '{ds.name}' from plugin '{ds.plugin.name}' ({ds.plugin.dist} {ds.plugin.version}): "
                       f"{problem}")
    expected = cfg.get("task") or ds.spec.tasks[0]
    if splits.meta.task != expected:
        raise ZooError(f"dataset '{ds.name}' from plugin '{ds.plugin.name}' was resolved as a {expected} task but "
                       f"produced a {splits.meta.task} task")
    return splits


def count_macs(model: torch.nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one forward pass on one sample (Linear and Conv layers)."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        out = output[0] if isinstance(output, tuple) else output  # RNNs return (output, state)
        if not isinstance(out, torch.Tensor):
            return
        if isinstance(module, torch.nn.Linear):
            total += module.in_features * out.numel()
        elif isinstance(module, torch.nn.modules.conv._ConvNd):
            total += out.numel() * (module.in_channels // module.groups) * math.prod(module.kernel_size)
        elif isinstance(module, torch.nn.RNNBase):
            total += sum(p.numel() for p in module.parameters()) * (out.shape[1] if out.dim() > 2 else 1)

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            device = next(iter(model.parameters()), torch.empty(0)).device
            model(torch.zeros(1, *input_shape, device=device))
    except Exception:  # noqa: BLE001 - only an estimate
        return 0
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return total


#: Below this many multiply-accumulates per optimizer step, one CPU thread is faster: the
#: work per op is too small to split, and spare threads only spin (badly so on a busy machine).
SMALL_STEP_MACS = 64_000_000


def choose_threads(setting: int, model: torch.nn.Module, input_shape, batch_size: int, device: torch.device) -> int:
    if setting > 0:
        return setting
    if device.type != "cpu":
        return torch.get_num_threads()
    threads = torch.get_num_threads()
    with intra_op_threads(1):  # a one-sample pass: waking other threads would cost more than it
        macs = count_macs(model, tuple(input_shape)) * batch_size
    return 1 if macs < SMALL_STEP_MACS else threads


@contextlib.contextmanager
def intra_op_threads(n: int | None):
    """torch's intra-op threads set to ``n`` (when given) for the block, then restored."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def workers_for(setting: int) -> int:
    """DataLoader workers for datasets that are not in-memory tensors (-1: one per spare core, at most 4)."""
    if setting >= 0:
        return setting
    import os

    return max(0, min(4, (os.cpu_count() or 1) - 1))
