"""The ILP's sensitivity calibrated on uniform QAT runs: how much of a layer's weight term and of
its activation term a QAT fine-tune actually leaves behind.

`bitmill.models.sensitivity` measures the full-precision network: a weight grid of 2 bits and an
activation grid of 2 bits look about equally harmful there. QAT does not treat them alike: the
weights are trained onto their grid and recover, a 2-bit activation grid stays a 2-bit grid.
Measured on the Fashion-MNIST ResNet-20 of `reports/search` (one epoch of QAT per policy):
uniform W2A4 lost 0.47 point against FP, W4A2 2.27 points, while the FP sensitivity rates them
0.150 and 0.155. An ILP on the FP sensitivity alone spends the budget on 2- and 3-bit
activations that QAT cannot recover, and uniform policies dominate its choices.

The calibration fits, over the uniform runs ``(w, a)`` of the same fine-tune budget,

    loss(w, a) - loss(FP) = offset + alpha * sum_l W_l(w) + beta * sum_l A_l(a)

by non-negative least squares (``alpha, beta >= 0``; the offset of either sign: the fine-tune
itself moves the loss), where ``W_l`` and ``A_l`` are the weight and activation terms of
`Sensitivity.omega` and ``loss`` the mean cross-entropy of the fake-quant model on a fixed
subset of the *training* images (never the test set the report measures on). The calibrated
sensitivity of a layer is ``alpha * W_l(w) + beta * A_l(a)``: the FP sensitivity keeps deciding
*which* layers matter, the uniform QAT runs decide how much a weight bit is worth against an
activation bit. Documented choices: the training-image loss as the signal (accuracy differences
of 0.1 point are within one fine-tune's noise; the loss is smoother), two global factors (not one
per layer: ten uniform runs cannot identify forty).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bitmill.errors import BitmillError
from bitmill.models.sensitivity import Sensitivity

Pair = tuple[int, int]


def uniform_runs(folder: str | Path, seed: int = 0) -> dict[Pair, Path]:
    """The finished uniform LSQ runs of training seed ``seed`` under ``folder`` (sub-folders
    with ``metrics.json`` and ``checkpoint.pt``, no per-layer bits, first and last layer at 8
    bits), by ``(w, a)``; BitmillError when two of them have the same widths."""
    from bitmill.models.bits import parse_pair
    runs: dict[Pair, Path] = {}
    for metrics in sorted(Path(folder).glob("*/metrics.json")):
        cfg = json.loads(metrics.read_text()).get("config", {})
        if (cfg.get("quantizer") == "lsq" and not cfg.get("layer_bits") and cfg.get("first_last") == 8
                and not cfg.get("teacher") and cfg.get("seed", 0) == seed
                and (metrics.parent / "checkpoint.pt").exists()):
            pair = parse_pair(cfg["bits"])
            if pair in runs:
                raise BitmillError(f"{folder}: two uniform W{pair[0]}A{pair[1]} runs of seed {seed} "
                                   f"({runs[pair].parent.name}, {metrics.parent.name}); keep one")
            runs[pair] = metrics.parent / "checkpoint.pt"
    return runs


def identify(runs: Mapping[Pair, Path]) -> dict[str, str]:
    """Each run's checkpoint by content (``w4a4`` -> first 16 hex digits of its SHA-256)."""
    return {f"w{w}a{a}": hashlib.sha256(Path(p).read_bytes()).hexdigest()[:16] for (w, a), p in sorted(runs.items())}


@torch.no_grad()
def mean_loss(checkpoint: str | Path, images: torch.Tensor, labels: torch.Tensor, batch: int = 512) -> float:
    """Mean cross-entropy of a checkpoint's model (fake-quant or FP, eval mode) on the images."""
    from bitmill.models.train import load_model
    model, _ = load_model(checkpoint)
    total = sum(float(F.cross_entropy(model(images[i:i + batch]), labels[i:i + batch], reduction="sum"))
                for i in range(0, len(images), batch))
    return total / len(images)


