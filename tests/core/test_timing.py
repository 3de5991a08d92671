import pytest

from bitmill import timing


@pytest.mark.parametrize("lanes,stages", [(1, 1), (2, 1), (4, 1), (8, 2), (32, 3), (64, 3), (256, 4)])
def test_adder_tree_stages(lanes, stages):
    assert timing.adder_tree_stages(lanes) == stages


def test_tile_cycles_formula():
    # 70 lanes of reduction on K=32 lanes: 3 chunks
    assert timing.tile_cycles("bitserial", 32, 70, 3, 5) == 3 * 15 + (3 + 3 + 1 + 1)
    assert timing.tile_cycles("bitparallel", 32, 70, 3, 5) == 3 + (3 + 1 + 3 + 1 + 1)
    assert timing.tile_cycles("bitserial", 8, 8, 1, 1) == 1 + 7
    # runtime precision: cycles scale with w_bits * a_bits
    base = timing.tile_cycles("bitserial", 64, 4608, 1, 1) - timing.pipeline_latency("bitserial", 64)
    for w in range(1, 9):
        for a in range(1, 9):
            c = timing.tile_cycles("bitserial", 64, 4608, w, a)
            assert c - timing.pipeline_latency("bitserial", 64) == base * w * a


def test_bad_arguments():
    with pytest.raises(ValueError, match="w_bits must be in 1..8, not 9"):
        timing.tile_cycles("bitserial", 8, 8, 9, 1)
    with pytest.raises(ValueError, match="family must be one of"):
        timing.pipeline_latency("systolic", 8)
    with pytest.raises(ValueError, match="k_total must be a positive integer"):
        timing.tile_cycles("bitparallel", 8, 0, 1, 1)


@pytest.mark.parametrize("name,channels,kernel,in_c,in_w,w_bits,a_bits,expected", [
    ("ulx3s-85f", 64, 3, 64, 8, 4, 4, "staging"), ("ulx3s-85f", 64, 3, 16, 28, 8, 8, "staging"),
    ("ulx3s-85f", 8, 1, 16, 14, 1, 1, "readout"), ("pynq-z2", 32, 3, 32, 16, 2, 2, "staging"),
    ("tiny-bitparallel", 16, 3, 8, 8, 8, 8, "staging"), ("sim-4x4-k16", 4, 1, 4, 8, 1, 1, "staging"),
    ("sim-4x4-k16", 64, 3, 64, 8, 4, 4, "array"), ("sim-4x4-k16", 64, 1, 256, 7, 8, 2, "array")])
def test_gemm_limit_is_the_steady_state_step_of_gemm_cycles(name, channels, kernel, in_c, in_w, w_bits, a_bits,
                                                            expected):
    from bitmill.config import AccelConfig
    cfg = AccelConfig.resolve(name)
    rows = min(cfg.rows, channels)
    step = {"array": timing.tile_cycles(cfg.pe_family, cfg.lanes, kernel * kernel * in_c, w_bits, a_bits) + timing.TILE_DONE,
            "staging": timing.act_stage_cycles(cfg, kernel, in_c, in_w, a_bits),
            "readout": rows * cfg.cols + 1}
    limit = timing.gemm_limit(cfg, channels, kernel, in_c, in_w, w_bits, a_bits)
    assert limit == expected and step[limit] == max(step.values())
    # one more pixel tile in a long GEMM of one channel tile costs exactly the limiting step
    args = (kernel, in_c, in_w, w_bits, a_bits)
    grow = timing.gemm_cycles(cfg, 12 * cfg.cols, rows, *args) - timing.gemm_cycles(cfg, 11 * cfg.cols, rows, *args)
    assert grow == step[limit]
