"""A slow, obviously-correct reference for the golden model: Python integers and loops."""

from __future__ import annotations

import numpy as np

from bitmill.compiler.ir import Add, Conv2d, Dense, Flatten, GlobalAvgPool, MaxPool


def requant_one(acc: int, m: int, b: int, n: int, lo: int, hi: int) -> int:
    v = acc * m + b
    v = (v + (1 << (n - 1))) >> n if n > 0 else v      # Python >> floors
    return min(max(v, lo), hi)


def conv(node: Conv2d, x: np.ndarray) -> np.ndarray:
    n, c, h, w = x.shape
    o, _, kh, kw = node.weight.shape
    s, p = node.stride, node.padding
    ho, wo = node.out.shape[1:]
    lo, hi = node.out_range
    wt = node.weight.tolist()
    xs = x.tolist()
    out = np.zeros((n, o, ho, wo), dtype=np.int64)
    for b in range(n):
        for oc in range(o):
            m, bias, sh = (int(node.requant.multiplier[oc]), int(node.requant.bias[oc]),
                           int(node.requant.shift[oc]))
            for y in range(ho):
                for xx in range(wo):
                    acc = 0
                    for ic in range(c):
                        for dy in range(kh):
                            for dx in range(kw):
                                iy, ix = y * s + dy - p, xx * s + dx - p
                                if 0 <= iy < h and 0 <= ix < w:
                                    acc += wt[oc][ic][dy][dx] * xs[b][ic][iy][ix]
                    out[b, oc, y, xx] = requant_one(acc, m, bias, sh, lo, hi)
    return out


def dense(node: Dense, x: np.ndarray) -> np.ndarray:
    lo, hi = node.out_range
    out = np.zeros((x.shape[0], node.weight.shape[0]), dtype=np.int64)
    for b, row in enumerate(x.tolist()):
        for oc, wrow in enumerate(node.weight.tolist()):
            acc = sum(wi * xi for wi, xi in zip(wrow, row))
            r = node.requant
            out[b, oc] = requant_one(acc, int(r.multiplier[oc]), int(r.bias[oc]),
                                     int(r.shift[oc]), lo, hi)
    return out


def add(node: Add, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lo, hi = node.out_range
    flat = [requant_one(int(x) * node.mult_a + int(y) * node.mult_b, 1, node.bias, node.shift,
                        lo, hi) for x, y in zip(a.ravel().tolist(), b.ravel().tolist())]
    return np.array(flat, dtype=np.int64).reshape(a.shape)


def maxpool(node: MaxPool, x: np.ndarray) -> np.ndarray:
    n, c, h, w = x.shape
    k, s, p = node.kernel, node.stride, node.padding
    ho, wo = node.out.shape[1:]
    out = np.zeros((n, c, ho, wo), dtype=np.int64)
    for b in range(n):
        for ch in range(c):
            for y in range(ho):
                for xx in range(wo):
                    vals = [int(x[b, ch, y * s + dy - p, xx * s + dx - p])
                            for dy in range(k) for dx in range(k)
                            if 0 <= y * s + dy - p < h and 0 <= xx * s + dx - p < w]
                    out[b, ch, y, xx] = max(vals)
    return out


def avgpool(node: GlobalAvgPool, x: np.ndarray) -> np.ndarray:
    lo, hi = node.out.range
    r = node.requant
    out = np.zeros((x.shape[0], x.shape[1], 1, 1), dtype=np.int64)
    for b in range(x.shape[0]):
        for ch in range(x.shape[1]):
            s = sum(int(v) for v in x[b, ch].ravel().tolist())
            out[b, ch, 0, 0] = requant_one(s, int(r.multiplier[ch]), int(r.bias[ch]),
                                           int(r.shift[ch]), lo, hi)
    return out


def flatten(node: Flatten, x: np.ndarray) -> np.ndarray:
    return x.reshape(x.shape[0], -1)


def eval_node(node, args):
    """Reference output of ``node`` for public integer inputs."""
    fn = {"conv2d": conv, "dense": dense, "add": add, "maxpool": maxpool,
          "globalavgpool": avgpool, "flatten": flatten}[node.op]
    return fn(node, *args)
