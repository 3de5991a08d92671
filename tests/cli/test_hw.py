"""`bitmill hw emit` and `bitmill hw synth`: Verilog, manifests, synthesis reports, user errors."""

import json

import pytest

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
