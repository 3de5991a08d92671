"""Integer-path accuracy: the golden model's top-1 predictions on a labelled set of images."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from bitmill.compiler.ir import Graph
from bitmill.errors import BitmillError
from bitmill.sim import golden

DEFAULT_BATCH = 500


@dataclass(frozen=True)
class Accuracy:
    """Top-1 result of a network on ``images`` labelled images."""

    correct: int
    images: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.images if self.images else 0.0


def check_images(graph: Graph, images: np.ndarray, source: str) -> None:
    """`BitmillError` unless ``images`` (N, C, H, W) have the shape of the graph's input."""
    want = graph.input.out.shape
    if tuple(images.shape[1:]) != want:
        raise BitmillError(f"{graph.name} takes inputs of shape {want}, but the images of {source} "
                           f"have shape {tuple(images.shape[1:])}; use a network built for them")


def golden_accuracy(graph: Graph, images: np.ndarray, labels: np.ndarray,
                    batch: int = DEFAULT_BATCH, progress: bool = False) -> Accuracy:
    """Top-1 accuracy of ``graph`` (golden model, exact integers) on ``images`` (integer codes
    of the input grid, (N, C, H, W)) with ``labels`` (N,); ``batch`` images per golden run.
    ``progress`` shows a bar when stderr is a terminal."""
    if batch < 1:
        raise ValueError(f"batch must be a positive integer, not {batch}")
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    correct = 0
    starts = range(0, len(images), batch)
    for i in tqdm(starts, desc="golden", unit="batch", leave=False,
                  disable=not (progress and sys.stderr.isatty())):
        pred = golden.run(graph, images[i:i + batch]).reshape(len(images[i:i + batch]), -1).argmax(1)
        correct += int((pred == labels[i:i + batch]).sum())
    return Accuracy(correct, len(images))
