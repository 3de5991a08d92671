"""Per-layer sensitivity of a full-precision network to the bit-widths of its weights and of its
input activations, in the manner of HAWQ-V3 (Yao et al., 2021), extended to activations.

For layer ``l`` and a pair ``(w, a)``::

    Omega_l(w, a) = Tr(H_W) / |W| * ||Q_w(W) - W||^2  +  Tr(H_x) / |x| * ||Q_a(x) - x||^2

``H_W`` is the Hessian of the (batch-mean cross-entropy) loss with respect to the layer's
weights, ``H_x`` with respect to its input activation tensor; both traces come from
Hutchinson's estimator (``E[v^T H v]`` over Rademacher vectors ``v``, Hessian-vector products by
double backpropagation) on calibration batches. HAWQ-V3 uses the weight term only; the
activation term is this project's extension (bit-serial latency depends on both widths).
Documented choices (not from the paper): ``Q_w`` is the signed uniform grid of LSQ
(``[-2^(w-1), 2^(w-1)-1]`` steps) and ``Q_a`` the unsigned grid (``[0, 2^a-1]``), each with the
step that minimises ``||Q(t) - t||^2`` over 64 clipping ratios; a tensor read by two layers
(a block's first convolution and its downsampling shortcut) carries its activation term on
the first of them only, since the two share one activation width.

Two estimators of the traces (``estimator``):

* ``"hessian"``: Hutchinson's estimator of ``Tr(H)`` as above (HAWQ-V3). At a checkpoint that is
  not a minimum, or with few vectors, a trace can come out negative; the ILP then *rewards*
  quantization error in that layer (fewer bits look better than more). Measured on the
  Fashion-MNIST ResNet-20 of `reports/search` (3 FP epochs, 256 images, 8 vectors): 5 of its 18
  activation traces and 1 of 20 weight traces were negative, and the ILP chose 2-bit activations
  (and 2-bit weights) exactly there.
* ``"fisher"`` (the default): the empirical Fisher trace of FIT (Zandonati et al., 2023), the
  mean over calibration images of the squared per-image gradient, ``E_i ||g_i||^2``: the
  Gauss-Newton curvature of the loss, never negative, and one backward pass per image instead
  of ``samples`` Hessian-vector products per batch. Its scale matches the Hessian convention
  above (per-element traces times the quantization error of the last batch's tensor).
* ``"loss"``: no curvature model at all: the measured increase of the mean calibration loss when
  only this layer's weights (or only its input tensor, in every layer that reads it) are
  quantized to each width (`quantized`; the activation step fixed from the first calibration
  batch, as a trained quantizer's is), negative increases counted as zero. The traces are
  then 1 and the "errors" are these loss increases, so ``omega`` is their sum. It sees what a
  quadratic model cannot (a 2-bit grid is no small perturbation) and costs one forward pass of
  the calibration images per layer, width and operand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from bitmill.models.layers import QConv2d
from bitmill.models.resnet import QResNet

CLIP_RATIOS = 64


def layer_modules(model: QResNet) -> dict[str, QConv2d]:
    """Every convolution of the model by its layer name in the exported graph."""
    out = {"conv1": model.conv1}
    for block in model.blocks:
        out[f"{block.name}.conv1"], out[f"{block.name}.conv2"] = block.conv1, block.conv2
        if block.downsample is not None:
            out[f"{block.name}.downsample"] = block.downsample
    return out


def _grid(bits: int, signed: bool) -> tuple[int, int]:
    return (2 ** (bits - 1), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)


def best_step(t: torch.Tensor, bits: int, signed: bool) -> float:
    """The step of the uniform ``bits``-bit grid (signed: LSQ's weight grid, else unsigned)
    that, among `CLIP_RATIOS` clipping ratios of ``max|t|``, minimises ``||Q(t) - t||^2``; 0
    for an all-zero tensor."""
    t = t.detach().double()
    top = float(t.abs().max()) if t.numel() else 0.0
    if top == 0.0:
        return 0.0
    qn, qp = _grid(bits, signed)
    best, step = float("inf"), 0.0
    for r in np.linspace(1.0 / CLIP_RATIOS, 1.0, CLIP_RATIOS):
        s = r * top / max(qp, qn, 1)
        err = float(((torch.clamp(torch.round(t / s), -qn, qp) * s - t) ** 2).sum())
        if err < best:
            best, step = err, s
    return step


def quantized(t: torch.Tensor, bits: int, signed: bool, step: float | None = None) -> torch.Tensor:
    """``Q(t)`` (float64) on the ``bits``-bit grid with ``step`` (default: `best_step` of ``t``)."""
    t = t.detach().double()
    step = best_step(t, bits, signed) if step is None else step
    if step == 0.0:
        return t.clone()
    qn, qp = _grid(bits, signed)
    return torch.clamp(torch.round(t / step), -qn, qp) * step


def quantization_error(t: torch.Tensor, bits: int, signed: bool) -> float:
    """``min_s ||Q(t) - t||^2`` over the grid of `quantized`."""
    return float(((quantized(t, bits, signed) - t.detach().double()) ** 2).sum())


@dataclass(frozen=True)
class Sensitivity:
    """Hessian traces per element and squared quantization errors per layer and width."""

    weight_trace: Mapping[str, float]          # Tr(H_W) / |W|
    act_trace: Mapping[str, float]             # Tr(H_x) / |x| (0 for a tensor's second reader)
    weight_error: Mapping[str, Mapping[int, float]]
    act_error: Mapping[str, Mapping[int, float]]

    def terms(self, layer: str, w_bits: int, a_bits: int) -> tuple[float, float]:
        """The layer's weight term and activation term at ``(w_bits, a_bits)``."""
        return (self.weight_trace[layer] * self.weight_error[layer][w_bits],
                self.act_trace[layer] * self.act_error[layer][a_bits])

    def omega(self, layer: str, w_bits: int, a_bits: int) -> float:
        """The layer's sensitivity at ``(w_bits, a_bits)``: the sum of its `terms`."""
        return sum(self.terms(layer, w_bits, a_bits))

    def to_dict(self) -> dict:
        return {"weight_trace": dict(self.weight_trace), "act_trace": dict(self.act_trace),
                "weight_error": {l: {str(b): e for b, e in v.items()} for l, v in self.weight_error.items()},
                "act_error": {l: {str(b): e for b, e in v.items()} for l, v in self.act_error.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> "Sensitivity":
        return cls(dict(d["weight_trace"]), dict(d["act_trace"]),
                   {l: {int(b): e for b, e in v.items()} for l, v in d["weight_error"].items()},
                   {l: {int(b): e for b, e in v.items()} for l, v in d["act_error"].items()})


ESTIMATORS = ("fisher", "hessian", "loss")


def sensitivity(model: QResNet, layers: Iterable[str], batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                bits: Iterable[int], samples: int = 16, seed: int = 0,
                progress: Callable[[str], None] | None = None, estimator: str = "fisher") -> Sensitivity:
    """The sensitivity of ``layers`` at every width of ``bits`` by ``estimator`` (module
    docstring): traces over ``batches`` (``"hessian"``: ``samples`` Rademacher vectors each;
    ``"fisher"``: squared per-image gradients) times quantization errors (activations: the last
    batch's), or measured loss increases (``"loss"``)."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {', '.join(ESTIMATORS)}, not {estimator!r}")
    if not model.method.is_fp:
        raise ValueError("sensitivity needs the full-precision model")
    names = list(layers)
    mods = layer_modules(model)
    unknown = [n for n in names if n not in mods]
    if unknown:
        raise ValueError(f"{unknown[0]} is not a convolution of the model")
    model.eval()
    batches, bits = list(batches), list(bits)
    acts: dict[str, torch.Tensor] = {}
    hooks = [mods[n].register_forward_hook(lambda m, inp, out, n=n: acts.__setitem__(n, inp[0]))
             for n in names]
    try:
        if estimator == "loss":
            return _loss_sensitivity(model, names, mods, acts, batches, bits, progress)
        traces = _fisher_traces if estimator == "fisher" else _hessian_traces
        w_tr, x_tr = traces(model, names, mods, acts, batches, samples, seed, progress)
        acts.clear()                           # the activations of the last batch
        with torch.no_grad():
            model(batches[-1][0])
        w_err = {n: {b: quantization_error(mods[n].weight, b, True) for b in bits} for n in names}
        a_err = {n: {b: quantization_error(acts[n], b, False) for b in bits} for n in names}
    finally:
        for h in hooks:
            h.remove()
    return Sensitivity(w_tr, x_tr, w_err, a_err)


def _readers(names: list[str], acts: dict[str, torch.Tensor]) -> dict[str, list[str]]:
    """The first layer reading each input tensor of the last forward pass -> every layer that
    reads it (a block's first convolution and its shortcut); only the first carries the
    tensor's activation term."""
    first: dict[int, str] = {}
    for n in names:
        first.setdefault(id(acts[n]), n)
    return {n: [m for m in names if id(acts[m]) == id(acts[n])] for n in names if first[id(acts[n])] == n}


def _hessian_traces(model, names, mods, acts, batches, samples, seed, progress):
    """Hutchinson traces ``E[v^T H v] / n`` per weight and per first-read input tensor (the
    Hessian of each batch's mean loss), averaged over batches and vectors."""
    gen = torch.Generator().manual_seed(seed)
    w_tr, x_tr = {n: 0.0 for n in names}, {n: 0.0 for n in names}
    scale = len(batches) * samples
    for k, (x, y) in enumerate(batches):
        acts.clear()
        loss = F.cross_entropy(model(x), y)
        readers = list(_readers(names, acts))
        wrt = [mods[n].weight for n in names] + [acts[n] for n in readers]
        grads = torch.autograd.grad(loss, wrt, create_graph=True)
        for _ in range(samples):
            vs = [torch.randint(0, 2, g.shape, generator=gen).to(g.dtype) * 2 - 1 for g in grads]
            hv = torch.autograd.grad(grads, wrt, grad_outputs=vs, retain_graph=True)
            for i, (v, h) in enumerate(zip(vs, hv)):
                target, n = (w_tr, names[i]) if i < len(names) else (x_tr, readers[i - len(names)])
                target[n] += float((v * h).sum()) / v.numel() / scale
        if progress:
            progress(f"sensitivity: batch {k + 1}/{len(batches)}")
    return w_tr, x_tr


def _fisher_traces(model, names, mods, acts, batches, samples, seed, progress):
    """Empirical Fisher traces: per image ``i`` of every batch, ``||dl_i/dW||^2 / |W|`` and
    ``||dl_i/dx_i||^2 / |x_i|``, averaged over the images; the activation traces divided by the
    last batch's size, so that times the quantization error of that batch's whole tensor they
    give the per-image loss change (the Hessian convention). ``samples`` and ``seed`` are
    unused (no random vectors)."""
    w_tr, x_tr = {n: 0.0 for n in names}, {n: 0.0 for n in names}
    images = sum(len(x) for x, _ in batches)
    for k, (x, y) in enumerate(batches):
        for i in range(len(x)):
            acts.clear()
            loss = F.cross_entropy(model(x[i:i + 1]), y[i:i + 1])
            readers = list(_readers(names, acts))
            grads = torch.autograd.grad(loss, [mods[n].weight for n in names] + [acts[n] for n in readers])
            for j, g in enumerate(grads):
                target, n = (w_tr, names[j]) if j < len(names) else (x_tr, readers[j - len(names)])
                target[n] += float((g.double() ** 2).sum()) / g.numel() / images
        if progress:
            progress(f"sensitivity (fisher): batch {k + 1}/{len(batches)}")
    last = len(batches[-1][0])
    return w_tr, {n: v / last for n, v in x_tr.items()}


def _loss_sensitivity(model, names, mods, acts, batches, bits, progress) -> Sensitivity:
    """The ``"loss"`` estimator (module docstring); ``acts`` is filled by the caller's hooks."""
    acts.clear()
    with torch.no_grad():
        model(batches[0][0])
    readers = _readers(names, acts)
    steps = {(n, b): best_step(acts[n], b, False) for n in readers for b in bits}   # fixed, as trained ones

    def mean_loss() -> float:
        with torch.no_grad():
            total = sum(float(F.cross_entropy(model(x), y, reduction="sum")) for x, y in batches)
        return total / sum(len(x) for x, _ in batches)

    base = mean_loss()
    w_err: dict[str, dict[int, float]] = {n: {} for n in names}
    a_err: dict[str, dict[int, float]] = {n: {b: 0.0 for b in bits} for n in names}
    for k, n in enumerate(names):
        weight = mods[n].weight
        kept = weight.detach().clone()
        for b in bits:
            with torch.no_grad():
                weight.copy_(quantized(kept, b, True).to(weight.dtype))
            w_err[n][b] = max(0.0, mean_loss() - base)
        with torch.no_grad():
            weight.copy_(kept)
        for b in bits if n in readers else ():
            step = steps[n, b]
            pre = [mods[m].register_forward_pre_hook(
                lambda mod, args, b=b, step=step: (quantized(args[0], b, False, step).to(args[0].dtype),)
                + tuple(args[1:])) for m in readers[n]]
            try:
                a_err[n][b] = max(0.0, mean_loss() - base)
            finally:
                for h in pre:
                    h.remove()
        if progress:
            progress(f"sensitivity (loss): layer {k + 1}/{len(names)}")
    return Sensitivity({n: 1.0 for n in names}, {n: float(n in readers) for n in names}, w_err, a_err)
