"""Cycle-accurate simulator: random networks exact against golden, coverage, per-opcode timing,
deadlocks and hazards."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from bitmill import timing
from bitmill.config import AccelConfig
from bitmill.errors import LoweringError
from bitmill.isa import Deps, Gemm, Load, Program, Setup, Store, Sync, Vec
from bitmill.numerics import Encoding
from bitmill.compiler import zoo
from bitmill.compiler.ir import TensorType
from bitmill.compiler.pipeline import compile_net
from bitmill.sim.verify import simulate_net
from bitmill.sim import cycle
from bitmill.sim.functional import SimError
from tests.conftest import REPO

BASE = AccelConfig.load(REPO / "configs/accel/tiny.yaml").to_dict()


def _cfg(**kw) -> AccelConfig:
    return AccelConfig.from_dict({**BASE, "acc_bits": 32, "weight_buffer_bytes": 8192, "act_buffer_bytes": 8192,
                                  "out_buffer_bytes": 4096, **kw})


@st.composite
def networks(draw):
    c, h = draw(st.integers(1, 4)), draw(st.integers(4, 11))
    b = zoo._Builder(TensorType((c, h, draw(st.integers(4, 11))), 8, Encoding.UNSIGNED), draw(st.integers(0, 99)))
    enc = draw(st.sampled_from([Encoding.SIGNED, Encoding.ODD]))
    wb = lambda: draw(st.integers(1, 8))
    ch = draw(st.integers(1, 6))
    x = b.conv("a", "input", ch, draw(st.sampled_from([1, 3])), draw(st.integers(1, 2)), wb(), wb(), True, enc)
    if draw(st.booleans()):
        r = b.conv("b", x, ch, 3, 1, wb(), 8, False, enc)
        short = x if draw(st.booleans()) else b.conv("s", x, ch, 1, 1, wb(), draw(st.integers(2, 8)), False, enc)
        x = b.add("add", r, short, wb())
    if draw(st.booleans()):
        k = draw(st.integers(1, min(3, *b.types[x].shape[1:])))
        x = b.maxpool("pool", x, k, draw(st.integers(1, 2)), draw(st.integers(0, k - 1)))
    x = b.avgpool_flatten(x, wb())
    return b.graph("random", b.dense("fc", x, draw(st.integers(1, 5)), wb(), enc))


configs = st.builds(lambda r, c, lanes, fam, bw, lat: _cfg(rows=r, cols=c, lanes=lanes, pe_family=fam,
                                                           mem_bytes_per_cycle=bw, mem_latency=lat),
                    st.integers(1, 4), st.integers(1, 4), st.sampled_from([1, 3, 8, 16]),
                    st.sampled_from(["bitserial", "bitparallel"]), st.sampled_from([1, 2, 4, 8, 16]),
                    st.integers(1, 20))


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(networks(), configs, st.integers(0, 2 ** 16))
def test_random_networks_simulate_exactly(graph, cfg, seed):
    x = np.random.default_rng(seed).integers(0, 256, size=graph.input.out.shape)
    compiled, stats = simulate_net(graph, cfg, x)          # raises SimMismatch on any difference
    assert stats.cycles > 0
    _assert_coverage(compiled)


def _assert_coverage(compiled):
    """Every output element of every GEMM layer is computed exactly once."""
    prog = compiled.program
    firsts = [s.first for s in prog.segments]
    assert [s.layer for s in prog.segments] == [l.name for l in compiled.schedule.layers if l.kind != "alias"]
    counts = {}
    for idx, ins in enumerate(prog.instructions):
        if isinstance(ins, Gemm):
            name = prog.segments[int(np.searchsorted(firsts, idx, side="right")) - 1].layer
            node = compiled.schedule.graph[name]
            cov = counts.setdefault(name, np.zeros((node.out.shape[0], node.out.size // node.out.shape[0]), int))
            cov[ins.o0:ins.o0 + ins.rows, ins.p0:ins.p0 + ins.npix] += 1
    for l in compiled.schedule.layers:
        if l.kind == "gemm":
            assert (counts[l.name] == 1).all(), l.name


def test_resnet8_on_a_4x4_config_exact_and_covered():
    g = zoo.build("resnet8", zoo.BitSpec(3, 5, first_last_bits=8, w_enc=Encoding.ODD))
    x = np.random.default_rng(1).integers(0, 256, (1, 28, 28))
    compiled, stats = simulate_net(g, AccelConfig.load(REPO / "configs/accel/sim-4x4-k16.yaml"), x)
    _assert_coverage(compiled)
    assert [l.name for l in stats.layers][:2] == ["conv1", "layer1.0.conv1"]


def _run(instrs, cfg=None, memory=256):
    cfg = cfg or _cfg()
    return cycle.schedule_times(Program(tuple(instrs), bytes(memory), cfg))


SETUP = Setup(3, 1, 1, 4, 4, 2, 4, 2, 0, 0, 3, 5, 0, 0, 8, True, False)


def test_timing_of_every_opcode():
    cfg = _cfg(mem_latency=7, mem_bytes_per_cycle=4)
    start, end = _run([Load(1, 0, 0, 33)], cfg)
    assert end[0] - start[0] == 2 + 7 + 9 == timing.load_cycles(cfg, 0, 0, 33)
    start, end = _run([Store(0, 0, 10)], cfg)
    assert start[0] == timing.preload_cycles(cfg, 1) == 7 + 16 // 4 + 1     # after the preload
    assert end[0] - start[0] == 3 + 7 + 3 == timing.store_cycles(cfg, 0, 10)
    start, end = _run([SETUP, Gemm(0, 0, 0, 0, 2, 0, 8), Vec(0, 1, 10), Sync()], cfg)
    # SETUP kernel 3, in_c 2, in_w 4, W3A5 on the 2x2 array: K_total 18
    k, cfg_w, cfg_a = 18, 3, 5
    stage_w, stage_a = timing.weight_stage_cycles(cfg, k, cfg_w), timing.act_stage_cycles(cfg, 3, 2, 4, cfg_a)
    tile = timing.tile_cycles(cfg.pe_family, cfg.lanes, k, cfg_w, cfg_a)
    params = cfg.rows * (16 // cfg.mem_bytes_per_cycle) + 1
    drain = timing.RESULT_LATENCY + timing.REQUANT_LATENCY + timing.PACKER_DRAIN
    assert end[0] - start[0] == 1
    # one channel tile of two channels: divider, params, weights; four pixel tiles of two pixels,
    # streamed: activation staging is the longest (60 > 53 + 1 > 2 x 2 + 1), so tile n + 1's
    # staging starts when tile n's command issues, one staging after another; then the last
    # tile on the array, its copy into the shadow registers and its readout (2 x 2 results)
    assert stage_a > tile + timing.TILE_DONE > 2 * 2 + 1
    assert end[1] - start[1] == (1 + timing.gemm_divide_cycles(cfg) + params + stage_w + 4 * stage_a
                                 + tile + timing.TILE_DONE + 1 + 4 + drain)
    assert end[2] - start[2] == timing.vec_unit_cycles(cfg, 0, 10, 3, 1, 1, 4, 4, 2, 4, 2, 5, 8)
    assert end[3] - start[3] == 1
    t0 = timing.preload_cycles(cfg, 4)
    assert list(start) == [t0, end[0], end[1], end[2]]          # one in-order compute queue
    start, end = _run([SETUP, Gemm(0, 0, 0, 0, 5, 0, 8)], cfg)   # 3 channel tiles x 4 pixel tiles
    per_channel_tile = lambda r, stagings: (params + stage_w + stagings * stage_a + tile + timing.TILE_DONE
                                            + 1 + 2 * r)
    # the stream drains at each channel tile's end: one cycle, then the next tile's params; the
    # next channel tile's first pixel tile was staged while the last one ran (done before its
    # params are: no wait for the weight staging), so its stream starts with three stagings
    assert stage_a < tile + timing.TILE_DONE + 1 + 2 * 2 + 1 + params
    assert end[1] - start[1] == (1 + timing.gemm_divide_cycles(cfg) + per_channel_tile(2, 4)
                                 + per_channel_tile(2, 3) + per_channel_tile(1, 3) + 2 + drain)
    assert end[1] - start[1] == timing.gemm_cycles(cfg, 8, 5, 3, 2, 4, 3, 5)


def test_tokens_order_queues_and_queues_overlap():
    cfg = _cfg(mem_latency=5, mem_bytes_per_cycle=1)
    start, end = _run([Load(0, 0, 0, 20, deps=Deps(push_next=True)), Load(1, 1, 0, 20), SETUP,
                       Gemm(0, 0, 0, 0, 2, 0, 4, deps=Deps(pop_prev=True, push_next=True)),
                       Store(0, 100, 4, deps=Deps(pop_prev=True))], cfg)
    assert start[3] == end[0] == timing.preload_cycles(cfg, 5) + 2 + 25     # GEMM waits for its weights
    assert start[1] == end[0]                  # the second load overlaps the GEMM
    assert start[4] == end[3]                  # STORE waits for the GEMM's token


def test_deadlock_is_reported_not_hung():
    with pytest.raises(SimError, match=r"deadlock: compute queue at instruction 1 waits for a l2c token"):
        _run([SETUP, Gemm(0, 0, 0, 0, 2, 0, 4, deps=Deps(pop_prev=True))])
    with pytest.raises(SimError, match="deadlock"):
        _run([Load(0, 0, 0, 4, deps=Deps(pop_next=True)), SETUP, Gemm(0, 0, 0, 0, 2, 0, 4, deps=Deps(pop_prev=True))])
    with pytest.raises(SimError, match="the store queue does not have"):
        _run([Store(0, 0, 4, deps=Deps(push_next=True))])


def test_missing_token_is_a_hazard():
    cfg = _cfg()
    prog = Program((Load(0, 0, 0, 8), SETUP, Gemm(0, 0, 0, 0, 2, 0, 4)), bytes(64), cfg)
    start, end = cycle.schedule_times(prog)
    with pytest.raises(SimError, match="hazard: instruction 2 reads WEIGHT slot 0"):
        cycle.check_hazards(prog, start, end)


def test_lowering_error_names_the_numbers():
    g = zoo.build("resnet20", "w8a8")
    with pytest.raises(LoweringError, match=r"layer3.0.conv2 needs 1.1 KiB of weight buffer for one output "
                                            r"channel \(576 weights at 8 bits, double-buffered\), the config "
                                            r"has 1.0 KiB"):
        compile_net(g, _cfg(weight_buffer_bytes=1024))
    with pytest.raises(LoweringError, match="of activation buffer for one output row"):
        compile_net(zoo.build("resnet8", "w8a8"), _cfg(act_buffer_bytes=64, weight_buffer_bytes=65536))
    with pytest.raises(LoweringError, match="supports weights 1..4"):
        compile_net(zoo.build("resnet8", "w8a8"), _cfg(weight_bits=[1, 4]))
