"""Code generation: every LOAD/STORE inside its region and slot, tokens balance per channel,
the encoded program decodes to itself, symbols and segments are labelled records."""

import json
from dataclasses import replace
import re

import numpy as np
import pytest

from bitmill import isa
from bitmill.config import AccelConfig
from bitmill.errors import LoweringError
from bitmill.isa import Buffer, Load, Program, Segment, Store
from bitmill.packing import Region
from bitmill.compiler import zoo
from bitmill.compiler.dram import ALIGN
from bitmill.compiler.pipeline import compile_net
from bitmill.sim.check import tensor_from_image
from tests.conftest import REPO

CASES = [("resnet8", "w4a4", "sim-4x4-k16"), ("resnet20", "w2a2", "ecp5-85f"), ("resnet8", "w3a5", "sim-4x4-k16-bitparallel")]


@pytest.fixture(scope="module", params=CASES, ids=["-".join(c) for c in CASES])
def compiled(request):
    model, bits, cfg = request.param
    graph = zoo.build(model, bits)
    t = graph.input.out
    x = np.random.default_rng(1).integers(t.range[0], t.range[1] + 1, size=t.shape)
    return compile_net(graph, AccelConfig.load(REPO / f"configs/accel/{cfg}.yaml"), x), x


def _inside(addr: int, nbytes: int, symbols) -> bool:
    return any(r.addr <= addr and addr + nbytes <= r.addr + r.nbytes for r in symbols)


def test_every_load_and_store_lies_in_a_region_and_its_slot(compiled):
    c, _ = compiled
    p = c.program
    for ins in p.instructions:
        if isinstance(ins, Load):
            assert ins.nbytes > 0 and _inside(ins.dram_addr, ins.nbytes, p.symbols), ins
            assert ins.offset + ins.nbytes <= isa.slot_bytes(p.config, ins.buffer), ins
        elif isinstance(ins, Store):
            assert ins.nbytes > 0 and _inside(ins.dram_addr, ins.nbytes, p.symbols), ins
            assert ins.nbytes <= isa.slot_bytes(p.config, Buffer.OUT), ins


def test_stores_write_only_layer_outputs_and_loads_of_weights_read_weights(compiled):
    c, _ = compiled
    p = c.program
    outputs = [p.region(l.name) for l in c.schedule.layers if l.kind != "alias"]
    for ins in p.instructions:
        if isinstance(ins, Store):
            assert _inside(ins.dram_addr, ins.nbytes, outputs), ins
        if isinstance(ins, Load) and ins.buffer == Buffer.WEIGHT.value:
            weights = [r for r in p.symbols if r.name.endswith(".weight")]
            assert _inside(ins.dram_addr, ins.nbytes, weights), ins


def test_tokens_balance_per_channel(compiled):
    """Every token pushed is popped by the neighbouring queue, and in program order every pop
    follows the push it takes."""
    p = compiled[0].program
    count = {ch: [0, 0] for ch in ("l2c", "c2l", "c2s", "s2c")}
    channel = {("load", "push_next"): ("l2c", 0), ("compute", "pop_prev"): ("l2c", 1),
               ("compute", "push_prev"): ("c2l", 0), ("load", "pop_next"): ("c2l", 1),
               ("compute", "push_next"): ("c2s", 0), ("store", "pop_prev"): ("c2s", 1),
               ("store", "push_prev"): ("s2c", 0), ("compute", "pop_next"): ("s2c", 1)}
    for ins in p.instructions:
        q = isa.QUEUE_OF[ins.opcode].label
        for flag in ("pop_prev", "pop_next", "push_prev", "push_next"):
            if getattr(ins.deps, flag):
                ch, side = channel[(q, flag)]
                count[ch][side] += 1
                assert count[ch][1] <= count[ch][0], (ch, ins)     # a pop follows its push
    assert all(pushed == popped for pushed, popped in count.values()), count


def test_the_encoded_program_decodes_to_itself(compiled):
    """Every opcode, the first and the last instructions (decoding all takes seconds)."""
    p = compiled[0].program
    n = len(p.instructions)
    firsts = {type(ins): i for i, ins in reversed(list(enumerate(p.instructions)))}
    picked = sorted(set(range(min(n, 150))) | set(firsts.values()) | set(range(max(0, n - 50), n)))
    head = Program(tuple(p.instructions[i] for i in picked), p.memory, p.config, p.symbols, p.segments)
    assert {type(i) for i in head.instructions} == {type(i) for i in p.instructions}
    back = Program.from_binary(head.encoded(), head.memory, head.config, head.symbols, head.segments)
    assert back == head


def test_symbols_are_aligned_disjoint_regions(compiled):
    c, x = compiled
    p = c.program
    assert all(isinstance(r, Region) for r in p.symbols)
    aliases = {l.name for l in c.schedule.layers if l.kind == "alias"}
    tiles = [r for r in p.symbols if re.search(r"\.weight\d+$", r.name)]    # channel tiles of a weight
    for t in tiles:
        whole = p.region(t.name.rstrip("0123456789"))
        assert whole.addr <= t.addr and t.addr + t.nbytes <= whole.addr + whole.nbytes
    placed = sorted((r for r in p.symbols if r not in tiles and r.name not in aliases), key=lambda r: r.addr)
    for a, b in zip(placed, placed[1:]):
        assert a.addr % ALIGN == 0 and a.addr + a.nbytes <= b.addr, (a, b)
    assert placed[-1].addr + placed[-1].nbytes <= len(p.memory)
    assert np.array_equal(tensor_from_image(p.memory, p, "input", x.shape), x)
    assert json.loads(json.dumps([r.to_dict() for r in p.symbols]))[0] == {
        "name": "input", "addr": 0, "rows": p.symbols[0].rows, "row_codes": p.symbols[0].row_codes,
        "bits": 8, "encoding": "unsigned"}
    with pytest.raises(KeyError, match="no symbol 'nothing'"):
        p.region("nothing")


