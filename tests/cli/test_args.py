"""Argument values: seeds, counts and bit schedules are checked by the parser; zoo and export
write their folder whole."""

import pytest

from tests.conftest import assert_one_error_line

R8 = ("--model", "resnet8", "--bits", "w4a4")

SEEDED = [
    ("golden", *R8),
    ("eval", *R8, "--dataset", "synthetic"),
    ("zoo", *R8, "-o", "unused"),
    ("compile", *R8, "--config", "tiny", "-o", "unused"),
    ("simulate", *R8, "--config", "tiny"),
    ("train", "--out", "unused"),
]


@pytest.mark.parametrize("args", SEEDED, ids=lambda a: a[0])
def test_a_negative_seed_is_one_error_line(run_cli, args):
    status, out, err = run_cli(*args, "--seed", "-1")
    assert_one_error_line(status, err, "argument --seed: expected a non-negative integer, got -1")
    status, _, err = run_cli(*args, "--seed", "x")
    assert_one_error_line(status, err, "argument --seed: invalid non-negative integer value: 'x'")


def test_golden_batch_is_bounded(run_cli):
    status, out, err = run_cli("golden", *R8, "--batch", "10000000")
    assert_one_error_line(status, err, "--batch must be a positive integer up to 4096", "not 10000000")
    assert out == ""


@pytest.mark.parametrize("schedule", ["8,x", "8,0", "9", "", "4,,3", "8;4"])
def test_progressive_schedule_is_validated(run_cli, tmp_path, schedule):
    status, _, err = run_cli("train", "--out", tmp_path / "r", "--progressive", schedule)
    assert_one_error_line(status, err, "argument --progressive: expected comma-separated bit-widths in 1..8")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("args,fragment", [
    (("train", "--out", "r", "--first-last", "9"), "argument --first-last: expected an integer in 0..8, got 9"),
    (("train", "--out", "r", "--first-last", "-1"), "argument --first-last: expected an integer in 0..8"),
    (("train", "--out", "r", "--epochs", "0"), "argument --epochs: expected a positive integer, got 0"),
    (("train", "--out", "r", "--batch-size", "-2"), "argument --batch-size: expected a positive integer"),
    (("train", "--out", "r", "--width", "0"), "argument --width: expected a positive integer"),
    (("golden", *R8, "--first-last-bits", "0"), "argument --first-last-bits: expected an integer in 1..8"),
    (("golden", *R8, "--first-last-bits", "-8"), "argument --first-last-bits: expected an integer in 1..8"),
])
def test_integer_options_refuse_values_out_of_range(run_cli, args, fragment):
    status, _, err = run_cli(*args)
    assert_one_error_line(status, err, fragment)


def test_zoo_writes_its_folder_whole_and_refuses_an_existing_one(run_cli, tmp_path):
    out = tmp_path / "net"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    status, stdout, err = run_cli("zoo", *R8, "-o", out)
    assert_one_error_line(status, err, f"{out} already exists; pass --force")
    assert stdout == "" and (out / "stale.txt").exists()
    status, _, err = run_cli("zoo", *R8, "-o", out, "--force")
    assert status == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["graph.json", "weights.npz"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net"]          # no temporary left over


def test_export_refuses_an_existing_folder_before_loading_the_checkpoint(run_cli, tmp_path):
    (tmp_path / "net").mkdir()
    status, _, err = run_cli("export", tmp_path / "missing.pt", "-o", tmp_path / "net")
    assert_one_error_line(status, err, f"{tmp_path / 'net'} already exists; pass --force")
