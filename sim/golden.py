"""The golden model: exact integer inference of a `Graph` with numpy.

This is the single reference every other layer of bitmill is compared against, bit for bit.
Public arrays are integers in NCHW (batch first); inside, tensors are held as NHWC floating
point arrays whose values are integers (float32 for tensors of at most 24 bits, float64
otherwise), which BLAS multiplies fastest.

Exactness argument, per layer: a ``K``-term dot product of weights bounded by ``max|w|`` and
activations bounded by ``max|a|`` has every partial sum, in any order, bounded by
``K*max|w|*max|a|`` (`bitmill.numerics.accumulator_bound`). Integers below 2^24 and all their
sums are exact in float32, below 2^53 in float64. `exact_gemm` therefore splits ``K`` into
chunks whose bound stays below 2^24, runs each chunk as a float32 GEMM and adds the chunk
results in float64 (exact while the whole bound is below 2^53); beyond that it uses int64.
Requantization is `bitmill.numerics.requantize_exact`: float64 when that is proven exact,
otherwise int64, both the one rule of `bitmill.numerics`.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from bitmill import numerics
from bitmill.errors import BitmillError
from bitmill.numerics import FLOAT32_EXACT, FLOAT64_EXACT
from bitmill.compiler.ir import (Add, Conv2d, Dense, Flatten, GlobalAvgPool, Graph, Input,
                                 MaxPool, Node, TensorType)

MIN_CHUNK = 32          # below this many terms per float32 chunk, use one float64 GEMM


def storage_dtype(t: TensorType) -> type:
    """Smallest integer dtype of the public arrays of ``t``."""
    lo, hi = t.range
    for dt in (np.int8, np.int16, np.int32):
        if np.iinfo(dt).min <= lo and hi <= np.iinfo(dt).max:
            return dt
    return np.int64


def exact_gemm(a: np.ndarray, b: np.ndarray, term_bound: int) -> np.ndarray:
    """``a @ b`` exactly, for integer-valued ``a (M, K)``, ``b (K, O)`` with every
    ``|a[m,k]*b[k,o]| <= term_bound``. Returns float64 (or int64 past 2^53)."""
    k = a.shape[1]
    term_bound = max(int(term_bound), 1)
    chunk = (FLOAT32_EXACT - 1) // term_bound
    if chunk >= k:
        return (a.astype(np.float32, copy=False) @ b.astype(np.float32, copy=False)).astype(np.float64)
    if k * term_bound >= FLOAT64_EXACT:
        return a.astype(np.int64) @ b.astype(np.int64)
    if chunk < MIN_CHUNK:
        return a.astype(np.float64, copy=False) @ b.astype(np.float64, copy=False)
    a32, b32 = a.astype(np.float32, copy=False), b.astype(np.float32, copy=False)
    acc = np.zeros((a.shape[0], b.shape[1]), dtype=np.float64)
    for k0 in range(0, k, chunk):
        acc += a32[:, k0:k0 + chunk] @ b32[k0:k0 + chunk]
    return acc


def im2col(x: np.ndarray, kh: int, kw: int, stride: int, padding: int) -> np.ndarray:
    """NHWC ``(N, H, W, C) -> (N*Ho*Wo, kh*kw*C)`` zero-padded patches; columns in
    (ky, kx, c) order, rows in (n, y, x) order. One strided copy per kernel row: a window of
    ``kw*C`` contiguous values of the flattened ``W*C`` axis."""
    n, h, w, c = x.shape
    if padding:
        x = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    ho = (h + 2 * padding - kh) // stride + 1
    wo = (w + 2 * padding - kw) // stride + 1
    out = np.empty((n, ho, wo, kh, kw * c), dtype=x.dtype)
    flat = x.reshape(n, x.shape[1], -1)
    for dy in range(kh):
        rows = flat[:, dy:dy + stride * (ho - 1) + 1:stride, :]
        out[:, :, :, dy, :] = sliding_window_view(rows, kw * c, axis=2)[
            :, :, :stride * c * (wo - 1) + 1:stride * c]
    return out.reshape(n * ho * wo, kh * kw * c)


@functools.lru_cache(maxsize=512)
def _weight_matrix(node: Conv2d | Dense) -> np.ndarray:
    """``(K, O)`` float32 weights in im2col column order (cached per node)."""
    w = node.weight
    if w.ndim == 4:
        w = w.transpose(0, 2, 3, 1)
    return np.ascontiguousarray(w.reshape(w.shape[0], -1).T, dtype=np.float32)


def _weighted(node: Conv2d | Dense, x: np.ndarray, in_type: TensorType) -> np.ndarray:
    if isinstance(node, Conv2d):
        _, kh, kw = node.weight.shape[1:]
        n, h, w, _ = x.shape
        cols = im2col(x, kh, kw, node.stride, node.padding)
        ho, wo = node.out.shape[1:]
    else:
        cols = x
    term = numerics.max_abs(node.w_bits, node.w_enc) * numerics.max_abs(in_type.bits, in_type.encoding)
    acc = exact_gemm(cols, _weight_matrix(node), term)
    r = node.requant
    y = numerics.requantize_exact(acc, r.multiplier, r.bias, r.shift, node.acc_bound(in_type), node.out_range)
    return y.reshape(n, ho, wo, -1) if isinstance(node, Conv2d) else y


def _add(node: Add, a: np.ndarray, b: np.ndarray, in_types: list[TensorType]) -> np.ndarray:
    bound = node.sum_bound(in_types)
    if bound < FLOAT64_EXACT:
        s = np.multiply(a, float(node.mult_a), dtype=np.float64)
        s += np.multiply(b, float(node.mult_b), dtype=np.float64)
    else:
        s = a.astype(np.int64) * node.mult_a + b.astype(np.int64) * node.mult_b
    return numerics.requantize_exact(s, 1, node.bias, node.shift, bound, node.out_range)


def _maxpool(node: MaxPool, x: np.ndarray) -> np.ndarray:
    k, s, p = node.kernel, node.stride, node.padding
    if p:
        x = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), constant_values=-np.inf)
    ho, wo = node.out.shape[1:]
    out = None
    for dy in range(k):
        for dx in range(k):
            win = x[:, dy:dy + s * (ho - 1) + 1:s, dx:dx + s * (wo - 1) + 1:s, :]
            out = win.copy() if out is None else np.maximum(out, win, out=out)
    return out


def _avgpool(node: GlobalAvgPool, x: np.ndarray, in_type: TensorType) -> np.ndarray:
    """Per-channel sums, exact: in float64 below 2^53, else in int64 (the IR proves the sum times
    the multiplier below 2^63)."""
    bound = numerics.max_abs(in_type.bits, in_type.encoding) * in_type.shape[1] * in_type.shape[2]
    if bound < FLOAT64_EXACT:
        s = x.sum(axis=(1, 2), keepdims=True, dtype=np.float64)
    else:
        s = x.astype(np.int64).sum(axis=(1, 2), keepdims=True)
    r = node.requant
    return numerics.requantize_exact(s, r.multiplier, r.bias, r.shift, bound, node.out.range)


def _eval(node: Node, args: list[np.ndarray], in_types: list[TensorType]) -> np.ndarray:
    """One node on internal NHWC values; returns the output's internal values."""
    if isinstance(node, (Conv2d, Dense)):
        y = _weighted(node, args[0], in_types[0])
    elif isinstance(node, Add):
        y = _add(node, args[0], args[1], in_types)
    elif isinstance(node, MaxPool):
        y = _maxpool(node, args[0])
    elif isinstance(node, GlobalAvgPool):
        y = _avgpool(node, args[0], in_types[0])
    elif isinstance(node, Flatten):
        y = args[0].transpose(0, 3, 1, 2).reshape(args[0].shape[0], -1)
    else:
        raise TypeError(f"golden model has no rule for op {node.op!r}")
    return y.astype(numerics.value_dtype(node.out.bits), copy=False)


