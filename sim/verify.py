"""The end-to-end check on one image: compile, simulate cycle-accurately, compare with golden.

The one module of `bitmill.sim` that imports the compiler: it joins compiler and simulator."""

from __future__ import annotations

import numpy as np

from bitmill.config import AccelConfig
from bitmill.compiler.ir import Graph
from bitmill.compiler.pipeline import Compiled, compile_net
from bitmill.sim import cycle
from bitmill.sim.check import check_against_golden


def simulate_compiled(graph: Graph, compiled: Compiled, x: np.ndarray, progress: bool = False):
    """Simulate the compiled program on image ``x`` (already in its memory image), check every
    tensor against golden; (final memory image, stats)."""
    image, stats = cycle.simulate(compiled.program, compiled.layer_ops(), compiled.layer_macs(),
                                  compiled.layer_bits(), progress)
    check_against_golden(graph, compiled.program, image, x)
    return image, stats


def simulate_net(graph: Graph, cfg: AccelConfig, x: np.ndarray, compiled: Compiled | None = None,
                 progress: bool = False):
    """Compile (unless given), simulate one image, check against golden; (compiled, stats)."""
    compiled = compiled or compile_net(graph, cfg, x)
    return compiled, simulate_compiled(graph, compiled, x, progress)[1]
