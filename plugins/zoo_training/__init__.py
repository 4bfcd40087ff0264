"""zoo plugin: the training parts every run uses: optimizers, learning-rate schedules, metrics, the
supervised training procedure and the single-device strategy.

This module is what the ``training`` entry point names. It only declares; the implementations
(``zoo_training.optimizers``, ``.schedules``, ``.metrics``, ``.supervised``, ``.strategies``) are
imported when a run uses them. They are a plugin like any other: a third-party plugin adds an
optimizer, a schedule, a metric, a procedure or a strategy the same way.
"""

from zoo import (MetricSpec, OptimizerSpec, Param, ProcedureSpec, ScheduleSpec, StrategySpec, hookimpl)

ZOO_CONTRACT = "1"

_WD = {"weight_decay": Param("float", 0.0, "L2 penalty (decoupled for adamw)", min=0.0)}
_MOMENTUM = {"momentum": Param("float", 0.0, "momentum", min=0.0, max=1.0, max_exclusive=True)}
_TASKS_ALL = ("regression", "binary", "multiclass", "reconstruction")
_REGRESSION = ("regression", "reconstruction")
_CLASSES = ("binary", "multiclass")


@hookimpl
def zoo_optimizers():
    return [
        OptimizerSpec(name="adam", summary="Adam (one flat buffer, torch's fused kernel where it has one).",
                      impl="zoo_training.optimizers:adam", params=dict(_WD)),
        OptimizerSpec(name="adamw", summary="AdamW: Adam with decoupled weight decay.",
                      impl="zoo_training.optimizers:adamw", params=dict(_WD)),
        OptimizerSpec(name="sgd", summary="Stochastic gradient descent, with momentum and Nesterov momentum.",
                      impl="zoo_training.optimizers:sgd",
                      params={**_MOMENTUM, "nesterov": Param("bool", False, "Nesterov momentum", requires="momentum"),
                              **_WD}),
        OptimizerSpec(name="rmsprop", summary="RMSprop, with momentum.", impl="zoo_training.optimizers:rmsprop",
                      params={**_MOMENTUM, **_WD}),
        OptimizerSpec(name="adagrad", summary="Adagrad.", impl="zoo_training.optimizers:adagrad", params=dict(_WD)),
    ]


@hookimpl
def zoo_schedules():
    return [
        ScheduleSpec(name="none", summary="A constant learning rate (after the warm-up, if any).",
                     impl="zoo_training.schedules:none", warmup=True),
        ScheduleSpec(name="cosine", summary="Half a cosine from the learning rate to 0 over the run's planned steps.",
                     impl="zoo_training.schedules:cosine", warmup=True),
        ScheduleSpec(name="step", summary="Multiply the learning rate by gamma every step_size epochs.",
                     impl="zoo_training.schedules:step", warmup=True,
                     params={"step_size": Param("int", 10, "epochs between learning-rate drops", min=1,
                                                max=1_000_000),
                             "gamma": Param("float", 0.1, "factor of each drop", min=0.0, max=1.0,
                                            min_exclusive=True)}),
        ScheduleSpec(name="plateau", summary="Multiply the learning rate by gamma when the monitored figure stalls.",
                     impl="zoo_training.schedules:plateau", warmup=True,
                     params={"gamma": Param("float", 0.1, "factor of each drop", min=0.0, max=1.0,
                                            min_exclusive=True),
                             "plateau_patience": Param("int", 5, "epochs without improvement before a drop",
                                                       min=1, max=1_000_000)}),
    ]


def _metric(name, summary, tasks, default_for, higher=True):
    return MetricSpec(name=name, summary=summary, tasks=tasks, default_for=default_for, higher_is_better=higher,
                      impl=f"zoo_training.metrics:{name}", fast=f"zoo_training.metrics:fast_{name}")


@hookimpl
def zoo_metrics():
    # declaration order is report order; a task's first default metric is its headline figure
    return [
        _metric("mse", "Mean squared error, in the data's units.", _REGRESSION, _REGRESSION, higher=False),
        _metric("mae", "Mean absolute error, in the data's units.", _REGRESSION, _REGRESSION, higher=False),
        _metric("r2", "Coefficient of determination R² (1 is perfect, 0 predicts the mean).", ("regression",),
                ("regression",)),
        _metric("accuracy", "Share of samples whose predicted class is right.", _CLASSES, _CLASSES),
        _metric("f1", "F1 score of the positive class.", ("binary",), ("binary",)),
        _metric("precision", "Precision of the positive class.", ("binary",), ("binary",)),
        _metric("recall", "Recall of the positive class.", ("binary",), ("binary",)),
        _metric("roc_auc", "Area under the ROC curve.", ("binary",), ("binary",)),
        _metric("f1_macro", "F1 score averaged over the classes.", ("multiclass",), ("multiclass",)),
    ]


@hookimpl
def zoo_procedures():
    return [
        ProcedureSpec(name="supervised", summary="Forward, loss, backward and optimizer step on each batch.",
                      tasks=_TASKS_ALL, impl="zoo_training.supervised:SupervisedProcedure"),
    ]


@hookimpl
def zoo_strategies():
    return [
        StrategySpec(name="single", summary="One process on one device (CPU or one GPU).",
                     impl="zoo_training.strategies:SingleDevice"),
        StrategySpec(name="ddp", summary="Distributed data parallel on torch.distributed: one process per device, "
                                         "started by torchrun or 'zoo train --nproc N'.",
                     impl="zoo_training.ddp:DistributedDataParallel", distributed=True,
                     params={"backend": Param("str", "auto", "process-group backend (auto: nccl on CUDA, gloo on "
                                                                "CPU)", choices=("auto", "gloo", "nccl")),
                             "timeout": Param("float", 300.0, "seconds a collective may wait for the other "
                                                              "processes before the run fails", min=1.0,
                                              max=86400.0),
                             "sync_batchnorm": Param("bool", True, "batch-norm statistics over the global batch "
                                                                   "(CUDA; torch has no CPU version)")}),
    ]
