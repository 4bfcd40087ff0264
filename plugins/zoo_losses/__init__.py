"""zoo plugin: the standard losses, each declaring the target layout it needs."""

from zoo import LossSpec, Param, hookimpl

ZOO_CONTRACT = "1"

_REG = ("regression", "reconstruction")
#: Value losses also fit action values to their bootstrapped targets (the control task).
_VALUE = (*_REG, "control")


@hookimpl
def zoo_losses():
    return [
        LossSpec(name="mse", summary="Mean squared error (L2).", tasks=_VALUE, target="value",
                 impl="zoo_losses.losses:mse", default_for=_REG),
        LossSpec(name="l1", summary="Mean absolute error (L1); robust to outliers.", tasks=_VALUE, target="value",
                 impl="zoo_losses.losses:l1"),
        LossSpec(name="huber", summary="Huber loss: squared near zero, absolute beyond delta.", tasks=_VALUE,
                 target="value", impl="zoo_losses.losses:huber", default_for=("control",),
                 params={"delta": Param("float", 1.0, "where the loss turns from squared to linear (> 0)", min=1e-12)}),
        LossSpec(name="cross-entropy", summary="Softmax cross-entropy over class logits (targets: class indices).",
                 tasks=("binary", "multiclass"), target="index", impl="zoo_losses.losses:cross_entropy",
                 default_for=("binary", "multiclass"),
                 params={"label_smoothing": Param("float", 0.0, "label smoothing in [0, 1)", min=0.0, max=0.99)}),
        LossSpec(name="bce-with-logits", summary="Binary cross-entropy on one logit (targets: float (N, 1)).",
                 tasks=("binary",), target="binary", impl="zoo_losses.losses:bce_with_logits",
                 params={"pos_weight": Param("float", 1.0, "weight of the positive class", min=0.0)}),
    ]
