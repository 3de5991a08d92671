"""The host register map of the accelerator: one definition, read by the AXI4-Lite slave
(`bitmill.hw.host_regs`), the control block (error flag bits) and host software (emitted as
JSON by `to_json` and as a C header by `c_header`).

32-bit registers at byte offsets (4-byte aligned) of an AXI4-Lite port. Writes to RO or
unmapped offsets answer SLVERR and change nothing; reads of WO or unmapped offsets answer
SLVERR with data 0. This module imports no hardware library.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass

from bitmill.config import AccelConfig

DATA_BITS = 32
ID_VALUE = 0x424D4C31            # "BML1"
HEADER_PREFIX = "BITMILL"


class Access(enum.Enum):
    """What the host may do with a register."""
    RO = "RO"
    WO = "WO"
    RW = "RW"

    @property
    def readable(self) -> bool:
        return self is not Access.WO

    @property
    def writable(self) -> bool:
        return self is not Access.RO


class ErrorFlag(enum.IntFlag):
    """Sticky error cause bits of the ERROR register (bit ``n`` has the value ``1 << n``)."""
    ILLEGAL_OPCODE = 1 << 0
    BAD_FLAGS = 1 << 1
    TOKEN_OVERFLOW = 1 << 2
    DEADLOCK = 1 << 3
    ADDRESS = 1 << 4
    BUS = 1 << 5
    PROGRAM_TOO_LONG = 1 << 6
    OPERAND = 1 << 7

    @property
    def bit(self) -> int:
        """Bit position of a single flag."""
        return self.value.bit_length() - 1


ERROR_FLAG_BITS = len(ErrorFlag)
ERROR_FLAG_DOCS = {
    ErrorFlag.ILLEGAL_OPCODE: "an instruction with an opcode the hardware does not know",
    ErrorFlag.BAD_FLAGS: "a dependency flag its queue does not have",
    ErrorFlag.TOKEN_OVERFLOW: "a dependency token counter overflowed",
    ErrorFlag.DEADLOCK: "every queue waits on a token that never comes",
    ErrorFlag.ADDRESS: "a DRAM address outside [0, MEM_BYTES)",
    ErrorFlag.BUS: "an AXI SLVERR or DECERR response",
    ErrorFlag.PROGRAM_TOO_LONG: "more instructions for a queue than its instruction memory holds",
    ErrorFlag.OPERAND: "a field value the hardware cannot execute, e.g. a buffer overrun",
}


@dataclass(frozen=True)
class Field:
    """A bit field ``[lsb, lsb + width)`` of a register."""
    name: str
    lsb: int
    width: int
    doc: str

    @property
    def mask(self) -> int:
        """The field's bits in place."""
        return ((1 << self.width) - 1) << self.lsb

    def insert(self, value: int) -> int:
        """``value`` moved into the field's bits; ValueError when it does not fit."""
        if not 0 <= value < 1 << self.width:
            raise ValueError(f"{self.name} must be in 0..{(1 << self.width) - 1}, not {value}")
        return value << self.lsb

    def extract(self, word: int) -> int:
        """The field's value in ``word``."""
        return (word >> self.lsb) & ((1 << self.width) - 1)


@dataclass(frozen=True)
class Register:
    """A 32-bit register; whole-word registers have no fields."""
    name: str
    offset: int
    access: Access
    doc: str
    fields: tuple[Field, ...] = ()

    def field(self, name: str) -> Field:
        """The field called ``name``; KeyError when there is none."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"register {self.name} has no field {name!r}")


SHAPE_FIELDS = (
    Field("ROWS_MINUS_1", 0, 8, "PE rows - 1"),
    Field("COLS_MINUS_1", 8, 8, "PE columns - 1"),
    Field("LANES_MINUS_1", 16, 10, "dot-product lanes per PE - 1"),
    Field("FAMILY", 26, 1, "PE family: 1 = bitparallel, 0 = bitserial"),
)
CTRL_FIELDS = (
    Field("START", 0, 1, "starts the program; ignored while busy"),
    Field("CLEAR", 1, 1, "clears DONE and ERROR"),
)
STATUS_FIELDS = (
    Field("BUSY", 0, 1, "a program is running"),
    Field("DONE", 1, 1, "the program finished (until CLEAR or START)"),
    Field("ERROR", 2, 1, "an error cause flag is set"),
)
ERROR_FIELDS = tuple(Field(flag.name, flag.bit, 1, ERROR_FLAG_DOCS[flag]) for flag in ErrorFlag)

REGISTERS: tuple[Register, ...] = (
    Register("ID", 0x00, Access.RO, 'identification word 0x424D4C31 ("BML1")'),
    Register("SHAPE", 0x04, Access.RO, "geometry of the MAC array", SHAPE_FIELDS),
    Register("CTRL", 0x08, Access.WO, "control strobes", CTRL_FIELDS),
    Register("STATUS", 0x0C, Access.RO, "run state", STATUS_FIELDS),
    Register("ERROR", 0x10, Access.RO, "sticky error cause flags", ERROR_FIELDS),
    Register("ERROR_INSTR", 0x14, Access.RO,
             "program index of the instruction that raised the first error"),
    Register("PROG_ADDR", 0x18, Access.RW, "DRAM byte address of the program (16-byte aligned)"),
    Register("PROG_COUNT", 0x1C, Access.RW,
             "words of the program's first fill (all its instructions when it runs in one fill)"),
    Register("MEM_BYTES", 0x20, Access.RW,
             "bytes of DRAM the program may touch (addresses >= this are errors; "
             "instructions are checked against it as the program loads)"),
    Register("CYCLES_LO", 0x24, Access.RO,
             "cycles from START to DONE (running counter while busy), low word"),
    Register("CYCLES_HI", 0x28, Access.RO, "cycles from START to DONE, high word"),
    Register("LOAD_BUSY", 0x2C, Access.RO, "cycles the load queue was executing an instruction"),
    Register("COMPUTE_BUSY", 0x30, Access.RO,
             "cycles the compute queue was executing an instruction"),
    Register("STORE_BUSY", 0x34, Access.RO,
             "cycles the store queue was executing an instruction"),
    Register("RETIRED", 0x38, Access.RO, "instructions finished"),
)


def validate(registers: tuple[Register, ...]) -> None:
    """ValueError unless names and offsets are unique, offsets 4-aligned and non-negative, and
    every register's fields lie inside 32 bits without overlapping."""
    names, offsets = set(), set()
    for reg in registers:
        if reg.name in names:
            raise ValueError(f"register name {reg.name} is used twice")
        if reg.offset < 0 or reg.offset % 4:
            raise ValueError(f"register {reg.name}: offset {reg.offset:#x} is not a "
                             "non-negative multiple of 4")
        if reg.offset in offsets:
            raise ValueError(f"register {reg.name}: offset {reg.offset:#x} is used twice")
        names.add(reg.name)
        offsets.add(reg.offset)
        _validate_fields(reg)


