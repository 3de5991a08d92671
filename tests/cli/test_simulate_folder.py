"""`bitmill simulate DIR` runs the folder `bitmill compile` wrote; `--stats` and `--report`."""

import json

import numpy as np
import pytest

from bitmill.compiler import irio, zoo
from bitmill.sim import golden
from tests.conftest import assert_one_error_line

R8 = ("--model", "resnet8", "--bits", "w3a4")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """A resnet8 compiled for the sim-4x4-k16 config, with seed 3's random input image."""
    from bitmill import cli

    d = tmp_path_factory.mktemp("c") / "r8"
    assert cli.main(["compile", *R8, "--seed", "3", "--config", "sim-4x4-k16", "-o", str(d)]) == 0
    return d


def _cycles(out: str) -> str:
    return out.split("bit-exact:")[1].split("; simulated")[0]


def test_compile_saves_the_network_and_its_input(compiled):
    graph = irio.load_graph(compiled / "net")
    built = zoo.build("resnet8", "w3a4", seed=3)
    assert [n.name for n in graph.nodes] == [n.name for n in built.nodes]
    x = np.load(compiled / "input.npy")
    assert x.shape == (1, 28, 28)
    assert np.array_equal(golden.run(graph, x[None]), golden.run(built, x[None]))


def test_simulating_the_folder_equals_simulating_the_network(run_cli, compiled):
    status, out_dir, err = run_cli("simulate", compiled)
    assert status == 0, err
    status, out_net, err = run_cli("simulate", *R8, "--seed", "3", "--config", "sim-4x4-k16")
    assert status == 0, err
    assert out_dir.split("bit-exact")[0] == out_net.split("bit-exact")[0]       # the same table
    assert _cycles(out_dir) == _cycles(out_net)


def test_input_replaces_the_folders_image(run_cli, compiled, tmp_path):
    x = np.random.default_rng(11).integers(0, 256, size=(1, 28, 28))
    np.save(tmp_path / "x.npy", x)
    status, out, err = run_cli("simulate", compiled, "--input", tmp_path / "x.npy",
                               "--output", tmp_path / "y.npy")
    assert status == 0, err
    assert "bit-exact" in out
    graph = irio.load_graph(compiled / "net")
    assert np.array_equal(np.load(tmp_path / "y.npy"), golden.run(graph, x[None])[0])
    assert not np.array_equal(x, np.load(compiled / "input.npy"))


def test_a_folder_for_another_config_or_damaged_is_one_error_line(run_cli, compiled, tmp_path):
    status, _, err = run_cli("simulate", compiled, "--config", "ecp5-85f")
    assert_one_error_line(status, err, "program.bin: compiled for another accelerator configuration")
    status, _, err = run_cli("simulate", compiled, "--model", "resnet8")
    assert_one_error_line(status, err, "give it or --model NAME, not both")
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in compiled.iterdir():
        if f.is_file():
            (bad / f.name).write_bytes(f.read_bytes())
    status, _, err = run_cli("simulate", bad)
    assert_one_error_line(status, err, f"{bad / 'net'}: no such network directory")
    blob = bytearray((compiled / "program.bin").read_bytes())
    blob[40] ^= 1
    (bad / "program.bin").write_bytes(bytes(blob))
    status, _, err = run_cli("simulate", bad)
    assert_one_error_line(status, err, "program.bin: checksum mismatch")
    (bad / "program.bin").write_bytes((compiled / "program.bin").read_bytes())
    (bad / "segments.json").write_text("[{\"layer\": 1}]")
    status, _, err = run_cli("simulate", bad)
    assert_one_error_line(status, err, "segments.json: expected a list of records with layer, first")


def test_config_is_required_for_a_network(run_cli):
    status, _, err = run_cli("simulate", *R8)
    assert_one_error_line(status, err, "--config is required unless NET is a compiled folder")


def test_stats_file_is_checked_before_the_run(run_cli, tmp_path):
    status, out, err = run_cli("simulate", *R8, "--config", "sim-4x4-k16", "--stats", tmp_path)
    assert_one_error_line(status, err, f"--stats {tmp_path}: is a folder")
    assert out == ""
    status, out, err = run_cli("simulate", *R8, "--config", "sim-4x4-k16", "--stats", tmp_path / "x" / "s.json")
    assert_one_error_line(status, err, f"--stats {tmp_path / 'x' / 's.json'}: the folder")
    assert out == ""


def test_report_folder_holds_plots_stats_and_table(run_cli, compiled, tmp_path):
    rep = tmp_path / "rep"
    status, out, err = run_cli("simulate", compiled, "--report", rep, "--stats", tmp_path / "s.json")
    assert status == 0, err
    assert sorted(p.name for p in rep.iterdir()) == ["bound.png", "cycles.png", "layers.md", "stats.json"]
    for png in ("bound.png", "cycles.png"):
        assert (rep / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    stats = json.loads((rep / "stats.json").read_text())
    assert stats == json.loads((tmp_path / "s.json").read_text())
    table = (rep / "layers.md").read_text()
    assert f"{stats['cycles']:,} cycles" in table
    for layer in stats["layers"]:
        assert f"| {layer['name']} | {layer['op']} | {layer['cycles']:,} |" in table
        assert table.count(f"| {layer['name']} |") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep", "s.json"]    # nothing left over
    status, out, err = run_cli("simulate", compiled, "--report", rep)
    assert_one_error_line(status, err, f"{rep} already exists; pass --force")
    assert out == ""
    status, _, err = run_cli("simulate", compiled, "--report", rep, "--force")
    assert status == 0, err


def test_compile_writes_a_given_image_into_the_memory_image(run_cli, tmp_path):
    x = np.random.default_rng(2).integers(0, 256, size=(1, 28, 28), dtype=np.uint8)
    np.save(tmp_path / "x.npy", x)
    status, _, err = run_cli("compile", *R8, "--config", "sim-4x4-k16", "--input", tmp_path / "x.npy",
                             "-o", tmp_path / "c")
    assert status == 0, err
    assert np.array_equal(np.load(tmp_path / "c" / "input.npy"), x)
    status, _, err = run_cli("simulate", tmp_path / "c", "--output", tmp_path / "y.npy")
    assert status == 0, err
    want = golden.run(zoo.build("resnet8", "w3a4", seed=0), x[None].astype(np.int64))[0]
    assert np.array_equal(np.load(tmp_path / "y.npy"), want)
    np.save(tmp_path / "wide.npy", np.full((1, 28, 28), 999))
    status, _, err = run_cli("compile", *R8, "--config", "sim-4x4-k16", "--input", tmp_path / "wide.npy",
                             "-o", tmp_path / "d")
    assert_one_error_line(status, err, "values 999..999")
    assert not (tmp_path / "d").exists()
