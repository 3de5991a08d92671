"""ECP5 netlist step before place-and-route: move the register that follows a block RAM read
into the RAM's own output register.

yosys 0.70 maps every ECP5 block RAM with ``REGMODE = "NOREG"``: the read data leave the
RAM 5.8 ns after the clock (speed 6), so a fabric register after it caps the clock near
140 MHz. The engine registers every buffer read once more (`bitmill.hw.engine`,
``*_q1``), reset-less and always enabled. Such a register is exactly the RAM's output
register (``REGMODE = "OUTREG"``, output clock enable 1, output reset 0, the same clock),
whose clock-to-out is about 1 ns, so this step moves it there: vendor tools do the same.

A data output qualifies when it drives nothing, or one ``TRELLIS_FF`` and nothing else (no
module port either), and that
flip-flop has the RAM's clock (on both RAM ports, whose output resets are constant 0), a
constant-1 clock enable, a constant-0 ``LSR`` and no inverted clock. A RAM is changed only when all its connected data outputs
qualify.

The gate-level co-simulation (`bitmill.sim.cosim.gatelevel`) runs the tile suite on the
netlist after this step.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

RAM = "DP16KD"
FF = "TRELLIS_FF"


def _users(module: dict) -> dict[int, list[tuple[str, str]]]:
    """Net bit -> (cell, input port) pairs that read it; a module output port reads its bits
    too (as ``("<port>", name)``)."""
    users: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for name, port in module.get("ports", {}).items():
        if port.get("direction") != "input":
            for bit in port.get("bits", []):
                if isinstance(bit, int):
                    users[bit].append(("<port>", name))
    cells = module.get("cells", {})
    for name, cell in cells.items():
        for port, bits in cell["connections"].items():
            if cell.get("port_directions", {}).get(port) == "output":
                continue
            for bit in bits:
                if isinstance(bit, int):
                    users[bit].append((name, port))
    return users


def _plain_register(cell: dict, clock: list) -> bool:
    p, c = cell["parameters"], cell["connections"]
    return (cell["type"] == FF and p.get("CLKMUX") == "CLK" and c.get("CLK") == clock
            and p.get("CEMUX", "").strip() == "1" and c.get("LSR", ["0"]) == ["0"])


def _absorbable(ram: dict, cells: dict, users: dict) -> list[tuple[str, str]] | None:
    """(data output, flip-flop) pairs of ``ram``, or None when it does not qualify."""
    conn = ram["connections"]
    if conn.get("CLKA") != conn.get("CLKB") or conn.get("RSTA") != ["0"] \
            or conn.get("RSTB") != ["0"]:
        return None
    pairs = []
    for port, bits in conn.items():
        if not port.startswith("DO") or not isinstance(bits[0], int):
            continue
        readers = users.get(bits[0], [])
        if not readers:                   # an unused output: its register does not matter
            continue
        if len(readers) != 1 or readers[0][1] != "DI":
            return None
        ff = readers[0][0]
        if not _plain_register(cells[ff], conn["CLKB"]):
            return None
        pairs.append((port, ff))
    return pairs or None


def absorb_output_registers(netlist: dict) -> int:
    """Move qualifying read registers into their RAMs (in place); return how many."""
    moved = 0
    for module in netlist["modules"].values():
        cells = module.get("cells", {})
        users = _users(module)
        for ram in [c for c in cells.values() if c["type"] == RAM]:
            pairs = _absorbable(ram, cells, users)
            if pairs is None:
                continue
            for port, ff in pairs:
                ram["connections"][port] = cells[ff]["connections"]["Q"]
                del cells[ff]
            ram["parameters"]["REGMODE_A"] = ram["parameters"]["REGMODE_B"] = "OUTREG"
            ram["connections"]["OCEA"] = ram["connections"]["OCEB"] = ["1"]
            moved += len(pairs)
    return moved


def absorb_file(src: Path, dst: Path) -> int:
    """`absorb_output_registers` from one yosys JSON netlist file to another."""
    netlist = json.loads(Path(src).read_text())
    moved = absorb_output_registers(netlist)
    Path(dst).write_text(json.dumps(netlist))
    return moved
