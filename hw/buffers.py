"""The accelerator's on-chip buffers: weights, activations, requant tables (PARAM) and outputs,
two slots each (`bitmill.isa.slot_bytes`).

Each buffer is one memory of ``8 * B``-bit words (``B = mem_bytes_per_cycle``, the memory
beat; the activation buffer's words are ``act_word_bytes`` wide, a power-of-two multiple of
``B``), slot ``s`` at word addresses ``[s * slot_words, (s + 1) * slot_words)``; byte ``j`` of a
slot is byte ``j % B`` of word ``j // B`` (little-endian, as in DRAM). Read ports are
synchronous (data the cycle after the address). Ports:

* ``load`` (+ ``load_target``, a `Buffer`): the LOAD DMA's ``B``-byte word writes into the
  weight, activation or PARAM buffer (byte enables; into the activation buffer's wider words
  at the ``B``-byte lane the address names);
* ``weights``, ``acts``, ``params``: the compute units' read ports (``acts``: whole
  activation words);
* ``out_write`` and ``out_read``: the compute units' writes into the output buffer and their
  read-modify-write reads (``out_read``'s data come `bitmill.hw.packer.READ_LATENCY` cycles
  after the address: the read data registered once more, in the block RAMs' own output
  registers on ECP5, `bitmill.hw.ecp5`); ``store_read``: the STORE DMA's read port.

The output buffer is two memories of the same contents, both written by ``out_write``: ``out``
for ``out_read`` (which reads the word it writes back, so it keeps read-before-write) and
``out_store`` for ``store_read`` (a STORE reads a slot only after the compute unit that wrote
it has finished, so its reads never collide with a write; `bitmill.hw.synth` lets them be
undefined).
"""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from bitmill.config import AccelConfig
from bitmill.hw.axi import buffer_write_signature
from bitmill.hw.packer import READ_LATENCY
from bitmill.isa import Buffer, slot_bytes


def word_bytes(cfg: AccelConfig, buffer: Buffer) -> int:
    """Bytes of one word of ``buffer``: ``act_word_bytes`` for activations, else the beat."""
    return cfg.act_word_bytes if buffer is Buffer.ACT else cfg.mem_bytes_per_cycle


def slot_words(cfg: AccelConfig, buffer: Buffer, word: int | None = None) -> int:
    """Words of one slot of ``buffer``, of ``word`` bytes (default: the buffer's own)."""
    b = word_bytes(cfg, buffer) if word is None else word
    size = slot_bytes(cfg, buffer)
    if size % b:
        raise ValueError(f"{cfg.name}: the {buffer.name} slot of {size} bytes is not a whole number "
                         f"of {b}-byte words")
    return size // b


def buffer_depth(cfg: AccelConfig, buffer: Buffer, word: int | None = None) -> int:
    """Words of ``buffer`` (both slots), of ``word`` bytes (default: the buffer's own)."""
    return 2 * slot_words(cfg, buffer, word)


def read_signature(data_bytes: int, depth: int) -> wiring.Signature:
    """A synchronous read port seen from its user: ``addr`` out, ``data`` in a cycle later."""
    return wiring.Signature({"addr": Out(range(depth)), "data": In(8 * data_bytes)})


class Buffers(wiring.Component):
    """The four buffers and their ports (see the module docstring)."""

    def __init__(self, cfg: AccelConfig):
        if not isinstance(cfg, AccelConfig):
            raise TypeError(f"cfg must be an AccelConfig, not {type(cfg).__name__}")
        self.cfg = cfg
        b = cfg.mem_bytes_per_cycle
        self.depths = {buf: buffer_depth(cfg, buf) for buf in Buffer}
        loadable = max(buffer_depth(cfg, buf, b) for buf in Buffer if buf is not Buffer.OUT)
        out = self.depths[Buffer.OUT]
        super().__init__({
            "load": In(buffer_write_signature(b, loadable)), "load_target": In(Buffer),
            "weights": In(read_signature(b, self.depths[Buffer.WEIGHT])),
            "acts": In(read_signature(cfg.act_word_bytes, self.depths[Buffer.ACT])),
            "params": In(read_signature(b, self.depths[Buffer.PARAM])),
            "out_write": In(buffer_write_signature(b, out)),
            "out_read": In(read_signature(b, out)),
            "store_read": In(read_signature(b, out)),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        b = self.cfg.mem_bytes_per_cycle
        reads = {"weight": self.weights, "act": self.acts, "param": self.params,
                 "out": self.out_read, "out_store": self.store_read}
        for name, port in reads.items():
            buf = Buffer.OUT if name.startswith("out") else Buffer[name.upper()]
            wb = word_bytes(self.cfg, buf)
            mem = memory.Memory(shape=8 * wb, depth=self.depths[buf], init=[])
            m.submodules[name] = mem
            wr = mem.write_port(granularity=8)
            if buf is Buffer.OUT:
                src, en = self.out_write, self.out_write.valid
            else:
                src, en = self.load, self.load.valid & (self.load_target == buf)
            addr, data, enable = src.payload.addr, src.payload.data, src.payload.en & en.replicate(b)
            lanes = (wb // b - 1).bit_length()          # the beat's lane in a wider word
            if lanes:
                lane = src.payload.addr[:lanes]
                addr, data, enable = addr >> lanes, data.replicate(wb // b), enable << (lane * b)
            m.d.comb += [wr.addr.eq(addr), wr.data.eq(data), wr.en.eq(enable)]
            rd = mem.read_port()
            m.d.comb += rd.addr.eq(port.addr)
            read = rd.data
            for k in range(READ_LATENCY - 1 if name == "out" else 0):
                q = Signal(8 * wb, name=f"out_read_q{k}", reset_less=True)
                m.d.sync += q.eq(read)
                read = q
            m.d.comb += port.data.eq(read)
        return m
