"""Register-to-register paths of a synthesized ECP5 netlist, before place and route.

    python bench/logic_paths.py build/ulx3s/bitmill_ulx3s_85f_bram.json [--top 30] [--group]

Reads the yosys JSON that ``synth_ecp5`` (or ``bitmill board build``) writes and estimates the
arrival time at every register, block-RAM and multiplier input with a coarse delay table of the
LFE5U speed grade 6 (cell delays from the Lattice timing model, a fixed 0.9 ns per routed net;
carry chains are dedicated wires). The figures are estimates for triage, not timing: nextpnr's
report after routing is the measurement. ``--group`` prints the worst path per endpoint group
(the endpoint register's name without its bit index), so every slow block shows up once.
"""

from __future__ import annotations

import argparse
import json
import re
import sys

ROUTE_NS = 0.9
DSP_ROUTE_NS = 2.5      # nets into and out of a MULT18X18D (few of them, far from the logic)
CLK_TO_Q = {"TRELLIS_FF": 0.4, "DP16KD": 4.3, "MULT18X18D": 0.9, "ALU54B": 0.9,
            "TRELLIS_DPR16X4": 0.9}
# combinational cells: (input port prefix, output port) -> delay; "*" matches every port
COMB = {
    "LUT4": {("*", "Z"): 0.4},
    "PFUMX": {("*", "Z"): 0.3},
    "L6MUX21": {("*", "Z"): 0.3},
    "CCU2C": {("CIN", "COUT"): 0.06, ("CIN", "S"): 0.4, ("*", "COUT"): 0.5, ("*", "S"): 0.6},
    "TRELLIS_DPR16X4": {("RAD", "DO"): 0.6},
}
SEQUENTIAL = {"TRELLIS_FF", "DP16KD", "MULT18X18D", "ALU54B", "TRELLIS_DPR16X4", "EHXPLLL",
              "TRELLIS_IO", "BB", "IB", "OB", "DCCA", "USRMCLK", "GSR", "SGSR"}
DEDICATED = {("CCU2C", "COUT")}
# the wide multiplexers' data inputs come from the slice's own LUTs (PFUMX) and from the
# neighbouring slices' PFUMX (L6MUX21) on dedicated wires
SLICE_MUX_DATA = {("PFUMX", "ALUT"), ("PFUMX", "BLUT"), ("L6MUX21", "D0"), ("L6MUX21", "D1")}


def comb_delay(cell_type: str, in_port: str, out_port: str) -> float | None:
    table = COMB.get(cell_type)
    if table is None:
        return None
    for (i, o), ns in table.items():
        if out_port.startswith(o) and (i == "*" or in_port.startswith(i)):
            return ns
    return None


def dsp_registered(cell: dict) -> bool:
    p = cell.get("parameters", {})
    return any(str(v).strip().upper() not in ("NONE", "") for k, v in p.items() if k.startswith("REG_OUTPUT"))


