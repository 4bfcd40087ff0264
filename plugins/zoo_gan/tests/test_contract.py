"""The 'gan' plugin against the contract every zoo plugin runs (zoo.testing): the datasets, the models (with
the generation checks: samples), the loss, the metrics, the procedure (a real run on the contract's
generation harness, stopped and resumed exactly) and the recipes.

The contract scores a generation metric on synthetic 2-D points (a ring of Gaussians); the digits metrics score
8x8 images with a digits classifier and refuse other samples (their own tests are in test_digits_gan.py)."""

from zoo.testing import parametrize_plugin_checks

_IMAGES_ONLY = "the digits metrics score 8x8 images; the contract's generation samples are 2-D points"


@parametrize_plugin_checks("gan", expected_failures={"metric:digits_fd:scores[generation]": _IMAGES_ONLY,
                                                     "metric:digits_classes:scores[generation]": _IMAGES_ONLY})
def test_contract(check):
    check()
