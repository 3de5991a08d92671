"""``bitmill demo``: the main job on the embedded default, as a list of named steps.

Each step prints what it did; later parts of the flow (training, compiling, simulation, RTL)
append their step to `STEPS`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

DEFAULT_MODEL = "resnet18"
DEFAULT_BITS = "w4a4"
DEFAULT_FIRST_LAST = 8


def step_golden(args: argparse.Namespace) -> None:
    """Exact integer inference of the built-in ResNet-18 with the golden model."""
    from bitmill.cli import cmd_golden

    print(f"== golden: built-in {DEFAULT_MODEL} (seeded weights), {DEFAULT_BITS.upper()} with "
          f"{DEFAULT_FIRST_LAST}-bit first/last layers\n")
    net = argparse.Namespace(net=None, model=DEFAULT_MODEL, bits=DEFAULT_BITS,
                             first_last_bits=DEFAULT_FIRST_LAST, seed=args.seed, batch=1)
    cmd_golden(net)


DEMO_RUN = "runs/demo"


def step_train(args: argparse.Namespace) -> None:
    """A short QAT run on a Fashion-MNIST subset, integer export, golden accuracy."""
    from pathlib import Path

    import numpy as np

    from bitmill.compiler import irio
    from bitmill.models import data
    from bitmill.models.export import export
    from bitmill.models.train import TrainConfig, load_model, train
    from bitmill.sim import golden

    print("== train: ResNet-8 with LSQ W4A4 on 6,000 Fashion-MNIST images (3 epochs), "
          "integer export, golden inference on 2,000 test images")
    run = Path(DEMO_RUN)
    cfg = TrainConfig(model="resnet8", quantizer="lsq", bits="w4a4", epochs=3, lr=0.1,
                      train_subset=6000, test_subset=2000, seed=args.seed)
    if (run / "metrics.json").exists():
        print(f"(reusing the finished run in {run})")
    else:
        train(cfg, run, resume=(run / "checkpoint.pt").exists())
    model, _ = load_model(run / "checkpoint.pt")
    graph = export(model)
    irio.save_graph(graph, run / "net")
    test = data.fashion_mnist("test").subset(2000, seed=args.seed)
    pred = np.concatenate([golden.run(graph, test.images[i:i + 500]).argmax(1)
                           for i in range(0, len(test), 500)])
    print(f"exported integer network: {run / 'net'}; golden-model test accuracy "
          f"{(pred == test.labels).mean():.4f} on {len(test)} images")


def step_simulate(args: argparse.Namespace) -> None:
    """Compile the demo network for the ECP5-85F accelerator and simulate it cycle-accurately."""
    from bitmill.cli_compile import cmd_simulate

    print(f"== simulate: built-in {DEFAULT_MODEL} on configs/accel/ecp5-85f.yaml (16x16 bit-serial "
          f"PEs, runtime precision per layer)\n")
    net = argparse.Namespace(net=None, model=DEFAULT_MODEL, bits=DEFAULT_BITS,
                             first_last_bits=DEFAULT_FIRST_LAST, seed=args.seed,
                             config="configs/accel/ecp5-85f.yaml", stats=None)
    cmd_simulate(net)


def step_rtl(args: argparse.Namespace) -> None:
    """Verilog of the demo accelerator configuration."""
    from bitmill.cli_hw import step_rtl as emit_rtl

    emit_rtl(args)


STEPS: list[tuple[str, Callable[[argparse.Namespace], None]]] = [
    ("train", step_train),
    ("golden", step_golden),
    ("simulate", step_simulate),
    ("rtl", step_rtl),
]


def run(args: argparse.Namespace) -> int:
    """Run every demo step in order."""
    for name, step in STEPS:
        step(args)
        print()
    return 0
