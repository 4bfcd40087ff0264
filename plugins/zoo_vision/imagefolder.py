"""The ``image-folder`` dataset: a local folder of PNG/JPEG images, one sub-folder per class.

The layout is torchvision's ``ImageFolder``::

    data/
      cat/  001.png  002.jpg  ...
      dog/  a.jpeg  b.png  ...

Class names are the sub-folder names, sorted; images may sit in nested folders under
their class folder. Hidden files and folders (names starting with ``.``) and files
with other extensions are ignored.

Indexing stores file paths only: every image is opened once to ``verify()`` it (PIL
reads its header and chunk checksums, not its pixels), so a corrupt file is reported
by name when the dataset is made rather than crashing a DataLoader worker later.
Pixels are decoded lazily, one image per ``__getitem__``, so a folder larger than
memory trains. Each image is converted to RGB (or grey), resized to ``size x size``
and standardised with fixed per-channel constants computed from at most
:data:`STATS_SAMPLE` training images. Those constants are stored in
``Splits.preprocess`` (``mean``/``std``, shape ``(C, 1, 1)``, in raw pixel units
0..255), so new images prepared with :func:`load_image` and standardised with them
(as ``zoo predict`` does) are seen exactly as in training.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

from zoo.data import DataMeta, Splits

#: File extensions read as images (compared case-insensitively).
EXTENSIONS = (".png", ".jpg", ".jpeg")
#: At most this many training images are decoded to compute the normalisation constants.
STATS_SAMPLE = 200
#: Every class needs at least this many images: one each for training, validation and testing.
MIN_PER_CLASS = 3


# -- reading one image -----------------------------------------------------------------------


def load_image(path: str | os.PathLike, size: int, grayscale: bool = False) -> np.ndarray:
    """One image as raw float32 pixels ``(C, size, size)`` in 0..255 (C = 1 grey or 3 RGB)."""
    from PIL import Image

    with Image.open(path) as im:
        if im.mode == "I" or im.mode.startswith("I;16"):  # 16-bit grey PNG: scale to 8 bits, not clip
            wide = np.asarray(im, dtype=np.float64) * (255.0 / 65535.0)
            im = Image.fromarray(np.clip(np.rint(wide), 0, 255).astype(np.uint8), "L")
        if im.mode in ("P", "PA", "LA", "La", "RGBa") or "transparency" in im.info:
            im = im.convert("RGBA")  # palettes and alpha: through RGBA, then drop the alpha
        im = im.convert("L" if grayscale else "RGB")
        if im.size != (size, size):
            im = im.resize((size, size), Image.Resampling.BILINEAR)
        arr = np.asarray(im, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[None]
    else:
        arr = arr.transpose(2, 0, 1)
    return np.ascontiguousarray(arr)


class ImageFolderSplit(torch.utils.data.Dataset):
    """One split of an image folder: file paths and labels only; pixels are read per item.

    ``self[i]`` is ``(x, y)``: ``x`` float32 ``(C, size, size)`` standardised with the
    fixed ``mean``/``std`` (``(C, 1, 1)``), ``y`` the int64 class index.
    """

    def __init__(self, paths, labels, *, size: int, grayscale: bool, mean: torch.Tensor, std: torch.Tensor) -> None:
        if len(paths) != len(labels):
            raise ValueError(f"{len(paths)} paths but {len(labels)} labels")
        self.paths = [str(p) for p in paths]
        self.labels = [int(t) for t in labels]
        self.size = int(size)
        self.grayscale = bool(grayscale)
        self.mean = mean.detach().clone().float()
        self.std = std.detach().clone().float()

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        x = torch.from_numpy(load_image(self.paths[index], self.size, self.grayscale))
        return (x - self.mean) / self.std, torch.tensor(self.labels[index], dtype=torch.int64)

    def __repr__(self) -> str:
        return f"ImageFolderSplit({len(self)} images, size={self.size}, grayscale={self.grayscale})"


# -- indexing the folder ---------------------------------------------------------------------


def _hidden(name: str) -> bool:
    return name.startswith(".")


def _class_images(folder: Path) -> list[Path]:
    """Image files under a class folder (recursively, sorted, hidden entries skipped)."""
    found = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not _hidden(d))
        found += [Path(root) / f for f in sorted(files) if not _hidden(f) and f.lower().endswith(EXTENSIONS)]
    return found


def _verify(path: Path, root: Path) -> None:
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.verify()
    except Exception as exc:  # noqa: BLE001 - PIL raises many kinds for a bad file
        reason = str(exc) or type(exc).__name__
        raise ValueError(f"image-folder: {path.relative_to(root)} in {root} is not a readable image "
                         f"({reason}); remove or replace it") from None


def index_folder(path: str | os.PathLike) -> tuple[list[Path], np.ndarray, tuple[str, ...]]:
    """Every image's path, its class index and the class names; each image verified."""
    if not str(path):
        raise ValueError("image-folder needs path=DIR: a folder with one sub-folder of PNG/JPEG images per class "
                         "(e.g. --set path=data)")
    root = Path(path).expanduser()
    if not root.exists():
        raise ValueError(f"image-folder: the folder {root} does not exist")
    if not root.is_dir():
        raise ValueError(f"image-folder: {root} is not a folder (expected one sub-folder of images per class)")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not _hidden(d.name))
    if len(classes) < 2:
        found = f"only '{classes[0]}'" if classes else "none"
        raise ValueError(f"image-folder: {root} needs at least 2 class sub-folders (one per class), found {found}")
    per_class = {c: _class_images(root / c) for c in classes}
    accepted = ", ".join(EXTENSIONS)
    if not any(per_class.values()):
        raise ValueError(f"image-folder: no images found in the class folders of {root} "
                         f"(accepted extensions: {accepted})")
    few = [(c, len(f)) for c, f in per_class.items() if len(f) < MIN_PER_CLASS]
    if few:
        listed = ", ".join(f"'{c}' has {n}" for c, n in few)
        raise ValueError(f"image-folder: every class needs at least {MIN_PER_CLASS} images (one each for "
                         f"training, validation and testing); in {root} {listed} "
                         f"(accepted extensions: {accepted})")
    paths, labels = [], []
    for k, c in enumerate(classes):
        for p in per_class[c]:
            _verify(p, root)
            paths.append(p)
            labels.append(k)
    return paths, np.asarray(labels, dtype=np.int64), tuple(classes)