def _sums(sens: Sensitivity, layers, w: int, a: int) -> tuple[float, float]:
    """The weight terms and the activation terms of every layer at one uniform ``(w, a)``."""
    terms = [sens.terms(l, w, a) for l in layers]
    return sum(t[0] for t in terms), sum(t[1] for t in terms)


@dataclass(frozen=True)
class QatCalibration:
    """The fitted factors, the points they were fitted on and the runs they came from."""

    alpha: float                   # weight terms
    beta: float                    # activation terms
    offset: float
    points: tuple[tuple[int, int, float, float], ...]     # (w, a, measured, fitted loss increase)
    runs: Mapping[str, str]        # `identify` of the runs
    images: int

    def omega(self, sens: Sensitivity, layer: str, w_bits: int, a_bits: int) -> float:
        """The calibrated sensitivity of ``layer`` at ``(w_bits, a_bits)``."""
        weight, act = sens.terms(layer, w_bits, a_bits)
        return self.alpha * weight + self.beta * act

    def to_dict(self) -> dict:
        return {"alpha": self.alpha, "beta": self.beta, "offset": self.offset,
                "points": [list(p) for p in self.points], "runs": dict(self.runs), "images": self.images}

    @classmethod
    def from_dict(cls, d: dict) -> "QatCalibration":
        return cls(d["alpha"], d["beta"], d["offset"], tuple(tuple(p) for p in d["points"]),
                   dict(d["runs"]), d["images"])


def fit(sens: Sensitivity, layers, increases: Mapping[Pair, float], runs: Mapping[str, str],
        images: int) -> QatCalibration:
    """Fit ``alpha, beta >= 0`` and an offset to the measured loss increases of uniform runs
    (module docstring). Needs runs that vary weights and activations apart (e.g. W2A4 and W4A2
    besides the diagonal), else the two factors cannot be told apart."""
    from scipy.optimize import nnls
    pairs = sorted(increases)
    if len({w for w, _ in pairs}) < 2 or len({a for _, a in pairs}) < 2 or len({w - a for w, a in pairs}) < 2:
        names = ", ".join(f"W{w}A{a}" for w, a in pairs) or "none"
        raise BitmillError(f"the calibration needs uniform runs whose weight and activation widths vary "
                           f"apart (e.g. W4A4, W2A4 and W4A2); found {names}")
    layers = list(layers)
    terms = np.array([_sums(sens, layers, w, a) for w, a in pairs])
    scale = terms.max(axis=0)
    scale[scale == 0] = 1.0
    design = np.column_stack([np.ones(len(pairs)), -np.ones(len(pairs)), terms / scale])
    target = np.array([increases[p] for p in pairs])
    coef, _ = nnls(design, target)
    offset, (alpha, beta) = coef[0] - coef[1], coef[2:] / scale
    if alpha == 0 and beta == 0:
        raise BitmillError("the uniform runs' losses do not grow with their quantization error (both fitted "
                           "factors are 0), so they cannot weigh the sensitivity; measure on more images "
                           "(--calib-loss-images) or fine-tune the runs longer")
    fitted = design @ coef
    points = tuple((w, a, float(target[i]), float(fitted[i])) for i, (w, a) in enumerate(pairs))
    return QatCalibration(float(alpha), float(beta), float(offset), points, dict(runs), images)


def measure_increases(runs: Mapping[Pair, Path], init: str | Path, images: int, seed: int,
                      dataset: str = "fashion-mnist",
                      progress: Callable[[str], None] | None = None) -> dict[Pair, float]:
    """Each run's loss increase over the FP checkpoint ``init`` on ``images`` training images
    (subset by ``seed``)."""
    from bitmill.models import data
    ds = data.fashion_mnist("train") if dataset == "fashion-mnist" else data.synthetic(images, seed)
    x, y = next(data.batches(ds.subset(images, seed), images, None))
    base = mean_loss(init, x, y)
    increases = {}
    for k, (pair, path) in enumerate(sorted(runs.items())):
        increases[pair] = mean_loss(path, x, y) - base
        if progress:
            progress(f"calibration: run {k + 1}/{len(runs)}")
    return increases
