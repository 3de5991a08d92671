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


def step_rtl(args: argparse.Namespace) -> None:
    """Verilog of the demo accelerator configuration."""
    from bitmill.cli_hw import step_rtl as emit_rtl

    emit_rtl(args)


STEPS: list[tuple[str, Callable[[argparse.Namespace], None]]] = [
    ("golden", step_golden),
    ("rtl", step_rtl),
]


def run(args: argparse.Namespace) -> int:
    """Run every demo step in order."""
    for name, step in STEPS:
        step(args)
        print()
    return 0
