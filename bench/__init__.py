"""zoo's benchmark suite: is the engine as fast as the code it replaces, at the same quality?

``python -m bench [--quick] [--repeats N] [--epochs N] [--only NAME] [--out DIR]`` measures,
in one process and side by side on the same data, ten figures, each as a ratio:

1. ``tight``: the zoo engine vs a tight hand-written loop (same model, optimizer
   implementation, seed and threads), on ``regression-mlp`` and ``digits-cnn``; also
   whether both end with bit-identical weights;
2. ``dataloader``: the engine vs the guides' ``DataLoader`` loop;
3. ``sklearn``: the engine vs scikit-learn's ``MLPRegressor`` / ``MLPClassifier``;
4. ``startup``: ``zoo list`` and ``zoo --help`` vs ``python -c "import torch"``;
5. ``reload``: the post-save reload check as a share of a training run;
6. ``memory``: peak resident memory of ``zoo train regression-mlp`` vs the same work by hand;
7. ``scaling``: ``digits-resnet`` on 2 processes (DDP, gloo) vs 1, and the distributed path at
   world size 1 vs the plain engine;
8. ``peers``: the engine vs PyTorch Lightning's ``Trainer`` and skorch at equal work, on
   ``regression-mlp``, ``moons-mlp`` and ``digits-cnn`` (the optional ``bench`` extra);
9. ``quality-time``: time to a fixed test score against scikit-learn's MLPs, each tool
   with its own default settings;
10. ``latency``: ``zoo train``, ``zoo eval``, ``zoo predict`` and ``zoo plot`` as whole
    processes, as overhead beyond ``python -c "import torch"`` and the work done in process.

Timed sides are interleaved (A B A B ...) and summarised by their medians; every
training figure reports the test score each side reached. This module stays light
(no torch) so that the hand-written script of figure 6 is not charged for it.
"""

from __future__ import annotations

#: Figure keys in report order: ``--only`` takes these (or their numbers).
FIGURES = ("tight", "dataloader", "sklearn", "startup", "reload", "memory", "scaling", "peers", "quality-time",
           "latency")

__all__ = ["FIGURES"]
