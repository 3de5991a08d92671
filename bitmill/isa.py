"""The accelerator's instruction set, defined once with amaranth ``lib.data`` / ``lib.enum``.

Every instruction is `INSTR_BITS` wide: a header (opcode, four dependency flags) and a body,
one union member per opcode. Field widths derive from an `AccelConfig` (buffer offsets from
buffer sizes, tile fields from the array shape). The layouts are usable off hardware through
``const()`` / ``from_bits()``; `encode` and `decode` convert between them and the frozen
instruction dataclasses below, which the compiler emits and the simulators execute.

Queues (decoupled access/execute): LOAD runs in the load queue; SETUP, GEMM and VEC in the
compute queue; STORE in the store queue. Dependency flags move tokens between neighbouring
queues: ``pop_prev``/``push_prev`` towards the previous queue (compute->load, store->compute),
``pop_next``/``push_next`` towards the next one (load->compute, compute->store). An instruction
waits until every channel it pops holds a token, and pushes its tokens when it finishes.
Every buffer has two slots (double buffering), the requant table (PARAM) included, so the next
layer's constants, weights and inputs can be loaded while the current layer computes.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import lru_cache

from amaranth.lib import data, enum

from bitmill.config import AccelConfig
from bitmill.errors import BitmillError
from bitmill.packing import Region

INSTR_BITS = 128
DRAM_ADDR_BITS = 32


class Opcode(enum.Enum, shape=3):
    SETUP = 0
    LOAD = 1
    GEMM = 2
    VEC = 3
    STORE = 4
    SYNC = 5


class Buffer(enum.Enum, shape=2):
    WEIGHT = 0
    ACT = 1
    PARAM = 2
    OUT = 3


PARAM_SLOT_BYTES = 16 * 1024       # each of the requant table's two slots


def slot_bytes(cfg: AccelConfig, buffer: "Buffer | int") -> int:
    """Bytes of one slot (half) of a buffer: weight, activation, requant table, output."""
    return (cfg.weight_buffer_bytes // 2, cfg.act_buffer_bytes // 2, PARAM_SLOT_BYTES,
            cfg.out_buffer_bytes // 2)[Buffer(buffer).value]


class VecKind(enum.Enum, shape=2):
    ADD = 0
    MAXPOOL = 1
    AVGPOOL = 2


QUEUE_OF = {Opcode.LOAD: "load", Opcode.SETUP: "compute", Opcode.GEMM: "compute",
            Opcode.VEC: "compute", Opcode.SYNC: "compute", Opcode.STORE: "store"}


@dataclass(frozen=True)
class Deps:
    """Tokens this instruction waits for (pop) and produces (push)."""

    pop_prev: bool = False
    pop_next: bool = False
    push_prev: bool = False
    push_next: bool = False


@dataclass(frozen=True)
class Setup:
    """Layer registers of the compute unit (geometry, precision, encodings)."""

    kernel: int          # kh = kw (1 for dense)
    stride: int
    pad: int
    in_h: int            # input rows (1 for dense)
    in_w: int            # input row width in pixels (1 for dense)
    in_c: int            # input channels (features for dense)
    out_w: int           # output row width in pixels
    out_c: int           # output channels
    band_row0: int       # first input row held in the activation buffer
    out_row0: int        # first output row of the band (output buffer row 0)
    w_bits: int
    a_bits: int
    w_enc: int           # 0 signed, 1 odd
    a_enc: int           # 0 unsigned, 1 signed
    out_bits: int
    out_signed: bool
    relu: bool
    deps: Deps = Deps()
    opcode = Opcode.SETUP


@dataclass(frozen=True)
class Sync:
    """No operation but its tokens: pops the token of a STORE and pushes one to a LOAD that
    reads the bytes the store wrote (DRAM read-after-write through the compute queue)."""

    deps: Deps = Deps()
    opcode = Opcode.SYNC


@dataclass(frozen=True)
class Load:
    """``nbytes`` from DRAM into a buffer slot, starting ``offset`` bytes into the slot."""

    buffer: int          # Buffer value
    slot: int
    dram_addr: int
    nbytes: int
    offset: int = 0
    deps: Deps = Deps()
    opcode = Opcode.LOAD


@dataclass(frozen=True)
class Gemm:
    """Output channels ``o0 .. o0+rows`` x pixels ``p0 .. p0+npix`` of the current band, in
    ``ceil(rows/R) * ceil(npix/C)`` array tiles (channel tile by channel tile, pixel tiles
    inside), each requantized into the output slot. The weights are rows ``w_row .. w_row+rows``
    of the weight slot (a slot holds one channel tile, or a whole layer's weights when they
    fit)."""

    w_slot: int
    a_slot: int
    o_slot: int
    o0: int
    rows: int
    p0: int
    npix: int
    p_slot: int = 0      # requant table slot
    w_row: int = 0
    deps: Deps = Deps()
    opcode = Opcode.GEMM


@dataclass(frozen=True)
class Vec:
    """Elementwise/pooling on activation slot ``a_slot`` into ``o_slot``. ADD reads operand A
    from the start of the slot and operand B from its second half; ADD and AVGPOOL read their
    constants from requant table slot ``p_slot``."""

    kind: int            # VecKind value
    o_slot: int
    count: int           # output elements
    p_slot: int = 0
    a_slot: int = 0
    deps: Deps = Deps()
    opcode = Opcode.VEC


@dataclass(frozen=True)
class Store:
    slot: int
    dram_addr: int
    nbytes: int
    deps: Deps = Deps()
    opcode = Opcode.STORE


Instruction = Setup | Load | Gemm | Vec | Store | Sync
_CLASSES = {Opcode.SETUP: Setup, Opcode.LOAD: Load, Opcode.GEMM: Gemm, Opcode.VEC: Vec,
            Opcode.STORE: Store, Opcode.SYNC: Sync}
_MEMBER = {Opcode.SETUP: "setup", Opcode.LOAD: "load", Opcode.GEMM: "gemm", Opcode.VEC: "vec",
           Opcode.STORE: "store", Opcode.SYNC: "sync"}


def _bits_for(n: int) -> int:
    return max(1, int(n).bit_length())


@lru_cache(maxsize=32)
def layout(cfg: AccelConfig) -> data.StructLayout:
    """The instruction layout for ``cfg`` (header + union of bodies, padded to INSTR_BITS)."""
    buf = _bits_for(max(cfg.weight_buffer_bytes, cfg.act_buffer_bytes, cfg.out_buffer_bytes))
    px, ch = 12, 13
    bodies = {
        "setup": data.StructLayout({
            "kernel": 3, "stride": 2, "pad": 2, "in_h": px, "in_w": px, "in_c": ch, "out_w": px,
            "out_c": ch, "band_row0": px, "out_row0": px, "w_bits": 3, "a_bits": 3,
            "w_enc": 1, "a_enc": 1, "out_bits": 5, "out_signed": 1, "relu": 1}),
        "load": data.StructLayout({"buffer": Buffer, "slot": 1, "dram_addr": DRAM_ADDR_BITS,
                                   "nbytes": buf, "offset": buf}),
        "gemm": data.StructLayout({"w_slot": 1, "a_slot": 1, "o_slot": 1, "o0": ch,
                                   "rows": ch, "p0": 20, "npix": 20, "p_slot": 1,
                                   "w_row": ch}),
        "vec": data.StructLayout({"kind": VecKind, "o_slot": 1, "count": 24, "p_slot": 1,
                                  "a_slot": 1}),
        "store": data.StructLayout({"slot": 1, "dram_addr": DRAM_ADDR_BITS, "nbytes": buf}),
        "sync": data.StructLayout({}),
    }
    body = data.UnionLayout(bodies)
    lay = data.StructLayout({"opcode": Opcode, "pop_prev": 1, "pop_next": 1, "push_prev": 1,
                             "push_next": 1, "body": body})
    if lay.size > INSTR_BITS:
        raise BitmillError(f"instruction layout for {cfg.name} needs {lay.size} bits, more than {INSTR_BITS}")
    return lay


def _body_fields(instr) -> dict:
    out = {}
    for f in fields(instr):
        if f.name == "deps":
            continue
        v = getattr(instr, f.name)
        out[f.name] = int(v)
    if isinstance(instr, Setup):
        out["w_bits"], out["a_bits"], out["out_bits"] = instr.w_bits - 1, instr.a_bits - 1, instr.out_bits - 1
    if isinstance(instr, Load):
        out["buffer"] = Buffer(instr.buffer)
    if isinstance(instr, Vec):
        out["kind"] = VecKind(instr.kind)
    return out


def encode(instr: Instruction, cfg: AccelConfig) -> int:
    """The instruction as an integer of `INSTR_BITS` bits."""
    lay = layout(cfg)
    d = instr.deps
    try:
        c = lay.const({"opcode": instr.opcode, "pop_prev": int(d.pop_prev), "pop_next": int(d.pop_next),
                       "push_prev": int(d.push_prev), "push_next": int(d.push_next),
                       "body": {_MEMBER[instr.opcode]: _body_fields(instr)}})
    except (TypeError, ValueError) as exc:
        raise BitmillError(f"cannot encode {instr}: {exc}") from None
    value = c.as_value().value
    if decode(value, cfg) != instr:
        raise BitmillError(f"{type(instr).__name__} field out of range for {cfg.name}: {instr}")
    return value


def decode(value: int, cfg: AccelConfig) -> Instruction:
    """The instruction encoded in ``value``."""
    v = layout(cfg).from_bits(value)
    op = Opcode(v.opcode)
    body = getattr(v.body, _MEMBER[op])
    deps = Deps(bool(v.pop_prev), bool(v.pop_next), bool(v.push_prev), bool(v.push_next))
    cls = _CLASSES[op]
    kw = {}
    for f in fields(cls):
        if f.name == "deps":
            continue
        raw = getattr(body, f.name)
        if f.name in ("buffer", "kind"):
            raw = int(raw.value if hasattr(raw, "value") else raw)
        kw[f.name] = int(raw) if f.name not in ("out_signed", "relu") else bool(raw)
    if cls is Setup:
        kw["w_bits"], kw["a_bits"], kw["out_bits"] = kw["w_bits"] + 1, kw["a_bits"] + 1, kw["out_bits"] + 1
    return cls(**kw, deps=deps)


@dataclass(frozen=True)
class Segment:
    """The instructions of one layer: from ``first`` to the next segment's first."""

    layer: str
    first: int

    def to_dict(self) -> dict:
        return {"layer": self.layer, "first": self.first}


