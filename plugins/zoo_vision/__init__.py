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
                "classes": Param("int-list", (), "keep only these digits (e.g. 0,1,2,3,4): they become classes "
                                 "0..k-1 in increasing order, named by their digit (empty: all ten)", min=0, max=9),
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
        ModelSpec(
            name="alexnet",
            summary="AlexNet-style: a 5x5 then 3x3 conv stack with ReLU, max-pooling, a dropout MLP classifier.",
            tasks=_BN_TASKS,
            inputs=("image",),
            impl="zoo_vision.families:alexnet",
            params={
                "widths": Param("int-list", (32, 64, 96, 96, 64), "channels of each conv layer (a 3x3 stride-2 "
                                "max-pool follows the first, second and last while the map is >= 8 pixels)", min=1),
                "hidden": Param("int-list", (256,), "units of each hidden layer of the classifier (AlexNet: "
                                "4096,4096)", min=1),
                "dropout": Param("float", 0.5, "dropout before each hidden layer of the classifier", min=0.0,
                                 max=0.99),
                "batchnorm": Param("bool", True, "BatchNorm after each conv and hidden layer (AlexNet had none; "
                                   "without it, use a learning rate of about 0.001)"),
            },
        ),
        ModelSpec(
            name="inception",
            summary="GoogLeNet-style: Inception blocks (1x1, 3x3, two 3x3, pool branches) with BatchNorm.",
            tasks=_BN_TASKS,
            inputs=("image",),
            impl="zoo_vision.families:inception",
            params={
                "widths": Param("int-list", (32, 64, 128, 128), "channels of the stem, then of each stage of "
                                "Inception blocks (a stage after the first starts with a max-pool halving the "
                                "map while it is >= 8 pixels)", min=8),
                "blocks": Param("int", 1, "Inception blocks per stage", min=1),
                "reduce": Param("float", 0.5, "the 1x1 reductions before the 3x3 branches, as a share of their "
                                "branch's channels", min=0.0, max=1.0, min_exclusive=True),
                "dropout": Param("float", 0.2, "dropout before the linear head", min=0.0, max=0.99),
            },
        ),
        ModelSpec(
            name="densenet",
            summary="DenseNet-BC: dense blocks of BN-ReLU-conv layers, compressing transitions (any image size).",
            tasks=_BN_TASKS,
            inputs=("image",),
            impl="zoo_vision.families:densenet",
            params={
                "growth": Param("int", 12, "channels each dense layer adds (the growth rate k)", min=1),
                "layers": Param("int-list", (4, 4, 4), "dense layers of each block (a transition between blocks "
                                "halves the map while it is >= 8 pixels)", min=1),
                "bottleneck": Param("int", 4, "1x1 bottleneck of bottleneck x growth channels before each 3x3 "
                                    "conv (0: none)", min=0),
                "compression": Param("float", 0.5, "share of the channels a transition keeps", min=0.0, max=1.0,
                                     min_exclusive=True),
                "dropout": Param("float", 0.1, "dropout before the linear head", min=0.0, max=0.99),
            },
        ),
        ModelSpec(
            name="efficientnet",
            summary="EfficientNet-style: MBConv blocks (expansion, depthwise conv, squeeze-excitation, SiLU).",
            tasks=_BN_TASKS,
            inputs=("image",),
            impl="zoo_vision.families:efficientnet",
            params={
                "widths": Param("int-list", (32, 16, 24, 40, 80), "channels of the stem, then of each stage (a "
                                "stage after the first starts with a stride-2 block while the map is >= 8 pixels)",
                                min=1),
                "blocks": Param("int", 2, "MBConv blocks per stage", min=1),
                "expansion": Param("int", 4, "expansion ratio of the MBConv blocks after the first stage", min=1),
                "kernel_size": Param("int", 3, "depthwise convolution kernel size", choices=(3, 5, 7)),
                "se_ratio": Param("float", 0.25, "squeeze-and-excitation channels as a share of a block's input "
                                  "channels (0: none)", min=0.0, max=1.0),
                "head": Param("int", 256, "channels of the 1x1 conv before the pooling", min=1),
                "dropout": Param("float", 0.2, "dropout before the linear head", min=0.0, max=0.99),
                "drop_path": Param("float", 0.0, "stochastic depth: the last residual block's chance to skip its "
                                   "body in training (rising from 0 at the first)", min=0.0, max=0.9),
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
        RecipeSpec(
            name="digits-alexnet",
            summary="Handwritten 8x8 digits with the AlexNet-style network and cross-entropy.",
            dataset="digits",
            model="alexnet",
            loss="cross-entropy",
            train={"epochs": 30, "batch_size": 32, "lr": 0.001, "optimizer": "adamw", "schedule": "cosine",
                   "weight_decay": 0.01},
        ),
        RecipeSpec(
            name="digits-inception",
            summary="Handwritten 8x8 digits with the GoogLeNet-style Inception network and cross-entropy.",
            dataset="digits",
            model="inception",
            loss="cross-entropy",
            train={"epochs": 30, "batch_size": 64, "lr": 0.003, "optimizer": "adamw", "schedule": "cosine",
                   "weight_decay": 0.01},
        ),
        RecipeSpec(
            name="digits-densenet",
            summary="Handwritten 8x8 digits with the DenseNet-BC and cross-entropy.",
            dataset="digits",
            model="densenet",
            loss="cross-entropy",
            train={"epochs": 30, "batch_size": 64, "lr": 0.001, "optimizer": "adamw", "schedule": "cosine",
                   "weight_decay": 0.01},
        ),
        RecipeSpec(
            name="digits-efficientnet",
            summary="Handwritten 8x8 digits with the EfficientNet-style network and cross-entropy.",
            dataset="digits",
            model="efficientnet",
            model_params={"drop_path": 0.1},
            loss="cross-entropy",
            train={"epochs": 30, "batch_size": 64, "lr": 0.003, "optimizer": "adamw", "schedule": "cosine",
                   "weight_decay": 0.01},
        ),
    ]
