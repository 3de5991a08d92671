"""`bitmill hw emit` and `bitmill hw synth`: Verilog, manifests, synthesis reports, user errors."""

import json
from pathlib import Path

import pytest

from bitmill.config import AccelConfig
from bitmill.hw import regmap
from tests.conftest import REPO, assert_one_error_line

CONFIGS = REPO / "configs" / "accel"


def test_emit_writes_verilog_and_manifest(run_cli, tmp_path):
    status, out, err = run_cli("hw", "emit", "--config", CONFIGS / "tiny.yaml", "-o", tmp_path)
    assert status == 0, err
    text = (tmp_path / "bitmill_tiny.v").read_text()
    assert "module bitmill_tiny(" in text
    doc = json.loads((tmp_path / "bitmill_tiny.ports.json").read_text())
    names = {p["name"]: p for p in doc["ports"]}
    for port in ("clk", "rst", "load__payload", "cmd__payload", "cmd__ready", "res_data", "done"):
        assert port in names and f" {port}" in text
    assert doc["engine"]["max_k_total"] == 128 and doc["engine"]["latency"] == 7
    assert names["cmd__payload"]["fields"]["w_bits_m1"] == {"offset": 0, "width": 3}
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.slow
def test_emit_accel_writes_verilog_and_the_register_map(run_cli, tmp_path):
    status, out, err = run_cli("hw", "emit", "--block", "accel", "--config", "tiny", "-o", tmp_path)
    assert status == 0, err
    text = (tmp_path / "bitmill_tiny_accel.v").read_text()
    assert "module bitmill_tiny_accel(" in text
    for port in ("host__awaddr", "host__rdata", "mem__araddr", "mem__wstrb", "irq"):
        assert f" {port}" in text
    tiny = AccelConfig.resolve("tiny")
    assert (tmp_path / "bitmill_tiny_accel.regmap.json").read_text() == regmap.to_json(tiny)
    assert (tmp_path / "bitmill_tiny_accel_regs.h").read_text() == regmap.c_header(tiny)


def test_emit_accel_refuses_cells(run_cli, tmp_path):
    status, _, err = run_cli("hw", "emit", "--block", "accel", "--cells", "xc7", "--config", "tiny",
                             "-o", tmp_path)
    assert_one_error_line(status, err, "--cells applies to --block engine")


def test_emit_bad_config_is_one_error_line(run_cli, tmp_path):
    status, _, err = run_cli("hw", "emit", "--config", tmp_path / "missing.yaml", "-o", tmp_path)
    assert_one_error_line(status, err, "missing.yaml")


@pytest.mark.parametrize("args,fragment", [
    (("--target", "xc7", "--pnr"), "--pnr runs for ecp5, ice40 only"),
    (("--target", "stratix"), "invalid choice: 'stratix'"),
    (("--target", "ecp5", "--pnr", "--seeds", "0"), "seeds must be positive integers, not [0]"),
    (("--target", "ecp5", "--seeds", "2"), "placement seeds need --pnr"),
])
def test_synth_bad_arguments(run_cli, args, fragment):
    status, _, err = run_cli("hw", "synth", "--config", CONFIGS / "tiny.yaml", *args)
    assert_one_error_line(status, err, fragment)


@pytest.mark.slow
def test_synth_tiny_on_ecp5_with_pnr(run_cli, tmp_path):
    status, out, err = run_cli("hw", "synth", "--config", CONFIGS / "tiny.yaml", "--target",
                               "ecp5", "--pnr", "--seeds", "1", "2", "--build-dir",
                               tmp_path / "b", "--reports", tmp_path / "r")
    assert status == 0, err
    doc = json.loads((tmp_path / "r" / "tiny-ecp5.json").read_text())
    assert doc["resources"]["lut"] > 100 and doc["resources"]["bram"] >= 1
    assert set(doc["fmax_by_seed"]) == {"1", "2"}
    assert doc["fmax_mhz"] == min(doc["fmax_by_seed"].values()) > 20
    assert "lowest over placement seeds 1:" in (tmp_path / "r" / "tiny-ecp5.md").read_text()
    log = (tmp_path / "b" / "tiny-ecp5-top" / "nextpnr.log").read_text()
    assert "IO 'rst' is unconstrained" in log and "IO 'clk' is unconstrained" not in log


def test_synth_xc7_maps_popcounts_by_hand_unless_plain(run_cli, tmp_path):
    """xc7: the bit-serial array is built on LUT6_2/CARRY4 cells; --plain leaves the
    popcounts to yosys' LUT mapper. Both reports name what was built."""
    cells = {}
    for extra in ((), ("--plain",)):
        status, out, err = run_cli("hw", "synth", "--config", CONFIGS / "tiny.yaml", "--target",
                                   "xc7", "--block", "array", "--build-dir", tmp_path / "b",
                                   "--reports", tmp_path / "r", *extra)
        assert status == 0, err
        stem = "tiny-xc7-array" + ("-plain" if extra else "")
        doc = json.loads((tmp_path / "r" / f"{stem}.json").read_text())
        assert doc["mapping"] == (None if extra else "xc7")
        assert ("hand-mapped" in (tmp_path / "r" / f"{stem}.md").read_text()) == (not extra)
        cells[bool(extra)] = doc["cells"]
        steps = [l.split("] ", 1)[1].split(":")[0] for l in out.splitlines() if l.startswith("[")]
        assert steps == ["elaborating the array of tiny and emitting Verilog (" + str(
            tmp_path / "b" / stem) + "/bitmill_top.v)", "yosys"]
    assert cells[False].get("LUT6_2", 0) > 0 and "LUT6_2" not in cells[True]


