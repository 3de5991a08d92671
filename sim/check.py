"""Compare a simulated memory image with the golden model, tensor by tensor."""

from __future__ import annotations

import numpy as np

from bitmill.errors import SimMismatch
from bitmill.isa import Program
from bitmill.packing import Region, read_tensor
from bitmill.numerics import Encoding
from bitmill.compiler.ir import Graph
from bitmill.sim import golden


def tensor_from_image(image: bytes, program: Program, name: str, shape) -> np.ndarray:
    """A tensor of the memory image in the IR's (C, H, W) or (F,) layout."""
    sym = next(s for s in program.symbols if s[0] == name)
    region = Region(sym[0], sym[1], sym[2], sym[3], sym[4], Encoding(sym[5]))
    rows = read_tensor(image, region)
    if len(shape) == 3:
        return rows.reshape(shape[1], shape[2], shape[0]).transpose(2, 0, 1)
    return rows.reshape(shape)


def check_against_golden(graph: Graph, program: Program, image: bytes, x: np.ndarray) -> int:
    """Compare every tensor of the memory image with golden; return how many were checked."""
    ref = golden.run_all(graph, x[None])
    for node in graph.nodes:
        got = tensor_from_image(image, program, node.name, node.out.shape)
        want = ref[node.name][0]
        if not np.array_equal(got, want):
            idx = tuple(int(i) for i in np.argwhere(got != want)[0])
            raise SimMismatch(node.name, idx, int(want[idx]), int(got[idx]))
    return len(graph.nodes)
