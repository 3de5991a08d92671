"""The GEMM unit: executes a GEMM instruction (`bitmill.isa.Gemm`) under the layer registers
of the last SETUP, tile by tile on the MAC array.

For each channel tile (``R`` channels from ``o0``) it reads the tile's requant records from
the PARAM slot into registers and stages the weights (`bitmill.hw.staging_weights`); then it
streams the pixel tiles (``C`` pixels from ``p0`` each): the im2col activations of tile
``n+1`` are staged (`bitmill.hw.staging_acts`) into one half of the `TileEngine`'s
double-buffered activation operands while the array runs tile ``n`` from the other half and
tile ``n-1``'s ``R' x C'`` valid results are read out of the engine's shadow registers, pixel
by pixel (the channels of a pixel are consecutive codes), through the `Requantizer` into the
`CodePacker`, which writes the codes into the output slot (NHWC: row ``y - out_row0``, code
``x * out_c + o``; the last code of a row zeroes the row's padding).

Stream rules (every one a fixed number of cycles given by the instruction, the layer registers
and the config: `bitmill.timing.gemm_cycles`): the GEMM's first staging starts when the first
stream starts, that of the next pixel tile (in this channel tile, else the next channel tile's
first) in the cycle a tile's command issues; a tile's command issues in the stream when its
activations are staged and the array is free (the previous tile's results copied, possibly in
that same cycle); a tile's results are copied into the shadow registers (one cycle) when they
are valid and the previous readout has ended, and their readout starts in the next cycle. The
channel tile ends the cycle after its last readout; the next one's weight staging starts when
its requant records are read and the activation stager has finished.

Partial-sum passes (`bitmill.isa.pass_rows`): when ``K_total`` exceeds the engine, every
pixel tile runs as passes of ``h`` whole kernel rows (the last takes the rest). The weights of
every pass are staged, one after another, into their own region of the engine; each pass's
activations are staged like a tile's; a pass's results are added to the shadow registers
(``accumulate``), and the readout starts after the last pass.

Errors (``error`` with ``finish``): one kernel row beyond what the tile engine holds, or more
passes than ``k_passes``, an empty GEMM, the packer refusing a code (never with the stream
this unit sends for ``B >= 8``).
"""

from __future__ import annotations

from amaranth import Array, Cat, Const, Module, Mux, Signal, Value, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from bitmill import isa, timing
from bitmill.config import AccelConfig
from bitmill.hw.arith import shift_add
from bitmill.hw.axi import buffer_write_signature
from bitmill.hw.buffers import buffer_depth, read_signature, slot_words
from bitmill.hw.engine import TileEngine
from bitmill.hw.packer import CodePacker
from bitmill.hw.requant import Requantizer
from bitmill.hw.sequencer import chunk_slots
from bitmill.hw.staging_acts import ActStager
from bitmill.hw.staging_weights import WeightStager
from bitmill.isa import Buffer
from bitmill.numerics import MAX_BITS, Encoding
from bitmill.packing import PARAM_RECORD


