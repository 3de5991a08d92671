"""Integer-exact evaluation of an exported graph in torch (CPU or CUDA).

An independent implementation of the IR semantics with torch operations, bit-identical to the
numpy golden model: dot products as float64 matrix products of im2col patches (every partial
sum is an integer below 2^53, checked per layer), requantization in int64 with the rule of
`bitmill.numerics` (``clamp((acc*M + B + 2^(n-1)) >> n)``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from bitmill.errors import BitmillError
from bitmill.compiler.ir import (Add, Conv2d, Dense, Flatten, GlobalAvgPool, Graph, MaxPool,
                                 Requant)


def _requant(acc: torch.Tensor, r: Requant, lo: int, hi: int, axis: int = 1) -> torch.Tensor:
    shape = [1] * acc.dim()
    shape[axis] = -1
    dev = acc.device
    m, b, n = (torch.tensor(a, device=dev).view(shape) for a in (r.multiplier, r.bias, r.shift))
    half = torch.where(n > 0, torch.ones_like(n) << (n - 1).clamp(min=0), torch.zeros_like(n))
    return torch.clamp(((acc * m + b + half) >> n), lo, hi)


def _gemm_layer(node, x: torch.Tensor, bound: int) -> torch.Tensor:
    if bound >= 1 << 53:
        raise BitmillError(f"{node.name}: accumulator bound {bound} too large for exact float64")
    w = torch.tensor(node.weight, dtype=torch.float64, device=x.device)
    if isinstance(node, Conv2d):
        n, _, h, wd = x.shape
        cols = F.unfold(x.double(), node.weight.shape[2:], padding=node.padding, stride=node.stride)
        acc = (w.reshape(w.shape[0], -1) @ cols).round().long()        # exact integers
        acc = acc.view(n, w.shape[0], *node.out.shape[1:])
    else:
        acc = (x.double() @ w.T).round().long()
    return _requant(acc, node.requant, *node.out_range)


def _node(node, args, types) -> torch.Tensor:
    if isinstance(node, (Conv2d, Dense)):
        return _gemm_layer(node, args[0], node.acc_bound(types[0]))
    if isinstance(node, Add):
        s = args[0] * node.mult_a + args[1] * node.mult_b + node.bias
        half = (1 << (node.shift - 1)) if node.shift > 0 else 0
        return torch.clamp((s + half) >> node.shift, *node.out_range)
    if isinstance(node, MaxPool):
        return F.max_pool2d(args[0].double(), node.kernel, node.stride, node.padding).long()
    if isinstance(node, GlobalAvgPool):
        return _requant(args[0].sum(dim=(2, 3), keepdim=True), node.requant, *node.out.range)
    if isinstance(node, Flatten):
        return args[0].flatten(1)
    raise BitmillError(f"integer evaluation has no rule for op {node.op!r}")


@torch.no_grad()
def run(graph: Graph, x: torch.Tensor | np.ndarray, device: str | torch.device = "cpu") -> torch.Tensor:
    """Output codes of ``graph`` for integer inputs ``x`` (int64 tensor)."""
    x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).long().to(device)
    types = graph.types()
    vals = {graph.input.name: x}
    for node in graph.nodes[1:]:
        vals[node.name] = _node(node, [vals[i] for i in node.inputs], [types[i] for i in node.inputs])
    return vals[graph.output]
