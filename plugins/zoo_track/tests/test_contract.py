"""The 'track' plugin against the contract every zoo plugin runs (zoo.testing): each tracker's declaration,
and a real 2-epoch run with it on the contract harness, stopped after epoch 1 and resumed. (The conftest
puts the runs, and the MLflow store beside them, in a temporary folder.)"""

from zoo.testing import parametrize_plugin_checks


@parametrize_plugin_checks("track")
def test_contract(check, monkeypatch, request):
    if "mlflow" in request.node.name:  # the default store beside the runs directory: the session's store
        monkeypatch.setenv("ZOO_RUNS_DIR", str(request.getfixturevalue("mlflow_home") / "runs"))
    check()
