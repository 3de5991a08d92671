"""Lowering: `Graph` + `AccelConfig` -> `Schedule` (tile sizes, bands, buffer plan, traffic).

Conv and dense layers become GEMMs on the R x C array (output channels along rows, output
pixels along columns, ``K = kh*kw*C_in`` reduced in the PEs); residual adds and pooling run on
the vector unit; a flatten of a ``(C, 1, 1)`` tensor is a free re-reading of the same bytes.
Every buffer is double-buffered, so one slot is half the configured size. A layer that cannot
be mapped raises `LoweringError` with the numbers.
"""

from __future__ import annotations

from bitmill.config import AccelConfig
from bitmill.errors import LoweringError
from bitmill.compiler import cost
from bitmill.compiler.ir import Add, Conv2d, Dense, Flatten, GlobalAvgPool, Graph, MaxPool
from bitmill.packing import PARAM_RECORD, pitch
from bitmill.isa import PARAM_SLOT_BYTES
from bitmill.compiler.schedule import LayerSchedule, Schedule


def _kib(n: int) -> str:
    return f"{n / 1024:.1f} KiB"


def _rows_of(shape) -> tuple[int, int]:
    """(rows, codes per row) of a tensor stored NHWC."""
    return (1, shape[0]) if len(shape) == 1 else (shape[1], shape[2] * shape[0])


def _in_rows(out_rows: int, kernel: int, stride: int, in_h: int) -> int:
    return min(in_h, (out_rows - 1) * stride + kernel)


