"""The 'sequence' plugin against the contract every zoo plugin runs (zoo.testing)."""

from zoo.testing import parametrize_plugin_checks


@parametrize_plugin_checks("sequence")
def test_contract(check):
    check()
