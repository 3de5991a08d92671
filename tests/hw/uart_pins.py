"""A host's end of UART pins in Amaranth testbenches: 8N1 frames sent onto an rx pin and decoded
from a tx pin (sampled mid-bit)."""

from __future__ import annotations


def receiver(tx_pin, divisor: int, received: list[int]):
    """A background testbench appending every byte framed on ``tx_pin``; a low stop bit fails."""
    async def run(ctx):
        while True:
            await ctx.tick()
            if ctx.get(tx_pin) == 0:
                await ctx.tick().repeat(divisor // 2)
                byte = 0
                for i in range(8):
                    await ctx.tick().repeat(divisor)
                    byte |= ctx.get(tx_pin) << i
                await ctx.tick().repeat(divisor)
                assert ctx.get(tx_pin) == 1, "stop bit low"
                received.append(byte)
    return run


async def send(ctx, rx_pin, data: bytes, bit_cycles: int) -> None:
    """``data`` onto ``rx_pin`` as back-to-back 8N1 frames of ``bit_cycles`` per bit."""
    for b in data:
        for bit in [0] + [(b >> i) & 1 for i in range(8)] + [1]:
            ctx.set(rx_pin, bit)
            await ctx.tick().repeat(bit_cycles)
