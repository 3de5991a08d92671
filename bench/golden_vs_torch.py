"""Golden model wall time versus a float32 torch forward of the same ResNet shapes.

    python bench/golden_vs_torch.py [--model resnet18] [--bits w8a8] [--batch 1] [--repeat 10]

Both run in this process on the same cores; the figure is the median of ``--repeat`` runs
after one warm-up. Prints one line per engine and the ratio golden / torch.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch
from torch import nn

from bitmill import provenance
from bitmill.compiler import zoo
from bitmill.compiler.ir import Add, Conv2d, Dense, Flatten, GlobalAvgPool, Graph, MaxPool
from bitmill.sim import golden
from bitmill.sim.report import random_input


class TorchMirror(nn.Module):
    """Float32 torch modules with the shapes of every node of an IR graph (ReLU where fused)."""

    def __init__(self, graph: Graph):
        super().__init__()
        self.graph = graph
        self.ops = nn.ModuleDict()
        for node in graph.nodes:
            key = node.name.replace(".", "_")
            if isinstance(node, Conv2d):
                o, i, kh, _ = node.weight.shape
                self.ops[key] = nn.Conv2d(i, o, kh, node.stride, node.padding, bias=True)
            elif isinstance(node, Dense):
                self.ops[key] = nn.Linear(node.weight.shape[1], node.weight.shape[0])
            elif isinstance(node, MaxPool):
                self.ops[key] = nn.MaxPool2d(node.kernel, node.stride, node.padding)

    def forward(self, x):
        vals = {self.graph.input.name: x}
        for node in self.graph.nodes[1:]:
            args = [vals[i] for i in node.inputs]
            key = node.name.replace(".", "_")
            if isinstance(node, (Conv2d, Dense, MaxPool)):
                y = self.ops[key](args[0])
                y = torch.relu(y) if getattr(node, "relu", False) else y
            elif isinstance(node, Add):
                y = torch.relu(args[0] + args[1])
            elif isinstance(node, GlobalAvgPool):
                y = args[0].mean(dim=(2, 3), keepdim=True)
            elif isinstance(node, Flatten):
                y = args[0].flatten(1)
            vals[node.name] = y
        return vals[self.graph.output]


def _median_time(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resnet18", help="built-in network (resnet8/20/18)")
    ap.add_argument("--bits", default="w8a8", help="its bit-widths, e.g. w4a4")
    ap.add_argument("--batch", type=int, default=1, help="images per inference")
    ap.add_argument("--repeat", type=int, default=10, help="timed runs per engine (median)")
    args = ap.parse_args()

    graph = zoo.build(args.model, args.bits)
    x = random_input(graph, args.batch, 0)
    t_golden = _median_time(lambda: golden.run(graph, x), args.repeat)

    torch.set_num_threads(os.cpu_count() or 1)
    net = TorchMirror(graph).eval()
    xt = torch.from_numpy(x.astype(np.float32))
    with torch.inference_mode():
        t_torch = _median_time(lambda: net(xt), args.repeat)

    print(f"machine: {provenance.machine({'numpy': np.__version__, 'torch': torch.__version__})}")
    print(f"{args.model} {args.bits} batch {args.batch}, median of {args.repeat}:")
    print(f"  golden (exact integer): {t_golden * 1e3:8.1f} ms")
    print(f"  torch float32:          {t_torch * 1e3:8.1f} ms")
    print(f"  ratio golden / torch:   {t_golden / t_torch:8.2f}x")


if __name__ == "__main__":
    main()
