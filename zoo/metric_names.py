"""Names of the metrics per task (light: used to validate settings before torch loads)."""

#: Metrics reported per task; the first one is the headline figure.
TASK_METRICS = {
    "regression": ("mse", "mae", "r2"),
    "binary": ("accuracy", "f1", "precision", "recall", "roc_auc"),
    "multiclass": ("accuracy", "f1_macro"),
    "reconstruction": ("mse", "mae"),
}