def test_emit_with_xc7_cells_instantiates_primitives(run_cli, tmp_path):
    status, _, err = run_cli("hw", "emit", "--config", CONFIGS / "tiny.yaml", "-o", tmp_path,
                             "--cells", "xc7")
    assert status == 0, err
    text = (tmp_path / "bitmill_tiny.v").read_text()
    assert "LUT6_2 #(" in text and "CARRY4 " in text
    assert json.loads((tmp_path / "bitmill_tiny.ports.json").read_text())["cells"] == "xc7"


def test_emit_takes_a_shipped_config_by_name(run_cli, tmp_path):
    status, _, err = run_cli("hw", "emit", "--config", "tiny", "-o", tmp_path / "by-name")
    assert status == 0, err
    run_cli("hw", "emit", "--config", CONFIGS / "tiny.yaml", "-o", tmp_path / "by-path")
    assert ((tmp_path / "by-name" / "bitmill_tiny.v").read_text()
            == (tmp_path / "by-path" / "bitmill_tiny.v").read_text())


def _canned_report(cfg, target, workdir, **kwargs):
    from bitmill.hw.devices import device_of
    from bitmill.hw.synth import SynthReport

    resources = {"lut": 8364, "carry": 0, "ff": 100, "dsp": 0, "bram": 52, "lutram": 0}
    cells = {"LUT4": 8364, "TRELLIS_FF": 100, "DP16KD": 52}
    return SynthReport(cfg.name, target, "top", cfg.rows, cfg.cols, cfg.lanes, cfg.pe_family,
                       resources, cells, 1.0, fmax_mhz=40.0, pnr_device="--85k", pnr_s=2.0,
                       clock_mhz=cfg.clock_mhz, device="LFE5U-85F",
                       utilisation_pct=device_of(target).utilisation(resources, cells))


def test_synth_reports_go_to_a_build_folder_by_default(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("bitmill.cli.hw.synthesize", _canned_report)
    status, out, err = run_cli("hw", "synth", "--config", CONFIGS / "tiny.yaml", "--target", "ecp5")
    assert status == 0, err
    assert sorted(p.name for p in (tmp_path / "build" / "reports" / "hw").iterdir()) == [
        "tiny-ecp5.json", "tiny-ecp5.md"]
    assert not (tmp_path / "reports").exists()
    # tiny's clock is 50 MHz; 8,364 LUT4 are 10 % of the LFE5U-85F's 83,640
    assert "lut 8364 (10.00 %)" in out and "Fmax 40 MHz, misses 50 MHz by 10.0 MHz" in out
    md = (tmp_path / "build" / "reports" / "hw" / "tiny-ecp5.md").read_text()
    assert "| lut | 8364 | 10.00 % of 83,640 LUT4 |" in md
    assert "| bram | 52 | 25.00 % of 208 DP16KD |" in md
    assert "misses 50 MHz by 10.0 MHz (the configuration's clock)" in md
    doc = json.loads((tmp_path / "build" / "reports" / "hw" / "tiny-ecp5.json").read_text())
    assert doc["utilisation_pct"] == {"lut": 10.0, "ff": 0.12, "bram": 25.0, "dsp": 0.0}
    assert doc["device"] == "LFE5U-85F" and doc["clock_mhz"] == 50.0


@pytest.mark.parametrize("bad", ["file", "under-file"])
def test_synth_refuses_an_unusable_report_folder_before_synthesis(run_cli, tmp_path, monkeypatch, bad):
    def never(*args, **kwargs):
        raise AssertionError("synthesis started")
    monkeypatch.setattr("bitmill.cli.hw.synthesize", never)
    (tmp_path / "file").write_text("")
    target = tmp_path / "file" if bad == "file" else tmp_path / "file" / "hw"
    status, _, err = run_cli("hw", "synth", "--config", CONFIGS / "tiny.yaml", "--target", "ecp5",
                             "--reports", target)
    assert_one_error_line(status, err, "--reports", str(target), "not a folder")


def test_synth_refuses_a_read_only_report_folder(run_cli, tmp_path, monkeypatch):
    """A folder the user cannot write (write permission as the OS answers it: root passes
    every permission check, so the answer is stood in for)."""
    import os
    monkeypatch.setattr("bitmill.cli.hw.synthesize", _canned_report)
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o555)
    real_access = os.access
    monkeypatch.setattr("bitmill.hw.synth.os.access",
                        lambda path, mode: False if Path(path) == tmp_path / "ro" else real_access(path, mode))
    try:
        status, _, err = run_cli("hw", "synth", "--config", CONFIGS / "tiny.yaml", "--target",
                                 "ecp5", "--reports", tmp_path / "ro" / "hw")
    finally:
        (tmp_path / "ro").chmod(0o755)
    assert_one_error_line(status, err, "--reports", "is not writable")


