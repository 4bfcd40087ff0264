"""The 'training' plugin against the contract every zoo plugin runs (zoo.testing)."""

from zoo.testing import parametrize_plugin_checks


@parametrize_plugin_checks("training")
def test_contract(check):
    check()
