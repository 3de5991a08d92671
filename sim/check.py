"""Compare a simulated memory image with the golden model, tensor by tensor."""

from __future__ import annotations

import numpy as np

from bitmill.errors import SimMismatch
from bitmill.isa import Program
from bitmill.geometry import from_nhwc_rows
from bitmill.packing import read_tensor
from bitmill.compiler.ir import Graph
from bitmill.sim import golden


def tensor_from_image(image: bytes, program: Program, name: str, shape) -> np.ndarray:
    """A tensor of the memory image in the IR's (C, H, W) or (F,) layout."""
    return from_nhwc_rows(read_tensor(image, program.region(name)), shape)


def overwritten(graph: Graph, program: Program) -> frozenset[str]:
    """Tensors whose bytes a later layer's output reuses (a program compiled with
    ``reuse_memory``): not in the final memory image. Empty for every other program."""
    spans = [(n.name, program.region(n.name)) for n in graph.nodes if n.op != "flatten"]
    gone = set()
    for i, (name, r) in enumerate(spans):
        if any(s.addr < r.addr + r.nbytes and r.addr < s.addr + s.nbytes for _, s in spans[i + 1:]):
            gone.add(name)
    return frozenset(gone)


def check_against_golden(graph: Graph, program: Program, image: bytes, x: np.ndarray) -> int:
    """Compare every tensor of the memory image with golden (all but the `overwritten` ones);
    return how many were checked."""
    ref = golden.run_all(graph, x[None])
    gone = overwritten(graph, program)
    gone |= {n.name for n in graph.nodes if n.op == "flatten" and n.inputs[0] in gone}
    checked = 0
    for node in graph.nodes:
        if node.name in gone:
            continue
        checked += 1
        got = tensor_from_image(image, program, node.name, node.out.shape)
        want = ref[node.name][0]
        if not np.array_equal(got, want):
            idx = tuple(int(i) for i in np.argwhere(got != want)[0])
            raise SimMismatch(node.name, idx, int(want[idx]), int(got[idx]))
    return checked
