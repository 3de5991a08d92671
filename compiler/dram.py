"""DRAM placement: 64-byte aligned regions for every tensor, weight tile and requant table,
and the initial memory image (formats in `bitmill.packing`). Regions given back with `free`
are reused by later `allocate(..., reuse=True)` calls (first fit)."""

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
        self.holes: list[tuple[int, int]] = []     # freed (addr, bytes), sorted, merged

    def allocate(self, name: str, rows: int, row_codes: int, bits: int,
                 encoding: Encoding | str, contents: np.ndarray | None = None,
                 reuse: bool = False) -> Region:
        """A region of ``rows x row_codes`` codes; with ``reuse`` (contents-free regions only)
        in the first freed hole it fits, else at the end."""
        size = -(-Region(name, 0, rows, row_codes, bits, Encoding(encoding)).nbytes // ALIGN) * ALIGN
        addr = self._take_hole(size) if reuse and contents is None else None
        if addr is None:
            addr = self.size
            self.size += size
        r = Region(name, addr, rows, row_codes, bits, Encoding(encoding))
        self.regions[name] = r
        if contents is not None:
            self.init.append((r.addr, pack_rows(np.asarray(contents).reshape(rows, row_codes),
                                                bits, encoding)))
        return r

    def _take_hole(self, size: int) -> int | None:
        for k, (addr, n) in enumerate(self.holes):
            if n >= size:
                self.holes[k:k + 1] = [(addr + size, n - size)] if n > size else []
                return addr
        return None

    def free(self, region: Region) -> None:
        """Give ``region``'s bytes back for later ``reuse`` allocations."""
        size = -(-region.nbytes // ALIGN) * ALIGN
        holes = sorted(self.holes + [(region.addr, size)])
        merged: list[tuple[int, int]] = []
        for addr, n in holes:
            if merged and merged[-1][0] + merged[-1][1] == addr:
                merged[-1] = (merged[-1][0], merged[-1][1] + n)
            else:
                merged.append((addr, n))
        self.holes = merged

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
