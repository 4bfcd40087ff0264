"""zoo plugin: reconstruction data, an autoencoder, a variational autoencoder and its loss.

This module is what the ``generative`` entry point names. It only declares; the
implementations in ``zoo_generative.datasets``, ``zoo_generative.models`` and
``zoo_generative.losses`` are imported when a component is used.

In the ``reconstruction`` task the target is the standardised, flattened input, so a
model's output has ``D = prod(input_shape)`` values. The ``vae`` returns a dict with its
``output`` and the ``mu`` and ``logvar`` of its latent code, which ``vae-loss`` reads.
"""

from zoo import DatasetSpec, LossSpec, ModelSpec, Param, RecipeSpec, hookimpl

ZOO_CONTRACT = "1"

ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu", "elu", "leaky_relu", "silu")

_NET = {
    "hidden": Param("int-list", (128,), "hidden layer sizes of the encoder (the decoder mirrors them), e.g. 128,64",
                    min=1),
    "activation": Param("str", "relu", "activation after each hidden layer", choices=ACTIVATIONS),
    "dropout": Param("float", 0.0, "dropout after each hidden layer", min=0.0, max=0.99),
}


@hookimpl
def zoo_datasets():
    return [
        DatasetSpec(
            name="digits-reconstruction",
            summary="scikit-learn's 1797 8x8 digits as 64-feature vectors to reconstruct (the target is the input).",
            tasks=("reconstruction",),
            input="tabular",
            impl="zoo_generative.datasets:digits_reconstruction",
            params={
                "standardize": Param("str", "global", "global: one mean/std over all pixels (predicting 0 scores "
                                     "MSE 1); feature: per pixel (rare pixels then dominate the MSE); none: raw "
                                     "0..16 pixels", choices=("global", "feature", "none")),
                "val_size": Param("float", 0.15, "share of images for validation", min=0.01, max=0.9),
                "test_size": Param("float", 0.2, "share of images for testing", min=0.01, max=0.9),
            },
        ),
    ]


@hookimpl
def zoo_models():
    return [
        ModelSpec(
            name="autoencoder",
            summary="MLP autoencoder: flattened input -> hidden -> latent code -> mirrored hidden -> reconstruction.",
            tasks=("reconstruction",),
            inputs=("tabular", "image"),
            impl="zoo_generative.models:autoencoder",
            params={**_NET, "latent": Param("int", 16, "size of the latent code (the bottleneck)", min=1)},
        ),
        ModelSpec(
            name="vae",
            summary="Variational autoencoder (MLP); returns the reconstruction and the latent mu and logvar.",
            tasks=("reconstruction",),
            inputs=("tabular", "image"),
            outputs=("output", "mu", "logvar"),
            impl="zoo_generative.models:vae",
            params={**_NET, "latent": Param("int", 16, "size of the latent code", min=1)},
        ),
    ]


@hookimpl
def zoo_losses():
    return [
        LossSpec(
            name="vae-loss",
            summary="Negative ELBO: reconstruction error + beta * KL(N(mu, sigma^2) || N(0, 1)), per output value.",
            tasks=("reconstruction",),
            target="value",
            reads=("mu", "logvar"),
            default_for=("reconstruction",),
            impl="zoo_generative.losses:vae_loss",
            params={
                "beta": Param("float", 1.0, "weight of the KL term (0: a plain autoencoder with noise)", min=0.0),
                "reconstruction": Param("str", "mse", "per-value reconstruction error: mse (Gaussian decoder) or "
                                        "l1 (Laplace decoder); targets are standardised, so no bce",
                                        choices=("mse", "l1")),
            },
        ),
    ]


_TRAIN = {"optimizer": "adam", "schedule": "cosine"}


@hookimpl
def zoo_recipes():
    return [
        RecipeSpec(
            name="digits-autoencoder",
            summary="Reconstruct the 8x8 digits through a 16-value code with an MLP autoencoder and MSE.",
            dataset="digits-reconstruction",
            model="autoencoder",
            loss="mse",
            model_params={"hidden": (128,), "latent": 16},
            train={"epochs": 60, "batch_size": 32, "lr": 0.002, **_TRAIN},
        ),
        RecipeSpec(
            name="digits-vae",
            summary="Reconstruct the 8x8 digits with a variational autoencoder (16-value code) and the VAE loss.",
            dataset="digits-reconstruction",
            model="vae",
            loss="vae-loss",
            model_params={"hidden": (128,), "latent": 16},
            loss_params={"beta": 1.0},
            train={"epochs": 60, "batch_size": 32, "lr": 0.002, **_TRAIN},
        ),
    ]
