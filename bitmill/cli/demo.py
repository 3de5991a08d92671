"""``bitmill demo``: the main job on the embedded default, as a list of named steps.

Each step calls the library (training, golden model, compile + simulate, Verilog emission)
and prints what it did. The training modules are imported when the training step runs, so
that the other steps do not load torch.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bitmill.compiler import irio, zoo
from bitmill.compiler.ir import Graph
from bitmill.config import AccelConfig
from bitmill.hw.verilog import emit
from bitmill.sim import golden
from bitmill.sim.report import random_image, sim_summary, sim_table, timed_golden_report
from bitmill.sim.verify import simulate_net

DEFAULT_MODEL = "resnet18"
DEFAULT_BITS = "w4a4"
DEFAULT_FIRST_LAST = 8
DEMO_CONFIG = "ecp5-85f"                  # a shipped accelerator config (bitmill.configs)
DEMO_RUN = Path("runs/demo")
RTL_DIR = Path("build") / "rtl"


def _default_net(seed: int) -> Graph:
    bits = zoo.BitSpec.parse(DEFAULT_BITS, first_last_bits=DEFAULT_FIRST_LAST)
    return zoo.build(DEFAULT_MODEL, bits, seed=seed)


def _golden_accuracy(graph: Graph, seed: int) -> tuple[float, int]:
    from bitmill.models import data

    test = data.fashion_mnist("test").subset(2000, seed=seed)
    pred = np.concatenate([golden.run(graph, test.images[i:i + 500]).argmax(1)
                           for i in range(0, len(test), 500)])
    return float((pred == test.labels).mean()), len(test)


def step_train(seed: int) -> None:
    """A short QAT run on a Fashion-MNIST subset, integer export, golden accuracy."""
    from bitmill.models.export import export
    from bitmill.models.train import TrainConfig, load_model, train

    print("== train: ResNet-8 with LSQ W4A4 on 6,000 Fashion-MNIST images (3 epochs), "
          "integer export, golden inference on 2,000 test images")
    cfg = TrainConfig(model="resnet8", quantizer="lsq", bits="w4a4", epochs=3, lr=0.1,
                      train_subset=6000, test_subset=2000, seed=seed)
    if (DEMO_RUN / "metrics.json").exists():
        print(f"(reusing the finished run in {DEMO_RUN})")
    else:
        train(cfg, DEMO_RUN, resume=(DEMO_RUN / "checkpoint.pt").exists())
    model, _ = load_model(DEMO_RUN / "checkpoint.pt")
    graph = export(model)
    irio.save_graph(graph, DEMO_RUN / "net")
    accuracy, images = _golden_accuracy(graph, seed)
    print(f"exported integer network: {DEMO_RUN / 'net'}; golden-model test accuracy "
          f"{accuracy:.4f} on {images} images")


def step_golden(seed: int) -> None:
    """Exact integer inference of the built-in ResNet-18 with the golden model."""
    print(f"== golden: built-in {DEFAULT_MODEL} (seeded weights), {DEFAULT_BITS.upper()} with "
          f"{DEFAULT_FIRST_LAST}-bit first/last layers\n")
    print(timed_golden_report(_default_net(seed), 1, seed))


def step_simulate(seed: int) -> None:
    """Compile the demo network for the ECP5-85F accelerator and simulate it cycle-accurately."""
    print(f"== simulate: built-in {DEFAULT_MODEL} on configs/accel/ecp5-85f.yaml (16x16 bit-serial "
          f"PEs, runtime precision per layer)\n")
    graph, cfg = _default_net(seed), AccelConfig.resolve(DEMO_CONFIG)
    t0 = time.perf_counter()
    _, stats = simulate_net(graph, cfg, random_image(graph, seed), progress=True)
    wall = time.perf_counter() - t0
    print(sim_table(stats))
    print(sim_summary(graph, stats, wall))


def step_rtl(seed: int) -> None:
    """Verilog of the demo accelerator configuration."""
    cfg = AccelConfig.resolve(DEMO_CONFIG)
    print(f"== rtl: {cfg.name}: {cfg.rows}x{cfg.cols} {cfg.pe_family} PEs, {cfg.lanes} lanes\n")
    out = emit(cfg, RTL_DIR)
    print(f"Verilog: {out.verilog} (module {out.top}); ports manifest: {out.manifest}")


STEPS: list[tuple[str, Callable[[int], None]]] = [
    ("train", step_train),
    ("golden", step_golden),
    ("simulate", step_simulate),
    ("rtl", step_rtl),
]


def run(seed: int = 0) -> int:
    """Run every demo step in order."""
    for _, step in STEPS:
        step(seed)
        print()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    return run(args.seed)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``demo``."""
    p = sub.add_parser("demo", help="run the main job on the built-in default network")
    p.add_argument("--seed", type=int, default=0, help="seed of weights and input image")
    p.set_defaults(func=cmd_demo)
