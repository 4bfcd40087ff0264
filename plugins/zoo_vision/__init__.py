"""zoo plugin: images (scikit-learn's digits, a local image folder) and convolutional networks."""

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
        DatasetSpec(
            name="image-folder",
            summary="A local folder with one sub-folder of PNG/JPEG images per class, read lazily.",
            tasks=("multiclass",),
            input="image",
            impl="zoo_vision.imagefolder:image_folder",
            example="zoo_vision.imagefolder:example",
            params={
                "path": Param("str", None, "the folder: one sub-folder per class (its name is the class name)",
                              required=True),
                "size": Param("int", 32, "images are resized to size x size pixels", min=1),
                "grayscale": Param("bool", False, "convert to one grey channel (default: three RGB channels)"),
                "val_size": Param("float", 0.2, "share of each class for validation", min=0.01, max=0.9),
                "test_size": Param("float", 0.2, "share of each class for testing", min=0.01, max=0.9),
            },
        ),
    ]


_BN_TASKS = ("binary", "multiclass", "regression")


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
                "dropout": Param("float", 0.25, "dropout before the linear head", min=0.0, max=1.0, max_exclusive=True),
            },
        ),
        ModelSpec(
            name="resnet",
            summary="ResNet: residual basic blocks with BatchNorm, average pooling, linear head (any image size).",
            tasks=_BN_TASKS,
            inputs=("image",),
            impl="zoo_vision.models:resnet",
            params={
                "widths": Param("int-list", (32, 64, 128), "channels of each stage (a stage after the first "
                                "halves the feature map while it is >= 8 pixels)", min=1),
                "blocks": Param("int", 1, "residual blocks per stage", min=1),
                "dropout": Param("float", 0.1, "dropout before the linear head", min=0.0, max=0.99),
            },
        ),
        ModelSpec(
            name="mobilenet",
            summary="MobileNet of depthwise separable convolutions with BatchNorm and ReLU6 (any image size).",
            tasks=_BN_TASKS,
            inputs=("image",),
            impl="zoo_vision.models:mobilenet",
            params={
                "widths": Param("int-list", (32, 64, 128, 128, 256), "channels of the stem, then of each "
                                "separable block (a widening block halves the map while it is >= 8 pixels)",
                                min=1),
                "width_multiplier": Param("float", 1.0, "scales every width (MobileNet's alpha)", min=0.01),
                "dropout": Param("float", 0.1, "dropout before the linear head", min=0.0, max=0.99),
            },
        ),
        ModelSpec(
            name="vgg",
            summary="VGG-style plain stack: conv-BN-ReLU blocks and max-pooling, average pooling, linear head.",
            tasks=_BN_TASKS,
            inputs=("image",),
            impl="zoo_vision.models:vgg",
            params={
                "widths": Param("int-list", (32, 64, 128), "channels of each stage (followed by a 2x2 max-pool "
                                "while the map is >= 8 pixels)", min=1),
                "convs": Param("int", 2, "conv-BN-ReLU layers per stage", min=1),
                "dropout": Param("float", 0.2, "dropout before the linear head", min=0.0, max=0.99),
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
        RecipeSpec(
            name="digits-resnet",
            summary="Handwritten 8x8 digits with the ResNet and cross-entropy.",
            dataset="digits",
            model="resnet",
            loss="cross-entropy",
            train={"epochs": 30, "batch_size": 64, "lr": 0.003, "optimizer": "adamw", "schedule": "cosine",
                   "weight_decay": 0.01},
        ),
        RecipeSpec(
            name="digits-mobilenet",
            summary="Handwritten 8x8 digits with the MobileNet and cross-entropy.",
            dataset="digits",
            model="mobilenet",
            loss="cross-entropy",
            train={"epochs": 20, "batch_size": 64, "lr": 0.003, "optimizer": "adamw", "schedule": "cosine",
                   "weight_decay": 0.01},
        ),
        RecipeSpec(
            name="digits-vgg",
            summary="Handwritten 8x8 digits with the VGG-style network and cross-entropy.",
            dataset="digits",
            model="vgg",
            loss="cross-entropy",
            train={"epochs": 15, "batch_size": 64, "lr": 0.003, "optimizer": "adamw", "schedule": "cosine",
                   "weight_decay": 0.01},
        ),
    ]
