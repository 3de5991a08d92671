"""The register map: the spec's table, its validation, the SHAPE word, the JSON document and
the C header (compiled with gcc and compared with the map exactly)."""

import dataclasses
import json
import re
import shutil
import subprocess

import pytest

from bitmill.config import AccelConfig
from bitmill.hw import regmap
from bitmill.hw.regmap import (ID_VALUE, REGISTERS, Access, ErrorFlag, Field, Register,
                               c_header, register, registers_from_json, shape_value, to_json)

# the spec's table: offset, name, access
SPEC = [(0x00, "ID", "RO"), (0x04, "SHAPE", "RO"), (0x08, "CTRL", "WO"), (0x0C, "STATUS", "RO"),
        (0x10, "ERROR", "RO"), (0x14, "ERROR_INSTR", "RO"), (0x18, "PROG_ADDR", "RW"),
        (0x1C, "PROG_COUNT", "RW"), (0x20, "MEM_BYTES", "RW"), (0x24, "CYCLES_LO", "RO"),
        (0x28, "CYCLES_HI", "RO"), (0x2C, "LOAD_BUSY", "RO"), (0x30, "COMPUTE_BUSY", "RO"),
        (0x34, "STORE_BUSY", "RO"), (0x38, "RETIRED", "RO")]
SPEC_FIELDS = {
    "SHAPE": [("ROWS_MINUS_1", 0, 8), ("COLS_MINUS_1", 8, 8), ("LANES_MINUS_1", 16, 10),
              ("FAMILY", 26, 1)],
    "CTRL": [("START", 0, 1), ("CLEAR", 1, 1)],
    "STATUS": [("BUSY", 0, 1), ("DONE", 1, 1), ("ERROR", 2, 1)],
    "ERROR": [("ILLEGAL_OPCODE", 0, 1), ("BAD_FLAGS", 1, 1), ("TOKEN_OVERFLOW", 2, 1),
              ("DEADLOCK", 3, 1), ("ADDRESS", 4, 1), ("BUS", 5, 1), ("PROGRAM_TOO_LONG", 6, 1),
              ("OPERAND", 7, 1)],
}


def test_registers_are_the_spec_table():
    assert [(r.offset, r.name, r.access.value) for r in REGISTERS] == SPEC
    for reg in REGISTERS:
        assert [(f.name, f.lsb, f.width) for f in reg.fields] == SPEC_FIELDS.get(reg.name, [])
    assert ID_VALUE == 0x424D4C31 == int.from_bytes(b"BML1", "big")


def test_error_flags_are_the_error_fields():
    assert [(f.name, f.bit) for f in ErrorFlag] == [(n, lsb) for n, lsb, _ in SPEC_FIELDS["ERROR"]]
    assert int(ErrorFlag.BUS | ErrorFlag.ILLEGAL_OPCODE) == 0b10_0001


def test_lookup_and_fields():
    assert register("MEM_BYTES").offset == 0x20
    with pytest.raises(KeyError, match="no register 'NOPE'"):
        register("NOPE")
    lanes = register("SHAPE").field("LANES_MINUS_1")
    assert lanes.mask == 0x03FF_0000
    assert lanes.insert(1023) == 0x03FF_0000 and lanes.extract(0x0155_0000) == 0x155
    with pytest.raises(ValueError, match="LANES_MINUS_1 must be in 0..1023, not 1024"):
        lanes.insert(1024)
    with pytest.raises(KeyError, match="CTRL has no field 'BUSY'"):
        register("CTRL").field("BUSY")
    assert Access.RO.readable and not Access.RO.writable
    assert Access.WO.writable and not Access.WO.readable
    assert Access.RW.readable and Access.RW.writable


def test_registers_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        REGISTERS[0].offset = 4


def reg(name, offset, fields=()):
    return Register(name, offset, Access.RO, "", tuple(fields))


