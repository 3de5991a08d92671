"""Tables and inputs for golden-model runs (shared by the CLI and benchmarks)."""

from __future__ import annotations

import numpy as np

from bitmill.compiler.ir import Conv2d, Dense, Graph, Node
from bitmill.sim.golden import LayerTiming


def random_input(graph: Graph, batch: int, seed: int) -> np.ndarray:
    """A seeded batch of images on the graph's input grid."""
    t = graph.input.out
    lo, hi = t.range
    return np.random.default_rng(seed).integers(lo, hi + 1, size=(batch,) + t.shape)


def macs(node: Node) -> int:
    """Multiply-accumulates of one sample through ``node`` (0 for non-GEMM nodes)."""
    if isinstance(node, Conv2d):
        return int(np.prod(node.out.shape)) * node.k
    if isinstance(node, Dense):
        return node.out.shape[0] * node.k
    return 0


def _bits(node: Node, graph: Graph) -> str:
    out = f"{node.out.bits}{node.out.encoding.label[0]}"
    if isinstance(node, (Conv2d, Dense)):
        a = graph[node.inputs[0]].out
        return f"w{node.w_bits}{node.w_enc.label[0]} a{a.bits}{a.encoding.label[0]} -> {out}"
    return f"-> {out}"


def golden_table(graph: Graph, timings: list[LayerTiming], batch: int) -> str:
    """Per-layer table: name, op, output shape, bits, MACs per image, milliseconds."""
    head = f"{'layer':24s} {'op':13s} {'output':>15s} {'bits (s/u/o)':>22s} {'MACs':>13s} {'ms':>8s}"
    lines = [head, "-" * len(head)]
    total_macs, total_s = 0, 0.0
    for t in timings:
        node = graph[t.name]
        m = macs(node)
        total_macs += m
        total_s += t.seconds
        lines.append(f"{t.name:24s} {t.op:13s} {str(node.out.shape):>15s} {_bits(node, graph):>22s} "
                     f"{m:>13,d} {t.seconds * 1e3:8.2f}")
    lines.append("-" * len(head))
    lines.append(f"{'total':24s} {'':13s} {'':>15s} {'':>22s} {total_macs:>13,d} {total_s * 1e3:8.2f}")
    lines.append(f"{total_macs * batch / max(total_s, 1e-12) / 1e9:.1f} GMAC/s exact integer "
                 f"(batch {batch})")
    return "\n".join(lines)
