"""Fashion-MNIST from the Debian package ``dataset-fashion-mnist`` (IDX files), seeded loaders.

Images are kept as uint8 ``(N, 1, 28, 28)``: the network input is the 8-bit unsigned image
itself (value / 255 in float training), which is exactly what the integer IR receives.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bitmill.errors import BitmillError

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
APT_PACKAGE = "dataset-fashion-mnist"
_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
          "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot")


@dataclass(frozen=True)
class Dataset:
    """Images ``(N, C, H, W)`` uint8 and labels ``(N,)`` int64."""

    images: np.ndarray
    labels: np.ndarray
    name: str

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, n: int | None, seed: int = 0) -> "Dataset":
        """A seeded random subset of ``n`` samples (all when ``n`` is None or too large)."""
        if n is None or n >= len(self):
            return self
        idx = np.sort(np.random.default_rng(seed).permutation(len(self))[:n])
        return Dataset(self.images[idx], self.labels[idx], f"{self.name}[{n}]")


def read_idx(path: Path) -> np.ndarray:
    """Read a (gzipped) IDX file of unsigned bytes."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise BitmillError(f"{path}: not an IDX file of unsigned bytes")
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise BitmillError(f"{path}: truncated IDX file ({body.size} of {int(np.prod(dims))} values)")
    return body.reshape(dims)


def fashion_mnist(split: str, root: Path = FASHION_MNIST_DIR) -> Dataset:
    """The ``train`` (60,000) or ``test`` (10,000) split."""
    if split not in _FILES:
        raise BitmillError(f"split must be train or test, not {split!r}")
    img_path, lbl_path = (Path(root) / f for f in _FILES[split])
    if not img_path.exists() or not lbl_path.exists():
        raise BitmillError(f"Fashion-MNIST not found in {root}; install the Debian package: "
                           f"apt-get install -y {APT_PACKAGE}")
    images = read_idx(img_path)[:, None, :, :]
    labels = read_idx(lbl_path).astype(np.int64)
    if len(images) != len(labels):
        raise BitmillError(f"{root}: {len(images)} images but {len(labels)} labels")
    return Dataset(images, labels, f"fashion-mnist/{split}")


def synthetic(n: int, seed: int = 0, classes: int = 10) -> Dataset:
    """A tiny learnable stand-in for unit tests: class-dependent blobs plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    yy, xx = np.mgrid[0:28, 0:28]
    images = np.empty((n, 1, 28, 28), dtype=np.uint8)
    for i, c in enumerate(labels):
        cy, cx = 6 + (c % 4) * 5, 6 + (c // 4) * 7
        blob = 200 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 18.0)
        images[i, 0] = np.clip(blob + rng.normal(0, 20, (28, 28)), 0, 255).astype(np.uint8)
    return Dataset(images, labels.astype(np.int64), f"synthetic[{n}]")


def augment(images: np.ndarray, rng: np.random.Generator, pad: int = 2) -> np.ndarray:
    """Random crop (zero padding ``pad``) and horizontal flip, seeded."""
    n, c, h, w = images.shape
    padded = np.pad(images, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dy, dx = rng.integers(0, 2 * pad + 1, n), rng.integers(0, 2 * pad + 1, n)
    flip = rng.random(n) < 0.5
    out = np.empty_like(images)
    for i in range(n):
        crop = padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w]
        out[i] = crop[:, :, ::-1] if flip[i] else crop
    return out


def batches(ds: Dataset, batch_size: int, seed: int | None, augment_data: bool = False):
    """Yield ``(images float32 in [0,1], labels)`` torch batches; shuffled when ``seed`` is
    given (the order depends only on the seed, so a resumed epoch sees the same batches)."""
    n = len(ds)
    order = np.arange(n) if seed is None else np.random.default_rng(seed).permutation(n)
    rng = np.random.default_rng(None if seed is None else seed + 1)
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        imgs = ds.images[idx]
        if augment_data:
            imgs = augment(imgs, rng)
        yield (torch.from_numpy(imgs.astype(np.float32) / 255.0),
               torch.from_numpy(ds.labels[idx]))
