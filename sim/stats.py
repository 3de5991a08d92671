"""`SimStats`: what the cycle-accurate simulator measured, per layer and per instruction class.

Field names match `bitmill.compiler.cost.CostEstimate` (``load_cycles``, ``compute_cycles``,
``store_cycles``, ``cycles``) so estimates and measurements compare field by field.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class LayerStats:
    """One layer: busy cycles per unit, wall cycles, bytes, MAC utilisation."""

    name: str
    op: str
    start: int
    end: int
    load_cycles: int
    compute_cycles: int
    store_cycles: int
    bytes_loaded: int
    bytes_stored: int
    macs: int
    mac_utilisation: float     # useful MACs / (cycles * peak MACs per cycle at the layer's bits)
    compute_busy: float        # compute_cycles / cycles

    @property
    def cycles(self) -> int:
        return self.end - self.start

    @property
    def bottleneck(self) -> str:
        units = {"load": self.load_cycles, "compute": self.compute_cycles, "store": self.store_cycles}
        return max(units, key=units.get)


@dataclass(frozen=True)
class ClassStats:
    """One instruction class (opcode): count, busy cycles, bytes."""

    opcode: str
    count: int
    busy_cycles: int
    bytes: int


@dataclass(frozen=True)
class SimStats:
    """A whole run."""

    config: str
    clock_mhz: float
    cycles: int
    layers: tuple[LayerStats, ...]
    classes: tuple[ClassStats, ...]

    @property
    def milliseconds(self) -> float:
        return self.cycles / (self.clock_mhz * 1e3)

    def to_dict(self) -> dict:
        d = asdict(self)
        for layer, ls in zip(d["layers"], self.layers):
            layer["cycles"], layer["bottleneck"] = ls.cycles, ls.bottleneck
        d["milliseconds"] = self.milliseconds
        return d
