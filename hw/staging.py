"""Operand staging core: packed codes in a buffer slot -> the tile engine's buffer words.

A tile operand is ``N`` vectors (weight rows or im2col columns) of ``k_total`` codes. The
core walks it chunk by chunk (``K`` lanes), vector by vector inside a chunk, and reads each
vector's codes of the chunk as ``pieces`` contiguous runs of packed codes ("pieces"), each in
exactly ``words`` consecutive buffer reads, so the cycles never depend on the data or the
alignment (`bitmill.timing.stage_words`). A *vector walker* beside the core (weights:
`bitmill.hw.staging_weights`, activations: `bitmill.hw.staging_acts`) says where the current
vector's runs start and which of its codes are real (``vector_layout``).

Pipeline (`bitmill.timing.STAGE_PIPE` = 4 cycles from a vector's last read to the first engine
word): read address; **align** (the read word registered, which on ECP5 is the block RAM's own
output register, and beside it the word's mask, landing place and lanes); **deposit** (the
word, masked and shifted to its place, registered); **collect** (the placed word ORed into the
vector's packed assembly register and, after the vector's last word, the assembled codes
unpacked to lanes, masked to the real ones, written into the vector's slot of the chunk block);
**emit** (one engine word per cycle, not registered: the engine's buffer block RAMs register
it; bit-serial, bit 0 of every code, each code shifting down a bit per plane, so the word comes
straight from the block's registers, and so does its address; bit-parallel, the signed values).
The block is overwritten by the next chunk's first vector only after the chunk's last word
left: reading waits ``max(0, E - pieces*words)`` cycles before each later chunk.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from bitmill.config import AccelConfig
from bitmill.hw.arith import shift_add
from bitmill.hw.buffers import word_bytes
from bitmill.hw.engine import engine_chunks, load_layout
from bitmill.hw.params import VALUE_BITS, check_family, check_positive
from bitmill.hw.pe import copy_register
from bitmill.hw.sequencer import chunk_slots
from bitmill.isa import MAX_KERNEL, Buffer, slot_bytes
from bitmill.numerics import Encoding
from bitmill.precision import MAX_RUNTIME_BITS

CODE_BITS = MAX_RUNTIME_BITS        # a code's width in the assembly register and the block
DIFFS = ("01", "02", "12", "21")    # the walk's room differences (0: lanes, 1: run, 2: vector)


def vector_layout(addr_bits: int, max_k: int) -> data.StructLayout:
    """The current vector, from its walker: ``bit`` (signed bit address of its first run in
    the buffer), code range ``[lo, hi)`` of every run that is real, runs ``[ky_lo, ky_hi)``
    that are real, ``ok`` (the vector is real)."""
    return data.StructLayout({"bit": signed(addr_bits), "lo": range(max_k + 1),
                              "hi": range(max_k + 1), "ky_lo": range(MAX_KERNEL + 1),
                              "ky_hi": range(MAX_KERNEL + 1), "ok": 1})


def plan_layout(addr_bits: int, max_k: int, max_words: int) -> data.StructLayout:
    """Per-command constants, held while the core runs: code width and encoding, codes per
    vector, codes per run, bit step between runs, reads per piece, pieces per chunk."""
    return data.StructLayout({"bits": range(MAX_RUNTIME_BITS + 1), "enc": Encoding,
                              "k_total": range(max_k + 1), "run": range(max_k + 1),
                              "run_pitch": addr_bits, "words": range(max_words + 1),
                              "pieces": range(MAX_KERNEL + 1)})


class StagingCore(wiring.Component):
    """Members: ``start`` (In: the first read in the next cycle), ``plan`` (In, held),
    ``vec_first`` / ``vec_next`` (Out strobes: the walker loads vector 0 / steps to the next
    vector at the clock edge), ``vec`` (In), ``read_addr`` / ``read_data`` (the buffer's
    synchronous read port), ``load`` (Out stream of `TileEngine.load` writes, never stalled),
    ``finish`` (Out: the cycle of the last engine word)."""

    def __init__(self, *, vectors: int, lanes: int, family: str, word_bytes: int,
                 buffer_words: int, engine_word_bits: int, engine_depth: int,
                 chunk_slots: int, max_chunks: int, target: int, addr_bits: int):
        self.vectors = check_positive("vectors", vectors, 256)
        self.lanes = check_positive("lanes", lanes, 4096)
        self.family = check_family(family)
        self.word_bits = 8 * check_positive("word_bytes", word_bytes, 4096)
        if word_bytes & (word_bytes - 1):
            raise ValueError(f"word_bytes must be a power of two, not {word_bytes}")
        self.buffer_words = check_positive("buffer_words", buffer_words)
        self.chunk_slots = chunk_slots
        self.max_chunks = max_chunks
        self.target = target
        self.addr_bits = addr_bits
        self.max_k = max_chunks * lanes
        self.max_words = -(-(self.word_bits + lanes * CODE_BITS) // self.word_bits)
        self.lane_bits = CODE_BITS if family == "bitserial" else VALUE_BITS
        super().__init__({
            "start": In(1), "plan": In(plan_layout(addr_bits, self.max_k, self.max_words)),
            "vec_first": Out(1), "vec_next": Out(1),
            "vec": In(vector_layout(addr_bits, self.max_k)),
            "read_addr": Out(range(buffer_words)), "read_data": In(self.word_bits),
            "load": Out(stream.Signature(load_layout(engine_word_bits, engine_depth))),
            "finish": Out(1),
        })

    @property
    def latency(self) -> int:
        """Cycles from a chunk's last read to its first engine word (`timing.STAGE_PIPE`)."""
        return 4

    def emit_count(self, bits):
        """Engine words per chunk: ``bits`` planes (bitserial) or one (bitparallel)."""
        return bits if self.family == "bitserial" else Const(1, 4)

    def elaborate(self, platform) -> Module:
        m = Module()
        collect = self._deposit(m, self._align(m, self._read(m)))
        emit = self._collect(m, collect)
        self._emit(m, emit)
        return m

    # ---- read: chunk / vector / piece / word counters -------------------------------------
    def _walk_state(self) -> dict:
        """Read position: word ``i`` of piece ``k`` of vector ``v`` of ``chunk``; in the
        vector, run ``ky`` (bit offset ``kyoff``), code ``u`` of the run (``kyub``: the bit
        offset of the code, ``kyoff`` plus the code's bit in the run), lane
        ``dest`` (bit ``destb``), and the rooms left in the run and the vector (``rr``, ``rv``,
        codes; ``rrb``, ``rvb``, bits) and in the lanes (``rl``, ``rlb``); ``top``: the
        position at the chunk's start, where every vector's walk begins."""
        K, k_w, ab = self.lanes, range(self.max_k + 1), self.addr_bits
        widths = {"ky": k_w, "u": k_w, "kyoff": ab, "kyub": ab, "rr": k_w, "rv": k_w,
                  "rrb": ab, "rvb": ab}
        cur = {n: Signal(w, name=f"cur_{n}") for n, w in widths.items()}
        return {"cur": cur, "top": {n: Signal.like(x, name=f"chunk_{n}") for n, x in cur.items()},
                "dest": Signal(range(K + 1)), "destb": Signal(range(K * CODE_BITS + 1)),
                "rl": Signal(range(K + 1), name="room_lanes"), "rlb": Signal(ab, name="room_lanes_bits"),
                "reading": Signal(), "stalling": Signal(),
                "stall_left": Signal(range(MAX_RUNTIME_BITS + 1)),
                "i": Signal(range(self.max_words + 1)), "k": Signal(range(MAX_KERNEL + 1)),
                # the rooms' differences (codes): ``d01 = rl - rr``, ``d02 = rl - rv``, ``d12 =
                # rr - rv``, ``d21 = rv - rr``, kept beside the rooms, and those of a vector's
                # start in the chunk (``t``, with ``rl = K``): the least room is told by their
                # signs, registers, not by subtractions of the rooms
                "d": {n: Signal(signed(len(cur["rr"]) + 2), name=f"room_diff_{n}") for n in DIFFS},
                "t": {n: Signal(signed(len(cur["rr"]) + 2), name=f"chunk_room_diff_{n}") for n in DIFFS},
                # ``i + 1``, ``i + 2``, ``k + 1`` and ``k + 2`` kept beside them (no adder in a
                # step), and whether the word, the piece and the vector are the last ones as
                # registers (``i + 1 == words``, ``k + 1 == pieces``, ``v == vectors - 1``),
                # each set from the comparison of the count it will have: no comparison
                # between the counters and the step's decision, which enables the walk's and
                # the walker's registers
                "i1": Signal(range(self.max_words + 2), name="i_plus1"),
                "i2": Signal(range(self.max_words + 3), name="i_plus2"),
                "k1": Signal(range(MAX_KERNEL + 2), name="k_plus1"),
                "k2": Signal(range(MAX_KERNEL + 3), name="k_plus2"),
                "last_word": Signal(name="last_word"), "last_piece": Signal(name="last_piece"),
                "last_vec": Signal(name="last_vector"),
                "v": Signal(range(self.vectors)), "chunk": Signal(range(self.max_chunks + 1))}

    def _read(self, m: Module) -> dict:
        st = self._walk_state()
        piece = self._piece(m, st)
        d = self._read_stage(m, st, piece)
        self._step(m, st, piece)
        return d

    def _piece(self, m: Module, st: dict) -> dict:
        """The piece at the read position: its codes ``n`` (bits ``nb``): the least room left
        in the lanes, the run and the vector; whether its run ends there (``wrap``); the
        position after it (``next``); bit address and real lanes; the address of its current
        word. The rooms and their differences are registers: the least room is told by the
        differences' signs, and the next rooms and differences are subtractions and sums of
        registers beside that, then a selection (no subtraction before the selection)."""
        plan, K, cur = self.plan, self.lanes, st["cur"]
        rooms, rooms_b = (st["rl"], cur["rr"], cur["rv"]), (st["rlb"], cur["rrb"], cur["rvb"])
        w = len(cur["rr"]) + 1
        # the code rooms' differences: four are the registers ``d``, the two others subtractions
        d = st["d"]
        diff = {(0, 1): d["01"], (0, 2): d["02"], (1, 2): d["12"], (2, 1): d["21"]}
        diff_b = {}
        for a in range(3):
            for b in range(3):
                if a != b:
                    diff_b[a, b] = Signal(signed(self.addr_bits + 1), name=f"room_bits_{a}_less_{b}")
                    m.d.comb += diff_b[a, b].eq(rooms_b[a] - rooms_b[b])
                    if (a, b) not in diff:
                        diff[a, b] = Signal(signed(w + 1), name=f"room_{a}_less_{b}")
                        m.d.comb += diff[a, b].eq(rooms[a] - rooms[b])
        less = {(0, 1): d["01"][-1], (0, 2): d["02"][-1], (1, 2): d["12"][-1], (2, 1): d["21"][-1]}
        sel = [Signal(name=f"least_{x}") for x in ("lanes", "run", "vector")]
        m.d.comb += [sel[0].eq(less[0, 1] & less[0, 2]), sel[1].eq(~less[0, 1] & less[1, 2]),
                     sel[2].eq(~sel[0] & ~sel[1])]
        wrap = Signal(name="run_ends")
        m.d.comb += wrap.eq(~less[0, 1] & ~less[2, 1])

        def pick(values):
            return (Mux(sel[0], values[0], 0) | Mux(sel[1], values[1], 0)
                    | Mux(sel[2], values[2], 0))

        n, nb = Signal(range(K + 1)), Signal(range(K * CODE_BITS + 1))
        m.d.comb += [n.eq(pick(rooms)), nb.eq(pick(rooms_b))]
        totals = [Signal(self.addr_bits, name=f"{x}_bits") for x in ("lanes", "run", "vector")]
        m.d.sync += [t.eq(shift_add(x, plan.bits)) for t, x in zip(totals, (K, plan.run, plan.k_total))]
        # the position after the piece: every sum beside the comparisons, then a selection
        next_row = cur["kyoff"] + plan.run_pitch            # bit offset of the next run
        nxt = {"dest": pick((K, st["dest"] + cur["rr"], st["dest"] + cur["rv"])),
               "destb": pick((totals[0], st["destb"] + cur["rrb"], st["destb"] + cur["rvb"])),
               "rl": pick((0, diff[0, 1], diff[0, 2])), "rlb": pick((0, diff_b[0, 1], diff_b[0, 2])),
               "u": Mux(wrap, 0, Mux(sel[0], cur["u"] + st["rl"], cur["u"] + cur["rv"])),
               "rr": Mux(wrap, plan.run, Mux(sel[0], diff[1, 0], diff[1, 2])),
               "rrb": Mux(wrap, totals[1], Mux(sel[0], diff_b[1, 0], diff_b[1, 2])),
               "rv": pick((diff[2, 0], diff[2, 1], 0)), "rvb": pick((diff_b[2, 0], diff_b[2, 1], 0)),
               "ky": cur["ky"] + wrap, "kyoff": Mux(wrap, next_row, cur["kyoff"]),
               # the code's bit offset: the read address adds it to the vector's
               "kyub": Mux(wrap, next_row, Mux(sel[0], cur["kyub"] + st["rlb"], cur["kyub"] + cur["rvb"]))}
        # the differences after the piece: unchanged unless its run ends (the run's room starts
        # again at ``run``); with the lanes then reset to K (a chunk's end), ``K - rr`` and ``K -
        # rv`` of the rooms after the piece, each a register plus a constant
        run = plan.run
        origin = {x: Signal.like(d[x], name=f"origin_room_diff_{x}") for x in DIFFS}
        m.d.sync += [origin["01"].eq(K - run), origin["02"].eq(K - plan.k_total),
                     origin["12"].eq(run - plan.k_total), origin["21"].eq(plan.k_total - run)]
        nd = {"01": Mux(wrap, d["01"] - run, d["01"]), "02": d["02"],
              "12": Mux(wrap, d["12"] + run, d["12"]), "21": Mux(wrap, d["21"] - run, d["21"])}
        nd_lanes = {"01": Mux(wrap, K - run, Mux(sel[0], d["01"] + K, d["21"] + K)),
                    "02": Mux(sel[0], d["02"] + K, Mux(sel[1], d["12"] + K, K)),
                    "12": nd["12"], "21": nd["21"]}
        start = Signal(signed(self.addr_bits))
        m.d.comb += start.eq(self.vec.bit + cur["kyub"])
        lw = (self.word_bits - 1).bit_length()
        # word i of the piece: its first word (i = 0), else the word after the one read in
        # the cycle before (kept in a register: the position holds while a piece's words
        # are read), so one adder lies between the walk's registers and the address
        after = Signal.like(self.read_addr, name="read_addr_after")
        m.d.comb += self.read_addr.eq(Mux(st["i"] == 0, start >> lw, after))
        m.d.sync += after.eq(self.read_addr + 1)
        return {"n": n, "nb": nb, "next": nxt, "totals": totals, "offset": start[:lw],
                "diffs": nd, "diffs_lanes": nd_lanes, "diffs_origin": origin,
                "lanes": self._piece_lanes(m, cur, st["dest"], n),
                "last_word": st["last_word"], "last_piece": st["last_piece"],
                "last_vec": st["last_vec"],
                "last_chunk": st["top"]["rv"] <= K}

    def _read_stage(self, m: Module, st: dict, piece: dict) -> dict:
        """What the align stage needs of the word read this cycle, registered: the piece's
        bits in the word are ``[lo, stop - i*W)``, clipped to the word."""
        K, lw = self.lanes, (self.word_bits - 1).bit_length()
        i, k = st["i"], st["k"]
        W = self.word_bits
        iw = Signal(signed(len(i) + lw + 2))
        m.d.comb += iw.eq(i << lw)
        d = {"valid": Signal(name="d_valid"), "lo": Signal(lw, name="d_lo"),
             "stop": Signal(range(K * CODE_BITS + W + 1), name="d_stop"),
             "i": Signal.like(i, name="d_i"),
             "at": Signal(range(K * CODE_BITS + (self.max_words + 2) * W), name="d_at"),
             "first": Signal(name="d_first"),
             "piece": Signal(name="d_piece"), "end": Signal(name="d_end"),
             "lanes": {x: Signal.like(y, name=f"d_lanes_{x}") for x, y in piece["lanes"].items()},
             "v": Signal.like(st["v"], name="d_v"), "chunk": Signal.like(st["chunk"], name="d_chunk"),
             "last": Signal(name="d_last")}
        active = st["reading"] & ~st["stalling"]
        o = piece["offset"]
        m.d.sync += [d["valid"].eq(active), d["lo"].eq(Mux(i == 0, o, 0)),
                     d["stop"].eq(piece["nb"] + o), d["i"].eq(i),
                     d["at"].eq(st["destb"] - o + iw + W),
                     d["first"].eq((k == 0) & (i == 0)), d["piece"].eq(i == 0),
                     d["end"].eq(active & piece["last_word"] & piece["last_piece"]),
                     *(d["lanes"][x].eq(y) for x, y in piece["lanes"].items()),
                     d["v"].eq(st["v"]), d["chunk"].eq(st["chunk"]), d["last"].eq(piece["last_chunk"])]
        return d

    def _step(self, m: Module, st: dict, piece: dict) -> None:
        """Advance word, piece, vector, chunk; wait ``stall`` cycles before a later chunk."""
        cur, top, i, k, v = st["cur"], st["top"], st["i"], st["k"], st["v"]
        i1, k1, i2, k2 = st["i1"], st["k1"], st["i2"], st["k2"]
        nxt, totals, K, plan = piece["next"], piece["totals"], self.lanes, self.plan
        lanes_reset = [st["dest"].eq(0), st["destb"].eq(0), st["rl"].eq(K), st["rlb"].eq(totals[0])]
        # the word and piece counts back at 0 (a new piece, a new vector)
        word_reset = [i.eq(0), i1.eq(1), i2.eq(2), st["last_word"].eq(plan.words == 1)]
        piece_reset = [k.eq(0), k1.eq(1), k2.eq(2), st["last_piece"].eq(plan.pieces == 1)]
        d, t = st["d"], st["t"]
        with m.If(self.start):
            origin = {x: 0 for x in cur} | {"rr": self.plan.run, "rv": self.plan.k_total,
                                             "rrb": totals[1], "rvb": totals[2]}
            m.d.sync += [st["reading"].eq(1), st["stalling"].eq(0), v.eq(0),
                         st["last_vec"].eq(self.vectors == 1), st["chunk"].eq(0)]
            m.d.sync += word_reset + piece_reset + lanes_reset
            m.d.sync += [cur[x].eq(origin[x]) for x in cur] + [top[x].eq(origin[x]) for x in top]
            m.d.sync += [d[x].eq(v0) for x, v0 in piece["diffs_origin"].items()]
            m.d.sync += [t[x].eq(v0) for x, v0 in piece["diffs_origin"].items()]
            m.d.comb += self.vec_first.eq(1)
        with m.Elif(st["stalling"]):
            m.d.sync += st["stall_left"].eq(st["stall_left"] - 1)
            with m.If(st["stall_left"] == 1):
                m.d.sync += st["stalling"].eq(0)
        with m.Elif(st["reading"] & ~piece["last_word"]):
            m.d.sync += [i.eq(i1), i1.eq(i2), i2.eq(i2 + 1), st["last_word"].eq(i2 == plan.words)]
        with m.Elif(st["reading"] & ~piece["last_piece"]):
            m.d.sync += word_reset + [k.eq(k1), k1.eq(k2), k2.eq(k2 + 1),
                                      st["last_piece"].eq(k2 == plan.pieces)]
            m.d.sync += [cur[x].eq(nxt[x]) for x in cur]
            m.d.sync += [st[x].eq(nxt[x]) for x in ("dest", "destb", "rl", "rlb")]
            m.d.sync += [d[x].eq(piece["diffs"][x]) for x in d]
        with m.Elif(st["reading"]):
            m.d.sync += word_reset + piece_reset + lanes_reset
            with m.If(~piece["last_vec"]):
                m.d.sync += [v.eq(v + 1), st["last_vec"].eq(v == self.vectors - 2)]
                m.d.sync += [cur[x].eq(top[x]) for x in cur]
                m.d.sync += [d[x].eq(t[x]) for x in d]
                m.d.comb += self.vec_next.eq(1)
            with m.Else():
                self._next_chunk(m, st, piece)

    def _next_chunk(self, m: Module, st: dict, piece: dict) -> None:
        """The chunk's last vector read: every vector's walk now starts where it ended."""
        plan, emit, nxt = self.plan, self.emit_count(self.plan.bits), piece["next"]
        used = Signal(range(MAX_KERNEL * self.max_words + 1), name="reads_per_vector")
        stall = Signal(range(MAX_RUNTIME_BITS + 1), name="chunk_stall")
        # the product of two small counts in logic, not in a multiplier block
        m.d.comb += used.eq(shift_add(plan.words, plan.pieces))
        m.d.comb += stall.eq(Mux(used >= emit, 0, emit - used))
        m.d.sync += [st["v"].eq(0), st["last_vec"].eq(self.vectors == 1), st["chunk"].eq(st["chunk"] + 1)]
        m.d.sync += [st["cur"][x].eq(nxt[x]) for x in st["cur"]]
        m.d.sync += [st["top"][x].eq(nxt[x]) for x in st["top"]]
        m.d.sync += [st[n][x].eq(piece["diffs_lanes"][x]) for n in ("d", "t") for x in DIFFS]
        m.d.comb += self.vec_first.eq(1)
        with m.If(piece["last_chunk"]):
            m.d.sync += st["reading"].eq(0)
        with m.Elif(stall != 0):
            m.d.sync += [st["stalling"].eq(1), st["stall_left"].eq(stall)]

    def _piece_lanes(self, m: Module, cur: dict, dest, n) -> dict:
        """What gives the lanes ``[t_lo, t_hi)`` of the piece that hold real codes (empty if
        its run or its vector is padding), registered by the read stage: the piece's run and
        code in the run, its first lane and its length. `_lane_range` takes them on with the
        vector's real codes and runs a stage later, `_deposit` makes the lanes of them."""
        return {"u": cur["u"], "ky": cur["ky"], "dest": dest, "n": n}

    def _lane_range(self, m: Module, d: dict) -> dict:
        """The align stage's part of the piece's real lanes: its real codes relative to the
        piece, clipped to ``[0, n]`` (``lo``, ``hi``; ``hi = lo`` if the run or the vector is
        padding). The vector comes registered: a read's align stage is the cycle after it,
        exactly when a copy of the walker's vector registered every cycle holds the read's
        vector (the walker steps at the edge after a vector's last read)."""
        vec = Signal.like(self.vec, name="vec_q")
        m.d.sync += vec.eq(self.vec)
        real = vec.ok & (d["ky"] >= vec.ky_lo) & (d["ky"] < vec.ky_hi)
        w = len(Signal(range(self.max_k + 1))) + 2
        rel = [Signal(signed(w), name=f"lanes_rel_{x}") for x in ("lo", "hi")]
        m.d.comb += [rel[0].eq(vec.lo - d["u"]), rel[1].eq(vec.hi - d["u"])]
        n = d["n"]
        lo, hi = (Mux(x < 0, 0, Mux(x > n, n, x)) for x in rel)
        return {"lo": lo, "hi": Mux(real, hi, lo), "dest": d["dest"]}

    # ---- align: the read word registered; its mask and lanes worked out beside it ---------
    def _align(self, m: Module, d: dict) -> dict:
        """The word read in the cycle before, registered once more (reset-less and always
        enabled: on ECP5 this is the block RAM's own output register, `bitmill.hw.ecp5`), and
        beside it what the deposit needs, worked out from the read stage's registers: the mask
        of the piece's bits in the word, where the word lands, the lanes it fills."""
        W, K = self.word_bits, self.lanes
        word = Signal(W, name="word_q", reset_less=True)
        m.d.sync += word.eq(self.read_data)
        lanes = self._lane_range(m, d["lanes"])
        lw = (W - 1).bit_length()
        slots = -(-(K * CODE_BITS + W) // W) + 1           # W-bit slots the word can land in
        a = {"word": word, "keep": Signal(W, name="a_keep"),
             "fine": Signal(lw, name="a_fine"), "slot": Signal(slots, name="a_slot"),
             "lanes": {x: Signal(range(K + 1), name=f"a_lanes_{x}") for x in lanes},
             "piece": Signal(name="a_piece"), "valid": Signal(name="a_valid"),
             "first": Signal(name="a_first"), "end": Signal(name="a_end"),
             "v": Signal.like(d["v"], name="a_v"), "chunk": Signal.like(d["chunk"], name="a_chunk"),
             "last": Signal(name="a_last")}
        stop_word, stop_bit = d["stop"] >> lw, d["stop"][:lw]
        past, at_stop = stop_word > d["i"], stop_word == d["i"]
        keep = [(q >= d["lo"]) & (past | (at_stop & (q < stop_bit))) for q in range(W)]
        m.d.sync += [a["keep"].eq(Cat(*keep)),
                     a["fine"].eq(d["at"][:lw]),
                     a["slot"].eq(Cat(*[(d["at"] >> lw) == s for s in range(slots)])),
                     *(a["lanes"][x].eq(y) for x, y in lanes.items()),
                     *(a[x].eq(d[x]) for x in ("piece", "valid", "first", "end", "v", "chunk", "last"))]
        return a

    # ---- deposit: masked word into the packed assembly register ---------------------------
    def _deposit(self, m: Module, a: dict) -> dict:
        """The aligned word, masked to the piece's bits and shifted to where it lands,
        registered; the OR into the vector's assembly register follows a cycle later, beside
        the collect stage, which takes the assembly with its last word ORed in (so a register
        reaches the next through the mask and the shifter alone)."""
        W, K = self.word_bits, self.lanes
        masked = Signal(W)
        m.d.comb += masked.eq(a["word"] & a["keep"])
        wide = K * CODE_BITS + W
        placed = Signal(K * CODE_BITS, name="placed", reset_less=True)
        new_lanes = Signal(K, name="new_lanes")
        p_valid, p_first = Signal(name="p_valid"), Signal(name="p_first")
        m.d.sync += [placed.eq(self._place(masked, a)[W:wide]),
                     new_lanes.eq(Mux(a["piece"], self._lanes_of(a["lanes"]), 0)),
                     p_valid.eq(a["valid"]), p_first.eq(a["first"])]
        packed = Signal(K * CODE_BITS, name="packed", reset_less=True)
        lanes = Signal(K, name="packed_lanes", reset_less=True)
        whole, whole_lanes = Signal(K * CODE_BITS, name="assembled"), Signal(K, name="assembled_lanes")
        m.d.comb += [whole.eq(Mux(p_first, 0, packed) | placed),
                     whole_lanes.eq(Mux(p_first, 0, lanes) | new_lanes)]
        with m.If(p_valid):
            m.d.sync += [packed.eq(whole), lanes.eq(whole_lanes)]
        c = {"valid": Signal(name="c_valid"), "v": Signal.like(a["v"], name="c_v"),
             "chunk": Signal.like(a["chunk"], name="c_chunk"), "last": Signal(name="c_last"),
             "packed": whole, "lanes": whole_lanes,
             # the chunk's last vector reaches the collect stage in the next cycle
             "soon": a["valid"] & a["end"] & (a["v"] == self.vectors - 1)}
        m.d.sync += [c["valid"].eq(a["valid"] & a["end"]), c["v"].eq(a["v"]),
                     c["chunk"].eq(a["chunk"]), c["last"].eq(a["last"])]
        return c

    def _place(self, masked, a: dict):
        """``masked << at`` in two steps: the word shifted by ``at mod W`` into two words,
        then each W-bit slot of the result takes the low word, the high word or nothing by
        the slot number ``at // W``, decoded one-hot by the align stage."""
        W = self.word_bits
        pair = Cat(masked.as_unsigned() << a["fine"], Const(0, 1))      # 2W bits
        low, high = pair[:W], pair[W:2 * W]
        slot = a["slot"]
        return Cat(Mux(slot[0], low, 0),
                   *[Mux(slot[s], low, 0) | Mux(slot[s - 1], high, 0) for s in range(1, len(slot))])

    def _lanes_of(self, r: dict):
        """The lanes ``[dest + lo, dest + hi)`` as a mask."""
        K = self.lanes
        therm = [Cat(*[t < r["dest"] + x for t in range(K)]) for x in (r["lo"], r["hi"])]
        return therm[1] & ~therm[0]

    # ---- collect: unpack the codes into the vector's slot of the chunk block --------------
    def _collect(self, m: Module, c: dict) -> dict:
        """Each lane's code cut from the assembled word by the code width, and its lane
        value, into the vector's slot. The code width and encoding reach every lane from its
        own register copy (`bitmill.hw.pe.copy_register`: no net fanning out to every bit of
        every lane); the plan is held from the core's start, several stages before this one."""
        K, plan = self.lanes, self.plan
        lanes = []
        for t in range(K):
            bits = copy_register(plan.bits.shape(), f"lane{t}_bits")
            enc = copy_register(plan.enc.shape(), f"lane{t}_enc")
            m.d.sync += [bits.eq(plan.bits), enc.eq(plan.enc)]
            code = Signal(CODE_BITS, name=f"lane{t}_code")
            with m.Switch(bits):
                for b in range(1, MAX_RUNTIME_BITS + 1):
                    with m.Case(b):
                        m.d.comb += code.eq(c["packed"][t * b:(t + 1) * b])
            lanes.append(self._lane(m, code, c["lanes"][t], bits, enc))
        # reset-less: a slot is emitted only after the chunk's vectors have been written
        block = [Signal(K * self.lane_bits, name=f"block{n}", reset_less=True)
                 for n in range(self.vectors)]
        for n, slot in enumerate(block):
            with m.If(c["valid"] & (c["v"] == n)):
                m.d.sync += slot.eq(Cat(*lanes))
        e = {"go": Signal(name="e_go"), "last": Signal(name="e_last"), "block": block,
             "addr": Signal.like(self.load.payload.addr, name="e_addr"), "ready": Signal(name="e_ready"),
             "soon": c["soon"], "next_last": c["last"]}
        m.d.comb += e["ready"].eq(c["valid"] & (c["v"] == self.vectors - 1))
        m.d.sync += e["go"].eq(e["ready"])
        with m.If(e["ready"]):
            # the engine address of the chunk's first word (plane 0) in a register
            m.d.sync += [e["last"].eq(c["last"]), e["addr"].eq(c["chunk"])]
        return e

    def _lane(self, m: Module, code, real, b, enc):
        """A lane of the block: its code (bitserial) or its signed value (bitparallel, of
        width ``b`` and encoding ``enc``); zero when the lane holds no real code."""
        if self.family == "bitserial":
            return Mux(real, code, 0)
        top = code.bit_select((b - 1)[:3], 1)
        value = Signal(signed(VALUE_BITS + 2))
        full = Const(1, VALUE_BITS + 2) << b
        with m.If(enc == Encoding.SIGNED):
            m.d.comb += value.eq(code - Mux(top, full, 0))
        with m.Elif(enc == Encoding.ODD):
            m.d.comb += value.eq((code << 1) - (full - 1))
        with m.Else():
            m.d.comb += value.eq(code)
        return Mux(real, value[:VALUE_BITS], 0)

    # ---- emit: one engine word per cycle -------------------------------------------------
    def _emit(self, m: Module, e: dict) -> None:
        K, plan = self.lanes, self.plan
        plane = Signal(range(MAX_RUNTIME_BITS))
        running = Signal()
        emit = self.emit_count(plan.bits)
        busy_last = Signal()

        def advance(go, running, plane):
            """A cycle of the emitter: whether a word leaves, whether it is the chunk's last
            plane, and the next cycle's ``running`` and ``plane``."""
            now = go | running
            cur = Mux(go, 0, plane)
            final = cur == emit - 1
            return now, final, Mux(now, ~final, running), Mux(now, (cur + 1)[:len(plane)], plane)

        now, final, running1, plane1 = advance(e["go"], running, plane)
        cur_last = Mux(e["go"], e["last"], busy_last)
        m.d.sync += [running.eq(running1), plane.eq(plane1)]
        with m.If(now):
            m.d.sync += busy_last.eq(cur_last)
        # ``finish`` worked out a cycle ahead from the emitter's next state, into a register
        # (the consumers' phase changes hang on a register, not on the emitter's logic)
        now1, final1, _, _ = advance(e["ready"], running1, plane1)
        finish = Signal(name="finish_ahead")
        m.d.sync += finish.eq(now1 & final1 & Mux(e["ready"], e["next_last"], Mux(now, cur_last, busy_last)))
        if self.family == "bitserial":
            # every lane's code shifts down a bit after each plane but the last, so the plane
            # leaves from bit 0 of each lane's register: no multiplexer between the block's
            # registers and the engine's buffers (the next chunk's vectors are written only
            # from this chunk's last plane on, when nothing shifts)
            word = Cat(*[slot[t * CODE_BITS] for slot in e["block"] for t in range(K)])
            # whether the codes shift (a plane leaves and is not the last) is worked out two
            # cycles ahead, from the emitter's state stepped twice (the chunk's first plane
            # follows its last vector's collect, which is known a cycle before), into a
            # register per vector slot, and copied from there into a register per lane: no
            # net from the emitter's logic to every lane of the block
            _, _, running2, plane2 = advance(e["ready"], running1, plane1)
            now2, final2, _, _ = advance(e["soon"], running2, plane2)
            for n, slot in enumerate(e["block"]):
                ahead = copy_register(1, f"shift_ahead{n}")
                m.d.sync += ahead.eq(now2 & ~final2)
                for t in range(K):
                    shift = copy_register(1, f"shift{n}_{t}")
                    m.d.sync += shift.eq(ahead)
                    code = slot[t * CODE_BITS:(t + 1) * CODE_BITS]
                    with m.If(shift):
                        m.d.sync += code.eq(code[1:])
            # the next plane's address, ``chunk_slots`` on (the next chunk's first word, set
            # as its block completes, only after this chunk's last word, wins)
            with m.If(now & ~final & ~e["ready"]):
                m.d.sync += e["addr"].eq(e["addr"] + self.chunk_slots)
        else:
            word = Cat(*e["block"])
        # not registered: the engine's buffers register the write (their block RAMs' ports);
        # word and address come straight from registers
        m.d.comb += [self.load.valid.eq(now), self.load.payload.target.eq(self.target),
                     self.load.payload.addr.eq(e["addr"]), self.load.payload.data.eq(word),
                     self.finish.eq(finish)]


def buffer_words(cfg: AccelConfig, buffer: Buffer) -> int:
    """Words of a two-slot buffer (`bitmill.isa.slot_bytes` per slot, `word_bytes` a word)."""
    return 2 * -(-slot_bytes(cfg, buffer) // word_bytes(cfg, buffer))


def core_for(cfg: AccelConfig, buffer: Buffer, target: int, vectors: int) -> StagingCore:
    """The core of a stager reading ``buffer`` into engine buffer ``target`` (0 weights, 1
    activations) for ``vectors`` rows or columns."""
    wb = word_bytes(cfg, buffer)
    if wb & (wb - 1):
        raise ValueError(f"word_bytes must be a power of two, not {wb}")
    chunks = engine_chunks(cfg)
    serial = cfg.pe_family == "bitserial"
    words = buffer_words(cfg, buffer)
    return StagingCore(vectors=vectors, lanes=cfg.lanes, family=cfg.pe_family,
                       word_bytes=wb, buffer_words=words,
                       engine_word_bits=max(cfg.rows, cfg.cols) * cfg.lanes * (1 if serial else VALUE_BITS),
                       engine_depth=(MAX_RUNTIME_BITS if serial else 1) * chunk_slots(chunks),
                       chunk_slots=chunk_slots(chunks), max_chunks=chunks,
                       target=target, addr_bits=(words * 8 * wb).bit_length() + 3)


def lowest_bit(m: Module, value, width: int) -> Signal:
    """The lowest set bit of ``value``'s low ``width`` bits (a power of two), registered."""
    low = value[:width]
    out = Signal(width, name="lowest_bit")
    m.d.sync += out.eq(low & (~low + 1))
    return out


def setup_counter(m: Module, start, cycles: int) -> Signal:
    """A pulse ``cycles`` cycles after ``start`` (the core's start)."""
    count = Signal(range(cycles + 1), name="setup_left")
    with m.If(start):
        m.d.sync += count.eq(cycles)
    with m.Elif(count != 0):
        m.d.sync += count.eq(count - 1)
    return count == 1


def busy_flag(m: Module, start, finish) -> Signal:
    """High from the cycle after ``start`` to the ``finish`` cycle."""
    busy = Signal(name="busy_flag")
    with m.If(start):
        m.d.sync += busy.eq(1)
    with m.Elif(finish):
        m.d.sync += busy.eq(0)
    return busy