@pytest.mark.parametrize("table,message", [
    ((reg("A", 0), reg("B", 0)), "B: offset 0x0 is used twice"),
    ((reg("A", 0), reg("A", 4)), "name A is used twice"),
    ((reg("A", 2),), "A: offset 0x2 is not a non-negative multiple of 4"),
    ((reg("A", -4),), "A: offset -0x4 is not"),
    ((reg("A", 0, [Field("X", 30, 3, "")]),), r"field X \[30\+:3\] is not inside 32 bits"),
    ((reg("A", 0, [Field("X", 0, 0, "")]),), r"field X \[0\+:0\] is not inside"),
    ((reg("A", 0, [Field("X", 0, 4, ""), Field("Y", 3, 2, "")]),), "field Y overlaps"),
    ((reg("A", 0, [Field("X", 0, 1, ""), Field("X", 1, 1, "")]),), "field X is used twice"),
])
def test_validation_rejects_bad_tables(table, message):
    with pytest.raises(ValueError, match=message):
        regmap.validate(table)


def test_the_shipped_table_validates():
    regmap.validate(REGISTERS)


@pytest.mark.parametrize("rows,cols,lanes,family,want", [
    (1, 1, 1, "bitserial", 0),
    (256, 256, 1024, "bitparallel", 0x07FF_FFFF),
    (8, 4, 32, "bitserial", 0x001F_0307),
    (16, 16, 32, "bitparallel", 0x041F_0F0F),
])
def test_shape_value(tiny, rows, cols, lanes, family, want):
    cfg = dataclasses.replace(tiny, rows=rows, cols=cols, lanes=lanes, pe_family=family)
    assert shape_value(cfg) == want


def test_json_round_trip(tiny):
    text = to_json(tiny)
    assert registers_from_json(text) == REGISTERS
    doc = json.loads(text)
    assert list(doc) == ["config", "data_bits", "id", "shape", "registers"]
    assert list(doc["registers"][1]) == ["name", "offset", "access", "doc", "fields"]
    assert (doc["config"], doc["shape"], doc["id"]) == (tiny.name, shape_value(tiny), ID_VALUE)
    assert to_json(tiny) == text


def expected_defines(cfg: AccelConfig) -> dict[str, int]:
    want = {"BITMILL_ID_VALUE": ID_VALUE, "BITMILL_SHAPE_VALUE": shape_value(cfg)}
    for r in REGISTERS:
        want[f"BITMILL_{r.name}_OFFSET"] = r.offset
        for f in r.fields:
            want[f"BITMILL_{r.name}_{f.name}_SHIFT"] = f.lsb
            want[f"BITMILL_{r.name}_{f.name}_MASK"] = ((1 << f.width) - 1) << f.lsb
    return want


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not on PATH")
def test_c_header_compiles_and_matches(tiny, tmp_path):
    header = c_header(tiny)
    assert f'configuration "{tiny.name}"' in header.splitlines()[0]
    (tmp_path / "bitmill_regmap.h").write_text(header)
    want = expected_defines(tiny)
    defined = re.findall(r"^#define (\w+) ", header, flags=re.M)
    assert sorted(defined) == sorted(want)
    prints = "\n".join(f'    printf("{name} %llu\\n", (unsigned long long)({name}));'
                       for name in want)
    (tmp_path / "main.c").write_text(
        '#include <stdio.h>\n#include "bitmill_regmap.h"\n#include "bitmill_regmap.h"\n'
        f"int main(void) {{\n{prints}\n    return 0;\n}}\n")
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Werror", "-o", str(tmp_path / "main"),
                    str(tmp_path / "main.c")], check=True, cwd=tmp_path)
    out = subprocess.run([str(tmp_path / "main")], check=True, capture_output=True, text=True)
    got = {name: int(value) for name, value in (line.split() for line in out.stdout.splitlines())}
    assert got == want


def test_c_header_escapes_the_config_name(tiny):
    cfg = dataclasses.replace(tiny, name="a*/b")
    assert "a*/b" not in c_header(cfg) and '"a* /b"' in c_header(cfg)