class Netlist:
    def __init__(self, module: dict):
        self.cells = module["cells"]
        self.names: dict[int, str] = {}
        for name, net in sorted(module["netnames"].items(), key=lambda kv: kv[1].get("hide_name", 0)):
            for i, bit in enumerate(net["bits"]):
                if isinstance(bit, int) and bit not in self.names:
                    self.names[bit] = name if len(net["bits"]) == 1 else f"{name}[{i}]"
        self.driver: dict[int, tuple[str, str]] = {}
        for cname, cell in self.cells.items():
            for port, bits in cell["connections"].items():
                if cell["port_directions"].get(port) == "output":
                    for bit in bits:
                        if isinstance(bit, int):
                            self.driver[bit] = (cname, port)
        self.arrival: dict[int, tuple[float, int | None]] = {}

    def arrive(self, bit) -> tuple[float, int | None]:
        """(arrival in ns at the driver's output, the input bit it came through)."""
        if not isinstance(bit, int) or bit not in self.driver:
            return 0.0, None
        stack = [bit]
        while stack:
            b = stack[-1]
            if b in self.arrival:
                stack.pop()
                continue
            cname, out_port = self.driver[b]
            cell = self.cells[cname]
            t = cell["type"]
            if t in SEQUENTIAL and not (t == "TRELLIS_DPR16X4" and out_port.startswith("DO")):
                if t == "MULT18X18D" and not dsp_registered(cell):
                    pass
                else:
                    self.arrival[b] = (CLK_TO_Q.get(t, 0.0), None)
                    stack.pop()
                    continue
            pending, best = [], (0.0, None)
            for port, bits in cell["connections"].items():
                if cell["port_directions"].get(port) != "input":
                    continue
                d = 4.0 if t == "MULT18X18D" else comb_delay(t, port, out_port)
                if d is None:
                    continue
                for ib in bits:
                    if not isinstance(ib, int) or ib not in self.driver:
                        continue
                    if ib not in self.arrival:
                        pending.append(ib)
                        continue
                    src = self.driver[ib]
                    src_type = self.cells[src[0]]["type"]
                    local = (src_type, src[1][:4]) in DEDICATED or (t, port) in SLICE_MUX_DATA
                    wire = (0.0 if local
                            else DSP_ROUTE_NS if "MULT18X18D" in (src_type, t) else ROUTE_NS)
                    at = self.arrival[ib][0] + wire + d
                    if at > best[0]:
                        best = (at, ib)
            if pending:
                if any(p in stack for p in pending):         # a combinational loop: cut it
                    self.arrival[b] = best
                    stack.pop()
                else:
                    stack.extend(pending)
                continue
            self.arrival[b] = best
            stack.pop()
        return self.arrival[bit]

    def path(self, bit) -> list[str]:
        """The path to ``bit`` from its start point: one line per run of cells that yosys
        named after the same signal."""
        steps, b = [], bit
        while b is not None:
            cname, _ = self.driver.get(b, ("?", "?"))
            kind = self.cells.get(cname, {}).get("type", "?")
            steps.append((short_name(self.names.get(b, f"${b}")), kind, self.arrival.get(b, (0,))[0]))
            b = self.arrival.get(b, (0, None))[1]
        lines = []
        for name, kind, at in steps[::-1]:
            if lines and lines[-1][0] == name:
                lines[-1][1].append(kind)
                lines[-1][2] = at
            else:
                lines.append([name, [kind], at])
        return [f"{at:5.1f}  {name}  ({' '.join(f'{k}x{kinds.count(k)}' if kinds.count(k) > 1 else k for k in dict.fromkeys(kinds))})"
                for name, kinds, at in lines]

    def endpoints(self):
        """(arrival at the input pin, endpoint name, input bit) of every sequential input."""
        for cname, cell in self.cells.items():
            t = cell["type"]
            if t not in ("TRELLIS_FF", "DP16KD", "MULT18X18D", "TRELLIS_DPR16X4"):
                continue
            if t == "TRELLIS_FF":
                q = cell["connections"].get("Q", [None])[0]
                label = short_name(self.names.get(q, cname))
            else:
                label = f"{t} {cname}"
            for port, bits in cell["connections"].items():
                if cell["port_directions"].get(port) != "input" or port.startswith("CLK"):
                    continue
                if t == "TRELLIS_DPR16X4" and port.startswith("RAD"):
                    continue
                for ib in bits:
                    if isinstance(ib, int) and ib in self.driver:
                        src_type = self.cells[self.driver[ib][0]]["type"]
                        at = self.arrive(ib)[0] + (DSP_ROUTE_NS if "MULT18X18D" in (src_type, t) else ROUTE_NS)
                        yield at, f"{label} .{port}", ib


AUTO = re.compile(r"_(LUT4|CCU2C|PFUMX|L6MUX21|TRELLIS_FF|DP16KD|MULT18X18D|TRELLIS_DPR16X4)_.*|_(DO[AB]?|DI)\d+.*")


def short_name(name: str) -> str:
    """A net name without the cell-type suffixes yosys appends when it names nets after
    their drivers."""
    return AUTO.sub("", name)


def group_of(label: str) -> str:
    return re.sub(r"\[\d+\]", "", re.sub(r"\$\d+", "", label.split(" .")[0]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("netlist")
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("--group", action="store_true", help="the worst path per endpoint group")
    ap.add_argument("--module", help="top module (default: the one marked top)")
    args = ap.parse_args(argv)
    sys.setrecursionlimit(10000)
    mods = json.load(open(args.netlist))["modules"]
    name = args.module or next(n for n, m in mods.items() if m.get("attributes", {}).get("top"))
    nl = Netlist(mods[name])
    ends = sorted(nl.endpoints(), key=lambda e: -e[0])
    if args.group:
        seen, chosen = set(), []
        for e in ends:
            g = group_of(e[1])
            if g not in seen:
                seen.add(g)
                chosen.append(e)
        ends = chosen
    print(f"{len(nl.cells):,} cells; worst estimated arrival {ends[0][0]:.1f} ns "
          f"({1000 / ends[0][0]:.0f} MHz)")
    for at, label, bit in ends[:args.top]:
        print(f"\n{at:5.1f} ns  {label}")
        for step in nl.path(bit):
            print(f"          {step}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
