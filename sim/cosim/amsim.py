"""Run tiles on a `TileEngine` in Amaranth's simulator (async testbench): load the buffers,
issue the command, count cycles to ``done``, read the results; `check_tiles` checks them."""

from __future__ import annotations

import numpy as np
from amaranth.sim import Simulator

from bitmill.hw.engine import TileEngine
from bitmill.sim.cosim.checker import TileChecker
from bitmill.sim.cosim.tiles import Tile, command, tile_loads


async def _load(ctx, engine: TileEngine, tile: Tile) -> None:
    for target, addr, word in tile_loads(tile, engine):
        ctx.set(engine.load.payload, {"target": target, "addr": addr, "data": word})
        ctx.set(engine.load.valid, 1)
        await ctx.tick()
    ctx.set(engine.load.valid, 0)


async def _run(ctx, engine: TileEngine, tile: Tile) -> int:
    """Issue the command; return the cycles from acceptance to ``done``."""
    ctx.set(engine.cmd.payload.as_value(), command(tile, engine))
    ctx.set(engine.cmd.valid, 1)
    while not ctx.get(engine.cmd.ready):
        await ctx.tick()
    await ctx.tick()
    ctx.set(engine.cmd.valid, 0)
    cycles = 0                 # edges after the accepting one until done is seen
    while not ctx.get(engine.done):
        await ctx.tick()
        cycles += 1
    return cycles


async def _read(ctx, engine: TileEngine) -> np.ndarray:
    out = np.zeros((engine.rows, engine.cols), dtype=np.int64)
    for n in range(engine.rows * engine.cols):
        ctx.set(engine.res_addr, n)
        await ctx.tick().repeat(engine.res_latency)
        out[n // engine.cols, n % engine.cols] = ctx.get(engine.res_data)
    return out


def run_tiles(engine: TileEngine, tiles: list[Tile]) -> list[tuple[np.ndarray, int]]:
    """(result, cycles) of each tile, run back to back on one engine."""
    results: list[tuple[np.ndarray, int]] = []

    async def bench(ctx):
        for tile in tiles:
            await _load(ctx, engine, tile)
            cycles = await _run(ctx, engine, tile)
            results.append((await _read(ctx, engine), cycles))

    sim = Simulator(engine)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return results


def check_tiles(engine: TileEngine, tiles: list[Tile]
                ) -> tuple[TileChecker, list[tuple[np.ndarray, int]]]:
    """Run ``tiles`` (`run_tiles`) and check every result and cycle count; (the checker, the
    results)."""
    checker, results = TileChecker(engine), run_tiles(engine, tiles)
    for tile, (got, cycles) in zip(tiles, results):
        checker.check(tile, got, cycles)
    return checker, results
