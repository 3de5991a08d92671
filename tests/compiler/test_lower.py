"""Lowering: bands fit the buffer slots, layers that cannot fit are named with the numbers,
channel tiles and resident weights, traffic of every layer."""

import pytest

from bitmill.config import AccelConfig
from bitmill.errors import LoweringError
from bitmill.geometry import nhwc_rows
from bitmill import isa
from bitmill.isa import PARAM_SLOT_BYTES
from bitmill.numerics import Encoding
from bitmill.packing import PARAM_RECORD, pitch
from bitmill.compiler import zoo
from bitmill.compiler.ir import Flatten, TensorType
from bitmill.compiler.lower import layer_bands, lower, tile_rows
from tests.conftest import REPO

TINY = AccelConfig.load(REPO / "configs/accel/tiny.yaml")
S4 = AccelConfig.load(REPO / "configs/accel/sim-4x4-k16.yaml")
ECP5 = AccelConfig.load(REPO / "configs/accel/ecp5-85f.yaml")


def _cfg(**kw) -> AccelConfig:
    return AccelConfig.from_dict({**TINY.to_dict(), **kw})


def _conv_net(c=2, h=6, w=6, out_ch=3, k=3, stride=1, w_bits=4, a_bits=8):
    """input (c, h, w) -> conv -> avgpool -> flatten -> fc."""
    b = zoo._Builder(TensorType((c, h, w), a_bits, Encoding.UNSIGNED), 0)
    x = b.conv("conv", "input", out_ch, k, stride, w_bits, 8, True, Encoding.SIGNED)
    x = b.avgpool_flatten(x, 8)
    return b.graph("conv_net", b.dense("fc", x, 2, 8, Encoding.SIGNED))


@pytest.mark.parametrize("model, bits, cfg", [("resnet8", "w4a4", S4), ("resnet18", "w4a4", ECP5),
                                              ("resnet20", "w2a2", ECP5)])
