"""The 'gan' plugin against the contract every zoo plugin runs (zoo.testing): the dataset, the model (with
the generation checks: samples), the loss, the metrics, the procedure (a real run on the contract's
generation harness, stopped and resumed exactly) and the recipe."""

from zoo.testing import parametrize_plugin_checks


@parametrize_plugin_checks("gan")
def test_contract(check):
    check()
