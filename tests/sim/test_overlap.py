"""Layer overlap, resident weights and per-layer statistics of the cycle-accurate simulator."""

import numpy as np
import pytest

from bitmill.config import AccelConfig
from bitmill.isa import Buffer, Deps, Gemm, Load, Program, Store, Sync, Vec
from bitmill.numerics import Encoding
from bitmill.compiler import zoo
from bitmill.sim.verify import simulate_net
from bitmill.sim import cycle
from bitmill.sim.functional import SimError
from tests.conftest import REPO

TINY = AccelConfig.load(REPO / "configs/accel/tiny.yaml")
# tiny's small buffers (many bands); acc_bits 32 lets its tile engine hold every ResNet-8 layer
S4 = AccelConfig.from_dict({**TINY.to_dict(), "acc_bits": 32})


@pytest.fixture(scope="module")
def resnet8():
    g = zoo.build("resnet8", zoo.BitSpec(3, 5, first_last_bits=8, w_enc=Encoding.ODD))
    x = np.random.default_rng(2).integers(0, 256, (1, 28, 28))
    compiled, stats = simulate_net(g, S4, x)          # exact against golden or SimMismatch
    return compiled, stats


def _layer_ranges(prog):
    firsts = [s.first for s in prog.segments] + [len(prog.instructions)]
    return {s.layer: range(a, b) for s, a, b in zip(prog.segments, firsts, firsts[1:])}


def test_layer_spans_partition_the_run(resnet8):
    _, stats = resnet8
    assert stats.layers[0].start == stats.preload > 0 and stats.layers[-1].end == stats.cycles
    for prev, cur in zip(stats.layers, stats.layers[1:]):
        assert cur.start == prev.end
    for l in stats.layers:
        assert l.cycles == l.compute_cycles + l.wait_load + l.wait_store, l.name
        assert 0 < l.compute_busy <= 1


def test_a_layer_loads_while_the_previous_one_computes(resnet8):
    compiled, _ = resnet8
    prog = compiled.program
    start, end = cycle.schedule_times(prog)
    ranges = _layer_ranges(prog)
    compute_end = {name: max(end[i] for i in r if not isinstance(prog.instructions[i], (Load, Store)))
                   for name, r in ranges.items()}
    names = list(ranges)
    early = [cur for prev, cur in zip(names, names[1:])
             if min(start[i] for i in ranges[cur] if isinstance(prog.instructions[i], Load)) < compute_end[prev]]
    assert "layer2.0.downsample" in early            # its input is old: it loads during conv2
    assert len(early) >= len(names) // 2
    syncs = sum(isinstance(i, Sync) for i in prog.instructions)
    assert syncs < len(names)                        # no full barrier between every two layers


def test_resident_weights_load_once_and_gemms_address_rows(resnet8):
    compiled, _ = resnet8
    prog = compiled.program
    ranges = _layer_ranges(prog)
    resident = [l for l in compiled.schedule.layers if l.weights_resident]
    streamed = [l for l in compiled.schedule.layers if l.kind == "gemm" and not l.weights_resident]
    assert resident and streamed                     # both paths run in this network
    for l in resident:
        loads = [prog.instructions[i] for i in ranges[l.name]
                 if isinstance(prog.instructions[i], Load) and prog.instructions[i].buffer == Buffer.WEIGHT.value]
        assert len(loads) == 1, l.name
        gemms = [prog.instructions[i] for i in ranges[l.name] if isinstance(prog.instructions[i], Gemm)]
        assert all(gm.w_row == gm.o0 for gm in gemms)
        assert len(gemms) == l.bands * len(l.gemm_split) <= 2 * l.bands     # one fill+drain for most tiles


def test_load_before_the_store_it_reads_is_a_hazard():
    prog = Program((Store(0, 0, 16), Load(1, 0, 8, 8)), bytes(64), TINY)
    start, end = cycle.schedule_times(prog)
    with pytest.raises(SimError, match="hazard: LOAD 1 reads memory that STORE 0 writes"):
        cycle.check_hazards(prog, start, end)
    ordered = Program((Store(0, 0, 16, deps=Deps(push_prev=True)), Sync(Deps(pop_next=True, push_prev=True)),
                       Load(1, 0, 8, 8, deps=Deps(pop_next=True))), bytes(64), TINY)
    start, end = cycle.schedule_times(ordered)
    cycle.check_hazards(ordered, start, end)
    assert start[2] == end[1] == end[0] + 1


def test_vector_bands_are_double_buffered(resnet8):
    compiled, _ = resnet8
    prog = compiled.program
    start, end = cycle.schedule_times(prog)
    for name, r in _layer_ranges(prog).items():
        if not name.endswith(".add"):
            continue
        vecs = [i for i in r if isinstance(prog.instructions[i], Vec)]
        loads = [i for i in r if isinstance(prog.instructions[i], Load) and prog.instructions[i].buffer == Buffer.ACT.value]
        assert len(loads) == 2 * len(vecs) >= 4, name
        assert {prog.instructions[i].a_slot for i in vecs} == {0, 1}
        # the next band's operands load while this band's VEC runs
        assert any(start[loads[2 * k + 2]] < end[vecs[k]] for k in range(len(vecs) - 1)), name


def test_load_past_its_slot_is_an_error():
    half = TINY.act_buffer_bytes // 2
    prog = Program((Load(Buffer.ACT.value, 0, 0, 8, offset=half - 4),), bytes(64), TINY)
    with pytest.raises(SimError, match=f"overflows the {half}-byte ACT slot"):
        cycle.simulate(prog, {})


def test_gemm_layers_name_what_bounds_their_pixel_tiles(resnet8):
    compiled, stats = resnet8
    for l in stats.layers:
        if l.op in ("conv2d", "dense"):
            assert l.gemm_limit in ("staging", "array", "readout"), l.name
        else:
            assert l.gemm_limit == "", l.name
    assert stats.to_dict()["layers"][1]["gemm_limit"] == stats.layers[1].gemm_limit
