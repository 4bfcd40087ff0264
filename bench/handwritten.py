"""``zoo train regression-mlp`` done by hand, without zoo (the other side of figure 6).

The same work with the same libraries: the sine data set (3000 points, y = x + 2 sin x +
N(0, 1)), scikit-learn's seeded 60/20/20 split, features standardised on the training
split, the 2x64 tanh MLP learning standardised targets, fused Adam at lr 0.01 with the
recipe's per-step cosine decay, batch 32 from a seeded ``randperm``, one CPU thread (what
the engine picks for this model), a validation loss each epoch keeping the best weights,
train/val/test metrics with scikit-learn, the best weights saved as safetensors and
reloaded into a fresh model that must predict identically. Prints one JSON line.

Run as a script (``python bench/handwritten.py --epochs 60 --out DIR``) so that nothing
but these imports is charged to its memory.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import train_test_split
from torch import nn


class Scaled(nn.Module):
    """The network learns standardised targets; outputs are in the data's units."""

    def __init__(self, net: nn.Module, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def forward(self, x):
        return torch.addcmul(self.mean, self.net(x), self.std)


def network() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(1, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 1))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    seed, bs, lr = args.seed, 32, 0.01

    rng = np.random.default_rng(0)
    x = np.linspace(0.0, 20.0, 3000)
    y = x + 2.0 * np.sin(x) + rng.normal(0.0, 1.0, size=3000)
    X, Y = x.reshape(-1, 1).astype(np.float32), y.reshape(-1, 1).astype(np.float32)
    rest, test_idx = train_test_split(np.arange(len(X)), test_size=0.2, random_state=seed)
    train_idx, val_idx = train_test_split(rest, test_size=0.2 / 0.8, random_state=seed)
    mean, std = X[train_idx].mean(0), X[train_idx].std(0)
    X = (X - mean) / np.where(std > 0, std, 1.0)
    split = {name: (torch.from_numpy(X[np.sort(ix)]), torch.from_numpy(Y[np.sort(ix)]))
             for name, ix in (("train", train_idx), ("val", val_idx), ("test", test_idx))}

    torch.manual_seed(seed)
    Xtr, ytr = split["train"]
    model = Scaled(network(), ytr.mean(0), ytr.std(0))
    opt = torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    loss_fn = nn.MSELoss()
    gen = torch.Generator().manual_seed(seed)
    torch.set_num_threads(1)
    steps = -(-len(Xtr) // bs)
    total, step = args.epochs * steps, 0
    best, best_state = math.inf, None
    for _ in range(args.epochs):
        model.train()
        perm = torch.randperm(len(Xtr), generator=gen)
        for i in range(0, len(Xtr), bs):
            for group in opt.param_groups:
                group["lr"] = lr * (0.5 * (1.0 + math.cos(math.pi * min(step, total) / total)))
            idx = perm[i : i + bs]
            loss = loss_fn(model(Xtr[idx]), ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
        model.eval()
        with torch.no_grad():
            val = float(loss_fn(model(split["val"][0]), split["val"][1]))
        if val < best:
            best, best_state = val, {k: v.detach().clone() for k, v in model.state_dict().items()}

    model.load_state_dict(best_state)
    model.eval()
    metrics = {}
    with torch.no_grad():
        for name, (Xs, ys) in split.items():
            pred, true = model(Xs).numpy(), ys.numpy()
            metrics[name] = {"mse": float(mean_squared_error(true, pred)),
                             "mae": float(mean_absolute_error(true, pred)), "r2": float(r2_score(true, pred))}
    args.out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(args.out / "model.safetensors"))
    fresh = Scaled(network(), torch.zeros(1), torch.ones(1))
    fresh.load_state_dict(load_file(str(args.out / "model.safetensors")))
    fresh.eval()
    with torch.no_grad():
        head = split["test"][0][:256]
        if not torch.equal(model(head), fresh(head)):
            raise SystemExit("reload check failed")
    (args.out / "metrics.json").write_text(json.dumps(metrics))
    print(json.dumps({"test_mse": metrics["test"]["mse"], "epochs": args.epochs,
                      "imported_torch_dynamo": "torch._dynamo" in sys.modules}))


if __name__ == "__main__":
    main()