@pytest.mark.parametrize("name,board,part", [("ulx3s-85f", "ulx3s-85f", "LFE5U-85F"),
                                             ("pynq-z2", "pynq-z2", "xc7z020"),
                                             ("ecp5-85f", "none", "LFE5U-85F")])
def test_board_configs_load_and_name_their_part(name, board, part):
    """The board configurations (and ecp5-85f, which names no board) load by name and by path,
    and synthesis measures them against their board's part (the target's reference part); the buffers are whole memory words and the tile engine
    can be built."""
    from bitmill.config import AccelConfig
    from bitmill.hw.buffers import slot_words
    from bitmill.hw.devices import device_of
    from bitmill.hw.engine import engine_chunks
    from bitmill.isa import Buffer

    cfg = AccelConfig.resolve(name)
    assert cfg == AccelConfig.load(CONFIGS / f"{name}.yaml") and cfg.board == board
    target = "xc7" if board == "pynq-z2" else "ecp5"
    assert device_of(target, cfg.board).part == part
    assert all(slot_words(cfg, buf) > 0 for buf in Buffer) and engine_chunks(cfg) >= 1


def test_accel_wrapper_chains_every_board_port_bit():
    """The chains carry every bit of host, mem, irq and running (not the trace)."""
    from bitmill.config import AccelConfig
    from bitmill.hw.accel import Accelerator
    from bitmill.hw.accel_top import SerialAccelTop

    cfg = AccelConfig.resolve("tiny")
    top = SerialAccelTop(Accelerator(cfg))
    b = cfg.mem_bytes_per_cycle
    # AXI4-Lite slave: 8-bit addresses, 32-bit data; AXI4 master: 32-bit addresses, ID 1
    host_in = 2 * (8 + 3 + 1) + 32 + 4 + 1 + 1 + 1
    host_out = 1 + 1 + 2 + 1 + 1 + 32 + 2 + 1
    # arready rid rdata rresp rlast rvalid awready wready bid bresp bvalid
    mem_in = 1 + 1 + 8 * b + 2 + 1 + 1 + 1 + 1 + 1 + 2 + 1
    # (id addr len size burst valid) x {ar, aw}, wdata wstrb wlast wvalid, rready bready
    mem_out = 2 * (1 + 32 + 8 + 3 + 2 + 1) + 8 * b + b + 1 + 1 + 1 + 1
    assert (top.in_bits, top.out_bits) == (host_in + mem_in, host_out + mem_out + 2)
    with pytest.raises(TypeError, match="accel must be an Accelerator, not AccelConfig"):
        SerialAccelTop(cfg)


@pytest.mark.parametrize("args,fragment", [
    (("--target", "xc7", "--pnr"), "--pnr runs for ecp5, ice40 only"),
    (("--target", "ecp5", "--seeds", "2"), "placement seeds need --pnr"),
    (("--target", "ecp5", "--pnr", "--seeds", "-1"), "seeds must be positive integers, not [-1]"),
])
def test_synth_accel_bad_arguments(run_cli, args, fragment):
    status, _, err = run_cli("hw", "synth", "--config", CONFIGS / "tiny.yaml", "--block",
                             "accel", *args)
    assert_one_error_line(status, err, fragment)


def test_synth_pnr_refuses_blocks_with_many_ports(run_cli):
    status, _, err = run_cli("hw", "synth", "--config", CONFIGS / "tiny.yaml", "--block",
                             "array", "--target", "ecp5", "--pnr")
    assert_one_error_line(status, err, "--pnr needs block top or accel")


def test_synth_accel_bad_config_is_one_error_line(run_cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((CONFIGS / "tiny.yaml").read_text().replace("board: none", "board: ulx3s"))
    status, _, err = run_cli("hw", "synth", "--config", bad, "--block", "accel", "--target",
                             "ecp5")
    assert_one_error_line(status, err, "board must be one of", "'ulx3s'")


@pytest.mark.slow
def test_synth_whole_accelerator_on_ecp5(run_cli, tmp_path):
    """Yosys on the whole tiny accelerator (several minutes): every memory in block RAM,
    the requant multipliers in DSPs, the report named for the block."""
    status, out, err = run_cli("hw", "synth", "--config", CONFIGS / "tiny.yaml", "--target",
                               "ecp5", "--block", "accel", "--build-dir", tmp_path / "b",
                               "--reports", tmp_path / "r")
    assert status == 0, err
    doc = json.loads((tmp_path / "r" / "tiny-ecp5-accel.json").read_text())
    assert doc["block"] == "accel" and doc["mapping"] is None
    assert doc["resources"]["bram"] > 0 and doc["resources"]["dsp"] > 0
    assert doc["resources"]["lutram"] == 0 and "LUT4" in doc["cells"]
    assert "the whole accelerator" in (tmp_path / "r" / "tiny-ecp5-accel.md").read_text()
