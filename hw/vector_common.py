"""Pieces shared by the vector unit's engines (`bitmill.hw.vector_add`,
`bitmill.hw.vector_pool`) and its output stage (`bitmill.hw.vector`): the element result
they hand over, the geometry of the buffers, code extraction and decoding, requant records.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data
from amaranth.utils import ceil_log2

from bitmill import isa
from bitmill.config import AccelConfig
from bitmill.isa import Buffer
from bitmill.numerics import MULT_BITS, Encoding
from bitmill.precision import MAX_RUNTIME_BITS
from bitmill.timing import vec_acc_bits

CODE_BITS = MAX_RUNTIME_BITS           # widest input code (operands A and B)
VALUE_BITS = CODE_BITS + 2             # decoded value, and one below the lowest (max-pool fill)
BIAS_BITS = 64
SHIFT_BITS = 8                         # a record's shift byte
RECORD_BYTES = 16


class VecGeometry:
    """Buffer geometry of ``cfg`` seen by the vector unit: ``B`` bytes per word, words per
    slot of the activation, requant-table and output buffers, bit widths of word addresses."""

    def __init__(self, cfg: AccelConfig):
        if not isinstance(cfg, AccelConfig):
            raise TypeError(f"cfg must be an AccelConfig, not {type(cfg).__name__}")
        b = cfg.mem_bytes_per_cycle
        if b & (b - 1) or b > 128:
            raise ValueError(f"mem_bytes_per_cycle must be a power of two in 1..128, not {b}")
        self.cfg = cfg
        self.data_bytes = b
        self.word_bits = 8 * b
        self.lg_word = ceil_log2(self.word_bits)
        self.act_slot_bytes = isa.slot_bytes(cfg, Buffer.ACT)
        self.param_slot_bytes = isa.slot_bytes(cfg, Buffer.PARAM)
        self.out_slot_bytes = isa.slot_bytes(cfg, Buffer.OUT)
        for name, nbytes in (("act_buffer_bytes / 4", self.act_slot_bytes // 2),
                             ("out_buffer_bytes / 2", self.out_slot_bytes),
                             ("the requant table slot", self.param_slot_bytes)):
            if nbytes % b or nbytes == 0:
                raise ValueError(f"{name} ({nbytes} bytes) must be a positive multiple of "
                                 f"mem_bytes_per_cycle ({b}) for the vector unit")
        if 2 * (self.act_slot_bytes // 2) != self.act_slot_bytes:
            raise ValueError(f"act_buffer_bytes must be a multiple of 4, not {cfg.act_buffer_bytes}")
        self.act_slot_words = self.act_slot_bytes // b
        self.param_slot_words = self.param_slot_bytes // b
        self.out_slot_words = self.out_slot_bytes // b
        self.act_depth = 2 * self.act_slot_words
        self.param_depth = 2 * self.param_slot_words
        self.out_depth = 2 * self.out_slot_words
        self.acc_bits = vec_acc_bits(cfg)


def result_layout(acc_bits: int) -> data.StructLayout:
    """An element result handed to the output stage: ``value`` (the max-pool result, or the
    accumulator to requantize with ``mult``, ``shift``, ``bias`` when ``requant``);
    ``write`` (a code to write), ``row_end`` (the last code of an output row), ``last``
    (the instruction's last result)."""
    return data.StructLayout({"valid": 1, "requant": 1, "write": 1, "row_end": 1, "last": 1,
                              "value": signed(acc_bits), "mult": signed(MULT_BITS),
                              "shift": SHIFT_BITS, "bias": signed(BIAS_BITS)})


def record_layout() -> data.StructLayout:
    """A 16-byte requant record as it lies in the buffer."""
    return data.StructLayout({"mult": signed(MULT_BITS), "shift": SHIFT_BITS, "pad": 40,
                              "bias": signed(BIAS_BITS)})


def code_mask(bits_m1) -> "Value":
    """Thermometer mask of ``bits_m1 + 1`` ones (``bits_m1`` in 0..7)."""
    return Cat(*[bits_m1 >= k for k in range(CODE_BITS)])


def extract(window, offset, bits_m1) -> "Value":
    """The ``bits_m1 + 1``-bit code at bit ``offset`` of ``window`` (zero-extended to 8)."""
    return window.bit_select(offset, CODE_BITS) & code_mask(bits_m1)


def _grid(m: Module, name: str, bits_m1, enc) -> dict:
    """The constants of a code grid, registered: they follow ``bits_m1`` and ``enc`` one cycle
    later, which the engines allow (both are stable from the cycle after ``start`` and codes
    are decoded two cycles after it at the earliest)."""
    g = {"top": Signal(CODE_BITS + 1, name=f"{name}_top"),          # 2^bits
         "sign": Signal(CODE_BITS, name=f"{name}_sign"),            # the sign bit of a code
         "low": Signal(CODE_BITS, name=f"{name}_low"),              # 2^bits - 1
         "odd": Signal(name=f"{name}_odd"), "signed": Signal(name=f"{name}_signed")}
    top = Const(1, CODE_BITS + 1) << (bits_m1 + 1)
    m.d.sync += [g["top"].eq(top), g["sign"].eq(top >> 1), g["low"].eq(top - 1),
                 g["odd"].eq(enc == Encoding.ODD), g["signed"].eq(enc == Encoding.SIGNED)]
    return g


def decode(m: Module, name: str, code, bits_m1, enc, top_set=None) -> Signal:
    """The value of a code (`Encoding`: two's complement, unsigned, odd grid), combinational
    in the code (the grid's constants registered, see `_grid`), without an adder: an odd
    code ``c`` is ``2c + 1 - 2^bits``, i.e. ``2c + 1`` with bit ``bits`` cleared when
    ``c``'s top bit is set, else sign-extended from there; a two's-complement code is
    sign-extended from its top bit. ``top_set``: that top bit, where the caller selects it
    beside the code (None: taken from the code by the code width)."""
    g = _grid(m, name, bits_m1, enc)
    if top_set is None:
        top_set = (code & g["sign"]).any()
    low = Mux(g["odd"], Cat(Const(1, 1), code) & g["low"], code)
    negative = Mux(g["odd"], ~top_set, g["signed"] & top_set)
    high = ~Cat(g["low"], Const(0, VALUE_BITS - CODE_BITS))      # bits from ``bits`` up
    value = Signal(signed(VALUE_BITS), name=f"{name}_value")
    m.d.comb += value.eq(low | Mux(negative, high, 0))
    return value


def fill_value(m: Module, name: str, bits_m1, enc) -> Signal:
    """One below the lowest value of the code grid (the max-pool padding), registered after
    the grid's registered constants (see `_grid`): it follows ``bits_m1`` and ``enc`` two
    cycles later (the pool unit uses it from the seventh cycle after its start)."""
    g = _grid(m, name, bits_m1, enc)
    fill = Signal(signed(VALUE_BITS), name=f"{name}_fill")
    m.d.sync += fill.eq(Mux(g["odd"], 1 - g["top"], Mux(g["signed"], -g["sign"], 0)) - 1)
    return fill


def bad_encoding(enc) -> "Value":
    """Whether an encoding field holds a value outside `Encoding`."""
    return enc.as_value() == 3


def record_words(data_bytes: int) -> int:
    """Buffer words one requant record spans (a record never straddles a wider word)."""
    return max(1, RECORD_BYTES // data_bytes)


def slot_word_address(m: Module, name: str, start, slot, word, slot_words: int,
                      plus: int = 0) -> Signal:
    """The buffer address of word ``word + plus`` of slot ``slot``, the word kept inside the
    slot: ``word + plus`` when it lies in ``[0, slot_words)``, else the nearest end (reads
    outside the slot, whose data is never used, stay inside it). The slot's first and last words and its first plus
    ``plus`` are registers set at ``start`` (``slot`` is read then), so the address is one
    addition (that register plus ``word``) chosen by the bound comparisons beside it: no
    second adder for the slot between ``word`` and the buffer's address pins."""
    depth = 2 * slot_words
    first, last = Signal(range(depth), name=f"{name}_first"), Signal(range(depth), name=f"{name}_last")
    shifted = Signal(range(depth + plus), name=f"{name}_first_plus")
    with m.If(start):
        base = slot * slot_words
        m.d.sync += [first.eq(base), last.eq(base + slot_words - 1), shifted.eq(base + plus)]
    out = Signal(range(depth), name=name)
    m.d.comb += out.eq(Mux(word < -plus, first, Mux(word >= slot_words - plus, last, shifted + word)))
    return out