def to_internal(x: np.ndarray, t: TensorType) -> np.ndarray:
    """Public integer NCHW array -> internal NHWC float values."""
    x = np.asarray(x)
    if x.ndim == 4:
        x = x.transpose(0, 2, 3, 1)
    return np.ascontiguousarray(x, dtype=numerics.value_dtype(t.bits))


def to_public(v: np.ndarray, t: TensorType) -> np.ndarray:
    """Internal NHWC float values -> public integer NCHW array."""
    if v.ndim == 4:
        v = v.transpose(0, 3, 1, 2)
    return v.astype(storage_dtype(t))


def eval_node(node: Node, args: list[np.ndarray], in_types: list[TensorType]) -> np.ndarray:
    """Output of one node for public integer inputs (batch first); public integer output."""
    vals = [to_internal(a, t) for a, t in zip(args, in_types)]
    return to_public(_eval(node, vals, in_types), node.out)


@dataclass(frozen=True)
class LayerTiming:
    """Wall time of one node in a golden run."""

    name: str
    op: str
    seconds: float


def check_input(graph: Graph, x: np.ndarray) -> np.ndarray:
    """Validate a public input batch for the graph; raise `BitmillError` naming the problem."""
    t = graph.input.out
    x = np.asarray(x)
    if x.ndim != len(t.shape) + 1 or tuple(x.shape[1:]) != t.shape:
        raise BitmillError(f"input batch has shape {x.shape}, expected (N, {', '.join(map(str, t.shape))})")
    if not np.issubdtype(x.dtype, np.integer):
        raise BitmillError(f"input must be integers, got dtype {x.dtype}")
    lo, hi = t.range
    if x.size and (x.min() < lo or x.max() > hi):
        raise BitmillError(f"input values must lie in {lo}..{hi} ({t.bits}-bit {t.encoding.label}), "
                           f"got {x.min()}..{x.max()}")
    return x


