"""``bitmill board run``: a network classified image by image on a board through the host link,
every output and cycle count checked against golden and the simulator.

``--port /dev/ttyUSB0`` talks to a flashed board; ``--sim`` builds the board core on Verilator
behind a pseudo-terminal (`bitmill.sim.cosim.board_sim`) and runs the same host code against it.
The report: images, how many outputs equal golden's, the board's and golden's accuracy on the
same test images, the CYCLES register against the simulator's, bytes moved per image, and the
throughput model of the board (cycles at the config's clock plus the link's bytes at its baud
rate; a model, stated as one).

On a variant with on-chip memory the CYCLES register must equal the simulator's; on one with
SDRAM (LiteDRAM's controller, whose row misses, refreshes and queueing the cycle model does not
describe) the report gives the simulator's prediction and its error against the measured cycles.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from bitmill import hostlink
from bitmill.cli import board_runtime as rt
from bitmill.cli.args import add_net_args, load_net, positive_int
from bitmill.errors import BitmillError
from bitmill.hw.synth import PLACERS, ROUTERS


class _CountingLink:
    """A link that counts the bytes of every request and reply, and apart those of the STATUS
    reads (how often the host polls depends on the host, not on the board)."""

    def __init__(self, call):
        from bitmill.hw.regmap import register
        self._call, self.bytes, self.status_bytes, self.status_reads = call, 0, 0, 0
        self._status = register("STATUS").offset

    def call(self, command, address, length, payload):
        reply = self._call(command, address, length, payload)
        n = len(hostlink.request(command, address, length, payload)) + hostlink.REPLY_HEADER + len(reply.payload) + 1
        self.bytes += n
        if command == hostlink.Command.READ_REG and address == self._status:
            self.status_bytes, self.status_reads = self.status_bytes + n, self.status_reads + 1
        return reply


def _images(args, graph):
    from bitmill.models import data
    from bitmill.sim.accuracy import check_images
    if args.dataset == "random":          # any input grid (ResNet-18's 224x224x3); no labels
        from bitmill.sim.report import random_input
        images = random_input(graph, args.images, args.seed)
        return data.Dataset(images, np.full(args.images, -1), f"random[{args.images}]")
    ds = data.fashion_mnist("test").subset(args.images, seed=args.seed) if args.dataset == "fashion-mnist" \
        else data.synthetic(args.images, seed=args.seed)
    check_images(graph, ds.images, ds.name)
    return ds


def _open_port(path: str, baud: int):
    try:
        import serial
    except ImportError:
        raise BitmillError("the host link needs pyserial: pip install pyserial") from None
    try:
        return serial.Serial(path, baudrate=baud, timeout=0.05)
    except (serial.SerialException, OSError) as e:
        raise BitmillError(f"cannot open {path}: {e}") from None


def _say(msg: str) -> None:
    if sys.stderr.isatty():
        print(f"\r\033[K{msg}", end="", file=sys.stderr, flush=True)


def _classify(port, net, ds, want_out, timeout_s, poll_s):
    """Outputs and CYCLES per image, bytes to load, and link bytes per image with one STATUS
    read (the fewest a host needs)."""
    link = _CountingLink(rt.SerialLink(port, timeout_s).call)
    rt.run_sync(rt.load(net), link.call)
    load_bytes, outs, cycles = link.bytes, [], []
    link.bytes = link.status_bytes = link.status_reads = 0
    for i, x in enumerate(ds.images):
        result = rt.run_sync(rt.infer(net, x, poll=lambda: time.sleep(poll_s)), link.call)
        outs.append(result.output)
        cycles.append(result.cycles)
        same = sum(np.array_equal(o, w) for o, w in zip(outs, want_out))
        _say(f"board: {i + 1}/{len(ds.images)} images, {same} equal to golden")
    _say("")
    n = len(ds.images)
    per_image = (link.bytes - link.status_bytes) / n + link.status_bytes / max(1, link.status_reads)
    return np.stack(outs), np.array(cycles), load_bytes, per_image


def cmd_board_run(args: argparse.Namespace) -> int:
    from bitmill.compiler.pipeline import compile_net
    from bitmill.hw.boards import board_variant
    from bitmill.sim import cycle, golden
    if (args.port is None) == (not args.sim):
        raise BitmillError("give either --port DEVICE (a flashed board) or --sim (the Verilated board), not both or neither")
    try:
        variant = board_variant(args.board)
    except ValueError as e:
        raise BitmillError(str(e)) from None
    cfg = variant.accel_config()
    graph = load_net(args)
    ds = _images(args, graph)
    program = compile_net(graph, cfg, ds.images[0], reuse_memory=True).program   # the board's memory is small
    out_node = graph.nodes[-1]
    net = rt.loaded_network(program, graph.input.name, graph.input.out.shape, out_node.name, out_node.out.shape)
    if len(net.image) > variant.mem_bytes:
        raise BitmillError(f"{graph.name} needs {len(net.image):,} bytes of board memory (network and program); "
                           f"{variant.name} has {variant.mem_bytes:,}: choose a smaller network")
    want_out = golden.run(graph, ds.images)
    model_cycles = int(cycle.run_queues(program)[1].max())
    t0 = time.perf_counter()
    if args.sim:
        from bitmill.sim.cosim import board_sim
        from bitmill.hw.boards import SIM_DIVISOR
        build_dir = Path(args.build_dir or f"build/board-sim/{variant.name}")
        print(f"building the Verilated board {variant.name} in {build_dir} (reused when unchanged)", flush=True)
        if variant.sdram is None:
            exe, _ = board_sim.build(cfg, SIM_DIVISOR, variant.mem_bytes, build_dir)
        else:
            from bitmill.hw.litedram import generate
            core = generate(variant.sdram, variant.clock_hz, cfg.mem_bytes_per_cycle, "sim", build_dir / "litedram")
            exe, _ = board_sim.build_sdram(cfg, SIM_DIVISOR, core, build_dir)
        with board_sim.SimulatedBoard(exe) as board:
            port = _open_port(board.port, variant.baud)
            try:
                outs, cycles, load_bytes, per_image = _classify(port, net, ds, want_out, args.timeout, args.poll)
            finally:
                port.close()
        where = f"the Verilated board (UART at {SIM_DIVISOR} cycles per bit), {board.stats.cycles:,} " \
                f"cycles simulated" if board.stats else "the Verilated board"
    else:
        port = _open_port(args.port, variant.baud)
        try:
            outs, cycles, load_bytes, per_image = _classify(port, net, ds, want_out, args.timeout, args.poll)
        finally:
            port.close()
        where = f"{variant.name} on {args.port} at {variant.baud:,} Bd"
    wall = time.perf_counter() - t0
    return _report(args, variant, graph, ds, outs, want_out, cycles, model_cycles, load_bytes, per_image,
                   where, wall)


def _report(args, variant, graph, ds, outs, want_out, cycles, model_cycles, load_bytes, per_image, where, wall) -> int:
    n = len(ds.images)
    equal = int(sum(np.array_equal(o, w) for o, w in zip(outs, want_out)))
    board_pred, gold_pred = outs.reshape(n, -1).argmax(1), want_out.reshape(n, -1).argmax(1)
    cycles_ok = int((cycles == model_cycles).sum())
    exact = variant.sdram is None
    clock = variant.clock_hz
    compute_s = (model_cycles if exact else cycles.mean()) / clock
    per_s = 1.0 / (compute_s + variant.link_seconds(per_image))
    print(f"{graph.name} on {where}: {n} images in {wall:.1f} s wall")
    print(f"  outputs equal to golden: {equal}/{n}; predictions equal: {int((board_pred == gold_pred).sum())}/{n}")
    if (ds.labels >= 0).all():
        print(f"  accuracy on {ds.name}: board {np.mean(board_pred == ds.labels):.4f}, "
              f"golden {np.mean(gold_pred == ds.labels):.4f}")
    else:
        print(f"  accuracy: none ({ds.name} images have no labels)")
    if exact:
        print(f"  CYCLES register: {cycles_ok}/{n} equal to the simulator's {model_cycles:,} "
              f"({model_cycles / clock * 1e3:.2f} ms at {clock / 1e6:g} MHz)")
    else:
        err = (model_cycles - cycles) / cycles * 100
        print(f"  CYCLES register (SDRAM): {int(cycles.min()):,} .. {int(cycles.max()):,}, mean {cycles.mean():,.0f} "
              f"({cycles.mean() / clock * 1e3:.2f} ms at {clock / 1e6:g} MHz); the simulator predicts "
              f"{model_cycles:,}: error {err.min():+.2f} .. {err.max():+.2f}%")
    print(f"  host link: {load_bytes:,} bytes to load the network, {per_image:,.0f} bytes per image "
          "(input, start, one STATUS read, CYCLES, output)")
    print(f"  throughput model on the board: {per_s:.1f} images/s (compute {compute_s * 1e3:.2f} ms "
          f"+ link {variant.link_seconds(per_image) * 1e3:.2f} ms per image at {variant.baud:,} Bd)")
    if equal != n or exact and cycles_ok != n:
        bad = next(i for i in range(n) if not np.array_equal(outs[i], want_out[i])
                   or exact and cycles[i] != model_cycles)
        raise BitmillError(f"image {bad}: the board's output or cycles ({int(cycles[bad]):,}) differ from "
                           f"golden's and the simulator's ({model_cycles:,})")
    return 0


def timing_summary(log: str) -> dict:
    """Fmax per clock (the last report, after routing) and the device utilisation of a nextpnr log."""
    import re
    fmax = {}
    for clock, mhz, verdict, target in re.findall(
            r"Max frequency for clock\s+'([^']+)': ([\d.]+) MHz \((PASS|FAIL) at ([\d.]+) MHz\)", log):
        fmax[clock] = {"fmax_mhz": float(mhz), "pass": verdict == "PASS", "target_mhz": float(target)}
    use = {}
    block = log.rsplit("Device utilisation:", 1)[-1] if "Device utilisation:" in log else ""
    for cell, used, avail in re.findall(r"Info:\s+(\w+):\s+(\d+)/\s*(\d+)", block):
        use.setdefault(cell, (int(used), int(avail)))
    return {"clocks": fmax, "utilisation": use}


def cmd_board_build(args: argparse.Namespace) -> int:
    import json
    import os
    from amaranth_boards.ulx3s import ULX3S_85F_Platform
    from bitmill.fileio import atomic_write_text
    from bitmill.hw.board_build import build_bitstream
    from bitmill.hw.board_top import Ulx3sTop
    from bitmill.hw.boards import board_variant
    from bitmill.hw.synth import elapsed_lines
    try:
        variant = board_variant(args.board)
    except ValueError as e:
        raise BitmillError(str(e)) from None
    out = Path(args.output).resolve()
    if str(out).startswith("/tmp/"):
        raise BitmillError(f"-o {args.output}: the YoWASP tools cannot write under /tmp; choose another folder")
    out.mkdir(parents=True, exist_ok=True)
    sdram = None
    if variant.sdram is not None:
        from bitmill.hw.litedram import generate
        sdram = generate(variant.sdram, variant.clock_hz, variant.accel_config().mem_bytes_per_cycle, "board",
                         out / "litedram")
    try:
        top = Ulx3sTop(variant, sdram)
    except ValueError as e:
        raise BitmillError(str(e)) from None
    name = "bitmill_" + variant.name.replace("-", "_")
    saved = dict(os.environ)
    t0 = time.perf_counter()
    try:
        os.environ["OPENFPGALOADER"] = "true"   # the ULX3S platform looks for it even when not programming
        moved = build_bitstream(ULX3S_85F_Platform(), top, name, out, args.seed, elapsed_lines(), args.router,
                                args.placer)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    wall = time.perf_counter() - t0
    summary = timing_summary((out / f"{name}.tim").read_text())
    summary |= {"board": variant.name, "config": variant.config, "memory": variant.memory,
                "clock_mhz": variant.clock_hz / 1e6,
                "seed": args.seed, "router": args.router, "placer": args.placer, "wall_s": wall, "bitstream": f"{name}.bit",
                "ram_output_registers": moved}
    atomic_write_text(out / "report.json", json.dumps(summary, indent=1))
    for clock, t in summary["clocks"].items():
        print(f"{clock}: Fmax {t['fmax_mhz']:.2f} MHz, {'met' if t['pass'] else 'NOT met'} at {t['target_mhz']:g} MHz")
    for cell, (used, avail) in summary["utilisation"].items():
        if used:
            print(f"  {cell}: {used:,} of {avail:,}")
    print(f"built {out / (name + '.bit')} in {wall / 60:.1f} min; flash it with: "
          f"openFPGALoader --board ulx3s {out / (name + '.bit')}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """``board run``."""
    p = sub.add_parser("board", help="run networks on a board through its host link")
    bsub = p.add_subparsers(dest="board_command", metavar="COMMAND", required=True)
    r = bsub.add_parser("run", help="classify test images on a board (or its Verilated model with --sim)")
    add_net_args(r)
    r.add_argument("--board", default="ulx3s-85f-bram", help="board variant")
    r.add_argument("--port", help="serial device of a flashed board, e.g. /dev/ttyUSB0")
    r.add_argument("--sim", action="store_true", help="run on the Verilated board through a pseudo-terminal")
    r.add_argument("--images", type=positive_int, default=100, help="test images")
    r.add_argument("--dataset", default="fashion-mnist", choices=["fashion-mnist", "synthetic", "random"],
                   help="images: Fashion-MNIST's test set, synthetic blobs, or random codes on the network's "
                        "input grid (any input size, no labels)")
    r.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for one reply")
    r.add_argument("--poll", type=float, default=0.01, help="seconds between STATUS reads while a program runs")
    r.add_argument("--build-dir", help="where --sim builds the board (default: build/board-sim/BOARD)")
    r.set_defaults(func=cmd_board_run)
    b = bsub.add_parser("build", help="bitstream of a board variant (yosys, nextpnr-ecp5, ecppack)")
    b.add_argument("--board", default="ulx3s-85f-bram", help="board variant")
    b.add_argument("-o", "--output", required=True, help="build folder (not under /tmp)")
    b.add_argument("--seed", type=int, default=1, help="nextpnr placement seed")
    b.add_argument("--router", choices=ROUTERS, default="router1",
                   help="nextpnr's router: router2 routes several times faster, at some Fmax")
    b.add_argument("--placer", choices=PLACERS, default="heap",
                   help="nextpnr's placer: static placed the SDRAM board faster than heap")
    b.set_defaults(func=cmd_board_build)
