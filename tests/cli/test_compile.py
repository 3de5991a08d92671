"""`bitmill compile` and `bitmill simulate`: outputs, the binary program, user errors."""

import json

import numpy as np

from bitmill.config import AccelConfig
from bitmill.program_file import unpack_program
from tests.conftest import REPO, assert_one_error_line

TINY = REPO / "configs/accel/sim-4x4-k16.yaml"


def test_compile_writes_a_program_that_decodes_to_the_same_instructions(run_cli, tmp_path):
    status, out, err = run_cli("compile", "--model", "resnet8", "--bits", "w3a4", "--config", TINY,
                               "-o", tmp_path / "r8")
    assert status == 0, err
    d = tmp_path / "r8"
    for name in ("program.bin", "program.lst", "memory.bin", "symbols.json", "segments.json",
                 "schedule.json", "schedule.md", "config.yaml"):
        assert (d / name).stat().st_size > 0, name
    cfg = AccelConfig.load(d / "config.yaml")
    prog = unpack_program((d / "program.bin").read_bytes(), (d / "memory.bin").read_bytes(), cfg)
    segments = json.loads((d / "segments.json").read_text())
    assert [s["layer"] for s in segments][:2] == ["conv1", "layer1.0.conv1"]
    assert len(prog.instructions) == len((d / "program.lst").read_text().splitlines())
    assert np.all(np.diff([s["first"] for s in segments]) > 0)
    symbols = json.loads((d / "symbols.json").read_text())
    assert symbols[0]["name"] == "input" and set(symbols[0]) == {
        "name", "addr", "rows", "row_codes", "bits", "encoding"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r8"]      # no temporary left over


def test_compile_refuses_an_existing_folder_unless_forced(run_cli, tmp_path):
    out = tmp_path / "r8"
    out.mkdir()
    (out / "stale.txt").write_text("from another network")
    args = ("compile", "--model", "resnet8", "--bits", "w4a4", "--config", TINY, "-o", out)
    status, _, err = run_cli(*args)
    assert_one_error_line(status, err, f"{out} already exists; pass --force")
    status, _, err = run_cli(*args, "--force")
    assert status == 0, err
    assert not (out / "stale.txt").exists() and (out / "program.bin").exists()


def test_simulate_checks_against_golden(run_cli, tmp_path):
    status, out, err = run_cli("simulate", "--model", "resnet8", "--bits", "w2a3", "--config", TINY,
                               "--stats", tmp_path / "s.json")
    assert status == 0, err
    assert "bit-exact" in out
    stats = json.loads((tmp_path / "s.json").read_text())
    assert stats["cycles"] == stats["preload"] + sum(l["cycles"] for l in stats["layers"])


def test_bad_input_is_one_error_line(run_cli, tmp_path):
    status, _, err = run_cli("compile", "--model", "resnet18", "--bits", "w4a4", "--config", TINY,
                             "-o", tmp_path / "x")
    assert_one_error_line(status, err, "activation buffer")
    status, _, err = run_cli("simulate", "--model", "resnet8", "--bits", "w4a4", "--config",
                             tmp_path / "missing.yaml")
    assert_one_error_line(status, err, "missing.yaml")


def test_config_by_shipped_name_compiles_the_same_program(run_cli, tmp_path):
    for config, out in (("sim-4x4-k16", "by-name"), (TINY, "by-path")):
        status, _, err = run_cli("compile", "--model", "resnet8", "--bits", "w4a4", "--config", config,
                                 "-o", tmp_path / out)
        assert status == 0, err
    for name in ("program.bin", "memory.bin", "config.yaml"):
        assert (tmp_path / "by-name" / name).read_bytes() == (tmp_path / "by-path" / name).read_bytes()


def test_a_reused_memory_folder_simulates_with_the_same_cycles(run_cli, tmp_path):
    cycles = {}
    for name, extra in (("plain", ()), ("reused", ("--reuse-memory",))):
        status, out, err = run_cli("compile", "--model", "resnet8", "--bits", "w4a4", "--config", "sim-4x4-k16",
                                   "-o", tmp_path / name, *extra)
        assert status == 0, err
        status, out, err = run_cli("simulate", tmp_path / name, "--stats", tmp_path / f"{name}.json")
        assert status == 0, err
        cycles[name] = json.loads((tmp_path / f"{name}.json").read_text())["cycles"]
        tensors = "every tensor left in the final memory image" if extra else "every tensor of the final memory image"
        assert f"bit-exact: {tensors} equals the golden model" in out
    assert cycles["plain"] == cycles["reused"]
    assert (tmp_path / "reused" / "memory.bin").stat().st_size < (tmp_path / "plain" / "memory.bin").stat().st_size
