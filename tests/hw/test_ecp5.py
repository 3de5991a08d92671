"""`bitmill.hw.ecp5`: a block RAM read register moves into the RAM's output register only
when it is a plain register on the RAM's clock."""

import copy

from bitmill.hw.ecp5 import absorb_output_registers

OUT, IN = "output", "input"


def netlist(ff_params=None, ff_lsr="0", extra_reader=False, port_reader=False) -> dict:
    ram = {"type": "DP16KD", "parameters": {"REGMODE_A": "NOREG", "REGMODE_B": "NOREG"},
           "port_directions": {"CLKA": IN, "CLKB": IN, "RSTA": IN, "RSTB": IN, "OCEA": IN,
                               "OCEB": IN, "DOA0": OUT, "DOB0": OUT, "DOB1": OUT},
           "connections": {"CLKA": [2], "CLKB": [2], "RSTA": ["0"], "RSTB": ["0"],
                           "OCEA": ["0"], "OCEB": ["1"], "DOA0": [10], "DOB0": [11],
                           "DOB1": [12]}}
    cells = {"ram": ram}
    for n, bit in enumerate((10, 11)):
        cells[f"ff{n}"] = {
            "type": "TRELLIS_FF",
            "parameters": ff_params or {"CEMUX": "1 ", "CLKMUX": "CLK", "LSRMUX": "LSR"},
            "port_directions": {"CLK": IN, "DI": IN, "LSR": IN, "Q": OUT},
            "connections": {"CLK": [2], "DI": [bit], "LSR": [ff_lsr], "Q": [20 + n]}}
    cells["lut"] = {"type": "LUT4", "parameters": {}, "port_directions": {"A": IN, "Z": OUT},
                    "connections": {"A": [20 if not extra_reader else 10], "Z": [30]}}
    ports = {"dout": {"direction": OUT, "bits": [11]}} if port_reader else {}
    return {"modules": {"top": {"ports": ports, "cells": cells}}}


def test_plain_read_registers_move_into_the_ram():
    doc = netlist()
    assert absorb_output_registers(doc) == 2
    cells = doc["modules"]["top"]["cells"]
    ram = cells["ram"]
    assert set(cells) == {"ram", "lut"}
    assert ram["connections"]["DOA0"] == [20] and ram["connections"]["DOB0"] == [21]
    assert ram["connections"]["DOB1"] == [12]                     # unused output stays
    assert ram["parameters"]["REGMODE_A"] == ram["parameters"]["REGMODE_B"] == "OUTREG"
    assert ram["connections"]["OCEA"] == ram["connections"]["OCEB"] == ["1"]


def test_registers_with_reset_enable_or_other_readers_stay():
    for doc in (netlist(ff_lsr=5),
                netlist(ff_params={"CEMUX": "CE", "CLKMUX": "CLK", "LSRMUX": "LSR"}),
                netlist(ff_params={"CEMUX": "1", "CLKMUX": "INV", "LSRMUX": "LSR"}),
                netlist(extra_reader=True), netlist(port_reader=True)):
        before = copy.deepcopy(doc)
        assert absorb_output_registers(doc) == 0
        assert doc == before