def test_segments_name_every_layer_that_emits_instructions(compiled):
    c, _ = compiled
    p = c.program
    assert all(isinstance(s, Segment) for s in p.segments)
    assert [s.layer for s in p.segments] == [l.name for l in c.schedule.layers if l.kind != "alias"]
    firsts = [s.first for s in p.segments]
    assert firsts[0] == 0 and all(a < b for a, b in zip(firsts, firsts[1:]))
    assert json.loads(json.dumps([s.to_dict() for s in p.segments]))[1] == {
        "layer": p.segments[1].layer, "first": p.segments[1].first}


def test_a_program_longer_than_a_queue_memory_runs_in_fills():
    from bitmill.isa import QUEUE_OF
    from bitmill.sim.verify import simulate_net
    g = zoo.build("resnet8", zoo.BitSpec(4, 4, first_last_bits=8))
    cfg = replace(AccelConfig.resolve("tiny"), acc_bits=32)      # holds every ResNet-8 layer
    x = np.random.default_rng(0).integers(0, 256, size=g.input.out.shape)
    whole = compile_net(g, cfg).program
    assert whole.fills == () and max(whole.queue_counts()) > 100
    small = replace(cfg, queue_depth=100)
    compiled, stats = simulate_net(g, small, x)              # bit-exact against golden
    p = compiled.program
    assert len(p.fills) >= 2 and p.instructions == whole.instructions
    for r in p.fill_ranges():
        assert max(sum(QUEUE_OF[p.instructions[i].opcode] is q for i in r) for q in set(QUEUE_OF.values())) <= 100
    assert stats.cycles > simulate_net(g, cfg, x)[1].cycles   # each fill drains before the next loads


def test_a_freed_region_is_reused_first_fit_and_neighbouring_holes_merge():
    from bitmill.compiler.dram import MemoryMap
    mem = MemoryMap()
    a, b, c = (mem.allocate(n, 1, 64, 8, "unsigned") for n in "abc")    # 64 bytes each
    w = mem.allocate("w", 1, 8, 8, "signed", np.arange(8))
    mem.free(a)
    mem.free(b)
    assert mem.holes == [(0, 128)]
    big = mem.allocate("big", 1, 100, 8, "unsigned", reuse=True)          # 128 aligned bytes fit the hole
    assert big.addr == 0 and mem.holes == []
    assert mem.allocate("d", 1, 64, 8, "unsigned").addr == mem.size - 64 == w.addr + 64
    mem.free(c)
    assert mem.allocate("e", 1, 8, 8, "signed", np.arange(8), reuse=True).addr != c.addr   # contents never reuse
    assert mem.allocate("f", 1, 8, 8, "unsigned", reuse=True).addr == c.addr


def test_last_reads_follow_aliases_and_keep_the_input_and_output():
    from bitmill.compiler.codegen import last_reads
    g = zoo.build("resnet8", "w4a4")
    last, index = last_reads(g), {n.name: i for i, n in enumerate(g.nodes)}
    end = len(g.nodes)
    assert last[g.input.name] == end and last[g.nodes[-1].name] == end
    for i, node in enumerate(g.nodes[1:], start=1):
        for name in node.inputs:
            assert last[name] >= i
    flat = next(n for n in g.nodes if n.op == "flatten")
    assert last[flat.inputs[0]] == last[flat.name] > index[flat.name]
    assert all(last[n.name] > index[n.name] for n in g.nodes)


@pytest.mark.parametrize("model,bits,cfg", [("resnet20", "w4a4", "ulx3s-85f-bram"), ("resnet8", "w3a5", "sim-4x4-k16-bitparallel")])
def test_reused_memory_keeps_instructions_and_cycles_and_golden_equality(model, bits, cfg):
    from bitmill.sim.check import overwritten
    from bitmill.sim.verify import simulate_compiled
    graph = zoo.build(model, bits)
    t = graph.input.out
    x = np.random.default_rng(2).integers(t.range[0], t.range[1] + 1, size=t.shape)
    config = AccelConfig.resolve(cfg)
    plain, reused = compile_net(graph, config, x), compile_net(graph, config, x, reuse_memory=True)
    assert len(reused.program.memory) < 0.65 * len(plain.program.memory)
    strip = lambda i: replace(i, dram_addr=0) if isinstance(i, (Load, Store)) else i   # noqa: E731
    assert [strip(i) for i in reused.program.instructions] == [strip(i) for i in plain.program.instructions]
    _, want = simulate_compiled(graph, plain, x)
    image, got = simulate_compiled(graph, reused, x)          # SimMismatch on any surviving tensor
    assert got.cycles == want.cycles
    gone = overwritten(graph, reused.program)
    assert overwritten(graph, plain.program) == frozenset() and len(gone) > len(graph.nodes) // 2
    assert graph.input.name not in gone and graph.nodes[-1].name not in gone
    index = {n.name: i for i, n in enumerate(graph.nodes)}
    from bitmill.compiler.codegen import last_reads
    last = last_reads(graph)
    for a in graph.nodes:                         # a tensor's bytes go only to tensors born after its last read
        if a.op == "flatten":
            continue
        ra = reused.program.region(a.name)
        for b in graph.nodes[index[a.name] + 1:]:
            rb = reused.program.region(b.name)
            if b.op != "flatten" and ra.addr < rb.addr + rb.nbytes and rb.addr < ra.addr + ra.nbytes:
                assert index[b.name] > last[a.name], (a.name, b.name)
