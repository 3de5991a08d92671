"""``bitmill demo``: the main job on the embedded default, as a list of named steps.

Each step calls the library (training, golden model, compile + simulate, Verilog emission),
is timed, and prints one line: what it did, its result and its seconds. Progress bars appear
only when stderr is a terminal. The training modules are imported when the training step
runs, so that the other steps do not load torch.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


from bitmill.cli.args import non_negative_int
from bitmill.compiler import irio, zoo
from bitmill.compiler.ir import Graph
from bitmill.config import AccelConfig
from bitmill.hw.verilog import emit
from bitmill.sim import golden
from bitmill.sim.accuracy import Accuracy, golden_accuracy
from bitmill.sim.report import macs, random_image, sim_summary
from bitmill.sim.verify import simulate_net

DEFAULT_MODEL = "resnet18"
DEFAULT_BITS = "w4a4"
DEFAULT_FIRST_LAST = 8
DEMO_CONFIG = "ecp5-85f"                  # the accelerator the network is simulated on
RTL_CONFIG = "tiny"                       # emitted in about a second; see FULL_RTL_COMMAND
FULL_RTL_COMMAND = f"bitmill hw emit --config {DEMO_CONFIG} -o build/rtl-{DEMO_CONFIG}"
DEMO_RUN = Path("runs/demo")
RTL_DIR = Path("build") / "rtl"
# about 20 s on an idle 2-core machine; golden-model accuracy about 0.74 (chance: 0.1)
TRAIN_IMAGES, TRAIN_EPOCHS, TEST_IMAGES = 6000, 2, 2000


def _progress_bars() -> bool:
    """Progress bars only on a terminal."""
    return sys.stderr.isatty()


def _default_net(seed: int) -> Graph:
    bits = zoo.BitSpec.parse(DEFAULT_BITS, first_last_bits=DEFAULT_FIRST_LAST)
    return zoo.build(DEFAULT_MODEL, bits, seed=seed)


def _net_name() -> str:
    return f"{DEFAULT_MODEL} {DEFAULT_BITS.upper()} ({DEFAULT_FIRST_LAST}-bit first/last layers)"


def _golden_accuracy(graph: Graph, seed: int) -> Accuracy:
    from bitmill.models import data

    test = data.fashion_mnist("test").subset(TEST_IMAGES, seed=seed)
    return golden_accuracy(graph, test.images, test.labels, progress=_progress_bars())


def step_train(seed: int) -> str:
    """A short QAT run on a Fashion-MNIST subset, integer export, golden accuracy."""
    from bitmill.models.export import export
    from bitmill.models.train import TrainConfig, load_model, train

    cfg = TrainConfig(model="resnet8", quantizer="lsq", bits="w4a4", epochs=TRAIN_EPOCHS, lr=0.1,
                      train_subset=TRAIN_IMAGES, test_subset=TEST_IMAGES, augment=False, seed=seed)
    reused = (DEMO_RUN / "metrics.json").exists()
    if not reused:
        train(cfg, DEMO_RUN, resume=(DEMO_RUN / "checkpoint.pt").exists(),
              progress=_progress_bars())
    model, _ = load_model(DEMO_RUN / "checkpoint.pt")
    graph = export(model)
    irio.save_graph(graph, DEMO_RUN / "net")
    result = _golden_accuracy(graph, seed)
    how = (f"reused the finished run in {DEMO_RUN}" if reused else
           f"ResNet-8 LSQ W4A4 trained on {TRAIN_IMAGES:,} Fashion-MNIST images "
           f"({TRAIN_EPOCHS} epochs, no augmentation) in {DEMO_RUN}")
    return (f"{how}; integer network exported to {DEMO_RUN / 'net'}; golden-model test accuracy "
            f"{result.accuracy:.4f} on {result.images:,} images")


def step_golden(seed: int) -> str:
    """Exact integer inference of the built-in ResNet-18 with the golden model."""
    graph = _default_net(seed)
    x = random_image(graph, seed)[None]
    t0 = time.perf_counter()
    out = golden.run(graph, x)
    wall = time.perf_counter() - t0
    gmac = sum(macs(n) for n in graph.nodes) / 1e9
    return (f"built-in {_net_name()}, seeded weights: exact integer inference of one "
            f"{'x'.join(map(str, x.shape[1:]))} image, {gmac:.2f} GMAC in {wall * 1e3:.0f} ms, "
            f"class {int(out.reshape(1, -1).argmax())}")


def step_simulate(seed: int) -> str:
    """Compile the demo network for the ECP5-85F accelerator and simulate it cycle-accurately."""
    graph, cfg = _default_net(seed), AccelConfig.resolve(DEMO_CONFIG)
    t0 = time.perf_counter()
    _, stats = simulate_net(graph, cfg, random_image(graph, seed), progress=_progress_bars())
    wall = time.perf_counter() - t0
    return (f"{_net_name()} on {cfg.name} ({cfg.rows}x{cfg.cols} {cfg.pe_family} PEs): "
            + sim_summary(graph, stats, wall))


def step_rtl(seed: int) -> str:
    """Verilog of a small accelerator configuration (the full array: `FULL_RTL_COMMAND`)."""
    cfg = AccelConfig.resolve(RTL_CONFIG)
    out = emit(cfg, RTL_DIR)
    return (f"configuration {cfg.name} ({cfg.rows}x{cfg.cols} {cfg.pe_family} PEs, {cfg.lanes} "
            f"lanes): {out.verilog} (module {out.top}), ports {out.manifest}; the full "
            f"{DEMO_CONFIG} array takes minutes: {FULL_RTL_COMMAND}")


@dataclass(frozen=True)
class Step:
    """A named demo step: ``run(seed)`` does the work and returns its one-line result."""
    name: str
    run: Callable[[int], str]


STEPS: tuple[Step, ...] = (
    Step("train", step_train),
    Step("golden", step_golden),
    Step("simulate", step_simulate),
    Step("rtl", step_rtl),
)


def run_step(step: Step, seed: int) -> float:
    """Run ``step``, print its line with the seconds it took; return the seconds."""
    t0 = time.perf_counter()
    result = step.run(seed)
    seconds = time.perf_counter() - t0
    print(f"{step.name}: {result} ({seconds:.1f} s)", flush=True)
    return seconds


def run(seed: int = 0) -> int:
    """Run every demo step in order, then a line with the total seconds."""
    total = sum(run_step(step, seed) for step in STEPS)
    print(f"demo: {len(STEPS)} steps in {total:.1f} s")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    return run(args.seed)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``demo``."""
    p = sub.add_parser("demo", help="run the main job on the built-in default network")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of weights and input image")
    p.set_defaults(func=cmd_demo)
