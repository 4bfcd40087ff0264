"""``python -m bench gan [--recipe ring-gan] [--seeds 0,1,2] [--epochs N] [--split test] [--out DIR]``: train a
GAN recipe once per seed (``zoo.train(recipe, seed=s)``) and tabulate its final metrics (the best epoch's
weights, as ``metrics.json`` holds them), the epochs and optimizer steps it trained and the wall time of each
whole run (data, training, final metrics, saving, reload check). Writes ``gan-RECIPE.json`` and
``gan-RECIPE.md`` into ``--out`` (default ``bench/results``).

The ring's targets: every seed covers 8/8 modes with at least 90% of the samples of high quality.

``digits-gan`` is scored next to baselines, each on the same seed's test split of ``digits-images`` with the same
metrics (1,000 samples each): the floor (1,000 real training images), uniform noise (1,000 images of uniform
0..16 pixels) and the ``digits-vae`` decoder (``zoo.train("digits-vae", seed=s)``, then its decoder on 1,000
latents drawn from N(0, I), in pixels as the run's model gives them). Its targets: per seed, a Fréchet distance
(``digits_fd``) below the same seed's VAE samples' and at least 9 of the 10 digit classes seen
(``digits_classes``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
TARGETS = {"ring-gan": {"ring_modes": 8.0, "ring_quality": 0.90}, "digits-gan": {"digits_classes": 9.0}}
#: Recipes scored next to baselines (``digits-gan``: a target relative to the VAE's samples).
BASELINES = {"digits-gan"}
#: Samples each digits baseline draws (what the digits metrics score).
DIGITS_SAMPLES = 1000


def _steps(run_dir: Path) -> int | None:
    """The discriminator steps a gan run took (its last checkpoint's procedure state), or None."""
    states = sorted((run_dir / "checkpoints").glob("*/trainer.json"))
    if not states:
        return None
    return (json.loads(states[-1].read_text()).get("procedure") or {}).get("d_count")


def run_seed(recipe: str, seed: int, epochs: int | None, split: str, threads: int | None = None) -> dict:
    import zoo

    settings = {"epochs": epochs} if epochs else {}
    if threads:
        settings["threads"] = threads
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run = zoo.train(recipe, seed=seed, out=Path(tmp) / "run", quiet=True, **settings)
        wall = time.perf_counter() - t0
        saved = json.loads((run.dir / "metrics.json").read_text())
        cfg = run.config
        counted = _steps(run.dir)
    epochs_done = len(run.history)
    n_train = round(cfg["dataset_params"].get("n_samples", 0) * 0.6) if "n_samples" in cfg["dataset_params"] else None
    batches = -(-n_train // cfg["batch_size"]) if n_train else None
    d_steps = (cfg.get("procedure_params") or {}).get("d_steps", 1)
    d_total = batches * epochs_done if batches else counted
    return {"seed": seed, "epochs": epochs_done, "best_epoch": run.best_epoch,
            "discriminator_steps": d_total, "generator_steps": d_total // d_steps if d_total else None,
            "wall_s": round(wall, 1), "metrics": saved[split], "val": saved["val"]}


def digits_baselines(seed: int, split: str, threads: int | None = None) -> list[dict]:
    """The digits metrics of the floor (real training images), uniform noise and the ``digits-vae`` decoder's samples
    against ``split`` of ``digits-images`` with ``seed`` (the VAE's run with the same seed holds out the same
    validation and test images: both datasets split 1797 images 65/15/20 by the seed)."""
    import torch

    import zoo
    from zoo.inference import Predictor
    from zoo_gan import metrics
    from zoo_gan.datasets import digits_images

    data = digits_images(seed=seed)
    pixels = data.preprocess["std"] * data.split(split)[0] + data.preprocess["mean"]
    train = data.preprocess["std"] * data.train[0] + data.preprocess["mean"]
    g = torch.Generator().manual_seed(seed)
    noise = 16.0 * torch.rand(DIGITS_SAMPLES, 1, 8, 8, generator=g)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run = zoo.train("digits-vae", seed=seed, out=Path(tmp) / "vae", quiet=True,
                        **({"threads": threads} if threads else {}))
        wall = time.perf_counter() - t0
        model = Predictor(run.dir, "cpu").model
        latent = model.net.mu.out_features
        with torch.no_grad():
            z = torch.randn(DIGITS_SAMPLES, latent, generator=g)
            vae = model.to_data_units(model.net.decoder(z)).reshape(-1, 1, 8, 8)
    rows = []
    vae_run = {"epochs": len(run.history), "best_epoch": run.best_epoch, "wall_s": round(wall, 1)}
    for name, samples, extra in (("real training images (floor)", train[:DIGITS_SAMPLES], {}),
                                 ("uniform noise, 0..16", noise, {}),
                                 ("digits-vae decoder, z ~ N(0, I)", vae, vae_run)):
        rows.append({"samples": name, "seed": seed, "n": len(samples), **extra,
                     "metrics": {"digits_fd": metrics.digits_fd(samples, pixels),
                                 "digits_classes": metrics.digits_classes(samples)}})
    return rows


def _met(recipe: str, row: dict, vae: dict | None) -> bool | None:
    target = TARGETS.get(recipe, {})
    if not target:
        return None
    ok = all(row["metrics"].get(k, float("-inf")) >= v for k, v in target.items())
    if vae is not None:
        ok = ok and row["metrics"]["digits_fd"] < vae["metrics"]["digits_fd"]
    return ok


def _vae_of(baselines: list[dict], seed: int) -> dict | None:
    return next((b for b in baselines if b["seed"] == seed and b["samples"].startswith("digits-vae")), None)


def _value(name: str, v: float) -> str:
    if name == "ring_modes":
        return f"{v:.0f}/8"
    if name == "digits_classes":
        return f"{v:.0f}/10"
    if name == "digits_fd":
        return f"{v:.1f}"
    return f"{v:.3f}"


def table(recipe: str, rows: list[dict], split: str, baselines: list[dict] | None = None) -> str:
    names = [k for k in rows[0]["metrics"] if k != "loss"]
    if baselines:
        head = ["samples", "seed", *names, "met (below the VAE, >= 9/10)", "epochs (best)", "D / G steps",
                "wall s (CPU)"]
        lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
        for b in baselines:
            lines.append("| " + " | ".join([b["samples"], str(b["seed"]), *(_value(k, b["metrics"][k]) for k in names),
                                            "", f"{b['epochs']} ({b['best_epoch']})" if "epochs" in b else "", "",
                                            f"{b['wall_s']:.1f}" if "wall_s" in b else ""]) + " |")
    else:
        head = ["seed", *names, "met", "epochs (best)", "D / G steps", "wall s (CPU)"]
        lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        met = _met(recipe, r, _vae_of(baselines, r["seed"]) if baselines else None)
        lead = [recipe, str(r["seed"])] if baselines else [str(r["seed"])]
        lines.append("| " + " | ".join([*lead, *(_value(k, r["metrics"][k]) for k in names),
                                        "n/a" if met is None else ("yes" if met else "NO"),
                                        f"{r['epochs']} ({r['best_epoch']})",
                                        f"{r['discriminator_steps']} / {r['generator_steps']}",
                                        f"{r['wall_s']:.1f}"]) + " |")
    note = f"\n\n{split} split; metrics of the best epoch's weights (monitor: the recipe's)."
    if baselines:
        note += (f" Every row scores {DIGITS_SAMPLES} samples against the same seed's {split} split of digits-images; "
                 "the VAE's wall time is its whole run.")
    return "\n".join(lines) + note + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench gan", description=__doc__.split("\n\n")[0])
    p.add_argument("--recipe", default="ring-gan")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    p.add_argument("--epochs", type=int, help="override the recipe's epochs")
    p.add_argument("--split", default="test", choices=("test", "val", "train"))
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--threads", type=int, help="CPU threads of every training run (default: zoo's choice)")
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    rows, baselines = [], []
    for seed in seeds:
        if args.recipe in BASELINES:
            for b in digits_baselines(seed, args.split, args.threads):
                print(f"seed {seed}: {b['samples']}: {b['metrics']}", file=sys.stderr, flush=True)
                baselines.append(b)
        row = run_seed(args.recipe, seed, args.epochs, args.split, args.threads)
        print(f"seed {seed}: {row['metrics']} in {row['wall_s']} s", file=sys.stderr, flush=True)
        rows.append(row)
    text = table(args.recipe, rows, args.split, baselines or None)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    info = {"recipe": args.recipe, "split": args.split, "rows": rows, **({"baselines": baselines} if baselines else {}),
            "command": " ".join(["python -m bench gan", *(argv or [])]),
            "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
            "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    (args.out / f"gan-{args.recipe}.json").write_text(json.dumps(info, indent=2) + "\n")
    (args.out / f"gan-{args.recipe}.md").write_text(text)
    if not all(_met(args.recipe, r, _vae_of(baselines, r["seed"]) if baselines else None) is not False
               for r in rows):
        return 3
    return 0