class GemmUnit(wiring.Component):
    """Members: control side ``start``, ``instr`` (the GEMM body of `bitmill.isa.layout`),
    ``regs`` (the SETUP body), ``busy``, ``finish``, ``error``; buffer side ``weights``,
    ``acts``, ``params`` (read ports), ``out_read`` and ``out_write`` (the output buffer)."""

    def __init__(self, cfg: AccelConfig):
        if not isinstance(cfg, AccelConfig):
            raise TypeError(f"cfg must be an AccelConfig, not {type(cfg).__name__}")
        self.cfg = cfg
        b = cfg.mem_bytes_per_cycle
        body = isa.layout(cfg)["body"].shape
        self.engine = TileEngine.from_config(cfg, act_halves=2, shadow=True)
        if self.engine.res_latency != timing.RESULT_LATENCY:
            raise ValueError(f"the tile engine's result latency {self.engine.res_latency} is not "
                             f"timing.RESULT_LATENCY {timing.RESULT_LATENCY}")
        super().__init__({
            "start": In(1), "instr": In(body["gemm"].shape), "regs": In(body["setup"].shape),
            "busy": Out(1), "finish": Out(1), "error": Out(1),
            "weights": Out(read_signature(b, buffer_depth(cfg, Buffer.WEIGHT))),
            "acts": Out(read_signature(cfg.act_word_bytes, buffer_depth(cfg, Buffer.ACT))),
            "params": Out(read_signature(b, buffer_depth(cfg, Buffer.PARAM))),
            "out_read": Out(read_signature(b, buffer_depth(cfg, Buffer.OUT))),
            "out_write": Out(buffer_write_signature(b, buffer_depth(cfg, Buffer.OUT))),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self.cfg
        m.submodules.engine = engine = self.engine
        m.submodules.wstage = wst = WeightStager(cfg)
        m.submodules.astage = ast = ActStager(cfg)
        m.submodules.requant = rq = Requantizer(engine.res_width, tag_bits=self._tag_bits())
        m.submodules.packer = pk = CodePacker(cfg.mem_bytes_per_cycle, buffer_depth(cfg, Buffer.OUT))
        st = _GemmState(cfg, engine)
        # registered: ``oc`` changes in DIV and as a channel tile starts (PARAMS follows for
        # several cycles), ``pix_rest`` as a tile issues (the next issue is a tile later)
        left_rows, left_pix = st.ins.rows - st.oc, st.pix_rest
        m.d.sync += [st.rows_valid.eq(Mux(left_rows < cfg.rows, left_rows, cfg.rows)),
                     st.rows_last.eq(Mux(left_rows < cfg.rows, left_rows - 1, cfg.rows - 1)),
                     st.cols_valid.eq(Mux(left_pix < cfg.cols, left_pix, cfg.cols))]
        # the next channel tile's first code bit, kept a cycle ahead: ``ch_bits0`` changes in
        # DIV and as a channel tile starts, the next start is a channel tile later
        tile_bits = Signal(range(cfg.rows * 32 + 1), name="channel_tile_bits")
        # the output code width in a register of its own (no adder on the layer register before
        # the products and sums that take it; SETUP writes the layer registers only while the
        # GEMM unit is idle, at least a cycle before the DIV phase reads this copy)
        m.d.sync += st.code_bits.eq(self.regs.out_bits + 1)
        m.d.sync += [tile_bits.eq(cfg.rows * (self.regs.out_bits + 1)),
                     st.ch_bits0_next.eq(st.ch_bits0 + tile_bits)]
        self._accept(m, st)
        self._passes(m, st)
        self._divide(m, st)
        self._params(m, st)
        ipass = self._lookahead(m, st)               # the next tile to issue, and to stage
        self._stage(m, st, wst, ast, engine, ipass)
        self._stream(m, st, engine, ipass)
        self._readout(m, st, engine, rq, pk)
        self._phases(m, st)
        return m

    def _tag_bits(self) -> int:
        return (8 * self.cfg.mem_bytes_per_cycle * buffer_depth(self.cfg, Buffer.OUT)).bit_length() + 1

    # ---- phases ----------------------------------------------------------------------------
    @staticmethod
    def _go(m: Module, st: "_GemmState", phase, count=None) -> None:
        m.d.sync += [st.phase.eq(phase), st.entered.eq(1)]
        if count is not None:
            m.d.sync += st.count.eq(count)

    def _accept(self, m: Module, st: "_GemmState") -> None:
        """Latch the instruction; refuse what the array cannot run."""
        ins = self.instr
        bad = (ins.rows == 0) | (ins.npix == 0)       # k_total is checked at the end of DIV
        m.d.sync += st.entered.eq(0)
        m.d.comb += self.busy.eq(st.phase != _GemmState.IDLE)
        # the instruction flows into its register in every idle cycle (the control's ``instr``
        # holds the head's), and so do the divider's start values, so they hold the ones of
        # the instruction started from the next cycle on: the start decision enables neither
        with m.If(st.phase == _GemmState.IDLE):
            m.d.sync += [st.ins.eq(ins), st.count.eq(st.div_bits - 1), st.rem.eq(0), st.quot.eq(0),
                         st.numer.eq(ins.p0[:st.div_bits])]
        with m.If(self.start & (st.phase == _GemmState.IDLE)):
            m.d.sync += st.overrun.eq(0)
            self._go(m, st, Mux(bad, _GemmState.FAIL, _GemmState.DIV))

    def _passes(self, m: Module, st: "_GemmState") -> None:
        """The partial-sum passes of the layer, from the SETUP registers (stable through a
        GEMM), registered one step after another: ``run = kernel * in_c``; ``h`` (kernel rows
        per pass: the most ``h <= kernel`` with ``h * run`` within the engine), the pass count
        ``ceil(kernel / h)``, the last pass's rows and codes, and the chunks of a full and of
        the last pass. ``fits`` (valid from the DIV phase's third cycle): the passes are at
        most ``k_passes``. Everything is settled before the weight staging starts."""
        cfg, regs, ps = self.cfg, self.regs, st.ps
        max_k, kp = self.engine.max_k_total, cfg.k_passes
        flags = Signal(isa.MAX_KERNEL + 1, name="pass_row_fits")     # bit h: h rows fit one pass
        m.d.sync += [ps["run"].eq(shift_add(regs.in_c, regs.kernel)),
                     # h * run <= max_k, i.e. run <= max_k // h: a comparison with a constant
                     flags.eq(Cat(0, *[(h <= regs.kernel) & (ps["run"] <= max_k // h)
                                       for h in range(1, isa.MAX_KERNEL + 1)])),
                     ps["h"].eq(sum(flags[h] for h in range(1, isa.MAX_KERNEL + 1))),
                     ps["h_run"].eq(shift_add(ps["run"], ps["h"])),
                     ps["count"].eq(sum((shift_add(ps["h"], Const(j - 1)) < regs.kernel).as_unsigned()
                                        for j in range(1, kp + 1))),
                     ps["last_rows"].eq(regs.kernel + ps["h"] - shift_add(ps["h"], ps["count"])),
                     ps["last_k"].eq(shift_add(ps["run"], ps["last_rows"])),
                     ps["chunks_m1"].eq((ps["h_run"] + cfg.lanes - 1) // cfg.lanes - 1),
                     ps["last_chunks_m1"].eq((ps["last_k"] + cfg.lanes - 1) // cfg.lanes - 1)]
        need = (regs.kernel + kp - 1) >> (kp.bit_length() - 1)        # ceil(kernel / k_passes)
        m.d.comb += ps["fits"].eq(flags.bit_select(need[:len(flags).bit_length()], 1))

    def _pass_info(self, st: "_GemmState", ky0):
        """Of the pass starting at kernel row ``ky0``: whether it is the last, its rows, its
        codes, its chunks minus one."""
        ps, kernel = st.ps, self.regs.kernel
        last = ky0 + ps["h"] >= kernel
        return {"last": last, "rows": Mux(last, ps["last_rows"], ps["h"]),
                "k": Mux(last, ps["last_k"], ps["h_run"]),
                "chunks_m1": Mux(last, ps["last_chunks_m1"], ps["chunks_m1"])}

    def _lookahead(self, m: Module, st: "_GemmState") -> dict:
        """What the stream decides with and what it stages, registered a cycle after the
        position it comes from (``pc``, ``oc``, ``ip_ky0`` change only when a tile issues or a
        channel tile starts, and the next decision is many cycles later): the pass of the
        next tile to issue (``last``, ``chunks_m1``), whether pixels and channels are left,
        and the activation command of each tile that can be staged next (``follows``: this
        pixel tile's next pass; ``next``: the next pixel tile's first; ``first``: pixel tile
        0), so that a decision only selects among registers."""
        cfg, ins, ps = self.cfg, st.ins, st.ps
        here, after = self._pass_info(st, st.ip_ky0), self._pass_info(st, st.ip_ky0 + ps["h"])

        def reg(value, shape, name):
            r = Signal(shape, name=name)
            m.d.sync += r.eq(value)
            return r

        def fit(left):
            return Mux(left < cfg.cols, left, cfg.cols)

        cols = range(cfg.cols + 1)
        p = len(ins.p0) + 1
        # the pixel tile's sums (``npix - pc``, ``p0 + pc`` and those of the next pixel tile)
        # are registers that move with the pixel tile (`_pixel_tile`): no adder before the
        # comparisons and clamps here
        return {
            "last": reg(here["last"], 1, "ip_last"),
            "chunks_m1": reg(here["chunks_m1"], len(ps["chunks_m1"]), "ip_chunks_m1"),
            "pix_left": reg(st.pix_rest > 0, 1, "pix_left"),
            "pix_more": reg(st.pix_rest_next > 0, 1, "pix_more"),
            "rows_more": reg(st.oc + cfg.rows < ins.rows, 1, "rows_more"),
            "follows": {"p": reg(st.p_here, p, "follow_p"),
                        "cols": reg(fit(st.pix_rest), cols, "follow_cols"),
                        "ky0": reg(st.ip_ky0 + ps["h"], len(st.ip_ky0), "follow_ky0"),
                        "rows": reg(after["rows"], len(ps["h"]), "follow_rows")},
            "next": {"p": reg(st.p_next, p, "next_p"),
                     "cols": reg(fit(st.pix_rest_next), cols, "next_cols")},
            "first": {"p": ins.p0, "cols": reg(fit(ins.npix), cols, "first_cols")},
        }

    def _divide(self, m: Module, st: "_GemmState") -> None:
        """``(y0, x0) = divmod(p0, out_w)``, one quotient bit per cycle; the layer's derived
        sizes registered meanwhile, the products in two steps (valid from the DIV phase's
        third cycle, `_GemmState.div_bits` >= 3; the output row pitch in three, for the
        PARAMS phase's second cycle), and ``k_total`` checked in its last cycle:
        beyond what the tile engine holds, or zero, the GEMM fails."""
        cfg, regs, ins = self.cfg, self.regs, st.ins
        out_bits = st.code_bits
        # MSB first: ``numer`` holds p0 shifted so its top bit is the current one, and the
        # quotient bits shift in at the bottom (no selection by ``count`` on either)
        shifted = Cat(st.numer[-1], st.rem)
        kk = Signal(range(isa.MAX_KERNEL ** 2 + 1), name="kernel_square")
        wc = Signal(len(regs.out_w) + len(regs.out_c), name="row_codes")
        row_bits = Signal(len(wc) + 4, name="row_code_bits")
        with m.If(st.phase == _GemmState.DIV):
            ge = shifted >= regs.out_w
            m.d.sync += [st.rem.eq(Mux(ge, shifted - regs.out_w, shifted)),
                         st.quot.eq(Cat(ge, st.quot)), st.numer.eq(st.numer << 1)]
            m.d.sync += [st.count.eq(st.count - 1), kk.eq(shift_add(regs.kernel, regs.kernel)),
                         st.k_total.eq(shift_add(regs.in_c, kk)), wc.eq(regs.out_w * regs.out_c),
                         st.out_cb.eq(shift_add(regs.out_c, out_bits)), row_bits.eq(shift_add(wc, out_bits)),
                         st.pitch_bits.eq(((row_bits + 7) >> 3) << 3),
                         st.ch_bits0.eq(shift_add(ins.o0, out_bits)), st.oc.eq(0),
                         st.ip_ky0.eq(0), st.ip_idx.eq(0)] + self._pixel_tile(st, first=True)
            with m.If(st.count == 0):
                with m.If((st.k_total == 0) | ~st.ps["fits"]):
                    self._go(m, st, _GemmState.FAIL)
                with m.Else():
                    self._go(m, st, _GemmState.PARAMS, 0)

    def _params(self, m: Module, st: "_GemmState") -> None:
        """Read the ``R`` requant records of the channel tile (``16 / B`` words each) into
        registers; meanwhile the tile's first pixel's bit offsets are computed."""
        cfg, b = self.cfg, self.cfg.mem_bytes_per_cycle
        wpr = max(1, PARAM_RECORD // b)
        # the read address in a register: the channel tile's first record word (set as DIV
        # ends, a tile of rows on as the next channel tile starts), one on per cycle here
        first = Signal.like(self.params.addr, name="param_first")
        addr = Signal.like(self.params.addr, name="param_addr")
        with m.If(st.phase == _GemmState.DIV):
            start = st.ins.p_slot * slot_words(cfg, Buffer.PARAM) + st.ins.o0 * wpr
            m.d.sync += [first.eq(start), addr.eq(start)]
        with m.Elif(st.phase == _GemmState.PARAMS):
            m.d.sync += addr.eq(addr + 1)
        with m.Elif(st.next_tile):
            m.d.sync += [first.eq(first + cfg.rows * wpr), addr.eq(first + cfg.rows * wpr)]
        m.d.comb += self.params.addr.eq(addr)
        rec = Signal(8 * PARAM_RECORD)
        nxt = Cat(rec[8 * b:], self.params.data)[-8 * PARAM_RECORD:] if wpr > 1 else self.params.data
        word, row = Signal(range(wpr)), Signal(range(cfg.rows + 1))
        with m.If(st.phase == _GemmState.PARAMS):
            m.d.sync += st.count.eq(st.count + 1)
            # the first pixel's row offset: the row difference in the phase's first cycle,
            # its product in the second (the readout starts long after this phase)
            row_rel = Signal(signed(len(st.quot) + 1), name="first_row_rel")
            with m.If(st.count == 1):
                m.d.sync += st.row_bits.eq(row_rel * st.pitch_bits)
            with m.If(st.entered):
                m.d.sync += [word.eq(0), row.eq(0), st.cy.eq(st.quot), st.cx.eq(st.rem),
                             row_rel.eq(st.quot - self.regs.out_row0),
                             st.x_bits.eq(st.rem * st.out_cb)]
            with m.Else():
                m.d.sync += [rec.eq(nxt), word.eq(Mux(word == wpr - 1, 0, word + 1))]
                with m.If(word == wpr - 1):
                    m.d.sync += [st.mult[row].eq(nxt[:16]), st.shift[row].eq(nxt[16:24]),
                                 st.bias[row].eq(nxt[64:128]), row.eq(row + 1)]
            with m.If(st.count == cfg.rows * wpr):
                self._go(m, st, _GemmState.WSTAGE)
                m.d.sync += [st.w_ky0.eq(0), st.w_k0.eq(0), st.w_idx.eq(0)]

    def _stage(self, m: Module, st: "_GemmState", wst, ast, engine, ipass: dict) -> None:
        """Weight staging once per channel tile, pass after pass (each into its region of the
        engine), once the activation stager has finished (they share the engine's load port);
        activation staging of a tile (a pixel tile's pass) into the activation half the array
        is not reading: the GEMM's first when the stream starts, every later one (the next
        pass, the next pixel tile's first, the next channel tile's first) in the cycle its
        predecessor's command issues."""
        cfg, regs, ins = self.cfg, self.regs, st.ins
        m.d.comb += [self.weights.addr.eq(wst.read_addr), wst.read_data.eq(self.weights.data),
                     self.acts.addr.eq(ast.read_addr), ast.read_data.eq(self.acts.data)]
        wait = (st.phase == _GemmState.WSTAGE) & st.entered & st.staging   # the load port is busy
        with m.If(wait):
            m.d.sync += st.entered.eq(1)
        wpass = self._pass_info(st, st.w_ky0)
        m.d.comb += [wst.start.eq((st.phase == _GemmState.WSTAGE) & st.entered & ~st.staging),
                     wst.cmd.base.eq(ins.w_slot * slot_words(cfg, Buffer.WEIGHT)),
                     wst.cmd.row.eq(ins.w_row + st.oc), wst.cmd.rows.eq(st.rows_valid),
                     wst.cmd.k_total.eq(wpass["k"]), wst.cmd.row_k.eq(st.k_total),
                     wst.cmd.k0.eq(st.w_k0), wst.cmd.w_bits.eq(regs.w_bits + 1),
                     wst.cmd.w_enc.eq(regs.w_enc)]
        follows = st.issue_go & ~ipass["last"]           # the next tile is this pixel tile's next pass
        later = ~follows & st.issue_go & ipass["pix_more"]   # ... the next pixel tile's first
        fol, nxt, first = ipass["follows"], ipass["next"], ipass["first"]
        m.d.comb += [ast.start.eq(st.stage_go),
                     ast.cmd.base.eq(ins.a_slot * slot_words(cfg, Buffer.ACT)),
                     ast.cmd.p.eq(Mux(follows, fol["p"], Mux(later, nxt["p"], first["p"]))),
                     ast.cmd.cols.eq(Mux(follows, fol["cols"], Mux(later, nxt["cols"], first["cols"]))),
                     ast.cmd.ky0.eq(Mux(follows, fol["ky0"], 0)),
                     ast.cmd.rows.eq(Mux(follows, fol["rows"], st.ps["h"])),
                     ast.cmd.a_bits.eq(regs.a_bits + 1), ast.cmd.a_enc.eq(regs.a_enc)]
        for name in ("kernel", "stride", "pad", "in_h", "in_w", "in_c", "out_w", "band_row0"):
            m.d.comb += getattr(ast.cmd, name).eq(getattr(regs, name))
        wload = wst.load.payload
        if cfg.k_passes > 1:          # the pass's region: bits between the chunk and the plane
            slot = (chunk_slots(engine.max_chunks) - 1).bit_length()
            waddr = Cat(wload.addr[:slot], st.w_idx, wload.addr[slot:])
        else:
            waddr = wload.addr
        aload, eload, wv = ast.load.payload, engine.load.payload, wst.load.valid
        m.d.comb += [engine.load.valid.eq(wv | ast.load.valid),
                     eload.target.eq(Mux(wv, wload.target, aload.target)),
                     eload.addr.eq(Mux(wv, waddr, aload.addr)), eload.data.eq(Mux(wv, wload.data, aload.data)),
                     engine.load_half.eq(st.write_half)]
        with m.If(st.stage_go):
            m.d.sync += [st.write_half.eq(~st.write_half), st.staging.eq(1)]
        with m.If(ast.finish):
            m.d.sync += [st.staged.eq(1), st.staging.eq(0)]
        with m.If((st.phase == _GemmState.WSTAGE) & wst.finish):
            with m.If(wpass["last"]):
                self._go(m, st, _GemmState.STREAM)
            with m.Else():
                self._go(m, st, _GemmState.WSTAGE)
                m.d.sync += [st.w_ky0.eq(st.w_ky0 + st.ps["h"]), st.w_k0.eq(st.w_k0 + st.ps["h_run"]),
                             st.w_idx.eq(st.w_idx + 1)]

    def _stream(self, m: Module, st: "_GemmState", engine, ipass: dict) -> None:
        """Tiles through the array, pixel tile by pixel tile and pass by pass inside: a tile's
        command issues when its activations are staged and the previous tile's results have
        left the array (``copy``, possibly in the same cycle); a tile's results are copied
        into the shadow registers (added, after the first pass) when they are valid and the
        previous pixel tile's readout has ended; after the last pass the readout starts."""
        cfg, regs = self.cfg, self.regs
        streaming = st.phase == _GemmState.STREAM
        copy, issue = st.copy_go, st.issue_go
        # a next tile to stage: this pixel tile's next pass, the next pixel tile, or the next
        # channel tile's first
        more = ~ipass["last"] | ipass["pix_more"] | ipass["rows_more"]
        # ``copy`` (computing & engine.done & ~reading) from a register set a cycle ahead, so
        # no path runs from the engine's pulse through the issue decision back into the
        # engine: with no issue and no copy in this cycle, computing stays, the engine's
        # ``done`` becomes ``done_next`` and reading stays unless the readout ends; an issue
        # or a copy in this cycle leaves no tile whose results could be copied in the next
        read_end = st.reading & (st.r == st.rows_last) & (st.c == st.rd_cols - 1)
        m.d.sync += copy.eq(~issue & ~copy & st.computing & engine.done_next
                            & ~(st.reading & ~read_end))
        m.d.comb += [issue.eq(streaming & ipass["pix_left"] & st.staged & (~st.computing | copy)),
                     st.stage_go.eq(streaming & ((st.entered & (st.oc == 0)) | (issue & more))),
                     engine.copy.eq(copy)]
        cmd = engine.cmd.payload
        m.d.comb += [engine.cmd.valid.eq(issue), engine.cmd_half.eq(st.write_half),
                     cmd.w_bits_m1.eq(regs.w_bits), cmd.a_bits_m1.eq(regs.a_bits),
                     cmd.w_enc.eq(regs.w_enc), cmd.a_signed.eq(regs.a_enc == Encoding.SIGNED),
                     cmd.last_chunk.eq(ipass["chunks_m1"])]
        if cfg.k_passes > 1:
            m.d.comb += [cmd.w_pass.eq(st.ip_idx), engine.accumulate.eq(st.comp_acc)]
        with m.If(copy):
            m.d.sync += st.computing.eq(0)
            with m.If(st.comp_last):
                m.d.sync += [st.reading.eq(1), st.rd_cols.eq(st.tile_cols),
                             st.r.eq(0), st.c.eq(0), st.res.eq(0), st.ch_bits.eq(st.ch_bits0)]
        with m.If(issue):
            m.d.sync += [st.computing.eq(1), st.staged.eq(0), st.tile_cols.eq(st.cols_valid),
                         st.comp_acc.eq(st.ip_idx != 0), st.comp_last.eq(ipass["last"])]
            with m.If(ipass["last"]):
                m.d.sync += [st.ip_ky0.eq(0), st.ip_idx.eq(0)] + self._pixel_tile(st, first=False)
            with m.Else():
                m.d.sync += [st.ip_ky0.eq(st.ip_ky0 + st.ps["h"]), st.ip_idx.eq(st.ip_idx + 1)]
        with m.If(streaming & ~ipass["pix_left"] & ~st.computing & ~st.reading):
            self._next_channel_tile(m, st, ipass)

    def _pixel_tile(self, st: "_GemmState", first: bool) -> list:
        """To pixel tile 0 (``first``) or to the next pixel tile, whose first pixel ``pc`` is
        kept only as ``pix_rest = npix - pc``, ``pix_rest_next = npix - pc - cols``, ``p_here
        = p0 + pc`` and ``p_next = p0 + pc + cols`` (the instruction holds while the GEMM
        runs)."""
        cols, ins = self.cfg.cols, st.ins
        if first:
            return [st.pix_rest.eq(ins.npix), st.pix_rest_next.eq(ins.npix - cols),
                    st.p_here.eq(ins.p0), st.p_next.eq(ins.p0 + cols)]
        return [x.eq(x + d) for x, d in ((st.pix_rest, -cols), (st.pix_rest_next, -cols),
                                         (st.p_here, cols), (st.p_next, cols))]

    def _next_channel_tile(self, m: Module, st: "_GemmState", ipass: dict) -> None:
        """Every tile of the channel tile read out: the next channel tile, or the drain."""
        cfg = self.cfg
        with m.If(ipass["rows_more"]):
            m.d.comb += st.next_tile.eq(1)
            m.d.sync += [st.oc.eq(st.oc + cfg.rows), st.ch_bits0.eq(st.ch_bits0_next)]
            m.d.sync += self._pixel_tile(st, first=True)
            self._go(m, st, _GemmState.PARAMS, 0)
        with m.Else():
            self._go(m, st, _GemmState.DRAIN, st.drain - 2)

    def _readout(self, m: Module, st: "_GemmState", engine, rq, pk) -> None:
        """Accumulator ``(r, c)`` pixel by pixel, channels inside; its code's bit address and
        padding travel through the requant pipeline as its tag."""
        cfg, regs, ins = self.cfg, self.regs, st.ins
        out_bits = st.code_bits
        base = ins.o_slot * slot_words(cfg, Buffer.OUT) * 8 * cfg.mem_bytes_per_cycle
        reading = st.reading
        ch = ins.o0 + st.oc + st.r
        # the code's bit address: two partial sums (rows, pixel and channel) registered in
        # the result port's first cycle, added in its second (no chain of three adders)
        rows, cols = base + st.row_bits, st.x_bits + st.ch_bits
        addr_bits = self._tag_bits() - 1            # the requantizer's tag: address, pad flag
        parts = [Signal(len(Value.cast(x)), name=f"rd_tag_{n}") for x, n in ((rows, "rows"), (cols, "cols"))]
        pad = Signal(name="rd_tag_pad")
        m.d.sync += [parts[0].eq(rows), parts[1].eq(cols),
                     pad.eq((st.cx == regs.out_w - 1) & (ch == regs.out_c - 1))]
        m.d.comb += engine.res_addr.eq(st.res)
        v, r = Signal(name="rd_valid0"), Signal.like(st.r, name="rd_row0")
        m.d.sync += [v.eq(reading), r.eq(st.r)]
        pipe = [(v, r, Cat((parts[0] + parts[1])[:addr_bits], pad))]
        for n in range(1, engine.res_latency):
            v, r = Signal(name=f"rd_valid{n}"), Signal.like(st.r, name=f"rd_row{n}")
            t = Signal(addr_bits + 1, name=f"rd_tag{n}")
            m.d.sync += [v.eq(pipe[-1][0]), r.eq(pipe[-1][1]), t.eq(pipe[-1][2])]
            pipe.append((v, r, t))
        v, r, t = pipe[-1]
        m.d.comb += [rq.valid.eq(v), rq.acc.eq(engine.res_data), rq.multiplier.eq(st.mult[r]),
                     rq.shift.eq(st.shift[r]), rq.bias.eq(st.bias[r]), rq.out_bits.eq(regs.out_bits),
                     rq.out_signed.eq(regs.out_signed), rq.relu.eq(regs.relu), rq.tag.eq(t)]
        m.d.comb += [pk.valid.eq(rq.out_valid), pk.value.eq(rq.value), pk.bits.eq(regs.out_bits),
                     pk.bit_addr.eq(rq.out_tag[:-1]), pk.pad.eq(rq.out_tag[-1]),
                     self.out_read.addr.eq(pk.read_addr), pk.read_data.eq(self.out_read.data),
                     self.out_write.valid.eq(pk.write.valid), self.out_write.payload.eq(pk.write.payload)]
        with m.If(rq.out_valid & ~pk.ready):
            m.d.sync += st.overrun.eq(1)
        with m.If(reading):
            self._step(m, st, out_bits)

    def _step(self, m: Module, st: "_GemmState", out_bits) -> None:
        """The next accumulator; after a tile's last one, the next phase."""
        with m.If(st.r != st.rows_last):
            m.d.sync += [st.r.eq(st.r + 1), st.res.eq(st.res + self.cfg.cols),
                         st.ch_bits.eq(st.ch_bits + out_bits)]
        with m.Else():
            self._next_pixel(m, st, out_bits)

    def _next_pixel(self, m: Module, st: "_GemmState", out_bits) -> None:
        regs = self.regs
        m.d.sync += [st.r.eq(0), st.c.eq(st.c + 1), st.res.eq(st.c + 1), st.ch_bits.eq(st.ch_bits0)]
        with m.If(st.cx == regs.out_w - 1):
            m.d.sync += [st.cx.eq(0), st.cy.eq(st.cy + 1), st.x_bits.eq(0),
                         st.row_bits.eq(st.row_bits + st.pitch_bits)]
        with m.Else():
            m.d.sync += [st.cx.eq(st.cx + 1), st.x_bits.eq(st.x_bits + st.out_cb)]
        with m.If(st.c == st.rd_cols - 1):
            m.d.sync += st.reading.eq(0)

    def _phases(self, m: Module, st: "_GemmState") -> None:
        """The end: the last code's write (DRAIN), or a refused instruction (FAIL)."""
        # ``phase == DRAIN and count == 0`` kept in a register (DRAIN counts down from
        # ``drain - 2`` and nothing else sets ``count`` in it): ``finish`` comes from registers
        drain_end = Signal(name="drain_end")
        m.d.sync += drain_end.eq((st.phase == _GemmState.DRAIN) & (st.count == 1))
        last = drain_end | (st.phase == _GemmState.FAIL)
        m.d.comb += [self.finish.eq(last), self.error.eq(last & ((st.phase == _GemmState.FAIL) | st.overrun))]
        with m.If(st.phase == _GemmState.DRAIN):
            m.d.sync += st.count.eq(st.count - 1)
        with m.If(last):
            m.d.sync += st.phase.eq(_GemmState.IDLE)


class _GemmState:
    """Registers of the GEMM unit's phases."""

    IDLE, DIV, PARAMS, WSTAGE, STREAM, DRAIN, FAIL = range(7)

    def __init__(self, cfg: AccelConfig, engine: TileEngine):
        px = cfg.max_feature_size
        out_bits_total = 8 * cfg.mem_bytes_per_cycle * buffer_depth(cfg, Buffer.OUT)
        self.div_bits = (px * px).bit_length()
        if self.div_bits < 3:               # the DIV phase also computes products in two steps
            raise ValueError(f"max_feature_size must be at least 2 for the GEMM unit, not {px}")
        self.drain = timing.RESULT_LATENCY + timing.REQUANT_LATENCY + timing.PACKER_DRAIN
        self.phase = Signal(range(7))
        self.staged = Signal()                  # the next tile's activations are staged
        self.staging = Signal()                 # the activation stager is running
        self.write_half = Signal()              # the activation half staging writes
        self.computing = Signal()               # a tile is on the array (results not copied)
        self.reading = Signal()                 # the shadow registers are being read out
        self.tile_cols = Signal(range(cfg.cols + 1))   # valid columns of the tile on the array
        self.rd_cols = Signal(range(cfg.cols + 1))     # valid columns of the tile read out
        self.stage_go, self.issue_go, self.copy_go = Signal(), Signal(), Signal()
        self.entered = Signal()
        self.next_tile = Signal()               # the next channel tile starts (PARAMS next)
        self.count = Signal(range(max(self.div_bits, 16 * cfg.rows, self.drain) + 2))
        self.ins = Signal(isa.layout(cfg)["body"].shape["gemm"].shape)
        self.k_total = Signal(range(engine.max_k_total * 64 + 1))
        max_k = isa.MAX_KERNEL * engine.max_k_total       # a pass's codes never exceed max_k_total
        self.ps = {"run": Signal(range(isa.MAX_KERNEL * cfg.max_channels + 1), name="pass_run"),
                   "h": Signal(range(isa.MAX_KERNEL + 1), name="pass_rows"),
                   "h_run": Signal(range(isa.MAX_KERNEL * max_k + 1), name="pass_codes"),
                   "count": Signal(range(cfg.k_passes + 1), name="pass_count"),
                   "last_rows": Signal(range(isa.MAX_KERNEL + 1), name="pass_last_rows"),
                   "last_k": Signal(range(isa.MAX_KERNEL * max_k + 1), name="pass_last_codes"),
                   "chunks_m1": Signal(range(engine.max_chunks), name="pass_chunks_m1"),
                   "last_chunks_m1": Signal(range(engine.max_chunks), name="pass_last_chunks_m1"),
                   "fits": Signal(name="pass_fits")}
        self.w_ky0 = Signal(range(isa.MAX_KERNEL + 1))    # the weight pass being staged
        self.w_k0 = Signal(range(cfg.k_passes * engine.max_k_total + 1))
        self.w_idx = Signal(range(cfg.k_passes))
        self.ip_ky0 = Signal(range(2 * isa.MAX_KERNEL + 1))   # the pass of the next tile to issue
        self.ip_idx = Signal(range(cfg.k_passes))
        self.comp_acc = Signal()                # the tile on the array adds to the shadow registers
        self.comp_last = Signal()               # ... and is its pixel tile's last pass
        self.rem = Signal(range(2 * px + 2))
        self.quot = Signal(range(px * px + 1))
        self.numer = Signal(self.div_bits)      # p0's bits not yet divided, the next on top
        self.code_bits = Signal(range(MAX_BITS + 1))   # the output code width (out_bits + 1)
        self.overrun = Signal()
        self.oc = Signal(range(cfg.max_channels + cfg.rows + 1))
        # the pixel tile's first pixel ``pc`` (< px^2 + cols) as the sums the lookahead uses
        # (`GemmUnit._pixel_tile`), as wide as those sums
        pc_bits = (px * px + cfg.cols).bit_length()
        rest = signed(max(len(self.ins.npix), pc_bits) + 2)
        self.pix_rest, self.pix_rest_next = Signal(rest, name="pix_rest"), Signal(rest, name="pix_rest_next")
        sums = max(len(self.ins.p0), pc_bits) + 2
        self.p_here, self.p_next = Signal(sums, name="pix_p_here"), Signal(sums, name="pix_p_next")
        self.r = Signal(range(cfg.rows + 1))
        self.c = Signal(range(cfg.cols + 1))
        self.res = Signal(range(cfg.rows * cfg.cols + cfg.cols + 1))
        self.cy = Signal(range(px * px + 1))
        self.cx = Signal(range(px + 1))
        self.out_cb = Signal(range(cfg.max_channels * 32 + 1))
        self.pitch_bits = Signal(range(out_bits_total + 1))
        addr = range(2 * out_bits_total + 1)
        self.row_bits, self.x_bits = Signal(signed(addr.stop.bit_length() + 1)), Signal(addr)
        self.ch_bits, self.ch_bits0 = Signal(range(2 * cfg.max_channels * 32 + 1)), Signal(range(2 * cfg.max_channels * 32 + 1))
        self.ch_bits0_next = Signal.like(self.ch_bits0, name="ch_bits0_next")
        # the channel tile's requant records (reset-less: read from PARAM before any use)
        self.mult = Array(Signal(signed(16), name=f"mult{r}", reset_less=True) for r in range(cfg.rows))
        self.shift = Array(Signal(8, name=f"shift{r}", reset_less=True) for r in range(cfg.rows))
        self.bias = Array(Signal(signed(64), name=f"bias{r}", reset_less=True) for r in range(cfg.rows))
        self.rows_valid = Signal(range(cfg.rows + 1))
        self.rows_last = Signal(range(cfg.rows))     # rows_valid - 1
        self.cols_valid = Signal(range(cfg.cols + 1))
