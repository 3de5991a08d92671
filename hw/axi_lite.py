"""The AXI4-Lite interface as an Amaranth signature, with flat member names (``awaddr``,
``wdata``, ...) so that a port ``host: In(AxiLiteSignature(...))`` becomes the Verilog ports
``host__awaddr``, ... that cocotbext-axi finds with ``AxiLiteBus.from_prefix(dut, "host_")``."""

from __future__ import annotations

from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

DATA_WIDTHS = (32, 64)       # the data widths AXI4-Lite allows
MAX_ADDR_WIDTH = 64


class Resp(enum.Enum, shape=2):
    """BRESP / RRESP values."""
    OKAY = 0
    EXOKAY = 1
    SLVERR = 2
    DECERR = 3


class AxiLiteSignature(wiring.Signature):
    """An AXI4-Lite port seen from the master: ``Out`` members are driven by the master.
    A slave uses ``In(AxiLiteSignature(...))``."""

    def __init__(self, addr_width: int, data_width: int = 32):
        if isinstance(addr_width, bool) or not isinstance(addr_width, int) \
                or not 1 <= addr_width <= MAX_ADDR_WIDTH:
            raise ValueError(f"addr_width must be an integer in 1..{MAX_ADDR_WIDTH}, "
                             f"not {addr_width!r}")
        if isinstance(data_width, bool) or data_width not in DATA_WIDTHS:
            raise ValueError(f"data_width must be one of {', '.join(map(str, DATA_WIDTHS))}, "
                             f"not {data_width!r}")
        self.addr_width, self.data_width = addr_width, data_width
        super().__init__({
            "awaddr": Out(addr_width), "awprot": Out(3), "awvalid": Out(1), "awready": In(1),
            "wdata": Out(data_width), "wstrb": Out(data_width // 8), "wvalid": Out(1),
            "wready": In(1),
            "bresp": In(Resp), "bvalid": In(1), "bready": Out(1),
            "araddr": Out(addr_width), "arprot": Out(3), "arvalid": Out(1), "arready": In(1),
            "rdata": In(data_width), "rresp": In(Resp), "rvalid": In(1), "rready": Out(1),
        })

    @property
    def strobe_width(self) -> int:
        """Byte lanes of the data bus."""
        return self.data_width // 8

    def __eq__(self, other):
        return (isinstance(other, AxiLiteSignature) and self.addr_width == other.addr_width
                and self.data_width == other.data_width)

    def __hash__(self):
        return hash((AxiLiteSignature, self.addr_width, self.data_width))

    def __repr__(self):
        return f"AxiLiteSignature(addr_width={self.addr_width}, data_width={self.data_width})"

