"""Gate-level co-simulation on Icarus of the ECP5 netlist that place-and-route receives for
the tiny configuration (synthesized, block-RAM read registers moved into the RAMs): every
tile of the suite bit-exact against the golden GEMM with cycles equal to the formula; and a
netlist step that leaves one register too many is caught."""

import json

import pytest

from bitmill.sim.cosim import gatelevel
from bitmill.sim.cosim.gatelevel import run_gate_level
from tests.sim.cosim.test_cosim_icarus import SUITE_TILES

pytestmark = pytest.mark.cosim


def test_ecp5_netlist_with_moved_ram_registers_is_bit_exact(tiny, icarus, tmp_path):
    result = run_gate_level(tiny, tmp_path, seed=2)
    assert result.moved_registers == 32       # two RAMs, 16 read-data bits each
    assert result.cosim.tiles == SUITE_TILES
    assert result.cosim.failures == ()
    assert result.cosim.value_mismatches == 0 and result.cosim.cycle_mismatches == 0


def _outreg_without_moving(src, dst) -> int:
    """A wrong netlist step: RAM output registers switched on, fabric registers kept."""
    doc = json.loads(open(src).read())
    n = 0
    for module in doc["modules"].values():
        for cell in module["cells"].values():
            if cell["type"] == "DP16KD":
                cell["parameters"]["REGMODE_B"] = "OUTREG"
                n += 1
    open(dst, "w").write(json.dumps(doc))
    return n


def test_a_register_too_many_is_caught(tiny, icarus, tmp_path, monkeypatch):
    monkeypatch.setattr(gatelevel, "absorb_file", _outreg_without_moving)
    result = run_gate_level(tiny, tmp_path, limit=6)
    assert result.cosim.tiles == 6
    assert result.cosim.value_mismatches + result.cosim.cycle_mismatches > 0
