"""Smoke runs of the BatchNorm digits recipes: one epoch each, saved, reloaded, re-evaluated.

(Their quality is measured by hand, not asserted here: see the README's table.)
"""

from __future__ import annotations


import pytest
import torch
from torch import nn

import zoo
from zoo import rundir as runs
from zoo.registry import get_registry

RECIPES = {"digits-resnet": "resnet", "digits-mobilenet": "mobilenet", "digits-vgg": "vgg",
           "digits-alexnet": "alexnet", "digits-inception": "inception", "digits-densenet": "densenet",
           "digits-efficientnet": "efficientnet"}


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_trains_one_epoch_saves_and_reloads(recipe, tmp_path):
    run = zoo.train(recipe, epochs=1, quiet=True, out=tmp_path / "run")
    cfg = runs.read_config(run.dir)  # config.json, flat
    assert (cfg["dataset"], cfg["model"], cfg["loss"]) == ("digits", RECIPES[recipe], "cross-entropy")
    assert cfg["model_plugin"] == "vision" and cfg["meta"]["input_shape"] == [1, 8, 8]
    assert run.metrics["test"]["accuracy"] > 0.3  # ten classes; chance is 0.1
    assert zoo.evaluate(run.dir) == run.metrics["test"]
    model = zoo.load(run.dir)
    assert not model.training and any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    e = get_registry().get("dataset", "digits")
    X = e.load()(seed=cfg["seed"], **e.spec.resolve_params(cfg["dataset_params"])).test[0][:32]
    with torch.no_grad():
        assert torch.equal(model(X), run.model.eval()(X))  # running statistics saved and restored
