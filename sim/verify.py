"""The end-to-end check on one image: compile, simulate cycle-accurately, compare with golden.

The one module of `bitmill.sim` that imports the compiler: it joins compiler and simulator."""

from __future__ import annotations

import numpy as np

from bitmill.config import AccelConfig
from bitmill.compiler.ir import Graph
from bitmill.compiler.pipeline import Compiled, compile_net
from bitmill.sim import cycle
from bitmill.sim.check import check_against_golden


def simulate_net(graph: Graph, cfg: AccelConfig, x: np.ndarray, compiled: Compiled | None = None,
                 progress: bool = False):
    """Compile (unless given), simulate one image, check against golden; (compiled, stats)."""
    compiled = compiled or compile_net(graph, cfg, x)
    image, stats = cycle.simulate(compiled.program, compiled.layer_ops(), compiled.layer_macs(),
                                  compiled.layer_bits(), progress)
    check_against_golden(graph, compiled.program, image, x)
    return compiled, stats