def run_all(graph: Graph, x: np.ndarray, keep: bool = True,
            timings: list[LayerTiming] | None = None) -> dict[str, np.ndarray]:
    """Every tensor of the graph for the batch ``x`` (``keep=False``: only the output)."""
    types = graph.types()
    values = {graph.input.name: to_internal(check_input(graph, x), graph.input.out)}
    last_use = {name: i for i, node in enumerate(graph.nodes) for name in node.inputs}
    for i, node in enumerate(graph.nodes):
        if isinstance(node, Input):
            continue
        t0 = time.perf_counter()
        values[node.name] = _eval(node, [values[n] for n in node.inputs],
                                  [types[n] for n in node.inputs])
        if timings is not None:
            timings.append(LayerTiming(node.name, node.op, time.perf_counter() - t0))
        if not keep:
            for name in node.inputs:
                if last_use[name] == i and name != graph.output:
                    del values[name]
    if not keep:
        values = {graph.output: values[graph.output]}
    return {name: to_public(v, types[name]) for name, v in values.items()}


def run(graph: Graph, x: np.ndarray) -> np.ndarray:
    """The graph's output for the batch ``x`` (public integers)."""
    return run_all(graph, x, keep=False)[graph.output]


def conv2d_acc(x: np.ndarray, node: Conv2d | Dense, in_type: TensorType) -> np.ndarray:
    """Exact int64 accumulators of a conv ``(N, O, Ho, Wo)`` or dense ``(N, O)`` layer
    (before requantization), for public integer input ``x``."""
    v = to_internal(x, in_type)
    if isinstance(node, Conv2d):
        _, kh, kw = node.weight.shape[1:]
        ho, wo = node.infer_shape([in_type])[1:]
        v = im2col(v, kh, kw, node.stride, node.padding)
    term = numerics.max_abs(node.w_bits, node.w_enc) * numerics.max_abs(in_type.bits, in_type.encoding)
    acc = exact_gemm(v, _weight_matrix(node), term).astype(np.int64)
    if isinstance(node, Conv2d):
        return acc.reshape(x.shape[0], ho, wo, -1).transpose(0, 3, 1, 2)
    return acc
