"""DRAM placement: 64-byte aligned regions for every tensor, weight tile and requant table,
and the initial memory image (formats in `bitmill.packing`)."""

from __future__ import annotations

import numpy as np

from bitmill.packing import Region, pack_rows
from bitmill.numerics import Encoding

ALIGN = 64                     # every region starts on a 64-byte boundary


class MemoryMap:
    """Allocates 64-byte aligned regions and builds the initial image."""

    def __init__(self) -> None:
        self.regions: dict[str, Region] = {}
        self.init: list[tuple[int, bytes]] = []
        self.size = 0

    def allocate(self, name: str, rows: int, row_codes: int, bits: int,
                 encoding: Encoding | str, contents: np.ndarray | None = None) -> Region:
        r = Region(name, self.size, rows, row_codes, bits, Encoding(encoding))
        self.regions[name] = r
        self.size += -(-r.nbytes // ALIGN) * ALIGN
        if contents is not None:
            self.init.append((r.addr, pack_rows(np.asarray(contents).reshape(rows, row_codes),
                                                bits, encoding)))
        return r

    def add_bytes(self, name: str, blob: bytes) -> Region:
        r = Region(name, self.size, 1, len(blob), 8, Encoding.UNSIGNED)
        self.regions[name] = r
        self.size += -(-len(blob) // ALIGN) * ALIGN
        self.init.append((r.addr, blob))
        return r

    def image(self) -> bytes:
        img = bytearray(self.size)
        for addr, blob in self.init:
            img[addr:addr + len(blob)] = blob
        return bytes(img)