def stratified_split(labels: np.ndarray, *, seed: int, val_size: float, test_size: float):
    """Train/val/test indices, per class: round(n * test_size) test and round(n * val_size)
    validation images (each at least 1), the rest (at least 1) for training; seeded."""
    if not (0 < val_size < 1 and 0 < test_size < 1 and val_size + test_size < 1):
        raise ValueError(f"val_size ({val_size}) and test_size ({test_size}) must each be above 0 and add up to "
                         "less than 1, so that every split gets images")
    rng = np.random.RandomState(seed)
    parts: tuple[list[int], list[int], list[int]] = ([], [], [])
    for k in np.unique(labels):
        ix = np.flatnonzero(labels == k)
        ix = ix[rng.permutation(len(ix))]
        n = len(ix)
        n_test = max(1, math.floor(n * test_size + 0.5))
        n_val = max(1, math.floor(n * val_size + 0.5))
        while n - n_test - n_val < 1:  # only for tiny classes: keep one image for training
            if n_test >= n_val:
                n_test -= 1
            else:
                n_val -= 1
        parts[2].extend(ix[:n_test])
        parts[1].extend(ix[n_test : n_test + n_val])
        parts[0].extend(ix[n_test + n_val :])
    return tuple(np.sort(np.asarray(p, dtype=np.int64)) for p in parts)


def channel_stats(paths, size: int, grayscale: bool, *, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std ``(C, 1, 1)`` of at most ``STATS_SAMPLE`` of ``paths`` (a seeded sample)."""
    paths = list(paths)
    if len(paths) > STATS_SAMPLE:
        pick = np.sort(np.random.RandomState(seed).choice(len(paths), STATS_SAMPLE, replace=False))
        paths = [paths[i] for i in pick]
    c = 1 if grayscale else 3
    total, total_sq, count = np.zeros(c), np.zeros(c), 0
    for p in paths:
        x = load_image(p, size, grayscale).reshape(c, -1).astype(np.float64)
        total += x.sum(1)
        total_sq += (x * x).sum(1)
        count += x.shape[1]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean * mean, 0.0))
    std = np.where(std > 1e-6, std, 1.0)
    as_t = lambda a: torch.from_numpy(a.astype(np.float32).reshape(c, 1, 1))  # noqa: E731
    return as_t(mean), as_t(std)


def image_folder(*, seed: int, path: str | None = None, size: int = 32, grayscale: bool = False, val_size: float = 0.2,
                 test_size: float = 0.2) -> Splits:
    """Dataset: the image folder at ``path`` as lazy, stratified, seeded splits."""
    if size < 1:
        raise ValueError(f"image-folder: size must be at least 1, got {size}")
    paths, labels, classes = index_folder(path)
    train_ix, val_ix, test_ix = stratified_split(labels, seed=seed, val_size=val_size, test_size=test_size)
    mean, std = channel_stats([paths[i] for i in train_ix], size, grayscale, seed=seed)

    def part(ix):
        return ImageFolderSplit([paths[i] for i in ix], labels[ix], size=size, grayscale=grayscale,
                                mean=mean, std=std)

    c = 1 if grayscale else 3
    meta = DataMeta(task="multiclass", input_shape=(c, size, size), num_classes=len(classes), class_names=classes)
    return Splits(part(train_ix), part(val_ix), part(test_ix), meta, {"mean": mean, "std": std})


# -- an example folder (for the contract suite, tests and trying it out) ------------------------


def write_example(directory: str | os.PathLike, *, per_class: int = 12, pixels: int = 12, seed: int = 0) -> Path:
    """Write a small synthetic image folder: classes ``circles``, ``squares`` and ``stripes``,
    ``per_class`` noisy coloured ``pixels x pixels`` PNGs each. Returns the folder."""
    from PIL import Image, ImageDraw

    root = Path(directory)
    rng = np.random.RandomState(seed)
    for cls in ("circles", "squares", "stripes"):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            bg = tuple(int(v) for v in rng.randint(0, 90, 3))
            fg = tuple(int(v) for v in rng.randint(140, 256, 3))
            im = Image.new("RGB", (pixels, pixels), bg)
            draw = ImageDraw.Draw(im)
            lo, hi = int(rng.randint(0, pixels // 4 + 1)), pixels - 1 - int(rng.randint(0, pixels // 4 + 1))
            if cls == "circles":
                draw.ellipse((lo, lo, hi, hi), fill=fg)
            elif cls == "squares":
                draw.rectangle((lo, lo, hi, hi), fill=fg)
            else:
                step = max(2, pixels // 4)
                for y in range(int(rng.randint(0, step)), pixels, step):
                    draw.line((0, y, pixels - 1, y), fill=fg, width=max(1, step // 2))
            arr = np.asarray(im, dtype=np.int16) + rng.randint(-20, 21, (pixels, pixels, 3))
            Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(root / cls / f"{i:03d}.png")
    return root


def example(directory: Path) -> dict:
    """The contract suite's example: a small synthetic folder and the parameters that load it."""
    root = write_example(Path(directory) / "images")
    return {"path": str(root), "size": 16}
