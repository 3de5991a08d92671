"""Testbench helpers for `bitmill.hw.axi_sram.AxiSram`: bytes in and out through its backdoor
in an Amaranth simulator testbench (the AXI port must be idle)."""

from __future__ import annotations

from bitmill.hw.axi_sram import AxiSram


async def _read_word(ctx, model: AxiSram, word: int) -> int:
    ctx.set(model.backdoor.active, 1)
    ctx.set(model.backdoor.addr, word)
    ctx.set(model.backdoor.we, 0)
    await ctx.tick().repeat(model.read_latency)
    return ctx.get(model.backdoor.rdata)


async def load_bytes(ctx, model: AxiSram, addr: int, payload: bytes) -> None:
    """Write ``payload`` at byte address ``addr`` through the backdoor (a testbench coroutine;
    partial first and last words are read, merged and written back)."""
    b = model.data_bytes
    first, end = addr - addr % b, addr + len(payload)
    ctx.set(model.backdoor.active, 1)
    for base in range(first, end, b):
        lo, hi = max(addr, base), min(end, base + b)
        if hi - lo < b:
            old = bytearray((await _read_word(ctx, model, base // b)).to_bytes(b, "little"))
        else:
            old = bytearray(b)
        old[lo - base:hi - base] = payload[lo - addr:hi - addr]
        ctx.set(model.backdoor.addr, base // b)
        ctx.set(model.backdoor.wdata, int.from_bytes(old, "little"))
        ctx.set(model.backdoor.we, 1)
        await ctx.tick()
    ctx.set(model.backdoor.we, 0)
    ctx.set(model.backdoor.active, 0)
    if model.write_delay:
        await ctx.tick().repeat(model.write_delay)


async def read_bytes(ctx, model: AxiSram, addr: int, nbytes: int) -> bytes:
    """``nbytes`` from byte address ``addr``, read through the backdoor (a testbench
    coroutine)."""
    b = model.data_bytes
    out = bytearray()
    for base in range(addr - addr % b, addr + nbytes, b):
        out += (await _read_word(ctx, model, base // b)).to_bytes(b, "little")
    ctx.set(model.backdoor.active, 0)
    skip = addr % b
    return bytes(out[skip:skip + nbytes])
