"""``python -m bench.digits_classifier [--out FILE]``: regenerate the digits classifier that the ``gan`` plugin's
digits metrics (``digits_fd``, ``digits_classes``) read, ``plugins/zoo_gan/digits_classifier.safetensors``.

It trains zoo's ``digits-cnn`` recipe with seed 0 on one CPU thread (what ``zoo train digits-cnn --seed 0
--device cpu --set threads=1`` does: the small CNN, 30 epochs, the best epoch's weights by validation loss) and
keeps its network's weights and its input standardisation (the run's ``input_mean``/``input_std``: raw 0..16
pixels in) in a safetensors file, with the recipe, seed, command, torch version and the run's test accuracy in
its metadata. The shipped file was made by this script with torch 2.13.0+cpu on top of zoo commit 22e207b (the
``digits-cnn`` recipe as it is there); the same torch build gives the same bytes. The plugin pins the file by its
sha256 (``zoo_gan.metrics.CLASSIFIER_SHA256``) and refuses a file that does not match, so a regenerated file
(another torch build may round differently) takes a deliberate update of that constant: the script prints the new
digest.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "plugins" / "zoo_gan" / "digits_classifier.safetensors"
RECIPE, SEED = "digits-cnn", 0


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.digits_classifier", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)

    import torch
    from safetensors.torch import load_file, save_file

    import zoo

    with tempfile.TemporaryDirectory() as tmp:
        run = zoo.train(RECIPE, seed=SEED, out=Path(tmp) / "run", device="cpu", threads=1, quiet=True)
        weights = load_file(str(run.dir / "model.safetensors"))
        test = json.loads((run.dir / "metrics.json").read_text())["test"]
    tensors = {k: v.contiguous() for k, v in weights.items() if k.startswith("net.") or k.startswith("input_")}
    meta = {"recipe": RECIPE, "seed": SEED, "command": f"zoo train {RECIPE} --seed {SEED} --device cpu --set threads=1",
            "torch": torch.__version__, "test_accuracy": round(test["accuracy"], 4),
            "features": "the 256 inputs of the last linear layer"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # one metadata entry: safetensors writes several in no fixed order, and the file is pinned by its bytes
    save_file(tensors, str(args.out), metadata={"zoo": json.dumps(meta, sort_keys=True)})
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes): test accuracy {test['accuracy']:.4f}")
    print(f"sha256 {digest}  (zoo_gan.metrics.CLASSIFIER_SHA256 must say this); zoo commit {_commit()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
