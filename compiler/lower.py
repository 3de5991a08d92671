"""Lowering: `Graph` + `AccelConfig` -> `Schedule` (tile sizes, bands, buffer plan, traffic).

Conv and dense layers become GEMMs on the R x C array (output channels along rows, output
pixels along columns, ``K = kh*kw*C_in`` reduced in the PEs); residual adds and pooling run on
the vector unit; a flatten of a ``(C, 1, 1)`` tensor is a free re-reading of the same bytes.
Every buffer is double-buffered, so one slot is half the configured size. A layer that cannot
be mapped raises `LoweringError` with the numbers.
"""

from __future__ import annotations

from dataclasses import replace

from bitmill import timing
from bitmill.config import AccelConfig
from bitmill.errors import BitmillError, LoweringError
from bitmill.geometry import Band, Window, band_count, bands as split_bands, nhwc_rows
from bitmill.compiler import cost
from bitmill.compiler.ir import Add, Conv2d, Dense, Flatten, GlobalAvgPool, Graph, MaxPool
from bitmill.packing import PARAM_RECORD, pitch
from bitmill.isa import PARAM_SLOT_BYTES, VecKind, pass_rows, psum_width
from bitmill.numerics import accumulator_bits
from bitmill.compiler.schedule import BufferUse, LayerSchedule, Schedule, Traffic


def _kib(n: int) -> str:
    """A buffer size for a message: bytes below 1 KiB, KiB with one decimal above."""
    return f"{n} bytes" if n < 1024 else f"{n / 1024:.1f} KiB"


def window_of(node, in_shape: tuple[int, ...]) -> Window:
    """The input rows each output row of ``node`` reads (the whole input for a global pool)."""
    if isinstance(node, Conv2d):
        return Window(node.weight.shape[2], node.stride, node.padding)
    if isinstance(node, MaxPool):
        return Window(node.kernel, node.stride, node.padding)
    if isinstance(node, GlobalAvgPool):
        return Window(nhwc_rows(in_shape)[0])
    return Window()


def layer_bands(node, in_shape: tuple[int, ...], band_rows: int) -> tuple[Band, ...]:
    """The bands of ``band_rows`` output rows ``node`` runs in, with the input rows each reads."""
    return split_bands(nhwc_rows(node.out.shape)[0], band_rows, window_of(node, in_shape),
                       nhwc_rows(in_shape)[0])