def _validate_fields(reg: Register) -> None:
    used, names = 0, set()
    for f in reg.fields:
        if f.name in names:
            raise ValueError(f"register {reg.name}: field {f.name} is used twice")
        if f.width < 1 or f.lsb < 0 or f.lsb + f.width > DATA_BITS:
            raise ValueError(f"register {reg.name}: field {f.name} [{f.lsb}+:{f.width}] is "
                             f"not inside {DATA_BITS} bits")
        if used & f.mask:
            raise ValueError(f"register {reg.name}: field {f.name} overlaps another field")
        used |= f.mask
        names.add(f.name)


validate(REGISTERS)
_BY_NAME = {reg.name: reg for reg in REGISTERS}


def register(name: str) -> Register:
    """The register called ``name``; KeyError naming the known ones when there is none."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"no register {name!r}; known: {', '.join(_BY_NAME)}") from None


def shape_value(cfg: AccelConfig) -> int:
    """The SHAPE word of ``cfg``."""
    values = {"ROWS_MINUS_1": cfg.rows - 1, "COLS_MINUS_1": cfg.cols - 1,
              "LANES_MINUS_1": cfg.lanes - 1, "FAMILY": int(cfg.pe_family == "bitparallel")}
    return sum(f.insert(values[f.name]) for f in SHAPE_FIELDS)


def _register_dict(reg: Register) -> dict:
    return {"name": reg.name, "offset": reg.offset, "access": reg.access.value, "doc": reg.doc,
            "fields": [{"name": f.name, "lsb": f.lsb, "width": f.width, "doc": f.doc}
                       for f in reg.fields]}


def to_json(cfg: AccelConfig) -> str:
    """The register map with ``cfg``'s name and SHAPE value, as JSON (fixed key order)."""
    doc = {"config": cfg.name, "data_bits": DATA_BITS, "id": ID_VALUE,
           "shape": shape_value(cfg), "registers": [_register_dict(r) for r in REGISTERS]}
    return json.dumps(doc, indent=2) + "\n"


def registers_from_json(text: str) -> tuple[Register, ...]:
    """The registers of a `to_json` document."""
    return tuple(
        Register(r["name"], r["offset"], Access(r["access"]), r["doc"],
                 tuple(Field(f["name"], f["lsb"], f["width"], f["doc"]) for f in r["fields"]))
        for r in json.loads(text)["registers"])


def _comment_text(text: str) -> str:
    return text.replace("*/", "* /")


def c_header(cfg: AccelConfig) -> str:
    """A C header of the register map: ``BITMILL_<REG>_OFFSET``, ``BITMILL_<REG>_<FIELD>_SHIFT``
    and ``_MASK`` (the ERROR fields are the error flags), the ID and ``cfg``'s SHAPE value."""
    p = HEADER_PREFIX
    lines = [f"/* Host register map of the bitmill accelerator, configuration "
             f"\"{_comment_text(cfg.name)}\" (AXI4-Lite, 32-bit registers, byte offsets).",
             " * Generated by bitmill.hw.regmap. */",
             f"#ifndef {p}_REGMAP_H", f"#define {p}_REGMAP_H", "",
             f"#define {p}_ID_VALUE 0x{ID_VALUE:08X}u",
             f"#define {p}_SHAPE_VALUE 0x{shape_value(cfg):08X}u"]
    for reg in REGISTERS:
        lines += ["", f"/* {reg.name} ({reg.access.value}): {_comment_text(reg.doc)} */",
                  f"#define {p}_{reg.name}_OFFSET 0x{reg.offset:02X}u"]
        for f in reg.fields:
            lines += [f"#define {p}_{reg.name}_{f.name}_SHIFT {f.lsb}u",
                      f"#define {p}_{reg.name}_{f.name}_MASK 0x{f.mask:08X}u"]
    lines += ["", f"#endif /* {p}_REGMAP_H */", ""]
    return "\n".join(lines)
