"""The accelerator's timing model, one definition for the RTL (`bitmill.hw`), the compiler's
cost model and the cycle-accurate simulator: the cycles of one GEMM tile on the MAC array,
then the cycles of every instruction.

## Tiles

A tile multiplies ``R x K_total`` weights by ``K_total x C`` activations on an ``R x C`` array
whose PEs each reduce ``K`` lanes per cycle. ``K_total`` is processed in
``chunks = ceil(K_total / K)`` lane groups (the last one zero-padded).

* ``bitserial``: each cycle a PE ANDs one K-lane weight bit-plane with one K-lane activation
  bit-plane and adds the weighted popcount, so a chunk takes ``w_bits * a_bits`` cycles.
  Plane pairs are visited by descending significance ``i + j`` (MSB first): the accumulator
  doubles when the significance drops by one, so only a 1-bit shift is needed.
* ``bitparallel``: each cycle a PE multiplies K full-width pairs, so a chunk takes 1 cycle.

Every PE works in parallel, so the count does not depend on R or C::

    tile_cycles = chunks * passes + pipeline_latency(family, K)

where ``passes = w_bits * a_bits`` (bitserial) or ``1`` (bitparallel) and the pipeline latency
is the fill/drain of the operand, popcount/adder-tree, term and accumulate stages below. The RTL must
take exactly this many cycles from tile start to results valid; tests check it.

## Instructions

* LOAD / STORE: `load_cycles` / `store_cycles` (the DMA engines with the memory model:
  overhead + ``mem_latency`` + one cycle per memory beat or slot word).
* SETUP: 1 cycle (register writes).
* GEMM: `gemm_cycles`, the GEMM unit's phases: the pixel divider, then per channel tile the
  requant records and the weight staging, then the pixel tiles streamed: the activation
  staging of tile ``n+1`` (double-buffered), the array running tile ``n`` and the readout of
  tile ``n-1``'s ``R' x C'`` valid results from shadow registers, one per cycle, overlap; a
  tile beyond the engine runs as partial-sum passes of whole kernel rows summed in the shadow
  registers; at the end the last result's way through the requantizer and the code packer.
* VEC: `vec_unit_cycles`, the vector unit's element loop (ADD, MAXPOOL, AVGPOOL), its
  requantizer and the code packer's drain.

The three queues (load, compute, store) run in order; an instruction starts when its queue is
free and every token it pops has been pushed (a token is available from the end of the pushing
instruction).
"""

from __future__ import annotations

import math

from bitmill.config import PE_FAMILIES, AccelConfig
from bitmill.errors import ConfigError
from bitmill.isa import pass_rows
from bitmill.precision import MAX_RUNTIME_BITS

FETCH_STAGES = 3        # operand fetch: buffer address, block RAM read data, broadcast register
TERM_STAGES = 1         # signed term: +/-(pos - sub), one carry chain
ACCUMULATE_STAGES = 1   # accumulate: acc = (shift ? 2*acc : acc) + term


def _check_family(family: str) -> str:
    if family not in PE_FAMILIES:
        raise ValueError(f"family must be one of {', '.join(PE_FAMILIES)}, not {family!r}")
    return family


def multiply_stages(family: str) -> int:
    """Registers after the lane products: one for the bit-parallel multipliers; none for the
    bit-serial AND, which the popcount's first level absorbs."""
    return 1 if _check_family(family) == "bitparallel" else 0


def adder_tree_stages(lanes: int) -> int:
    """Pipeline registers in a popcount / adder tree over ``lanes`` inputs: one register
    after every two adder levels."""
    if lanes < 1:
        raise ValueError(f"lanes must be a positive integer, not {lanes}")
    levels = math.ceil(math.log2(lanes)) if lanes > 1 else 0
    return max(1, math.ceil(levels / 2))


def pe_stages(family: str, lanes: int) -> int:
    """Cycles of a PE from its operands to its accumulator: multiply (`multiply_stages`),
    adder tree (`adder_tree_stages`), signed term (`TERM_STAGES`), accumulate
    (`ACCUMULATE_STAGES`)."""
    return multiply_stages(family) + adder_tree_stages(lanes) + TERM_STAGES + ACCUMULATE_STAGES


def pipeline_latency(family: str, lanes: int) -> int:
    """Fill/drain cycles of one tile: operand fetch (`FETCH_STAGES`) then the PE
    (`pe_stages`)."""
    return FETCH_STAGES + pe_stages(family, lanes)