@dataclass(frozen=True)
class Program:
    """An instruction stream plus the DRAM image it runs on."""

    instructions: tuple
    memory: bytes
    config: AccelConfig
    symbols: tuple[Region, ...] = ()      # every tensor, weight tile and requant table in DRAM
    segments: tuple[Segment, ...] = ()    # one per layer, in program order

    def region(self, name: str) -> Region:
        """The symbol called ``name``."""
        for r in self.symbols:
            if r.name == name:
                return r
        raise KeyError(f"the program has no symbol {name!r}")

    def encoded(self) -> bytes:
        """The binary program: INSTR_BITS/8 little-endian bytes per instruction."""
        n = INSTR_BITS // 8
        return b"".join(encode(i, self.config).to_bytes(n, "little") for i in self.instructions)

    @classmethod
    def from_binary(cls, blob: bytes, memory: bytes, cfg: AccelConfig, symbols: tuple = (),
                    segments: tuple = ()) -> "Program":
        n = INSTR_BITS // 8
        if len(blob) % n:
            raise BitmillError(f"program binary of {len(blob)} bytes is not a multiple of {n}")
        return cls(tuple(decode(int.from_bytes(blob[i:i + n], "little"), cfg)
                         for i in range(0, len(blob), n)), memory, cfg, symbols, segments)
