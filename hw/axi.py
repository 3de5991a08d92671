"""The accelerator's AXI4 memory port and the buffer write request.

`AxiSignature` is an AXI4 interface seen from the master, with the flat member names of the
AXI4 specification (``awaddr``, ``rdata``, ...): a master port ``mem: Out(AxiSignature(...))``
becomes the Verilog ports ``mem__awaddr``, ``mem__rdata``, ... (cocotbext-axi finds them with
``AxiBus.from_prefix(dut, "mem_")``, its separator being ``_``). A slave takes
``In(AxiSignature(...))``.

The accelerator's conventions (`accel-spec`): data width ``8 * data_bytes`` bits, address
width 32, ID width 1 (IDs always 0), INCR bursts of at most `MAX_BURST_BEATS` beats that never
cross a `BURST_BOUNDARY` (4 KiB), full-width beats (``size = log2(data_bytes)``) with byte
strobes for partial first and last beats.
"""

from __future__ import annotations

from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from bitmill.hw.params import check_positive

MAX_BURST_BEATS = 256        # AXI4 INCR burst length limit (``len`` is beats - 1, 8 bits)
BURST_BOUNDARY = 4096        # bursts never cross a multiple of this byte address
BURST_INCR = 0b01            # ``awburst`` / ``arburst``
RESP_OKAY = 0b00
RESP_SLVERR = 0b10
RESP_DECERR = 0b11
MAX_DATA_BYTES = 128         # AXI4 data width limit: 1024 bits


def check_data_bytes(data_bytes: object) -> int:
    """``data_bytes`` if it is a power of two in 1..`MAX_DATA_BYTES`, else ValueError."""
    if (isinstance(data_bytes, bool) or not isinstance(data_bytes, int)
            or not 1 <= data_bytes <= MAX_DATA_BYTES or data_bytes & (data_bytes - 1)):
        raise ValueError(f"data_bytes must be a power of two in 1..{MAX_DATA_BYTES}, "
                         f"not {data_bytes!r}")
    return data_bytes


class AxiSignature(wiring.Signature):
    """An AXI4 interface from the master's point of view (five channels, flat names)."""

    def __init__(self, addr_width: int = 32, data_bytes: int = 4, id_width: int = 1):
        self._addr_width = check_positive("addr_width", addr_width, 64)
        self._data_bytes = check_data_bytes(data_bytes)
        self._id_width = check_positive("id_width", id_width, 32)
        members = {}
        for ch in ("aw", "ar"):
            members |= {f"{ch}id": Out(id_width), f"{ch}addr": Out(addr_width),
                        f"{ch}len": Out(8), f"{ch}size": Out(3), f"{ch}burst": Out(2),
                        f"{ch}valid": Out(1), f"{ch}ready": In(1)}
            if ch == "aw":
                members |= {"wdata": Out(8 * data_bytes), "wstrb": Out(data_bytes),
                            "wlast": Out(1), "wvalid": Out(1), "wready": In(1),
                            "bid": In(id_width), "bresp": In(2), "bvalid": In(1),
                            "bready": Out(1)}
        members |= {"rid": In(id_width), "rdata": In(8 * data_bytes), "rresp": In(2),
                    "rlast": In(1), "rvalid": In(1), "rready": Out(1)}
        super().__init__(members)

    @property
    def addr_width(self) -> int:
        return self._addr_width

    @property
    def data_bytes(self) -> int:
        """Bytes per beat."""
        return self._data_bytes

    @property
    def id_width(self) -> int:
        return self._id_width

    @property
    def size(self) -> int:
        """The ``arsize`` / ``awsize`` of full-width beats: ``log2(data_bytes)``."""
        return self._data_bytes.bit_length() - 1

    def __eq__(self, other):
        return (type(other) is AxiSignature and self.addr_width == other.addr_width
                and self.data_bytes == other.data_bytes and self.id_width == other.id_width)

    def __hash__(self):
        return hash((AxiSignature, self._addr_width, self._data_bytes, self._id_width))

    def __repr__(self):
        return (f"AxiSignature(addr_width={self._addr_width}, data_bytes={self._data_bytes}, "
                f"id_width={self._id_width})")


def buffer_write_layout(data_bytes: int, depth: int) -> data.StructLayout:
    """A buffer write request: word address, data (byte ``i`` at bits ``8i .. 8i+7``) and one
    enable per byte."""
    check_data_bytes(data_bytes)
    check_positive("depth", depth)
    return data.StructLayout({"addr": range(depth), "data": 8 * data_bytes, "en": data_bytes})


def buffer_write_signature(data_bytes: int, depth: int) -> wiring.Signature:
    """A buffer write request with its ``valid`` bit, from the writer's point of view (no
    backpressure: the buffer takes a request in every cycle it is valid)."""
    return wiring.Signature({"valid": Out(1),
                             "payload": Out(buffer_write_layout(data_bytes, depth))})
