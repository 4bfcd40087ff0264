"""zoo plugin: small-image data bundled with scikit-learn and convolutional networks."""

from zoo import DatasetSpec, ModelSpec, Param, RecipeSpec, hookimpl

ZOO_CONTRACT = "1"


@hookimpl
def zoo_datasets():
    return [
        DatasetSpec(
            name="digits",
            summary="Handwritten digits, 1797 8x8 grey images in 10 classes (bundled with scikit-learn).",
            tasks=("multiclass",),
            input="image",
            impl="zoo_vision.datasets:digits",
            params={
                "val_size": Param("float", 0.15, "share of images for validation", min=0.01, max=0.9),
                "test_size": Param("float", 0.2, "share of images for testing", min=0.01, max=0.9),
            },
        ),
    ]


@hookimpl
def zoo_models():
    return [
        ModelSpec(
            name="cnn",
            summary="Small CNN: conv-ReLU-pool, conv-ReLU-pool, dropout, linear head (images >= 4x4).",
            tasks=("binary", "multiclass", "regression"),
            inputs=("image",),
            impl="zoo_vision.models:cnn",
            params={
                "channels": Param("int-list", (32, 64), "output channels of the two conv layers", min=1),
                "kernel_size": Param("int", 3, "convolution kernel size ('same' padding keeps the image size)", min=1),
                "pool": Param("str", "max", "pooling after each conv", choices=("max", "avg")),
                "dropout": Param("float", 0.25, "dropout before the linear head", min=0.0),
            },
        ),
    ]


@hookimpl
def zoo_recipes():
    return [
        RecipeSpec(
            name="digits-cnn",
            summary="Handwritten 8x8 digits with the small CNN and cross-entropy.",
            dataset="digits",
            model="cnn",
            loss="cross-entropy",
            train={"epochs": 30, "batch_size": 32, "lr": 0.002, "optimizer": "adam", "schedule": "cosine"},
        ),
    ]
