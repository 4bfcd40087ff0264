"""The 'rl' plugin against the contract every zoo plugin runs (zoo.testing): the dataset (a real gymnasium
environment), the Q-network (with the control checks), the metrics, the procedure (a real run on the
contract's chain environment, stopped and resumed exactly) and the recipes."""

import pytest

pytest.importorskip("gymnasium", reason="the rl plugin's environments need the optional extra zoo[rl]")

from zoo.testing import parametrize_plugin_checks  # noqa: E402


@parametrize_plugin_checks("rl")
def test_contract(check):
    check()
