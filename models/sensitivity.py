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


def quantization_error(t: torch.Tensor, bits: int, signed: bool) -> float:
    """``min_s ||Q(t) - t||^2`` over the uniform ``bits``-bit grid (signed: LSQ's weight grid,
    else unsigned), the step chosen among `CLIP_RATIOS` clipping ratios of ``max|t|``."""
    t = t.detach().double()
    top = float(t.abs().max())
    if top == 0.0:
        return 0.0
    qn, qp = (2 ** (bits - 1), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)
    best = float("inf")
    for r in np.linspace(1.0 / CLIP_RATIOS, 1.0, CLIP_RATIOS):
        s = r * top / max(qp, qn, 1)
        q = torch.clamp(torch.round(t / s), -qn, qp) * s
        best = min(best, float(((q - t) ** 2).sum()))
    return best


@dataclass(frozen=True)
class Sensitivity:
    """Hessian traces per element and squared quantization errors per layer and width."""

    weight_trace: Mapping[str, float]          # Tr(H_W) / |W|
    act_trace: Mapping[str, float]             # Tr(H_x) / |x| (0 for a tensor's second reader)
    weight_error: Mapping[str, Mapping[int, float]]
    act_error: Mapping[str, Mapping[int, float]]

    def omega(self, layer: str, w_bits: int, a_bits: int) -> float:
        """The layer's sensitivity at ``(w_bits, a_bits)``."""
        return (self.weight_trace[layer] * self.weight_error[layer][w_bits]
                + self.act_trace[layer] * self.act_error[layer][a_bits])

    def to_dict(self) -> dict:
        return {"weight_trace": dict(self.weight_trace), "act_trace": dict(self.act_trace),
                "weight_error": {l: {str(b): e for b, e in v.items()} for l, v in self.weight_error.items()},
                "act_error": {l: {str(b): e for b, e in v.items()} for l, v in self.act_error.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> "Sensitivity":
        return cls(dict(d["weight_trace"]), dict(d["act_trace"]),
                   {l: {int(b): e for b, e in v.items()} for l, v in d["weight_error"].items()},
                   {l: {int(b): e for b, e in v.items()} for l, v in d["act_error"].items()})


ESTIMATORS = ("fisher", "hessian")


def sensitivity(model: QResNet, layers: Iterable[str], batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                bits: Iterable[int], samples: int = 16, seed: int = 0,
                progress: Callable[[str], None] | None = None, estimator: str = "hessian") -> Sensitivity:
    """Traces over ``batches`` (``"hessian"``: ``samples`` Rademacher vectors each;
    ``"fisher"``: squared per-image gradients) and quantization errors (on the last batch's
    activations) at every width of ``bits``, for ``layers``."""
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
    gen = torch.Generator().manual_seed(seed)
    w_tr = {n: 0.0 for n in names}
    x_tr = {n: 0.0 for n in names}
    acts: dict[str, torch.Tensor] = {}
    hooks = [mods[n].register_forward_hook(lambda m, inp, out, n=n: acts.__setitem__(n, inp[0]))
             for n in names]
    batches, bits, readers = list(batches), list(bits), []
    try:
        if estimator == "fisher":
            readers = _fisher_traces(model, names, mods, acts, batches, w_tr, x_tr, progress)
        for k, (x, y) in enumerate(batches if estimator == "hessian" else ()):
            acts.clear()
            loss = F.cross_entropy(model(x), y)
            first = {}                              # one activation term per tensor
            for n in names:
                first.setdefault(id(acts[n]), n)
            readers = [n for n in names if first[id(acts[n])] == n]
            params = [mods[n].weight for n in names]
            tensors = [acts[n] for n in readers]
            grads = torch.autograd.grad(loss, params + tensors, create_graph=True)
            for s in range(samples):
                vs = [torch.randint(0, 2, g.shape, generator=gen).to(g.dtype) * 2 - 1 for g in grads]
                hv = torch.autograd.grad(grads, params + tensors, grad_outputs=vs, retain_graph=True)
                scale = len(batches) * samples
                for i, n in enumerate(names):
                    w_tr[n] += float((vs[i] * hv[i]).sum()) / vs[i].numel() / scale
                for j, n in enumerate(readers, start=len(names)):
                    x_tr[n] += float((vs[j] * hv[j]).sum()) / vs[j].numel() / scale
            if progress:
                progress(f"sensitivity: batch {k + 1}/{len(batches)}")
        if estimator == "fisher":           # the activations of the last batch, as with hessian
            acts.clear()
            with torch.no_grad():
                model(batches[-1][0])
        w_err = {n: {b: quantization_error(mods[n].weight, b, True) for b in bits} for n in names}
        a_err = {n: {b: quantization_error(acts[n], b, False) for b in bits} for n in names}
    finally:
        for h in hooks:
            h.remove()
    readers_all = set(readers)
    x_tr = {n: (x_tr[n] if n in readers_all else 0.0) for n in names}
    return Sensitivity(w_tr, x_tr, w_err, a_err)


def _fisher_traces(model, names, mods, acts, batches, w_tr, x_tr, progress) -> list[str]:
    """Empirical Fisher traces, accumulated into ``w_tr`` / ``x_tr``: per image ``i`` of every
    batch, ``||dl_i/dW||^2 / |W|`` and ``||dl_i/dx_i||^2 / |x_i|``, averaged over the images; the
    activation traces divided by the last batch's size, so that times the quantization error of
    that batch's whole tensor they give the per-image loss change (the Hessian convention).
    Returns the layers that carry their input tensor's activation term."""
    images = sum(len(x) for x, _ in batches)
    readers: list[str] = []
    for k, (x, y) in enumerate(batches):
        for i in range(len(x)):
            acts.clear()
            loss = F.cross_entropy(model(x[i:i + 1]), y[i:i + 1])
            first = {}
            for n in names:
                first.setdefault(id(acts[n]), n)
            readers = [n for n in names if first[id(acts[n])] == n]
            grads = torch.autograd.grad(loss, [mods[n].weight for n in names] + [acts[n] for n in readers])
            for g, n in zip(grads, names):
                w_tr[n] += float((g.double() ** 2).sum()) / g.numel() / images
            for g, n in zip(grads[len(names):], readers):
                x_tr[n] += float((g.double() ** 2).sum()) / g.numel() / images
        if progress:
            progress(f"sensitivity (fisher): batch {k + 1}/{len(batches)}")
    last = len(batches[-1][0])
    for n in readers:
        x_tr[n] /= last
    return readers
