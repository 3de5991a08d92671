"""Compile a network: lower it to a `Schedule` (graph verified first) and encode the program."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bitmill.config import AccelConfig
from bitmill.errors import BitmillError, LoweringError
from bitmill.isa import Program
from bitmill.compiler.ir import Graph
from bitmill.compiler.lower import lower
from bitmill.compiler.schedule import Schedule


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


def compile_net(graph: Graph, cfg: AccelConfig, x: np.ndarray | None = None,
                reuse_memory: bool = False) -> Compiled:
    """Lower ``graph`` for ``cfg`` and encode its program (input image ``x``: CHW integers;
    ``reuse_memory``: dead activations' bytes reused, see `emit_program`)."""
    schedule = lower(graph, cfg)
    program = schedule.to_program(x, reuse_memory).split_into_fills()
    try:
        program.check_queue_depth()
    except BitmillError as exc:
        raise LoweringError(f"{graph.name}: {exc}") from None
    return Compiled(schedule, program)
