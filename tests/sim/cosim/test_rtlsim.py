"""``bitmill rtlsim``: ResNet-8 on the Verilated accelerator, bit-exact with golden and every
instruction in the simulator's cycle; a divergence is one error line naming the instruction."""

import json
import re
from dataclasses import replace

import numpy as np

import pytest
import yaml

from bitmill import isa
from bitmill.compiler import zoo
from bitmill.compiler.pipeline import compile_net
from bitmill.config import AccelConfig
from bitmill.errors import BitmillError
from bitmill.sim import cycle
from bitmill.sim.cosim.rtlsim import RtlRun, build, check_run, read_hex, run, source_key, write_hex
from tests.conftest import assert_one_error_line


@pytest.fixture(scope="module")
def rtlsim_dir(tmp_path_factory):
    """One Verilator build folder for this module's runs on sim-4x4-k16 (built once, reused)."""
    return tmp_path_factory.mktemp("rtlsim")


@pytest.mark.cosim
@pytest.mark.verilator
def test_resnet8_runs_bit_exact_and_cycle_equal_on_verilator(run_cli, verilator, rtlsim_dir):
    status, out, err = run_cli("rtlsim", "--model", "resnet8", "--bits", "w4a4", "--config",
                               "sim-4x4-k16", "--build-dir", rtlsim_dir / "sim-4x4-k16")
    assert status == 0, err
    assert "rtl: bit-exact" in out and "cycle-equal (all 218 instructions" in out


@pytest.mark.cosim
@pytest.mark.verilator
@pytest.mark.parametrize("load, flag", [(isa.Load(isa.Buffer.ACT.value, 0, 0, 16, deps=isa.Deps(pop_next=True)),
                                          "DEADLOCK"),
                                         (isa.Load(isa.Buffer.ACT.value, 0, 1 << 30, 16), "ADDRESS")])
def test_a_bad_program_stops_the_verilated_rtl_with_its_error_flag(verilator, rtlsim_dir, load, flag):
    """A LOAD waiting for a token nobody pushes, and one beyond the memory: the RTL raises the
    flag and stops (never hangs); the check names the instruction."""
    cfg = AccelConfig.resolve("sim-4x4-k16")
    program = isa.Program((load,), bytes(64), cfg)
    exe, _ = build(cfg, 1 << 20, rtlsim_dir / "sim-4x4-k16")         # the ResNet-8 run's build
    result = run(exe, program, rtlsim_dir, max_cycles=100_000)
    assert result.registers["stopped"] and result.cycles < 100
    with pytest.raises(BitmillError, match=rf"^the RTL stopped with {flag} at instruction 0 \(LOAD\)$"):
        check_run(program, result)


@pytest.mark.cosim
@pytest.mark.verilator
def test_partial_sum_passes_and_fills_run_bit_exact_and_cycle_equal_on_verilator(run_cli, verilator, tmp_path):
    """sim-4x4-k16 with 25-bit accumulators holds 256 terms per pass: ResNet-8's layer2 (288
    terms) runs in two passes, layer3 (576) in three; with queue memories of 48 instructions
    its program runs in fills (one build for both)."""
    cfg = replace(AccelConfig.resolve("sim-4x4-k16"), name="sim-4x4-k16-passes", acc_bits=25, k_passes=4,
                  queue_depth=48)
    assert [len(isa.pass_rows(cfg, 3, c)) for c in (16, 32, 64)] == [1, 2, 3]
    fills = len(compile_net(zoo.build("resnet8", zoo.BitSpec(4, 4, first_last_bits=8)), cfg).program.fills)
    assert fills >= 3
    path = tmp_path / "passes.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    status, out, err = run_cli("rtlsim", "--model", "resnet8", "--bits", "w4a4", "--config", path,
                               "--build-dir", tmp_path / "build")
    assert status == 0, err
    assert "rtl: bit-exact" in out and f"cycle-equal (all 218 instructions in {fills} fills" in out


@pytest.mark.cosim
@pytest.mark.verilator
def test_wide_activation_words_run_bit_exact_and_cycle_equal_on_verilator(run_cli, verilator, tmp_path):
    """A 4x4 array of 32 lanes behind a 4-byte beat, its activations staged from 32-byte buffer
    words: ResNet-8 bit-exact and cycle-equal on the RTL, in fewer cycles than the same array
    staging beat-wide words takes (650,614 on the model)."""
    narrow = replace(AccelConfig.resolve("sim-4x4-k16"), name="sim-4x4-k32-b4", lanes=32, mem_bytes_per_cycle=4)
    paths = {}
    for name, cfg in (("narrow", narrow), ("wide", replace(narrow, name="sim-4x4-k32-b4-wide", act_read_bytes=32))):
        paths[name] = tmp_path / f"{name}.yaml"
        paths[name].write_text(yaml.safe_dump(cfg.to_dict()))
    status, out, err = run_cli("rtlsim", "--model", "resnet8", "--bits", "w4a4", "--config", paths["wide"],
                               "--build-dir", tmp_path / "build")
    assert status == 0, err
    assert "rtl: bit-exact" in out and "cycle-equal (all " in out
    cycles = int(re.search(r"; ([\d,]+) cycles,", out).group(1).replace(",", ""))
    status, out, err = run_cli("simulate", "--model", "resnet8", "--bits", "w4a4", "--config", paths["narrow"])
    assert status == 0, err
    assert cycles < 0.8 * int(re.search(r"([\d,]+) cycles", out).group(1).replace(",", ""))


