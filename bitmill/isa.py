"""The accelerator's instruction set, defined once with amaranth ``lib.data`` / ``lib.enum``.

Every instruction is `INSTR_BITS` wide: a header (opcode, four dependency flags) and a body,
one union member per opcode. The layouts are usable off hardware through ``const()`` /
``from_bits()``; `encode` and `decode` convert between them and the frozen instruction
dataclasses below, which the compiler emits and the simulators execute.

Field widths (`layout`), each the width of the largest value the field holds:

* buffer byte counts and offsets (LOAD/STORE ``nbytes``, ``offset``): the largest buffer of
  the config (``*_buffer_bytes``);
* pixel coordinates (SETUP ``in_h``, ``in_w``, ``out_w``, ``band_row0``, ``out_row0``): the
  config's ``max_feature_size``; pixel indices of a band (GEMM ``p0``, ``npix``) its square;
* channel counts and indices (SETUP ``in_c``, ``out_c``; GEMM ``o0``, ``rows``, ``w_row``):
  the config's ``max_channels``;
* VEC ``count`` (output elements): the bits of one output buffer slot (an element takes at
  least one bit);
* bit-widths, stored minus one: ``w_bits``, ``a_bits``, VEC ``b_bits`` up to
  `bitmill.precision.MAX_RUNTIME_BITS`, ``out_bits`` up to `bitmill.numerics.MAX_BITS`;
* ``kernel``, ``stride``, ``pad``: `MAX_KERNEL`, `MAX_STRIDE`, `MAX_PAD`; encodings:
  `bitmill.numerics.Encoding` (2 bits); DRAM addresses: `DRAM_ADDR_BITS`.

A value outside its field raises `BitmillError` naming the field, its range and the config.

Queues (decoupled access/execute): LOAD runs in the load queue; SETUP, GEMM and VEC in the
compute queue; STORE in the store queue. Dependency flags move tokens between neighbouring
queues: ``pop_prev``/``push_prev`` towards the previous queue (compute->load, store->compute),
``pop_next``/``push_next`` towards the next one (load->compute, compute->store). An instruction
waits until every channel it pops holds a token, and pushes its tokens when it finishes.
Every buffer has two slots (double buffering), the requant table (PARAM) included, so the next
layer's constants, weights and inputs can be loaded while the current layer computes.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from functools import lru_cache

from amaranth.lib import data, enum

from bitmill.config import AccelConfig
from bitmill.errors import BitmillError, ConfigError
from bitmill.numerics import MAX_BITS, Encoding, accumulator_width, max_k_total_for
from bitmill.precision import MAX_RUNTIME_BITS, VALUE_BITS
from bitmill.packing import Region

INSTR_BITS = 128
INDEX_BITS = 16         # the program index the control keeps beside each instruction
MAX_INSTRUCTIONS = 1 << INDEX_BITS
DRAM_ADDR_BITS = 32
MAX_KERNEL = 7          # kernel height = width
MAX_STRIDE = 3
MAX_PAD = 3


class Opcode(enum.Enum, shape=3):
    SETUP = 0
    LOAD = 1
    GEMM = 2
    VEC = 3
    STORE = 4
    SYNC = 5
    REFILL = 6


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


def engine_chunks(cfg: AccelConfig) -> int:
    """The tile engine's chunks of ``lanes`` terms: the largest power of two whose ``K_total``
    fits the configured accumulator width at every precision (`max_k_total_for`) and whose
    bit-planes fit the weight and activation buffers."""
    lane_bits = 1 if cfg.pe_family == "bitserial" else VALUE_BITS
    planes = MAX_RUNTIME_BITS if cfg.pe_family == "bitserial" else 1
    by_acc = max_k_total_for(cfg.acc_bits) // cfg.lanes
    by_w = cfg.weight_buffer_bytes * 8 // (planes * cfg.rows * cfg.lanes * lane_bits)
    by_a = cfg.act_buffer_bytes * 8 // (planes * cfg.cols * cfg.lanes * lane_bits)
    fit = min(by_acc, by_w, by_a)
    if fit < 1:
        need = planes * cfg.lanes * lane_bits // 8
        why = ([f"acc_bits {cfg.acc_bits} is too narrow for one {cfg.lanes}-lane chunk at "
                f"{MAX_RUNTIME_BITS} bits (needs {accumulator_width(cfg.lanes)})"] if by_acc < 1 else [])
        why += [f"the {name} buffer ({size:,} bytes) holds no chunk ({n} x {need} bytes)"
                for name, size, n, by in (("weight", cfg.weight_buffer_bytes, cfg.rows, by_w),
                                          ("activation", cfg.act_buffer_bytes, cfg.cols, by_a)) if by < 1]
        raise ConfigError(f"{cfg.name}: the tile engine cannot be built: {'; '.join(why)}")
    return 1 << (fit.bit_length() - 1)


def k_capacity(cfg: AccelConfig) -> int:
    """Most terms per output (``K_total = kernel^2 * in_c``) one pass of a GEMM tile holds
    (the engine's activation operand and its accumulators)."""
    return engine_chunks(cfg) * cfg.lanes


def pass_rows(cfg: AccelConfig, kernel: int, in_c: int) -> tuple[int, ...]:
    """Kernel rows of each partial-sum pass of a GEMM tile: one pass when ``K_total =
    kernel^2 * in_c`` fits `k_capacity`, else passes of ``h = k_capacity // (kernel * in_c)``
    whole kernel rows (the last one takes the rest), summed in the engine's shadow registers.
    `BitmillError` when one kernel row exceeds the capacity or more than ``cfg.k_passes``
    passes are needed."""
    cap, run = k_capacity(cfg), kernel * in_c
    if kernel * run <= cap:
        return (kernel,)
    h = min(kernel, cap // run)
    if h == 0:
        raise BitmillError(f"one kernel row sums {run} terms ({kernel} x {in_c}); the tile engine of "
                           f"{cfg.name} holds {cap} per pass ({cfg.lanes} lanes x {engine_chunks(cfg)}, "
                           f"set by acc_bits and the buffers)")
    rows = tuple(min(h, kernel - y) for y in range(0, kernel, h))
    if len(rows) > cfg.k_passes:
        raise BitmillError(f"{kernel * run} terms per output need {len(rows)} partial-sum passes of "
                           f"{h} kernel row(s) ({h * run} terms, the engine holds {cap}); {cfg.name} "
                           f"allows k_passes {cfg.k_passes}")
    return rows


def psum_width(cfg: AccelConfig) -> int:
    """Bits of the shadow registers that sum a tile's passes: every precision over
    ``k_passes * k_capacity`` terms."""
    return accumulator_width(cfg.k_passes * k_capacity(cfg))


class VecKind(enum.Enum, shape=2):
    ADD = 0
    MAXPOOL = 1
    AVGPOOL = 2


class Queue(enum.Enum, shape=2):
    """The in-order instruction queues, in pipeline order (tokens flow between neighbours)."""

    LOAD = 0
    COMPUTE = 1
    STORE = 2

    @property
    def label(self) -> str:
        """The queue's name as text: ``"load"``, ``"compute"`` or ``"store"``."""
        return self.name.lower()

    def __str__(self) -> str:
        return self.label


QUEUE_OF = {Opcode.LOAD: Queue.LOAD, Opcode.SETUP: Queue.COMPUTE, Opcode.GEMM: Queue.COMPUTE,
            Opcode.VEC: Queue.COMPUTE, Opcode.SYNC: Queue.COMPUTE, Opcode.STORE: Queue.STORE}


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
    w_enc: Encoding      # signed or odd
    a_enc: Encoding      # unsigned or signed
    out_bits: int
    out_signed: bool
    relu: bool
    deps: Deps = Deps()
    opcode = Opcode.SETUP

    def __post_init__(self) -> None:
        object.__setattr__(self, "w_enc", Encoding(self.w_enc))
        object.__setattr__(self, "a_enc", Encoding(self.a_enc))


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
    inside; a tile beyond `k_capacity` runs as the partial-sum passes of `pass_rows`), each
    requantized into the output slot. The weights are rows ``w_row .. w_row+rows``
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
    (SETUP's ``a_bits``, ``a_enc``) from the start of the slot and operand B (``b_bits``,
    ``b_enc``) from its second half; ADD and AVGPOOL read their constants from requant table
    slot ``p_slot``."""

    kind: int            # VecKind value
    o_slot: int
    count: int           # output elements
    p_slot: int = 0
    a_slot: int = 0
    b_bits: int = MAX_RUNTIME_BITS      # ADD operand B
    b_enc: Encoding = Encoding.SIGNED
    deps: Deps = Deps()
    opcode = Opcode.VEC

    def __post_init__(self) -> None:
        object.__setattr__(self, "b_enc", Encoding(self.b_enc))


@dataclass(frozen=True)
class Store:
    slot: int
    dram_addr: int
    nbytes: int
    deps: Deps = Deps()
    opcode = Opcode.STORE


@dataclass(frozen=True)
class Refill:
    """The last word of a program fill that another fill follows (never one of a `Program`'s
    instructions, which `Program.encoded` places it between): once every instruction of this
    fill has finished, the control preloads the next ``words`` words (the next fill's
    instructions and its own REFILL word, if any) into the emptied queue memories; token
    counters keep their values."""

    words: int
    deps: Deps = Deps()
    opcode = Opcode.REFILL


Instruction = Setup | Load | Gemm | Vec | Store | Sync
_CLASSES = {Opcode.SETUP: Setup, Opcode.LOAD: Load, Opcode.GEMM: Gemm, Opcode.VEC: Vec,
            Opcode.STORE: Store, Opcode.SYNC: Sync, Opcode.REFILL: Refill}
_MEMBER = {Opcode.SETUP: "setup", Opcode.LOAD: "load", Opcode.GEMM: "gemm", Opcode.VEC: "vec",
           Opcode.STORE: "store", Opcode.SYNC: "sync", Opcode.REFILL: "refill"}


_MINUS_ONE = ("w_bits", "a_bits", "b_bits", "out_bits")     # bit-widths, stored minus one
_ENUMS = {"buffer": Buffer, "kind": VecKind}                  # held as their int value
_FLAGS = ("out_signed", "relu")


@lru_cache(maxsize=32)
def field_limits(cfg: AccelConfig) -> dict[str, tuple[int, str]]:
    """Largest value of every numeric instruction field under ``cfg``, and where it comes from
    (see the module docstring)."""
    buf = max(cfg.weight_buffer_bytes, cfg.act_buffer_bytes, cfg.out_buffer_bytes)
    px, ch = cfg.max_feature_size, cfg.max_channels
    out = {"nbytes": (buf, "the largest buffer size"), "offset": (buf, "the largest buffer size"),
           "dram_addr": ((1 << DRAM_ADDR_BITS) - 1, "DRAM_ADDR_BITS"),
           "p0": (px * px, "max_feature_size squared"), "npix": (px * px, "max_feature_size squared"),
           "count": (8 * slot_bytes(cfg, Buffer.OUT), "the bits of an output buffer slot"),
           "out_bits": (MAX_BITS, "MAX_BITS"), "kernel": (MAX_KERNEL, "MAX_KERNEL"),
           "stride": (MAX_STRIDE, "MAX_STRIDE"), "pad": (MAX_PAD, "MAX_PAD")}
    out |= {k: (px, "max_feature_size") for k in ("in_h", "in_w", "out_w", "band_row0", "out_row0")}
    out |= {k: (ch, "max_channels") for k in ("in_c", "out_c", "o0", "rows", "w_row")}
    out |= {k: (MAX_RUNTIME_BITS, "MAX_RUNTIME_BITS") for k in ("w_bits", "a_bits", "b_bits")}
    out |= {k: (1, "two slots per buffer") for k in ("slot", "w_slot", "a_slot", "o_slot", "p_slot")}
    out["words"] = (len(Queue) * cfg.queue_depth, "the three queue memories (queue_depth each)")
    return out


def _shape(name: str, limits: dict):
    if name in _ENUMS:
        return _ENUMS[name]
    if name.endswith("_enc"):
        return Encoding
    if name in _FLAGS:
        return 1
    top = limits[name][0] - (name in _MINUS_ONE)
    return max(1, top.bit_length())


@lru_cache(maxsize=32)
def layout(cfg: AccelConfig) -> data.StructLayout:
    """The instruction layout for ``cfg`` (header + union of bodies, padded to INSTR_BITS)."""
    limits = field_limits(cfg)
    bodies = {_MEMBER[op]: data.StructLayout({f.name: _shape(f.name, limits) for f in fields(cls)
                                              if f.name != "deps"})
              for op, cls in _CLASSES.items()}
    lay = data.StructLayout({"opcode": Opcode, "pop_prev": 1, "pop_next": 1, "push_prev": 1,
                             "push_next": 1, "body": data.UnionLayout(bodies)})
    if lay.size > INSTR_BITS:
        raise BitmillError(f"instruction layout for {cfg.name} needs {lay.size} bits, more than "
                           f"{INSTR_BITS}: lower max_feature_size, max_channels or the buffer sizes")
    return lay


def _body_fields(instr, cfg: AccelConfig) -> dict:
    """The body of ``instr`` as layout values; `BitmillError` for a value outside its field."""
    limits, out = field_limits(cfg), {}
    for f in fields(instr):
        if f.name == "deps":
            continue
        v = getattr(instr, f.name)
        if f.name in _ENUMS:
            v = _ENUMS[f.name](v)
        elif f.name in limits:
            lo, (hi, rule) = int(f.name in _MINUS_ONE), limits[f.name]
            if not lo <= v <= hi:
                raise BitmillError(f"{type(instr).__name__}.{f.name} = {v} is out of range {lo}..{hi} "
                                   f"({rule} of config {cfg.name})")
            v -= lo
        elif f.name in _FLAGS:
            v = int(v)
        out[f.name] = v
    return out


def encode(instr: Instruction, cfg: AccelConfig) -> int:
    """The instruction as an integer of `INSTR_BITS` bits."""
    lay = layout(cfg)
    d = instr.deps
    try:
        c = lay.const({"opcode": instr.opcode, "pop_prev": int(d.pop_prev), "pop_next": int(d.pop_next),
                       "push_prev": int(d.push_prev), "push_next": int(d.push_next),
                       "body": {_MEMBER[instr.opcode]: _body_fields(instr, cfg)}})
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
        if f.name in _ENUMS:
            kw[f.name] = raw.value
        elif f.name.endswith("_enc"):
            kw[f.name] = raw
        elif f.name in _FLAGS:
            kw[f.name] = bool(raw)
        else:
            kw[f.name] = int(raw) + (f.name in _MINUS_ONE)
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
    """An instruction stream plus the DRAM image it runs on.

    ``fills``: the instruction counts of the program's fills, in order (empty: one fill of
    every instruction). The control preloads one fill into its queue memories, runs it to the
    end, then preloads the next (`Refill`), so a program may hold more instructions than the
    queue memories; each fill's instructions of one queue fit that queue's memory
    (`AccelConfig.queue_depth`). Program order is a valid serial order of the token flow, so
    no instruction of a fill waits for a token that a later fill pushes."""

    instructions: tuple
    memory: bytes
    config: AccelConfig
    symbols: tuple[Region, ...] = ()      # every tensor, weight tile and requant table in DRAM
    segments: tuple[Segment, ...] = ()    # one per layer, in program order
    fills: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.fills and (sum(self.fills) != len(self.instructions) or min(self.fills) < 1):
            raise BitmillError(f"fills {self.fills} do not partition the program's "
                               f"{len(self.instructions)} instructions into non-empty runs")

    def region(self, name: str) -> Region:
        """The symbol called ``name``."""
        for r in self.symbols:
            if r.name == name:
                return r
        raise KeyError(f"the program has no symbol {name!r}")

    def fill_ranges(self) -> tuple[range, ...]:
        """The instruction indices of every fill, in order."""
        sizes, out, first = self.fills or (len(self.instructions),), [], 0
        for n in sizes:
            out.append(range(first, first + n))
            first += n
        return tuple(out)

    def describe_fills(self) -> str:
        """``""`` for a program in one fill, else ``" in N fills"``."""
        return f" in {len(self.fills)} fills" if len(self.fills) > 1 else ""

    def fill_words(self) -> tuple[int, ...]:
        """Words the control fetches for each fill: its instructions and, but for the last
        fill, its REFILL word. The first is what the host writes to PROG_COUNT."""
        ranges = self.fill_ranges()
        return tuple(len(r) + (k + 1 < len(ranges)) for k, r in enumerate(ranges))

    def queue_counts(self, indices: range | None = None) -> tuple[int, ...]:
        """Instructions of each queue (`Queue` order) among ``indices`` (default: all)."""
        counts = [0] * len(Queue)
        for i in indices if indices is not None else range(len(self.instructions)):
            counts[QUEUE_OF[self.instructions[i].opcode].value] += 1
        return tuple(counts)

    def check_queue_depth(self) -> None:
        """`BitmillError` when a fill has more instructions for a queue than that queue's
        instruction memory holds (`AccelConfig.queue_depth`), or more words than the three."""
        cfg = self.config
        if len(self.instructions) > MAX_INSTRUCTIONS:
            raise BitmillError(f"the program has {len(self.instructions)} instructions, more than the "
                               f"{MAX_INSTRUCTIONS} that program indices of {INDEX_BITS} bits number")
        for k, (r, words) in enumerate(zip(self.fill_ranges(), self.fill_words())):
            where = f"fill {k} of the program" if self.fills else "the program"
            for q, n in zip(Queue, self.queue_counts(r)):
                if n > cfg.queue_depth:
                    raise BitmillError(f"{where} has {n} {q.label}-queue instructions, more than the "
                                       f"{cfg.queue_depth} its instruction memory holds (raise queue_depth "
                                       f"of config {cfg.name}, or split the program into fills)")
            if words > len(Queue) * cfg.queue_depth:
                raise BitmillError(f"{where} has {words} words, more than the {len(Queue) * cfg.queue_depth} "
                                   f"of the three queue memories of config {cfg.name}")

    def split_into_fills(self) -> "Program":
        """The program with as few fills as the queue memories allow: each fill takes
        instructions in program order while every queue's count stays within `queue_depth`
        and its words (with its REFILL word) within the three memories. A program that fits
        whole keeps one fill."""
        cfg, fills, counts, n = self.config, [], [0] * len(Queue), 0
        if max(self.queue_counts(), default=0) <= cfg.queue_depth:
            return replace(self, fills=())
        for ins in self.instructions:
            q = QUEUE_OF[ins.opcode].value
            if counts[q] == cfg.queue_depth or n + 2 > len(Queue) * cfg.queue_depth:
                fills.append(n)
                counts, n = [0] * len(Queue), 0
            counts[q] += 1
            n += 1
        return replace(self, fills=(*fills, n))

    def encoded(self) -> bytes:
        """The binary program: INSTR_BITS/8 little-endian bytes per instruction, a REFILL word
        (the next fill's word count) after every fill but the last."""
        n, cfg = INSTR_BITS // 8, self.config
        words, ranges = self.fill_words(), self.fill_ranges()
        out = []
        for k, r in enumerate(ranges):
            out += [encode(self.instructions[i], cfg).to_bytes(n, "little") for i in r]
            if k + 1 < len(ranges):
                out.append(encode(Refill(words[k + 1]), cfg).to_bytes(n, "little"))
        return b"".join(out)

    @classmethod
    def from_binary(cls, blob: bytes, memory: bytes, cfg: AccelConfig, symbols: tuple = (),
                    segments: tuple = ()) -> "Program":
        """The program of a binary (`encoded`); `BitmillError` when a REFILL word's count does
        not match the words that follow it."""
        n = INSTR_BITS // 8
        if len(blob) % n:
            raise BitmillError(f"program binary of {len(blob)} bytes is not a multiple of {n}")
        words = [decode(int.from_bytes(blob[i:i + n], "little"), cfg) for i in range(0, len(blob), n)]
        instrs, fills, first = [], [], 0
        for w in words:
            if isinstance(w, Refill):
                fills.append(len(instrs) - first)
                first = len(instrs)
                continue
            instrs.append(w)
        if fills:
            fills.append(len(instrs) - first)
        refills = [w.words for w in words if isinstance(w, Refill)]
        program = None if 0 in fills else cls(tuple(instrs), memory, cfg, symbols, segments, tuple(fills))
        if program is None or refills != list(program.fill_words()[1:]):
            raise BitmillError(f"program binary: REFILL word counts {refills} do not match the fills "
                               f"that follow them ({fills[1:]} instructions, each but the last "
                               "with its REFILL word)")
        return program
