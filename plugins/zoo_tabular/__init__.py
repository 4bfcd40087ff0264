"""zoo plugin: tabular toy datasets of the guides, linear and MLP models, their recipes.

This module is what the ``tabular`` entry point names. It only declares; the
implementations in ``zoo_tabular.datasets`` and ``zoo_tabular.models`` are
imported when a component is used.
"""

from zoo import DatasetSpec, ModelSpec, Param, RecipeSpec, hookimpl

ZOO_CONTRACT = "1"

_SPLIT = {
    "val_size": Param("float", 0.2, "share of samples for validation (val_size + test_size < 1)", min=0.01, max=0.9),
    "test_size": Param("float", 0.2, "share of samples for testing (val_size + test_size < 1)", min=0.01, max=0.9),
    "standardize": Param("bool", True, "standardise features with training-split statistics"),
}

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
    ]


@hookimpl
def zoo_models():
    return [
        ModelSpec(
            name="linear",
            summary="One linear layer: linear regression or a linear (logistic) classifier.",
            tasks=("regression", "binary", "multiclass"),
            inputs=("tabular", "image"),
            impl="zoo_tabular.models:linear",
            params={"bias": Param("bool", True, "learn an intercept")},
        ),
        ModelSpec(
            name="mlp",
            summary="Multi-layer perceptron: hidden layers with an activation and dropout.",
            tasks=("regression", "binary", "multiclass"),
            inputs=("tabular", "image"),
            impl="zoo_tabular.models:mlp",
            params={
                "hidden": Param("int-list", (64, 64), "sizes of the hidden layers, e.g. 64,64", min=1),
                "activation": Param("str", "relu", "activation after each hidden layer", choices=ACTIVATIONS),
                "dropout": Param("float", 0.0, "dropout after each hidden layer", min=0.0),
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
    ]