@pytest.mark.cosim
@pytest.mark.verilator
def test_the_search_report_runs_its_best_policy_on_the_rtl(run_cli, verilator, rtlsim_dir, fp_resnet8,
                                                           tmp_path, monkeypatch):
    monkeypatch.setenv("BITMILL_CACHE", str(tmp_path / "cache"))
    status, out, err = run_cli(
        "report", "search", "--init", fp_resnet8, "--model", "resnet8", "--configs", "sim-4x4-k16",
        "--methods", "ilp", "--budget-ratios", "0.8", "--uniform", "w4a4", "--qat-epochs", "1",
        "--train-subset", "32", "--test-subset", "16", "--dataset", "synthetic", "--calib-images", "16",
        "--samples", "1", "--min-bits", "6", "--runs", tmp_path / "runs", "--out", tmp_path / "rep",
        "--rtl", "--rtl-build-dir", rtlsim_dir)
    assert status == 0, err
    rows = {r["name"]: r for r in json.loads((tmp_path / "rep" / "results.json").read_text())["rows"]}
    rtl = rows["ilp-sim-4x4-k16-0.8"]["rtl"]
    assert rtl["config"] == "sim-4x4-k16" and rtl["cycles"] == rows["ilp-sim-4x4-k16-0.8"]["cycles"]["sim-4x4-k16"]
    assert "rtl" not in rows["w4a4"]
    readme = (tmp_path / "rep" / "README.md").read_text()
    assert "On the RTL: ilp-sim-4x4-k16-0.8 (the searched policy closest to the first goal) ran" in readme
    assert f"{rtl['cycles']:,} cycles, the simulator's {rtl['cycles']:,}" in readme


def test_rtlsim_refuses_a_program_the_rtl_cannot_run(run_cli, tmp_path):
    status, _, err = run_cli("rtlsim", "--model", "resnet8", "--bits", "w4a4", "--build-dir",
                             tmp_path / "rtlsim")
    assert_one_error_line(status, err, "--config is required")


def _run(program, start, end, **regs) -> RtlRun:
    doc = {"stopped": True, "error": 0, "error_instr": 0, "cycles_reg": int(end.max())} | regs
    return RtlRun(start, end, doc, b"", int(end.max()), 1.0)


def test_the_first_divergence_names_the_instruction_and_the_cycles():
    g = zoo.build("resnet8", zoo.BitSpec(4, 4))
    program = compile_net(g, AccelConfig.resolve("sim-4x4-k16")).program
    start, end, _, _ = cycle.run_queues(program)
    check_run(program, _run(program, start, end))                  # the model's own trace
    late = end.copy()
    late[4] += 1
    with pytest.raises(BitmillError, match=rf"instruction 4 \(GEMM of conv1, compute queue\): end cycle "
                                           rf"{end[4] + 1} on the RTL, {end[4]} in the model"):
        check_run(program, _run(program, start, late))
    with pytest.raises(BitmillError, match=r"stopped with DEADLOCK at instruction 3 \(SETUP of conv1\)"):
        check_run(program, _run(program, start, end, error=8, error_instr=3))


@pytest.mark.parametrize("beat", [4, 8, 16])
def test_memory_files_round_trip_bytes_in_word_order(tmp_path, beat):
    """The image file the memory model loads and the file it dumps hold the same bytes: words
    little-endian, written most significant digit first; comments and short words read too."""
    image = np.random.default_rng(beat).integers(0, 256, 5 * beat, dtype=np.uint8).tobytes()
    write_hex(tmp_path / "image.hex", image, beat)
    lines = (tmp_path / "image.hex").read_text().splitlines()
    assert len(lines) == 5 and lines[0] == image[:beat][::-1].hex()
    assert read_hex(tmp_path / "image.hex", beat) == image
    (tmp_path / "dump.hex").write_text("// memory\n" + "1f\n" + "\n".join(lines[1:]) + "\n")
    assert read_hex(tmp_path / "dump.hex", beat) == bytes([0x1f]) + bytes(beat - 1) + image[beat:]


def test_a_build_is_keyed_by_config_depth_and_hardware_source():
    """`source_key` decides whether a Verilated build is reused without emitting Verilog."""
    cfg = AccelConfig.resolve("sim-4x4-k16")
    key = source_key(cfg, 1 << 20)
    assert key == source_key(cfg, 1 << 20)
    assert key != source_key(cfg, 1 << 21)
    assert key != source_key(replace(cfg, mem_latency=cfg.mem_latency + 1), 1 << 20)
