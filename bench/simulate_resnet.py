"""Cycle-accurate simulation benchmarks on the ECP5-85F accelerator configuration.

    python bench/simulate_resnet.py [speed|utilisation|scaling|all]

speed:        ResNet-18 (224x224, first/last 8-bit, rest W4A4): golden model, compile, simulate
              and the golden check timed separately, alternating in one process (medians); the
              simulated memory image is checked bit-exact first. On a loaded machine a
              multi-threaded BLAS slows golden and simulator alike (the ratio holds);
              OPENBLAS_NUM_THREADS=1 gives steadier times.
utilisation:  per-layer busy share of the compute unit, MAC utilisation and what bounds each
              layer below 90%, ResNet-18 convolutions after conv1 (W4A4).
scaling:      cycles per inference of ResNet-20 and ResNet-18 at W8A8/W4A4/W2A2 (first/last
              8-bit) for the bit-serial and the bit-parallel PE family.
boards:       the same cycles (and milliseconds at the config's clock) on every config that names
              a board; a network the config cannot run prints the compiler's reason.
staging:      the same cycles on those configs with the activation buffer's words widened for the
              GEMM stager (act_read_bytes 16 and 32 against the memory beat), and what bounds the
              ResNet-20 convolutions (bitmill.timing.gemm_limit) at each width.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from bitmill import timing
from bitmill.config import AccelConfig, shipped_names
from bitmill.errors import LoweringError
from bitmill.compiler import zoo
from bitmill.compiler.pipeline import compile_net
from bitmill.sim.verify import simulate_net
from bitmill.sim import cycle, golden
from bitmill.sim.check import check_against_golden

CONFIG = Path(__file__).resolve().parents[1] / "configs/accel/ecp5-85f.yaml"


def _net(model: str, bits: str):
    g = zoo.build(model, zoo.BitSpec.parse(bits, first_last_bits=8))
    x = np.random.default_rng(0).integers(0, 256, size=g.input.out.shape)
    return g, x


def speed(repeat: int = 7) -> None:
    """Golden, compile, simulate and the golden check timed separately, alternating in one
    process (medians), so that load from other processes hits every part alike."""
    cfg = AccelConfig.load(CONFIG)
    g, x = _net("resnet18", "w4a4")
    compiled = compile_net(g, cfg, x)
    ops, macs, bits = compiled.layer_ops(), compiled.layer_macs(), compiled.layer_bits()
    image, stats = cycle.simulate(compiled.program, ops, macs, bits)
    check_against_golden(g, compiled.program, image, x)          # raises on any difference
    parts = {"golden": lambda: golden.run(g, x[None]), "compile": lambda: compile_net(g, cfg, x),
             "simulate": lambda: cycle.simulate(compiled.program, ops, macs, bits),
             "check": lambda: check_against_golden(g, compiled.program, image, x)}
    times = {k: [] for k in parts}
    for _ in range(repeat):
        for name, fn in parts.items():
            times[name].append(_timed(fn))
    t = {k: statistics.median(v) for k, v in times.items()}
    print(f"resnet18 first/last 8-bit, rest W4A4, on {cfg.name}: {len(compiled.program.instructions)} "
          f"instructions, {stats.cycles:,} cycles ({stats.milliseconds:.2f} ms at {cfg.clock_mhz:g} MHz), "
          f"bit-exact against golden")
    print(f"medians of {repeat} alternating runs (load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs):")
    print(f"  golden model:                     {t['golden'] * 1e3:8.1f} ms")
    print(f"  compile:                          {t['compile'] * 1e3:8.1f} ms")
    print(f"  simulate (timing + hazards + functional): {t['simulate'] * 1e3:8.1f} ms")
    print(f"  check against golden (runs golden):       {t['check'] * 1e3:8.1f} ms")
    print(f"  simulate / golden:                {t['simulate'] / t['golden']:5.2f}x  (goal <= 3x)")
    print(f"  (compile + simulate) / golden:    {(t['compile'] + t['simulate']) / t['golden']:5.2f}x")
    print(f"  compile + simulate + check:       {sum(t[k] for k in ('compile', 'simulate', 'check')):6.2f} s "
          f"(goal < 10 s)")


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _losses(cfg: AccelConfig, node, in_shape, ls, layer) -> dict[str, float]:
    """Factors whose product is the layer's MAC utilisation: how full the array tiles are
    (pixel columns, channel rows, K lanes), how much of the GEMM instructions the array computes
    (operand staging, readout and the divider are not), how busy the unit is."""
    o, k, out_w = node.out.shape[0], ls.k_total, node.out.shape[2]
    pixels = node.out.shape[1] * out_w
    work = timing.tile_cycles(cfg.pe_family, cfg.lanes, k, ls.w_bits, ls.a_bits) - \
        timing.pipeline_latency(cfg.pe_family, cfg.lanes)
    bands = [min(ls.band_rows, node.out.shape[1] - y) * out_w for y in range(0, node.out.shape[1], ls.band_rows)]
    gemm = 0
    for px in bands:
        o0 = 0
        for n in ls.gemm_split:
            gemm += timing.gemm_cycles(cfg, px, min(n * cfg.rows, o - o0), node.weight.shape[2],
                                       in_shape[0], in_shape[2], ls.w_bits, ls.a_bits)
            o0 += n * cfg.rows
    return {"pixel columns": pixels * ls.channel_tiles / (ls.array_tiles * cfg.cols),
            "channel rows": o / (ls.channel_tiles * cfg.rows),
            "K lanes": k / (-(-k // cfg.lanes) * cfg.lanes),
            "array share of GEMM": ls.array_tiles * work / gemm,
            "compute busy": layer.compute_busy}


def _bound(cfg: AccelConfig, node, losses: dict[str, float], layer) -> str:
    """What keeps a layer below 90%, by unit (the array itself, or the compute unit waiting for
    the load or store unit): every factor under 97%, worst first."""
    causes = []
    for name, f in sorted(losses.items(), key=lambda kv: kv[1]):
        if f >= 0.97:
            continue
        if name == "pixel columns":
            px = node.out.shape[1] * node.out.shape[2]
            best = px / (-(-px // cfg.cols) * cfg.cols)
            causes.append(f"array: pixel columns {100 * f:.1f}% full ({px} px need {-(-px // cfg.cols)} "
                          f"tiles of {cfg.cols} per channel tile: <= {100 * best:.1f}% at batch 1)")
        elif name == "compute busy":
            waits = {"load": layer.wait_load, "store": layer.wait_store}
            unit = max(waits, key=waits.get)
            causes.append(f"{unit} unit: compute busy {100 * f:.1f}% (waited {layer.wait_load:,} cycles "
                          f"for loads, {layer.wait_store:,} for stores)")
        else:
            causes.append(f"array: {name} {100 * f:.1f}%")
    return "; ".join(causes) or "-"


def utilisation() -> None:
    cfg = AccelConfig.load(CONFIG)
    g, x = _net("resnet18", "w4a4")
    compiled, stats = simulate_net(g, cfg, x)
    sched = {l.name: l for l in compiled.schedule.layers}
    print(f"ResNet-18 (first/last 8-bit, rest W4A4) on {cfg.name}: {cfg.rows}x{cfg.cols} {cfg.pe_family}, "
          f"K = {cfg.lanes}, default buffers and bandwidth; convolutions after conv1.")
    print("busy = share of the layer's cycles the compute unit works (a layer's cycles run from the end")
    print("of the previous layer's last compute instruction to the end of its own); MAC util = useful")
    print("MACs / (cycles x peak MACs per cycle at the layer's bits). Below 90%: the unit and the factors")
    print("that bound it (array: how full its tiles are and how much of a GEMM is tile work; load/store:")
    print("the compute unit waited for them).")
    print("tiles = what bounds the GEMM's pixel tiles (bitmill.timing.gemm_limit: staging of the im2col")
    print("activations, the array, or the readout through the requantizer).")
    print(f"{'layer':22s} {'bits':>5s} {'cycles':>9s} {'busy':>7s} {'MAC util':>9s} {'tiles':>8s}  bound (MAC util < 90%)")
    rows = []
    for l in stats.layers:
        if l.op != "conv2d" or l.name == "conv1":
            continue
        node, ls = g[l.name], sched[l.name]
        losses = _losses(cfg, node, g[node.inputs[0]].out.shape, ls, l)
        bound = _bound(cfg, node, losses, l) if l.mac_utilisation < 0.9 or l.compute_busy < 0.9 else "-"
        rows.append(l)
        print(f"{l.name:22s} W{ls.w_bits}A{ls.a_bits} {l.cycles:>9,d} {100 * l.compute_busy:6.1f}% "
              f"{100 * l.mac_utilisation:8.1f}% {l.gemm_limit:>8s}  {bound}")
    cyc = sum(l.cycles for l in rows)
    print(f"{'all of them':22s} {'':5s} {cyc:>9,d} {100 * sum(l.compute_cycles for l in rows) / cyc:6.1f}% "
          f"{100 * sum(l.mac_utilisation * l.cycles for l in rows) / cyc:8.1f}%")
    print(f"busy >= 90% on {sum(l.compute_busy >= 0.9 for l in rows)} of {len(rows)} layers, "
          f"MAC util >= 90% on {sum(l.mac_utilisation >= 0.9 for l in rows)} of {len(rows)}")


def scaling() -> None:
    base = AccelConfig.load(CONFIG)
    print("Same array (R x C PEs, K lanes each) for both families: a bit-parallel PE multiplies K")
    print("8-bit pairs per cycle (far more logic), a bit-serial PE K bit pairs. 'vs W8A8' is what")
    print("runtime precision buys on the bit-serial array.")
    print(f"{'network':10s} {'bits':6s} {'bitserial cycles':>17s} {'vs W8A8':>8s} {'bitparallel cycles':>19s}")
    for model in ("resnet20", "resnet18"):
        ref = None
        for bits in ("w8a8", "w4a4", "w2a2"):
            g, x = _net(model, bits)
            cyc = {}
            for family in ("bitserial", "bitparallel"):
                cfg = replace(base, pe_family=family)
                cyc[family] = simulate_net(g, cfg, x)[1].cycles
            ref = ref or cyc["bitserial"]
            print(f"{model:10s} {bits.upper():6s} {cyc['bitserial']:>17,d} {ref / cyc['bitserial']:7.2f}x "
                  f"{cyc['bitparallel']:>19,d}")


def boards() -> None:
    cfgs = [c for c in map(AccelConfig.resolve, shipped_names()) if c.board != "none"]
    print("Cycles per inference (first/last layer 8-bit), simulated and checked against golden;")
    print("random 32x32x3 (ResNet-20) and 224x224x3 (ResNet-18) images.")
    for cfg in cfgs:
        print(f"{cfg.name} (board {cfg.board}): {cfg.rows}x{cfg.cols} {cfg.pe_family} PEs, {cfg.lanes} lanes, "
              f"{cfg.mem_bytes_per_cycle} B/cycle, latency {cfg.mem_latency}, {cfg.clock_mhz:g} MHz")
        for model in ("resnet20", "resnet18"):
            for bits in ("w8a8", "w4a4", "w2a2"):
                g, x = _net(model, bits)
                try:
                    stats = simulate_net(g, cfg, x)[1]
                except LoweringError as exc:
                    print(f"  {model:9s} {bits.upper():5s} refused: {exc}")
                    continue
                print(f"  {model:9s} {bits.upper():5s} {stats.cycles:>12,d} cycles {stats.milliseconds:9.2f} ms")


def staging() -> None:
    cfgs = [c for c in map(AccelConfig.resolve, shipped_names()) if c.board != "none"]
    widths = (0, 16, 32)
    print("Cycles per inference (first/last layer 8-bit), simulated and checked against golden, with")
    print("the activation buffer read by the GEMM stager in words of the memory beat (act_read_bytes 0),")
    print("16 or 32 bytes; then how many ResNet-20 convolutions each unit bounds (staging/array/readout).")
    for cfg in cfgs:
        print(f"{cfg.name}: {cfg.rows}x{cfg.cols} {cfg.pe_family} PEs, {cfg.lanes} lanes, beat "
              f"{cfg.mem_bytes_per_cycle} B; act_read_bytes {' / '.join(str(w or cfg.mem_bytes_per_cycle) for w in widths)}")
        for model in ("resnet20", "resnet18"):
            for bits in ("w8a8", "w4a4", "w2a2"):
                g, x = _net(model, bits)
                cells, bounds = [], []
                for w in widths:
                    try:
                        stats = simulate_net(g, replace(cfg, act_read_bytes=w), x)[1]
                    except LoweringError:
                        cells.append("refused")
                        continue
                    cells.append(f"{stats.cycles:,}")
                    convs = [l.gemm_limit for l in stats.layers if l.op == "conv2d"]
                    bounds.append("/".join(str(convs.count(k)) for k in ("staging", "array", "readout")))
                print(f"  {model:9s} {bits.upper():5s} {' / '.join(cells):>40s}"
                      + (f"   convs staging/array/readout: {'  '.join(bounds)}" if model == "resnet20" else ""))


BENCHES = {"speed": speed, "utilisation": utilisation, "scaling": scaling, "boards": boards,
           "staging": staging}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 2)[2],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bench", nargs="?", default="all", choices=(*BENCHES, "all"),
                   help="which benchmark to run (default: all)")
    args = p.parse_args(argv)
    for name, fn in BENCHES.items():
        if args.bench in (name, "all"):
            print(f"== {name}", flush=True)
            fn()
    return 0


if __name__ == "__main__":
    sys.exit(main())
