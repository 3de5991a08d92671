"""Tables and inputs for golden-model and cycle-accurate runs (shared by the CLI and benchmarks)."""

from __future__ import annotations

import time

import numpy as np

from bitmill.compiler.ir import Conv2d, Dense, Graph, Node
from bitmill.sim import golden
from bitmill.sim.golden import LayerTiming
from bitmill.sim.stats import SimStats


def random_input(graph: Graph, batch: int, seed: int) -> np.ndarray:
    """A seeded batch of images on the graph's input grid."""
    t = graph.input.out
    lo, hi = t.range
    return np.random.default_rng(seed).integers(lo, hi + 1, size=(batch,) + t.shape)


def random_image(graph: Graph, seed: int) -> np.ndarray:
    """One seeded image (no batch axis) on the graph's input grid."""
    t = graph.input.out
    lo, hi = t.range
    return np.random.default_rng(seed).integers(lo, hi + 1, size=t.shape)


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


def timed_golden_run(graph: Graph, x: np.ndarray) -> tuple[str, np.ndarray]:
    """Golden inference of the batch ``x``, timed after one warm-up run: the per-layer table
    (`golden_table`) with a line of wall time, output shape and argmax per image, and the output."""
    golden.run(graph, x)                       # warm-up: caches, BLAS threads
    timings: list[LayerTiming] = []
    t0 = time.perf_counter()
    out = golden.run_all(graph, x, keep=False, timings=timings)[graph.output]
    wall = time.perf_counter() - t0
    batch = len(x)
    return (golden_table(graph, timings, batch) + "\n"
            f"wall time: {wall * 1e3:.1f} ms for batch {batch}; "
            f"output {graph.output} {tuple(out.shape)}, argmax {out.reshape(len(out), -1).argmax(1).tolist()}"
            ), out


def timed_golden_report(graph: Graph, batch: int, seed: int) -> str:
    """`timed_golden_run` of a seeded random batch: the table and the summary line."""
    return timed_golden_run(graph, random_input(graph, batch, seed))[0]


def sim_table(stats) -> str:
    """Per-layer table: cycles (on the compute unit), MAC utilisation, busy share, the cycles the
    compute unit waited for loads and stores, what most of the cycles went to, and for a GEMM
    what bounds its pixel tiles (`bitmill.timing.gemm_limit`: staging, array or readout)."""
    head = (f"{'layer':22s} {'op':13s} {'cycles':>10s} {'ms':>8s} {'MAC util':>8s} {'busy':>6s} "
            f"{'wait load':>10s} {'wait store':>10s} {'bound':>8s} {'gemm limit':>10s}")
    rows = [head, "-" * len(head),
            f"{'(program preload)':22s} {'':13s} {stats.preload:>10,d} "
            f"{stats.preload / (stats.clock_mhz * 1e3):8.3f}"]
    for l in stats.layers:
        util = f"{100 * l.mac_utilisation:.1f}%" if l.macs else "-"
        rows.append(f"{l.name:22s} {l.op:13s} {l.cycles:>10,d} {l.cycles / (stats.clock_mhz * 1e3):8.3f} "
                    f"{util:>8s} {100 * l.compute_busy:5.1f}% {l.wait_load:>10,d} {l.wait_store:>10,d} "
                    f"{l.bottleneck:>8s} {l.gemm_limit or '-':>10s}")
    rows.append("-" * len(head))
    rows.append(f"{'total':22s} {'':13s} {stats.cycles:>10,d} {stats.milliseconds:8.3f}")
    return "\n".join(rows)


def sim_summary(graph: Graph, stats: SimStats, seconds: float, overwritten: int = 0) -> str:
    """The line after a simulation checked against golden: tensors, cycles, time, wall time
    (``overwritten``: tensors a reused-memory program no longer holds at the end)."""
    what = (f"every tensor of the final memory image equals the golden model ({len(graph.nodes)} tensors)"
            if not overwritten else
            f"every tensor left in the final memory image equals the golden model "
            f"({len(graph.nodes) - overwritten} tensors; {overwritten} overwritten by reused memory)")
    return (f"bit-exact: {what}; {stats.cycles:,} cycles = {stats.milliseconds:.3f} ms at "
            f"{stats.clock_mhz:g} MHz; simulated in {seconds:.2f} s")
