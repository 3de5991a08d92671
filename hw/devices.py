"""Capacities of the FPGA parts that synthesis reports measure against.

One part per synthesis target: the ECP5 part that place-and-route targets (``--85k``), the
iCE40 part that place-and-route targets (``--hx8k``), and, for ``synth_xilinx`` (which maps to
the 7-series family, no particular part), the Artix-7 xc7a35t as the reference part.

Sources of the numbers:
- LFE5U-85F: Lattice ECP5 and ECP5-5G Family Data Sheet (FPGA-DS-02012), Table 1.1:
  84K LUTs (83,640 LUT4, one flip-flop each, as nextpnr-ecp5 --85k counts them), 208 sysMEM
  blocks (DP16KD), 156 18x18 multipliers (MULT18X18D).
- iCE40HX8K: Lattice iCE40 LP/HX Family Data Sheet (FPGA-DS-02029), family table: 7,680 logic
  cells (one LUT4 and one flip-flop each), 32 4-kbit RAM blocks (SB_RAM40_4K), no DSP blocks.
- xc7a35t: Xilinx 7 Series FPGAs Data Sheet: Overview (DS180), Artix-7 feature summary: 5,200 slices
  (20,800 LUT6, 41,600 flip-flops), 50 36-kbit block RAMs (RAMB36E1; a RAMB18E1 is half of
  one), 90 DSP48E1 slices.
"""

from __future__ import annotations

from dataclasses import dataclass

from bitmill.errors import BitmillError


@dataclass(frozen=True)
class Capacity:
    """How many of one resource class a part has, in units of ``unit`` (a primitive name).
    ``cells``: (cell type, units per cell) counted against it; empty: the resource class's
    count of the synthesis report."""
    resource: str
    unit: str
    count: int
    cells: tuple[tuple[str, float], ...] = ()

    def used(self, resources: dict[str, int], cells: dict[str, int]) -> float:
        """Units of this capacity that a design with these resource/cell counts uses."""
        if not self.cells:
            return float(resources.get(self.resource, 0))
        return float(sum(cells.get(c, 0) * w for c, w in self.cells))


@dataclass(frozen=True)
class Device:
    """An FPGA part and its capacities per resource class (``lut``, ``ff``, ``bram``, ``dsp``)."""
    part: str
    capacities: tuple[Capacity, ...]

    def utilisation(self, resources: dict[str, int], cells: dict[str, int]) -> dict[str, float]:
        """Percent of the part used per resource class (rounded to 0.01; a class the part has
        none of is left out)."""
        return {c.resource: round(100 * c.used(resources, cells) / c.count, 2)
                for c in self.capacities if c.count}

    def capacity(self, resource: str) -> Capacity | None:
        """The capacity of ``resource``, or None where this table has none."""
        return next((c for c in self.capacities if c.resource == resource), None)


DEVICES: dict[str, Device] = {
    "ecp5": Device("LFE5U-85F", (
        Capacity("lut", "LUT4", 83_640), Capacity("ff", "TRELLIS_FF", 83_640),
        Capacity("bram", "DP16KD", 208, (("DP16KD", 1.0), ("PDPW16KD", 1.0))),
        Capacity("dsp", "MULT18X18D", 156, (("MULT18X18D", 1.0),)))),
    "ice40": Device("iCE40HX8K", (
        Capacity("lut", "SB_LUT4", 7_680), Capacity("ff", "SB_DFF*", 7_680),
        Capacity("bram", "SB_RAM40_4K", 32), Capacity("dsp", "SB_MAC16", 0))),
    "xc7": Device("xc7a35t", (
        Capacity("lut", "LUT6", 20_800), Capacity("ff", "FD*", 41_600),
        Capacity("bram", "RAMB36E1", 50, (("RAMB36E1", 1.0), ("RAMB18E1", 0.5))),
        Capacity("dsp", "DSP48E1", 90))),
}


# (target, board) -> the board's part, where it is not the target's reference part
BOARD_DEVICES: dict[tuple[str, str], Device] = {
    ("xc7", "pynq-z2"): Device("xc7z020", (
        Capacity("lut", "LUT6", 53_200), Capacity("ff", "FD*", 106_400),
        Capacity("bram", "RAMB36E1", 140, (("RAMB36E1", 1.0), ("RAMB18E1", 0.5))),
        Capacity("dsp", "DSP48E1", 220))),
}


def device_of(target: str, board: str = "none") -> Device:
    """The part of a synthesis target (``ecp5``, ``ice40``, ``xc7``) on ``board``: the board's
    own part where `BOARD_DEVICES` has one, else the target's reference part."""
    if target not in DEVICES:
        raise BitmillError(f"no device capacities for target {target!r}; known: {', '.join(DEVICES)}")
    return BOARD_DEVICES.get((target, board), DEVICES[target])


def device_named(target: str, part: str) -> Device:
    """The known part of ``target`` called ``part`` (the target's reference part if none is)."""
    return next((d for (t, _), d in BOARD_DEVICES.items() if t == target and d.part == part),
                device_of(target))
