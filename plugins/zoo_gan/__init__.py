"""zoo plugin: generative adversarial networks on the procedure seam.

This module is what the ``gan`` entry point names. It only declares; the implementations in
``zoo_gan.datasets``, ``zoo_gan.models``, ``zoo_gan.procedure`` and ``zoo_gan.metrics`` are
imported when a component is used.

A run of the ``generation`` task has no labels. Its model holds a ``generator`` and a
``discriminator``: ``forward(x)`` is the discriminator's logit for data-shaped inputs (so the
run's input standardisation applies to what it sees) and ``sample(n, generator=None)`` draws
samples in the standardised space (``zoo sample`` maps them back to the data's units). The
``gan`` procedure trains the pair with two optimizers (the run's ``--optimizer`` and ``--lr``;
the discriminator's is checkpointed as ``discriminator``).
"""

from zoo import DatasetSpec, LossSpec, MetricSpec, ModelSpec, Param, ProcedureSpec, RecipeSpec, hookimpl

ZOO_CONTRACT = "1"

_GEN = ("generation",)


@hookimpl
def zoo_datasets():
    return [
        DatasetSpec(
            name="ring-of-gaussians",
            summary="8 two-dimensional Gaussians on a circle of radius 2, std 0.02 (no labels: learn to sample it).",
            tasks=_GEN,
            input="tabular",
            impl="zoo_gan.datasets:ring_of_gaussians",
            params={
                "n_samples": Param("int", 10000, "points in total (split 60/20/20 by the run's seed)", min=100,
                                   max=10_000_000),
            },
        ),
        DatasetSpec(
            name="digits-images",
            summary="scikit-learn's 1797 8x8 digits as images to learn to sample (pixels 0..16, seen as [-1, 1]).",
            tasks=_GEN,
            input="image",
            impl="zoo_gan.datasets:digits_images",
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
            name="gan-mlp",
            summary="An MLP generator and discriminator: forward scores samples, sample(n) draws them.",
            tasks=_GEN,
            inputs=("tabular",),
            impl="zoo_gan.models:gan_mlp",
            params={
                "latent": Param("int", 8, "size of the generator's Gaussian latent", min=1, max=4096),
                "hidden": Param("int-list", (128, 128, 128), "hidden layer sizes of both networks", min=1,
                                max=65536),
                "spectral_norm": Param("bool", False, "spectral normalisation of the discriminator's layers"),
                "pack": Param("int", 1, "samples the discriminator judges together (PacGAN; 1: one at a time); "
                              "each sample gets its group's logit", min=1, max=64),
            },
        ),
        ModelSpec(
            name="dcgan",
            summary="A DCGAN-style convolutional pair for small images: transposed convolutions up, convolutions down.",
            tasks=_GEN,
            inputs=("image",),
            impl="zoo_gan.models:dcgan",
            params={
                "latent": Param("int", 32, "size of the generator's Gaussian latent", min=1, max=4096),
                "channels": Param("int-list", (32, 64), "feature maps at half and at quarter resolution (the "
                                  "generator and the discriminator alike)", min=1, max=4096),
                "norm": Param("str", "pixel", "the generator's normalisation: pixel (each position's features to unit "
                              "RMS), layer (each sample's maps) or none; no batch statistics",
                              choices=("pixel", "layer", "none")),
                "spectral_norm": Param("bool", False, "spectral normalisation of the discriminator's layers"),
            },
        ),
    ]


@hookimpl
def zoo_losses():
    return [
        LossSpec(
            name="discriminator-bce",
            summary="The discriminator's binary cross-entropy on logits (real 1, generated 0): the reported loss.",
            tasks=_GEN,
            target="value",
            default_for=_GEN,
            impl="zoo_gan.procedure:discriminator_bce",
        ),
    ]


@hookimpl
def zoo_metrics():
    return [
        MetricSpec(name="ring_modes", summary="Modes of the ring covered: those holding >= 1% of the samples "
                                              "within 3 std.", tasks=_GEN, impl="zoo_gan.metrics:ring_modes",
                   fast="zoo_gan.metrics:ring_modes"),
        MetricSpec(name="ring_quality", summary="Share of samples within 3 std of a mode of the ring.", tasks=_GEN,
                   impl="zoo_gan.metrics:ring_quality", fast="zoo_gan.metrics:ring_quality"),
        MetricSpec(name="digits_fd", summary="Frechet distance of 1,000 samples to the real 8x8 digits on a pinned "
                                             "digits classifier's penultimate features (lower is better).",
                   tasks=_GEN, higher_is_better=False, impl="zoo_gan.metrics:digits_fd",
                   fast="zoo_gan.metrics:digits_fd"),
        MetricSpec(name="digits_classes", summary="Digit classes the pinned classifier sees among 1,000 samples: "
                                                  "those given >= 2% of them at >= 0.9 probability (0 to 10).",
                   tasks=_GEN, impl="zoo_gan.metrics:digits_classes", fast="zoo_gan.metrics:digits_classes"),
        MetricSpec(name="ring_score", summary="ring_quality times the share of modes covered (1 is perfect).",
                   tasks=_GEN, impl="zoo_gan.metrics:ring_score", fast="zoo_gan.metrics:ring_score"),
    ]


@hookimpl
def zoo_procedures():
    return [
        ProcedureSpec(
            name="gan",
            summary="Adversarial training: discriminator steps on real and generated batches, then a generator step.",
            tasks=_GEN,
            impl="zoo_gan.procedure:GanProcedure",
            params={
                "loss": Param("str", "non-saturating", "the adversarial objective: non-saturating (the generator "
                              "maximises log D(G(z))), minimax (it minimises log(1 - D(G(z)))) or hinge",
                              choices=("non-saturating", "minimax", "hinge")),
                "label_smoothing": Param("float", 0.0, "one-sided label smoothing: the discriminator's target for "
                                         "real samples is 1 - this (cross-entropy objectives)", min=0.0, max=0.5),
                "d_steps": Param("int", 1, "discriminator steps (one real batch each) per generator step", min=1,
                                 max=100),
                "d_lr_scale": Param("float", 1.0, "the discriminator's learning rate is the run's lr times this",
                                    min=0.0, max=100.0, min_exclusive=True),
                "r1": Param("float", 0.0, "weight of the R1 penalty: the discriminator's squared gradient norm on real "
                            "samples (0: off)", min=0.0, max=1e6),
            },
        ),
    ]


@hookimpl
def zoo_recipes():
    return [
        RecipeSpec(
            name="ring-gan",
            summary="A GAN on the ring of 8 Gaussians: every mode covered, samples on the modes.",
            dataset="ring-of-gaussians",
            model="gan-mlp",
            loss="discriminator-bce",
            train={"procedure": "gan", "r1": 0.1, "epochs": 500, "batch_size": 128, "lr": 0.001, "optimizer": "adam",
                   "schedule": "cosine", "metrics": ("ring_modes", "ring_quality", "ring_score"),
                   "monitor": "val_ring_score"},
        ),
        RecipeSpec(
            name="digits-gan",
            summary="A DCGAN on the 8x8 digits: samples a digits classifier finds close to real ones, all 10 digits.",
            dataset="digits-images",
            model="dcgan",
            loss="discriminator-bce",
            train={"procedure": "gan", "r1": 30.0, "epochs": 300, "batch_size": 64, "lr": 0.0005, "optimizer": "adam",
                   "schedule": "cosine", "metrics": ("digits_fd", "digits_classes"), "monitor": "val_digits_fd"},
        ),
    ]