def _band_rows(name: str, out_h: int, in_pitch: int, out_pitch: int, kernel: int, stride: int,
               in_h: int, cfg: AccelConfig, operands: int = 1, out_w: int = 0) -> int:
    """Output rows per band: inputs and outputs fit one buffer slot; among the sizes that fit,
    the fewest array tiles (pixels of each band fill whole array columns), then the fewest bands."""
    act_slot, out_slot = cfg.act_buffer_bytes // 2, cfg.out_buffer_bytes // 2
    best = 0
    for b in range(1, out_h + 1):
        if operands * _in_rows(b, kernel, stride, in_h) * in_pitch > act_slot or b * out_pitch > out_slot:
            break
        best = b
    if best == 0:
        need_a = operands * _in_rows(1, kernel, stride, in_h) * in_pitch
        if need_a > act_slot:
            raise LoweringError(f"{name} needs {_kib(2 * need_a)} of activation buffer for one output "
                                f"row (double-buffered), the config has {_kib(cfg.act_buffer_bytes)}")
        raise LoweringError(f"{name} needs {_kib(2 * out_pitch)} of output buffer for one output row "
                            f"(double-buffered), the config has {_kib(cfg.out_buffer_bytes)}")
    if not out_w:
        return best

    def tiles(b: int) -> tuple[int, int]:
        full, rest = divmod(out_h, b)
        return (full * -(-b * out_w // cfg.cols) + (-(-rest * out_w // cfg.cols) if rest else 0),
                -(-out_h // b))
    return min(range(max(1, best // 2), best + 1), key=lambda b: (*tiles(b), -b))


def _check_gemm(node: Conv2d | Dense, cfg: AccelConfig, a_bits: int) -> None:
    if not cfg.supports(node.w_bits, a_bits):
        raise LoweringError(f"{node.name} runs at W{node.w_bits}A{a_bits}; {cfg.name} supports weights "
                            f"{cfg.weight_bits[0]}..{cfg.weight_bits[1]} and activations "
                            f"{cfg.act_bits[0]}..{cfg.act_bits[1]} bits")
    o, k = node.weight.shape[0], node.k
    w_slot = min(cfg.rows, o) * pitch(k, node.w_bits)
    if w_slot > cfg.weight_buffer_bytes // 2:
        raise LoweringError(f"{node.name} needs {_kib(2 * w_slot)} of weight buffer ({min(cfg.rows, o)} "
                            f"rows x {k} weights at {node.w_bits} bits, double-buffered), the config "
                            f"has {_kib(cfg.weight_buffer_bytes)}")
    if o * PARAM_RECORD > PARAM_SLOT_BYTES:
        raise LoweringError(f"{node.name} has {o} output channels; a requant table slot holds "
                            f"{PARAM_SLOT_BYTES // PARAM_RECORD}")


def _gemm(node: Conv2d | Dense, in_shape, cfg: AccelConfig, a_bits: int) -> LayerSchedule:
    """Bands of output rows, channel tiles of ``rows`` channels; the whole layer's weights stay
    in one weight slot when they fit (loaded once), else one channel tile per slot load."""
    _check_gemm(node, cfg, a_bits)
    o, k = node.weight.shape[0], node.k
    layer_w = o * pitch(k, node.w_bits)
    resident = layer_w <= cfg.weight_buffer_bytes // 2
    in_rows, in_codes = _rows_of(in_shape)
    out_rows, out_codes = _rows_of(node.out.shape)
    kernel = node.weight.shape[2] if isinstance(node, Conv2d) else 1
    stride = getattr(node, "stride", 1)
    in_p, out_p = pitch(in_codes, a_bits), pitch(out_codes, node.out.bits)
    out_w = 1 if isinstance(node, Dense) else node.out.shape[2]
    band = _band_rows(node.name, out_rows, in_p, out_p, kernel, stride, in_rows, cfg, out_w=out_w)
    bands = -(-out_rows // band)
    tiles = -(-o // cfg.rows)
    act_bytes = sum(_band_in(y, min(out_rows, y + band), kernel, stride, getattr(node, "padding", 0),
                             in_rows) * in_p for y in range(0, out_rows, band))
    array_tiles = tiles * sum(-(-(min(out_rows, y + band) - y) * out_w // cfg.cols)
                              for y in range(0, out_rows, band))
    ls = LayerSchedule(
        node.name, node.op, "gemm", band, bands, tiles, array_tiles,
        ("weights resident > " if resident else "") + "band > channel tile > pixel tile", k,
        node.w_bits, a_bits, o * k * out_rows * out_w,
        layer_w * (1 if tiles == 1 or resident else bands), act_bytes, o * PARAM_RECORD,
        out_rows * out_p, layer_w if resident else min(cfg.rows, o) * pitch(k, node.w_bits),
        _in_rows(band, kernel, stride, in_rows) * in_p, band * out_p, weights_resident=resident)
    return cost.with_estimate(ls, cfg, out_w)


def _band_in(y0: int, y1: int, kernel: int, stride: int, pad: int, in_h: int) -> int:
    r0 = max(0, y0 * stride - pad)
    r1 = min(in_h, (y1 - 1) * stride - pad + kernel)
    return r1 - r0


def _vec(node, in_shapes, in_bits, cfg: AccelConfig) -> LayerSchedule:
    out_rows, out_codes = _rows_of(node.out.shape)
    in_rows, in_codes = _rows_of(in_shapes[0])
    out_p = pitch(out_codes, node.out.bits)
    if isinstance(node, GlobalAvgPool):
        kernel, stride, operands, band = in_rows, 1, 1, None
        in_p = pitch(in_codes, in_bits[0])
        if in_rows * in_p > cfg.act_buffer_bytes // 2:
            raise LoweringError(f"{node.name} needs {_kib(2 * in_rows * in_p)} of activation buffer "
                                f"for the whole input, the config has {_kib(cfg.act_buffer_bytes)}")
        band = 1
    else:
        kernel, stride = (node.kernel, node.stride) if isinstance(node, MaxPool) else (1, 1)
        operands = len(node.inputs)
        in_p = max(pitch(in_codes, b) for b in in_bits)
        band = _band_rows(node.name, out_rows, in_p, out_p, kernel, stride, in_rows, cfg, operands)
    bands = -(-out_rows // band)
    act = sum(pitch(in_codes, b) for b in in_bits) * in_rows
    params = (2 if isinstance(node, Add) else node.out.shape[0] if isinstance(node, GlobalAvgPool)
              else 0) * PARAM_RECORD
    ls = LayerSchedule(node.name, node.op, "vec", band, bands, 0, 0, "band", 0, 0, 0, 0, 0, act,
                       params, out_rows * out_p, 0, operands * _in_rows(band, kernel, stride, in_rows) * in_p,
                       band * out_p)
    return cost.with_estimate(ls, cfg, 0)


def lower(graph: Graph, cfg: AccelConfig) -> Schedule:
    """Tile every layer of ``graph`` for ``cfg``."""
    graph.verify()
    types = graph.types()
    layers = []
    for node in graph.nodes[1:]:
        ins = [types[i] for i in node.inputs]
        if isinstance(node, (Conv2d, Dense)):
            layers.append(_gemm(node, ins[0].shape, cfg, ins[0].bits))
        elif isinstance(node, (Add, MaxPool, GlobalAvgPool)):
            layers.append(_vec(node, [t.shape for t in ins], [t.bits for t in ins], cfg))
        elif isinstance(node, Flatten):
            if len(ins[0].shape) == 3 and ins[0].shape[1:] != (1, 1):
                raise LoweringError(f"{node.name} flattens a {ins[0].shape} tensor; the accelerator "
                                    f"stores NHWC and flattens only (C, 1, 1) tensors")
            layers.append(LayerSchedule(node.name, node.op, "alias", 1, 0, 0, 0, "-", 0, 0, 0, 0,
                                        0, 0, 0, 0, 0, 0, 0, 0))
        else:
            raise LoweringError(f"{node.name}: no lowering for op {node.op!r}")
    return Schedule(graph, cfg, tuple(layers), {})