def passes_per_chunk(family: str, w_bits: int, a_bits: int) -> int:
    """Cycles a PE spends on one K-lane chunk."""
    for name, bits in (("w_bits", w_bits), ("a_bits", a_bits)):
        if not 1 <= bits <= MAX_RUNTIME_BITS:
            raise ValueError(f"{name} must be in 1..{MAX_RUNTIME_BITS}, not {bits}")
    return w_bits * a_bits if family == "bitserial" else 1


def tile_cycles(family: str, lanes: int, k_total: int, w_bits: int, a_bits: int) -> int:
    """Cycles of one GEMM tile from start to all accumulators valid."""
    if k_total < 1:
        raise ValueError(f"k_total must be a positive integer, not {k_total}")
    chunks = -(-k_total // lanes)
    return chunks * passes_per_chunk(family, w_bits, a_bits) + pipeline_latency(family, lanes)


SETUP_CYCLES = 1


def peak_macs_per_cycle(cfg: AccelConfig, w_bits: int, a_bits: int) -> float:
    """MACs per cycle of the whole array at this precision (ideal, no padding)."""
    per_pe = cfg.lanes / (w_bits * a_bits if cfg.pe_family == "bitserial" else 1)
    return cfg.rows * cfg.cols * per_pe


# DMA (LOAD/STORE)
#
# The DMA engines (`bitmill.hw.dma`) with the spec's memory model (latency L, one beat per
# cycle, bursts back to back): B = mem_bytes_per_cycle, sa = dram_addr % B, da = offset % B.
# The address handshakes start the cycle after `start`, one burst per cycle, so the data
# flows without a bubble; LOAD registers its buffer writes, STORE its W beats and its finish.

LOAD_OVERHEAD = 2       # the AR register, the buffer write register
STORE_OVERHEAD = 3      # the read port, the W register, the finish register after the last B
DMA_ERROR_CYCLES = 2    # a LOAD/STORE refused for its operands or address range


def dma_beats(cfg: AccelConfig, dram_addr: int, nbytes: int) -> int:
    """Full-width bus beats covering DRAM bytes ``dram_addr .. dram_addr+nbytes-1``:
    ``ceil((dram_addr % B + nbytes) / B)``."""
    b = cfg.mem_bytes_per_cycle
    return -(-(dram_addr % b + nbytes) // b)


def load_cycles(cfg: AccelConfig, dram_addr: int, offset: int, nbytes: int) -> int:
    """Cycles of a LOAD of ``nbytes`` DRAM bytes from ``dram_addr`` to slot byte ``offset``::

        LOAD_OVERHEAD + L + ceil((da + nbytes) / B) + (1 if da < sa else 0)

    one cycle per slot word written; when ``da < sa`` the first slot word needs the second
    DRAM beat, so the writes start one beat later."""
    b = cfg.mem_bytes_per_cycle
    sa, da = dram_addr % b, offset % b
    return LOAD_OVERHEAD + cfg.mem_latency + -(-(da + nbytes) // b) + int(da < sa)


def store_cycles(cfg: AccelConfig, dram_addr: int, nbytes: int) -> int:
    """Cycles of a STORE of slot bytes ``0 .. nbytes-1`` to DRAM ``dram_addr``::

        STORE_OVERHEAD + L + ceil((sa + nbytes) / B)

    (the last W beat, then the B response L cycles later, then the finish)."""
    return STORE_OVERHEAD + cfg.mem_latency + dma_beats(cfg, dram_addr, nbytes)

# ---- requant unit and output code packer (bitmill.hw.requant, bitmill.hw.packer) ----------
REQUANT_LATENCY = 10   # requant pipeline: an input in cycle t gives its value in t + 10
PACKER_DRAIN = 7       # code packer: the last code accepted in t has its last write in t + 7


# ---- program preload ----------------------------------------------------------------------
INSTR_BYTES = 16         # `bitmill.isa.INSTR_BITS` / 8
PRELOAD_OVERHEAD = 1     # the queues read their first instruction the cycle after the last beat


def check_fetch_width(cfg: AccelConfig) -> int:
    """Bytes per memory beat (`AccelConfig` keeps them a power of two of at most one
    instruction, so whole beats make whole instructions)."""
    b = cfg.mem_bytes_per_cycle
    if INSTR_BYTES % b:
        raise ConfigError(f"{cfg.name}: mem_bytes_per_cycle must divide {INSTR_BYTES}, not {b}")
    return b


def preload_cycles(cfg: AccelConfig, instructions: int) -> int:
    """Cycles from START to the first cycle in which the queues may start: the program's
    bursts are requested from cycle 0, their beats arrive ``mem_latency`` cycles later, one
    per cycle, and the queues read their first instruction in the cycle after the last beat."""
    if instructions < 1:
        raise ValueError(f"instructions must be a positive integer, not {instructions}")
    beats = instructions * INSTR_BYTES // check_fetch_width(cfg)
    return cfg.mem_latency + beats + PRELOAD_OVERHEAD

# ---- operand staging (`bitmill.hw.staging`): packed codes in a buffer slot -> engine words ----
#
# A stager walks the tile chunk by chunk (K lanes), and inside a chunk vector by vector (a
# weight row or an activation column); a vector's K codes of a chunk are read as ``pieces``
# contiguous runs of packed codes, each in exactly ``words`` buffer reads of ``W = 8 * B`` bits
# (the most any piece can touch at any alignment the geometry allows). The chunk's engine words
# (``bits`` planes bit-serial, one bit-parallel) leave while the next chunk is read; reading
# waits ``stall`` cycles per later chunk when emitting takes longer than one vector's reads.

STAGE_PIPE = 4          # last read -> first engine word: align (read data), deposit, collect, emit
WEIGHT_SETUP_CYCLES = 4  # start -> first read - 1: row pitch, alignment, words per piece
ACT_SETUP_EXTRA = 3     # after the divider: (y, x) -> input offsets -> bit addresses


def _lowbit(value: int) -> int:
    return value & -value


def stage_words(cfg: AccelConfig, piece_codes: int, bits: int, strides: tuple[int, ...],
                word_bytes: int | None = None) -> int:
    """Buffer reads per piece: ``ceil((W - g + piece_codes * bits) / W)`` where ``W`` is
    ``8 * word_bytes`` (default: the memory beat) and ``g`` (the alignment, a power of two <= W)
    is the lowest set bit of ``W`` or any of ``strides`` (the bit steps between piece starts)."""
    w = 8 * (cfg.mem_bytes_per_cycle if word_bytes is None else word_bytes)
    g = w
    for stride in strides:
        g |= stride
    g = _lowbit(g)
    return -(-(w - g + piece_codes * bits) // w)


def emit_words(cfg: AccelConfig, bits: int) -> int:
    """Engine words per chunk: one per bit-plane (bitserial) or one (bitparallel)."""
    return bits if cfg.pe_family == "bitserial" else 1


def _stream_cycles(cfg: AccelConfig, vectors: int, k_total: int, pieces: int, words: int,
                   bits: int) -> int:
    chunks = -(-k_total // cfg.lanes)
    emit = emit_words(cfg, bits)
    stall = max(0, emit - pieces * words)
    return chunks * vectors * pieces * words + (chunks - 1) * stall + emit + STAGE_PIPE


def weight_stage_cycles(cfg: AccelConfig, k_total: int, w_bits: int, row_k: int | None = None,
                        k0: int = 0) -> int:
    """Cycles of `WeightStager` from ``start`` to ``finish`` + 1, staging codes ``k0 ..
    k0+k_total`` of rows of ``row_k`` codes (default: the whole row, ``k_total``)::

        WEIGHT_SETUP_CYCLES + chunks*R*words + (chunks-1)*stall + E + STAGE_PIPE

    with ``chunks = ceil(k_total/K)``, ``E = w_bits`` (bitserial) or 1, ``words =
    stage_words(min(K, k_total), w_bits)`` for piece starts on multiples of the row pitch
    ``8*ceil(row_k*w_bits/8)``, of ``K*w_bits`` and of ``k0*w_bits``, and ``stall = max(0, E -
    words)``."""
    passes_per_chunk(cfg.pe_family, w_bits, 1)
    pitch_bits = 8 * -(-(k_total if row_k is None else row_k) * w_bits // 8)
    words = stage_words(cfg, min(cfg.lanes, k_total), w_bits,
                        (pitch_bits, cfg.lanes * w_bits, k0 * w_bits))
    return WEIGHT_SETUP_CYCLES + _stream_cycles(cfg, cfg.rows, k_total, 1, words, w_bits)


def act_divide_cycles(cfg: AccelConfig) -> int:
    """Cycles of the pixel divider ``(y, x) = divmod(p, out_w)``: one per quotient bit."""
    return cfg.max_feature_size.bit_length()


def act_pieces(cfg: AccelConfig, kernel: int, in_c: int, rows: int | None = None) -> int:
    """Pieces (runs of one kernel row) a K-lane chunk of an im2col column of ``rows`` kernel
    rows (default ``kernel``) can span: 1 when ``K`` divides ``L = kernel*in_c``, else
    ``min(rows, 1 + ceil((K-1)/L))``."""
    run, rows = kernel * in_c, kernel if rows is None else rows
    if run % cfg.lanes == 0:
        return 1
    return min(rows, 1 + -(-(cfg.lanes - 1) // run))


def act_stage_cycles(cfg: AccelConfig, kernel: int, in_c: int, in_w: int, a_bits: int,
                     rows: int | None = None) -> int:
    """Cycles of `ActStager` from ``start`` to ``finish`` + 1 for im2col columns of ``rows``
    kernel rows (default ``kernel``; a partial-sum pass takes fewer)::

        act_divide_cycles + ACT_SETUP_EXTRA + chunks*C*P*words + (chunks-1)*stall + E + STAGE_PIPE

    with ``k_total = rows*kernel*in_c``, ``chunks = ceil(k_total/K)``, ``P = act_pieces``,
    ``E = a_bits`` (bitserial) or 1, ``words = stage_words(min(K, kernel*in_c), a_bits)`` in
    ``act_word_bytes`` words for
    piece starts on multiples of the row pitch ``8*ceil(in_w*in_c*a_bits/8)``, of
    ``in_c*a_bits`` and of ``K*a_bits``, and ``stall = max(0, E - P*words)``. Independent of
    the pixel, of the pass, of padding and of the data."""
    passes_per_chunk(cfg.pe_family, 1, a_bits)
    rows = kernel if rows is None else rows
    pitch_bits = 8 * -(-in_w * in_c * a_bits // 8)
    run = kernel * in_c
    words = stage_words(cfg, min(cfg.lanes, run), a_bits,
                        (pitch_bits, in_c * a_bits, cfg.lanes * a_bits), cfg.act_word_bytes)
    return (act_divide_cycles(cfg) + ACT_SETUP_EXTRA
            + _stream_cycles(cfg, cfg.cols, rows * run, act_pieces(cfg, kernel, in_c, rows), words, a_bits))


# ---- GEMM unit (`bitmill.hw.gemm`) ----------------------------------------------------------
GEMM_ACCEPT = 1         # the start cycle: the GEMM unit latches the instruction
RESULT_LATENCY = 2      # tile engine result port: address -> data
TILE_DONE = 1           # the command cycle: a tile's results are valid tile_cycles + 1 cycles after it
PARAM_RECORD_BYTES = 16


def gemm_divide_cycles(cfg: AccelConfig) -> int:
    """Cycles of the GEMM unit's divider ``divmod(p0, out_w)``: one per bit of a pixel index."""
    return (cfg.max_feature_size ** 2).bit_length()


def gemm_cycles(cfg: AccelConfig, npix: int, channels: int, kernel: int, in_c: int, in_w: int,
                w_bits: int, a_bits: int) -> int:
    """Cycles of a GEMM over ``npix`` pixels and ``channels`` output channels.

    Cycle 0 is the start cycle; the divider follows (``GEMM_ACCEPT + divide``). A tile whose
    ``K_total = kernel^2 * in_c`` exceeds the engine runs as partial-sum passes of whole
    kernel rows (`bitmill.isa.pass_rows`; one pass otherwise): pass ``s`` covers kernel rows
    ``y_s .. y_s + h_s``, its weights are staged into their own region of the engine and its
    activations like a tile's, and its accumulators are added into the shadow registers.

    Channel tile ``k`` reads its requant records from cycle ``t_k`` (``params = R * max(1, 16
    / B) + 1`` cycles), then stages the weights of every pass back to back (``W = sum W_s``,
    `weight_stage_cycles` of ``h_s * kernel * in_c`` codes from code ``y_s * kernel * in_c``)
    from ``w_k = t_k + params``, or from ``max(t_k + params, pre_k + A_0)`` when its first
    tile's activation staging started at ``pre_k`` in the previous channel tile (the two
    stagers share the engine's load port); its stream starts at ``e_k = w_k + W``. The stream
    runs the pixel tiles ``n`` (``C_n = min(C, pixels left)`` columns, ``R' = min(R,
    channels left)``) and inside each its passes ``s``, one array tile each: a tile is staged
    into one activation half while the array runs the previous one from the other, and a
    pixel tile is read out of the shadow registers after its last pass while the next pixel
    tile runs::

        stage of the first tile = e_0 (the GEMM's first channel tile), pre_k (later ones)
        issue = max(stage + A_s, e_k for the channel tile's first tile, else copy of the previous tile)
        stage of the next tile = issue;     pre_(k+1) = the last issue (if a channel tile follows)
        copy = issue + tile_s + TILE_DONE, not before read_end_(n-1)
        read_end_n = copy of the last pass + 1 + R' * C_n     (the first cycle without readout)

    with ``A_s`` = `act_stage_cycles` of ``h_s`` kernel rows and ``tile_s`` = `tile_cycles`
    for ``h_s * kernel * in_c`` terms. The next channel tile starts at ``t_(k+1) =
    read_end_last + 1``; after the last one the GEMM ends at ``read_end_last + RESULT_LATENCY +
    REQUANT_LATENCY + PACKER_DRAIN`` (exclusive). With one pass the steady state takes
    ``max(A, tile + TILE_DONE, R' * C + 1)`` cycles per pixel tile."""
    run = kernel * in_c
    passes = pass_rows(cfg, kernel, in_c)
    starts = [sum(passes[:s]) for s in range(len(passes))]
    params = cfg.rows * max(1, PARAM_RECORD_BYTES // cfg.mem_bytes_per_cycle) + 1
    stage_a = [act_stage_cycles(cfg, kernel, in_c, in_w, a_bits, h) for h in passes]
    stage_w = sum(weight_stage_cycles(cfg, h * run, w_bits, kernel * run, y * run)
                  for h, y in zip(passes, starts))
    tile = [tile_cycles(cfg.pe_family, cfg.lanes, h * run, w_bits, a_bits) + TILE_DONE for h in passes]
    cols = [min(cfg.cols, npix - p) for p in range(0, npix, cfg.cols)]
    t, pre = GEMM_ACCEPT + gemm_divide_cycles(cfg), None
    for o in range(0, channels, cfg.rows):
        r = min(cfg.rows, channels - o)
        w = t + params if pre is None else max(t + params, pre + stage_a[0])
        stream = w + stage_w
        stage, copy, read_end = (stream if pre is None else pre), None, None
        for c in cols:
            for s in range(len(passes)):
                issue = max(stage + stage_a[s], stream if copy is None else copy)
                stage = issue
                copy = issue + tile[s] if read_end is None else max(issue + tile[s], read_end)
            read_end = copy + 1 + r * c
        t, pre = read_end + 1, stage
    return t - 1 + RESULT_LATENCY + REQUANT_LATENCY + PACKER_DRAIN


def gemm_limit(cfg: AccelConfig, channels: int, kernel: int, in_c: int, in_w: int,
               w_bits: int, a_bits: int) -> str:
    """What bounds `gemm_cycles`' steady state, one pixel tile every ``max(A, tile + TILE_DONE,
    R' * C + 1)`` cycles (``A`` and ``tile`` summed over the partial-sum passes):
    ``"staging"`` (``A``, the im2col activations into the engine), ``"array"`` (the tile on
    the MAC array) or ``"readout"`` (the results through the requantizer); a tie goes to the
    array, then to staging."""
    passes = pass_rows(cfg, kernel, in_c)
    terms = {"array": sum(tile_cycles(cfg.pe_family, cfg.lanes, h * kernel * in_c, w_bits, a_bits)
                          + TILE_DONE for h in passes),
             "staging": sum(act_stage_cycles(cfg, kernel, in_c, in_w, a_bits, h) for h in passes),
             "readout": min(cfg.rows, channels) * cfg.cols + 1}
    return max(terms, key=terms.get)


# ---- vector unit (bitmill.hw.vector): VEC ADD, MAXPOOL, AVGPOOL --------------------------
#
# Cycle 0 is the start cycle. B = mem_bytes_per_cycle, W = 8*B bits per buffer word.
# ADD streams operands A and B through two word queues that share the activation read port
# (one read per cycle, alternately), reads requant records 0 and 1, then issues one element
# every `vec_add_period` cycles; each element is decoded, scaled (a*m0 + b*m1), summed and
# requantized, and its code goes to the code packer. MAXPOOL and AVGPOOL read one window tap
# per cycle (two, reading two words, when the code width is not a power of two and a code may
# straddle two words); AVGPOOL first reads the channel's requant record.
VEC_ADD_PIPE = 4        # ADD: issue -> operand codes, values, products, sum (the result)
VEC_POOL_PIPE = 4       # pools: tap -> read data, code, value, accumulator (the result)
VEC_POOL_FIRST = 5      # pools: cycle of the first tap (4 planning cycles of products)
VEC_EMPTY_PIPE = 1      # an instruction without elements: its empty result one cycle later


def _vec_check(name: str, value: int, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer in {lo}..{hi}, not {value!r}")
    return value


def vec_acc_bits(cfg: AccelConfig) -> int:
    """Accumulator bits of the vector unit: ``a*m0 + b*m1`` of ADD and the channel sums of
    AVGPOOL over at most ``max_feature_size^2`` codes of up to 8 bits."""
    from bitmill.numerics import signed_bits_for
    add = signed_bits_for(2 * 255 * (1 << 15))
    avg = signed_bits_for(cfg.max_feature_size ** 2 * 256)
    return max(add, avg)


def vec_record_words(cfg: AccelConfig) -> int:
    """Buffer words of one 16-byte requant record: ``max(1, 16 // B)``."""
    return max(1, 16 // cfg.mem_bytes_per_cycle)


def vec_code_words(cfg: AccelConfig, out_bits: int) -> int:
    """Most buffer words a code of ``out_bits`` bits and its row padding touch:
    ``2 + (roundup8(out_bits - 1) - 1) // W`` (1 for one bit)."""
    return 2 + (-(-(out_bits - 1) // 8) * 8 - 1) // (8 * cfg.mem_bytes_per_cycle)


def vec_out_period(cfg: AccelConfig, out_bits: int) -> int:
    """Fewest cycles between consecutive output codes for the code packer never to hold one
    back: 1 when ``out_bits <= W`` (no code straddles words from a word's start, so the
    packer takes each code in one cycle), else ``vec_code_words + 2`` (a code of ``n``
    pieces blocks the packer's input for ``n - 1`` cycles from 3 cycles after it enters, so
    codes arrive after that window closes)."""
    if out_bits <= 8 * cfg.mem_bytes_per_cycle:
        return 1
    return vec_code_words(cfg, out_bits) + 2


def vec_drain_cycles(cfg: AccelConfig, out_bits: int) -> int:
    """Cycles from the last code entering the code packer to ``finish``: ``PACKER_DRAIN``,
    plus one per word beyond the second that a code can touch (``vec_code_words - 2``;
    B = 1, 2 only)."""
    return PACKER_DRAIN + max(0, vec_code_words(cfg, out_bits) - 2)


def vec_stream_words(cfg: AccelConfig) -> int:
    """Words each ADD operand queue holds (6 for B = 1, whose row ends can pop two words)."""
    return 6 if cfg.mem_bytes_per_cycle == 1 else 4


def vec_add_first(cfg: AccelConfig) -> int:
    """Cycle of ADD's first element: both queues full (``2 * vec_stream_words + 2``) and the
    two records read (``ceil(32 / B)``)."""
    return max(2 * vec_stream_words(cfg) + 2, -(-32 // cfg.mem_bytes_per_cycle))


def vec_add_period(cfg: AccelConfig, out_bits: int) -> int:
    """Cycles per ADD element: 1, or 2 for B = 1 (the two operand queues share one read
    per cycle and an element takes up to a word of each), at least `vec_out_period`."""
    return max(2 if cfg.mem_bytes_per_cycle == 1 else 1, vec_out_period(cfg, out_bits))


def vec_tap_cycles(a_bits: int) -> int:
    """Cycles of one pooling tap: 1 when ``a_bits`` divides 8 (a code never straddles two
    words), else 2."""
    return 1 if a_bits in (1, 2, 4, 8) else 2


def vec_elements(kind: int, count: int, kernel: int, stride: int, pad: int, in_h: int,
                 in_w: int, in_c: int, out_w: int, out_c: int) -> int:
    """Elements the vector unit computes: ``rows * out_w * out_c`` with
    ``rows = count // (out_w * out_c)`` for ADD (``in_w*in_c == out_w*out_c``) and MAXPOOL
    (``in_c == out_c``, ``kernel, stride >= 1``, ``(out_w-1)*stride + kernel <= in_w + 2*pad``),
    ``in_c`` for AVGPOOL (``out_w == 1``, ``out_c == in_c``, ``in_h*in_w >= 1``); 0 when the
    fields break these rules (the unit then raises ``error``) or for an unknown kind."""
    row = out_w * out_c
    if kind == 0:
        ok = row > 0 and in_w * in_c == row
    elif kind == 1:
        ok = (row > 0 and in_w * in_c > 0 and in_c == out_c and kernel >= 1 and stride >= 1
              and (out_w - 1) * stride + kernel <= in_w + 2 * pad)
    elif kind == 2:
        return in_c if in_c > 0 and in_h * in_w > 0 and out_w == 1 and out_c == in_c else 0
    else:
        return 0
    return row * (count // row) if ok else 0


def vec_unit_cycles(cfg: AccelConfig, kind: int, count: int, kernel: int, stride: int,
                    pad: int, in_h: int, in_w: int, in_c: int, out_w: int, out_c: int,
                    a_bits: int, out_bits: int) -> int:
    """Cycles of a VEC instruction on the vector unit (finish cycle + 1 - start cycle).

    With ``N = vec_elements(...)``, ``D = vec_drain_cycles(cfg, out_bits)`` (``PACKER_DRAIN``
    for B >= 4), ``RQ = REQUANT_LATENCY``:

    * ``N == 0``: ``first + VEC_EMPTY_PIPE + D + 1`` where ``first`` is `vec_add_first` for
      ADD and `VEC_POOL_FIRST` otherwise;
    * ADD: ``vec_add_first + (N-1)*P + VEC_ADD_PIPE + RQ + D + 1``, ``P = vec_add_period``;
    * MAXPOOL: ``VEC_POOL_FIRST + (N-1)*k^2*s + (k^2-1)*s + t - 1 + VEC_POOL_PIPE + D + 1``
      with ``k = kernel``, ``t = vec_tap_cycles(a_bits)``, cycles per tap
      ``s = max(t, ceil(vec_out_period / k^2))``;
    * AVGPOOL: ``VEC_POOL_FIRST + (N-1)*T + R + px*t + VEC_POOL_PIPE + RQ + D + 1`` with
      ``R = vec_record_words``, ``px = in_h*in_w`` and ``T = R + 1 + px*t`` cycles per
      channel (the record read, a cycle, the taps).

    The data never changes it; neither do errors found while it runs (a read or write
    outside its slot, a shift above 62, an encoding outside `Encoding`)."""
    _vec_check("a_bits", a_bits, 1, MAX_RUNTIME_BITS)
    _vec_check("out_bits", out_bits, 1, 32)
    for name, v in (("count", count), ("kernel", kernel), ("stride", stride), ("pad", pad),
                    ("in_h", in_h), ("in_w", in_w), ("in_c", in_c), ("out_w", out_w),
                    ("out_c", out_c)):
        _vec_check(name, v, 0, 1 << 32)
    n = vec_elements(kind, count, kernel, stride, pad, in_h, in_w, in_c, out_w, out_c)
    first = vec_add_first(cfg) if kind == 0 else VEC_POOL_FIRST
    if n == 0:
        return first + VEC_EMPTY_PIPE + vec_drain_cycles(cfg, out_bits) + 1
    t = vec_tap_cycles(a_bits)
    if kind == 0:
        tail = (n - 1) * vec_add_period(cfg, out_bits) + VEC_ADD_PIPE + REQUANT_LATENCY
    elif kind == 1:
        k2 = kernel * kernel
        s = max(t, -(-vec_out_period(cfg, out_bits) // k2))
        tail = (n - 1) * k2 * s + (k2 - 1) * s + t - 1 + VEC_POOL_PIPE
    else:
        r, px = vec_record_words(cfg), in_h * in_w
        tail = (n - 1) * (r + 1 + px * t) + r + px * t + VEC_POOL_PIPE + REQUANT_LATENCY
    return first + tail + vec_drain_cycles(cfg, out_bits) + 1
