"""Compile and simulate a network: named steps, each verified against the golden model.

``compile_net`` lowers a graph and encodes the program; ``simulate_net`` runs it on the
cycle-accurate simulator for one image and compares every tensor in the final memory image
with the golden model (`SimMismatch` names the first differing layer and element).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bitmill.config import AccelConfig
from bitmill.errors import SimMismatch
from bitmill.isa import Program
from bitmill.memlayout import Region, read_tensor
from bitmill.numerics import Encoding
from bitmill.compiler.ir import Graph
from bitmill.compiler.lower import lower
from bitmill.compiler.schedule import Schedule
from bitmill.sim import golden


@dataclass(frozen=True, eq=False)
class Compiled:
    schedule: Schedule
    program: Program

    def layer_ops(self) -> dict[str, str]:
        """Op of every program segment (layers that emit instructions), in order."""
        return {l.name: l.op for l in self.schedule.layers if l.kind != "alias"}

    def layer_macs(self) -> dict[str, int]:
        return {l.name: l.macs for l in self.schedule.layers}

    def layer_bits(self) -> dict[str, tuple[int, int]]:
        return {l.name: (l.w_bits, l.a_bits) for l in self.schedule.layers if l.kind == "gemm"}


def compile_net(graph: Graph, cfg: AccelConfig, x: np.ndarray | None = None) -> Compiled:
    """Lower ``graph`` for ``cfg`` and encode its program (input image ``x``: CHW integers)."""
    schedule = lower(graph, cfg)
    return Compiled(schedule, schedule.to_program(x))


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


def simulate_net(graph: Graph, cfg: AccelConfig, x: np.ndarray, compiled: Compiled | None = None,
                 progress: bool = False):
    """Compile (unless given), simulate one image, check against golden; (compiled, stats)."""
    from bitmill.sim import cycle

    compiled = compiled or compile_net(graph, cfg, x)
    image, stats = cycle.simulate(compiled.program, compiled.layer_ops(), compiled.layer_macs(),
                                  compiled.layer_bits(), progress)
    check_against_golden(graph, compiled.program, image, x)
    return compiled, stats