def _band_rows(name: str, out_h: int, in_pitch: int, out_pitch: int, window: Window,
               in_h: int, cfg: AccelConfig, operands: int = 1, out_w: int = 0) -> int:
    """Output rows per band: inputs and outputs fit one buffer slot; among the sizes that fit,
    the fewest array tiles (pixels of each band fill whole array columns), then the fewest bands."""
    act_slot, out_slot = cfg.act_buffer_bytes // 2, cfg.out_buffer_bytes // 2
    best = 0
    for b in range(1, out_h + 1):
        if operands * window.slot_rows(b, in_h) * in_pitch > act_slot or b * out_pitch > out_slot:
            break
        best = b
    if best == 0:
        need_a = operands * window.slot_rows(1, in_h) * in_pitch
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
                band_count(out_h, b))
    return min(range(max(1, best // 2), best + 1), key=lambda b: (*tiles(b), -b))


def _check_gemm(node: Conv2d | Dense, cfg: AccelConfig, a_bits: int, a_enc) -> None:
    if isinstance(node, Conv2d) and node.weight.shape[2] != node.weight.shape[3]:
        raise LoweringError(f"{node.name} has a {node.weight.shape[2]}x{node.weight.shape[3]} kernel; "
                            f"the accelerator runs square kernels (kh = kw)")
    if not cfg.supports(node.w_bits, a_bits):
        raise LoweringError(f"{node.name} runs at W{node.w_bits}A{a_bits}; {cfg.name} supports weights "
                            f"{cfg.weight_bits[0]}..{cfg.weight_bits[1]} and activations "
                            f"{cfg.act_bits[0]}..{cfg.act_bits[1]} bits")
    o, k = node.weight.shape[0], node.k
    if pitch(k, node.w_bits) > cfg.weight_buffer_bytes // 2:
        raise LoweringError(f"{node.name} needs {_kib(2 * pitch(k, node.w_bits))} of weight buffer for "
                            f"one output channel ({k} weights at {node.w_bits} bits, double-buffered), "
                            f"the config has {_kib(cfg.weight_buffer_bytes)}")
    if o * PARAM_RECORD > PARAM_SLOT_BYTES:
        raise LoweringError(f"{node.name} has {o} output channels; a requant table slot holds "
                            f"{PARAM_SLOT_BYTES // PARAM_RECORD}")
    need = accumulator_bits(node.k, node.w_bits, node.w_enc, a_bits, a_enc)
    if need > cfg.acc_bits and (cfg.k_passes == 1 or need > psum_width(cfg)):
        raise LoweringError(f"{node.name} needs {need}-bit accumulators ({node.k} terms at "
                            f"W{node.w_bits}A{a_bits}); {cfg.name} has acc_bits {cfg.acc_bits}")
    kernel = node.weight.shape[2] if node.weight.ndim == 4 else 1
    try:
        pass_rows(cfg, kernel, node.weight.shape[1])        # (out, in_c[, kh, kw])
    except BitmillError as exc:
        raise LoweringError(f"{node.name}: {exc}: choose a config with more acc_bits, lanes, "
                            f"buffer or k_passes") from None


def tile_rows(cfg: AccelConfig, out_c: int, w_pitch: int) -> int:
    """Output channels per channel tile: the array's rows (or ``out_c`` if fewer), fewer where
    that many rows of weights (``w_pitch`` bytes each) do not fit one weight slot; the array
    then runs those tiles with rows idle."""
    return max(1, min(cfg.rows, out_c, (cfg.weight_buffer_bytes // 2) // w_pitch))


def _gemm(node: Conv2d | Dense, in_type, cfg: AccelConfig) -> LayerSchedule:
    """Bands of output rows, channel tiles of `tile_rows` channels; the whole layer's weights stay
    in one weight slot when they fit (loaded once), else one channel tile per slot load."""
    in_shape, a_bits = in_type.shape, in_type.bits
    _check_gemm(node, cfg, a_bits, in_type.encoding)
    o, k = node.weight.shape[0], node.k
    w_pitch = pitch(k, node.w_bits)
    layer_w = o * w_pitch
    resident = layer_w <= cfg.weight_buffer_bytes // 2
    in_rows, in_codes = nhwc_rows(in_shape)
    out_rows, out_codes = nhwc_rows(node.out.shape)
    window = window_of(node, in_shape)
    in_p, out_p = pitch(in_codes, a_bits), pitch(out_codes, node.out.bits)
    out_w = 1 if isinstance(node, Dense) else node.out.shape[2]
    band = _band_rows(node.name, out_rows, in_p, out_p, window, in_rows, cfg, out_w=out_w)
    bands = layer_bands(node, in_shape, band)
    rows = tile_rows(cfg, o, w_pitch)
    tiles = -(-o // rows)
    w_loads = (layer_w,) if resident else tuple(
        min(rows, o - t * rows) * w_pitch for _ in bands for t in range(tiles))
    ls = LayerSchedule(
        name=node.name, op=node.op, kind="gemm", band_rows=band, bands=len(bands),
        channel_tiles=tiles, array_tiles=tiles * sum(-(-b.rows * out_w // cfg.cols) for b in bands),
        loop_order=("weights resident > " if resident else "") + "band > channel tile > pixel tile",
        k_total=k, w_bits=node.w_bits, a_bits=a_bits, macs=o * k * out_rows * out_w,
        traffic=Traffic(weight=sum(w_loads), act=sum(b.in_rows for b in bands) * in_p,
                        param=o * PARAM_RECORD, out=out_rows * out_p),
        buffer_use=BufferUse(weight=layer_w if resident else rows * w_pitch,
                             act=window.slot_rows(band, in_rows) * in_p, out=band * out_p),
        weights_resident=resident, tile_rows=rows)
    geometry = ((1, in_shape[0], 1, o) if isinstance(node, Dense)
                else (node.weight.shape[2], in_shape[0], in_shape[2], o))
    work = cost.gemm_work(cfg, bands, out_w, in_p, out_p, geometry, node.w_bits, a_bits,
                          ls.gemm_split, w_loads, o * PARAM_RECORD, rows)
    return replace(ls, estimate=cost.estimate(work, cfg))


def _vec_band_rows(node, in_shape, in_bits, out_p: int, cfg: AccelConfig) -> int:
    """Output rows per band of a vector layer (a global pool reads its whole input at once)."""
    in_rows, in_codes = nhwc_rows(in_shape)
    if isinstance(node, GlobalAvgPool):
        need = in_rows * pitch(in_codes, in_bits[0])
        if need > cfg.act_buffer_bytes // 2:
            raise LoweringError(f"{node.name} needs {_kib(2 * need)} of activation buffer "
                                f"for the whole input, the config has {_kib(cfg.act_buffer_bytes)}")
        return 1
    in_p = max(pitch(in_codes, b) for b in in_bits)
    return _band_rows(node.name, nhwc_rows(node.out.shape)[0], in_p, out_p, window_of(node, in_shape),
                      in_rows, cfg, len(node.inputs))


def _vec_cycles(node, bands: tuple[Band, ...], in_shape, a_bits: int, cfg: AccelConfig) -> tuple[int, ...]:
    """Cycles of the VEC instruction of every band on the vector unit (the SETUP fields that
    code generation writes: the layer's geometry, operand A's bits)."""
    kind = {Add: VecKind.ADD, MaxPool: VecKind.MAXPOOL, GlobalAvgPool: VecKind.AVGPOOL}[type(node)]
    out_c, out_w = node.out.shape[0], node.out.shape[2]
    geometry = (getattr(node, "kernel", 1), getattr(node, "stride", 1), getattr(node, "padding", 0),
                in_shape[1], in_shape[2], in_shape[0], out_w, out_c)
    return tuple(timing.vec_unit_cycles(cfg, kind.value, b.rows * out_w * out_c, *geometry, a_bits,
                                        node.out.bits) for b in bands)


def _vec(node, in_shapes, in_bits, cfg: AccelConfig) -> LayerSchedule:
    in_rows, in_codes = nhwc_rows(in_shapes[0])
    out_rows, out_codes = nhwc_rows(node.out.shape)
    out_p = pitch(out_codes, node.out.bits)
    band = _vec_band_rows(node, in_shapes[0], in_bits, out_p, cfg)
    bands = layer_bands(node, in_shapes[0], band)
    in_pitches = tuple(pitch(in_codes, b) for b in in_bits)
    params = (2 if isinstance(node, Add) else node.out.shape[0] if isinstance(node, GlobalAvgPool)
              else 0) * PARAM_RECORD
    slot_rows = window_of(node, in_shapes[0]).slot_rows(band, in_rows)
    work = cost.vec_work(cfg, bands, in_pitches, out_p,
                         _vec_cycles(node, bands, in_shapes[0], in_bits[0], cfg), params)
    return LayerSchedule(
        name=node.name, op=node.op, kind="vec", band_rows=band, bands=len(bands), loop_order="band",
        traffic=Traffic(act=sum(b.in_rows for b in bands) * sum(in_pitches), param=params,
                        out=out_rows * out_p),
        buffer_use=BufferUse(act=len(in_bits) * slot_rows * max(in_pitches), out=band * out_p),
        estimate=cost.estimate(work, cfg))


def lower(graph: Graph, cfg: AccelConfig) -> Schedule:
    """Tile every layer of ``graph`` for ``cfg``."""
    graph.verify()
    types = graph.types()
    layers = []
    for node in graph.nodes[1:]:
        ins = [types[i] for i in node.inputs]
        if isinstance(node, (Conv2d, Dense)):
            layers.append(_gemm(node, ins[0], cfg))
        elif isinstance(node, (Add, MaxPool, GlobalAvgPool)):
            if any(len(t.shape) != 3 for t in ins):
                raise LoweringError(f"{node.name}: the vector unit runs {node.op} on (C, H, W) tensors, "
                                    f"not on {' and '.join(str(t.shape) for t in ins)}")
            layers.append(_vec(node, [t.shape for t in ins], [t.bits for t in ins], cfg))
        elif isinstance(node, Flatten):
            if len(ins[0].shape) == 3 and ins[0].shape[1:] != (1, 1):
                raise LoweringError(f"{node.name} flattens a {ins[0].shape} tensor; the accelerator "
                                    f"stores NHWC and flattens only (C, 1, 1) tensors")
            layers.append(LayerSchedule(name=node.name, op=node.op, kind="alias", band_rows=1, bands=0))
        else:
            raise LoweringError(f"{node.name}: no lowering for op {node.op!r}")
    return Schedule(graph, cfg, tuple(layers))