def test_every_band_fits_its_buffer_slots(model, bits, cfg):
    graph = zoo.build(model, bits)
    schedule = lower(graph, cfg)
    types = graph.types()
    assert [l.name for l in schedule.layers] == [n.name for n in graph.nodes[1:]]
    for node, ls in zip(graph.nodes[1:], schedule.layers):
        if ls.kind == "alias":
            assert isinstance(node, Flatten) and ls.bands == 0 and ls.traffic.total == 0
            continue
        use = ls.buffer_use
        assert use.act <= cfg.act_buffer_bytes // 2 and use.out <= cfg.out_buffer_bytes // 2
        assert use.weight <= cfg.weight_buffer_bytes // 2
        ins = [types[i] for i in node.inputs]
        in_pitch = max(pitch(nhwc_rows(t.shape)[1], t.bits) for t in ins)
        out_rows, out_codes = nhwc_rows(node.out.shape)
        bands = layer_bands(node, ins[0].shape, ls.band_rows)
        assert len(bands) == ls.bands == -(-out_rows // ls.band_rows)
        assert [b.y0 for b in bands] == list(range(0, out_rows, ls.band_rows)) and bands[-1].y1 == out_rows
        for band in bands:
            assert len(ins) * band.in_rows * in_pitch <= use.act
            assert band.rows * pitch(out_codes, node.out.bits) <= use.out
        assert ls.traffic.out == out_rows * pitch(out_codes, node.out.bits)
        assert ls.traffic.act == sum(b.in_rows * pitch(nhwc_rows(t.shape)[1], t.bits)
                                     for b in bands for t in ins)


def test_conv_layer_schedule_by_hand():
    """(2, 6, 6) 8-bit input, 3x3 conv to 3 channels at W4 on the 2x2 tiny array: 12-byte input
    rows, 18-byte output rows, all six output rows in one band (18 array tiles either way, the
    fewest bands win), two channel tiles, 27 bytes of weights resident in one slot."""
    ls = lower(_conv_net(), TINY).layers[0]
    assert (ls.kind, ls.band_rows, ls.bands, ls.channel_tiles, ls.array_tiles) == ("gemm", 6, 1, 2, 36)
    assert (ls.k_total, ls.w_bits, ls.a_bits, ls.macs) == (18, 4, 8, 3 * 18 * 36)
    assert ls.weights_resident and ls.gemm_split == (1, 1)
    assert ls.loop_order == "weights resident > band > channel tile > pixel tile"
    assert (ls.traffic.weight, ls.traffic.act, ls.traffic.param, ls.traffic.out) == (27, 72, 48, 108)
    assert (ls.buffer_use.weight, ls.buffer_use.act, ls.buffer_use.out) == (27, 72, 108)


def test_weights_stream_tile_by_tile_when_the_layer_does_not_fit_a_slot():
    """17 channels x 72 weights at 8 bits = 1224 bytes > 1024-byte slot: each of the 9 channel
    tiles (2 channels, 144 bytes; the last one channel) is loaded again for every band. Output
    rows are 136 bytes, so a 512-byte slot holds bands of 3 rows."""
    cfg = _cfg(weight_buffer_bytes=2048, out_buffer_bytes=1024)
    graph = _conv_net(c=8, h=8, w=8, out_ch=17, w_bits=8)
    ls = lower(graph, cfg).layers[0]
    assert not ls.weights_resident and ls.channel_tiles == 9
    assert ls.gemm_split == (1,) * 9
    assert ls.buffer_use.weight == 2 * 72
    assert ls.bands == 3 and ls.band_rows == 3
    assert ls.traffic.weight == 3 * 17 * 72


def test_resident_weights_split_after_the_first_channel_tile():
    ls = lower(_conv_net(out_ch=7), TINY).layers[0]
    assert ls.weights_resident and ls.channel_tiles == 4 and ls.gemm_split == (1, 3)


def test_channel_tiles_shrink_to_the_rows_a_weight_slot_holds():
    """288 weights at 8 bits a row: a 512-byte slot holds one row, not the array's two; the
    layer runs in one-channel tiles (4 GEMMs, 4 weight loads per band), a 1 KiB slot in two."""
    narrow = lower(_conv_net(c=32, h=4, w=4, w_bits=8, a_bits=4, out_ch=4), _cfg(weight_buffer_bytes=1024, k_passes=4)).layers[0]
    assert (narrow.tile_rows, narrow.channel_tiles, narrow.buffer_use.weight) == (1, 4, 288)
    assert narrow.traffic.weight == narrow.bands * 4 * 288 and narrow.gemm_split == (1, 1, 1, 1)
    wide = lower(_conv_net(c=32, h=4, w=4, w_bits=8, a_bits=4, out_ch=4), _cfg(weight_buffer_bytes=2048, k_passes=4)).layers[0]
    assert (wide.tile_rows, wide.channel_tiles, wide.buffer_use.weight) == (2, 2, 576)
    assert tile_rows(TINY, 1, 10) == 1 and tile_rows(TINY, 5, 10) == 2


def test_a_layer_that_cannot_fit_names_the_numbers():
    graph = _conv_net(c=8, h=6, w=64)           # one input row: 64 * 8 bytes; three rows 1536
    with pytest.raises(LoweringError, match=r"^conv needs 3\.0 KiB of activation buffer for one output "
                                            r"row \(double-buffered\), the config has 2\.0 KiB$"):
        lower(graph, _cfg(act_buffer_bytes=2048))
    with pytest.raises(LoweringError, match=r"^conv needs 384 bytes of output buffer for one output row "
                                            r"\(double-buffered\), the config has 256 bytes$"):
        lower(_conv_net(w=64), _cfg(out_buffer_bytes=256))          # 192-byte output rows
    with pytest.raises(LoweringError, match=r"^conv needs 1\.1 KiB of weight buffer for one output "
                                            r"channel \(576 weights at 8 bits, double-buffered\), the "
                                            r"config has 1\.0 KiB$"):
        lower(_conv_net(c=64, h=4, w=4, w_bits=8), _cfg(weight_buffer_bytes=1024))
    with pytest.raises(LoweringError, match=r"^conv runs at W4A8; tiny supports weights 1\.\.8 and "
                                            r"activations 1\.\.4 bits$"):
        lower(_conv_net(), _cfg(act_bits=[1, 4]))
    many = PARAM_SLOT_BYTES // PARAM_RECORD + 1
    with pytest.raises(LoweringError, match=rf"^conv has {many} output channels; a requant table slot "
                                            rf"holds {many - 1}$"):
        lower(_conv_net(c=1, h=2, w=2, out_ch=many, k=1), _cfg(weight_buffer_bytes=1 << 20))


def test_layer_whose_accumulator_exceeds_acc_bits_is_refused():
    graph = zoo.build("resnet8", "w8a8")
    with pytest.raises(LoweringError, match=r"conv1 needs 20-bit accumulators \(9 terms at W8A8\); "
                                            r"tiny has acc_bits 19"):
        lower(graph, _cfg(acc_bits=19))
    with pytest.raises(LoweringError, match=r"layer1.0.conv1 needs 24-bit accumulators \(144 terms "
                                            r"at W8A8\); tiny has acc_bits 23"):
        lower(graph, _cfg(acc_bits=23))
    lower(graph, _cfg(acc_bits=27, act_buffer_bytes=16384))    # 128 chunks: K_total 1,024


def test_layer_beyond_the_tile_engine_runs_in_partial_sum_passes_or_is_refused():
    """K_total beyond one tile (tiny: 16 chunks of 8 lanes, 128 terms) runs in passes of whole
    kernel rows when the config allows them (``k_passes``), and is refused otherwise."""
    graph = zoo.build("resnet8", "w2a2")
    with pytest.raises(LoweringError, match=r"^layer1.0.conv1: 144 terms per output need 2 partial-sum "
                                            r"passes of 2 kernel row\(s\) \(96 terms, the engine holds "
                                            r"128\); tiny allows k_passes 1: choose a config"):
        lower(graph, TINY)
    wider = _cfg(acc_bits=25, k_passes=4)      # 32 chunks: 256 terms per pass
    assert [isa.pass_rows(wider, 3, c) for c in (16, 32, 64)] == [(3,), (2, 1), (1, 1, 1)]
    sched = lower(graph, wider)
    assert {ls.name: ls.k_total for ls in sched.layers}["layer3.0.conv2"] == 576
    b = zoo._Builder(TensorType((48, 5, 5), 8, Encoding.UNSIGNED), 0)
    wide = b.graph("wide", b.conv("conv", "input", 4, 3, 1, 2, 2, True, Encoding.SIGNED))
    with pytest.raises(LoweringError, match=r"^conv: one kernel row sums 144 terms \(3 x 48\); "
                                            r"the tile engine of tiny holds 128 per pass"):
        lower(wide, _cfg(k_passes=8))
    lower(graph, S4)


def test_non_square_kernel_is_refused():
    import dataclasses

    import numpy as np

    from bitmill.compiler.ir import Graph

    graph = _conv_net(c=2, out_ch=4, k=3)
    conv = graph.nodes[1]
    flat = dataclasses.replace(conv, weight=np.ones((4, 2, 1, 3), np.int64), padding=0)
    out = flat.infer_shape([graph.nodes[0].out])
    flat = dataclasses.replace(flat, out=TensorType(out, flat.out.bits, flat.out.encoding))
    with pytest.raises(LoweringError, match="conv has a 1x3 kernel; the accelerator runs square kernels"):
        lower(Graph((graph.nodes[0], flat), "conv", "k13"), TINY)


def test_add_of_flat_tensors_is_refused():
    from bitmill.compiler.ir import Add, Graph, Input

    t = TensorType((8,), 8, Encoding.UNSIGNED)
    nodes = (Input("input", (), t),
             Flatten("f1", ("input",), t),
             Add("add", ("input", "f1"), t, 1, 1, 0, 0, True))
    with pytest.raises(LoweringError, match=r"add: the vector unit runs add on \(C, H, W\) tensors"):
        lower(Graph(nodes, "add", "flat_add"), TINY)
