"""`--input FILE.npy` and `--output FILE.npy` of `bitmill golden` and `bitmill simulate`."""

import numpy as np
import pytest

from bitmill.compiler import zoo
from bitmill.sim import golden
from tests.conftest import assert_one_error_line

R8 = ("--model", "resnet8", "--bits", "w4a4")


def _net():
    return zoo.build("resnet8", "w4a4", seed=0)


def _image(seed=5):
    return np.random.default_rng(seed).integers(0, 256, size=(1, 28, 28), dtype=np.uint8)


def test_golden_runs_a_given_image_and_writes_its_output(run_cli, tmp_path):
    x = _image()
    np.save(tmp_path / "x.npy", x)
    status, out, err = run_cli("golden", *R8, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert status == 0, err
    want = golden.run(_net(), x[None].astype(np.int64))[0]
    got = np.load(tmp_path / "y.npy")
    assert got.shape == (10,) and np.array_equal(got, want)
    assert f"argmax [{int(want.argmax())}]" in out


def test_golden_runs_a_given_batch(run_cli, tmp_path):
    x = np.stack([_image(s) for s in range(3)])
    np.save(tmp_path / "x.npy", x)
    status, _, err = run_cli("golden", *R8, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert status == 0, err
    assert np.array_equal(np.load(tmp_path / "y.npy"), golden.run(_net(), x.astype(np.int64)))


def test_simulate_runs_a_given_image_bit_exact_with_golden(run_cli, tmp_path):
    x = _image(7)
    np.save(tmp_path / "x.npy", x)
    status, out, err = run_cli("simulate", *R8, "--config", "sim-4x4-k16", "--input", tmp_path / "x.npy",
                               "--output", tmp_path / "y.npy")
    assert status == 0, err
    assert "bit-exact" in out
    assert np.array_equal(np.load(tmp_path / "y.npy"), golden.run(_net(), x[None].astype(np.int64))[0])


@pytest.mark.parametrize("array,fragment", [
    (np.zeros((1, 28, 28), np.float32), "dtype float32; expected integer codes"),
    (np.zeros((28, 28), np.uint8), "shape (28, 28); expected (1, 28, 28)"),
    (np.zeros((2, 1, 28, 28), np.uint8), "shape (2, 1, 28, 28); expected (1, 28, 28)"),
    (np.full((1, 28, 28), 256, np.int64), "values 256..256; the input grid of resnet8 is 0..255"),
    (np.full((1, 28, 28), -1, np.int64), "values -1..-1; the input grid of resnet8 is 0..255"),
])
def test_simulate_refuses_a_wrong_image(run_cli, tmp_path, array, fragment):
    np.save(tmp_path / "x.npy", array)
    status, _, err = run_cli("simulate", *R8, "--config", "sim-4x4-k16", "--input", tmp_path / "x.npy")
    assert_one_error_line(status, err, f"--input {tmp_path / 'x.npy'}: {fragment}")


def test_golden_refuses_what_is_not_an_image_batch(run_cli, tmp_path):
    (tmp_path / "text.npy").write_text("1 2 3\n")
    np.save(tmp_path / "obj.npy", np.array([1, "a"], dtype=object), allow_pickle=True)
    np.save(tmp_path / "batch.npy", np.zeros((2, 3, 28, 28), np.uint8))
    np.save(tmp_path / "empty.npy", np.zeros((0, 1, 28, 28), np.uint8))
    cases = [("missing.npy", "no such file"), ("text.npy", "not a numpy .npy file"),
             ("obj.npy", "not a readable .npy array"),
             ("batch.npy", "shape (2, 3, 28, 28); expected (1, 28, 28) (one image) or (N, 1, 28, 28)"),
             ("empty.npy", "shape (0, 1, 28, 28)"), ("", "is a folder")]
    for name, fragment in cases:
        status, _, err = run_cli("golden", *R8, "--input", tmp_path / name)
        assert_one_error_line(status, err, "--input", fragment)


def test_an_output_file_that_cannot_be_written_is_refused_before_the_run(run_cli, tmp_path):
    for cmd in (("golden", *R8), ("simulate", *R8, "--config", "sim-4x4-k16")):
        status, out, err = run_cli(*cmd, "--output", tmp_path / "no" / "y.npy")
        assert_one_error_line(status, err, f"--output {tmp_path / 'no' / 'y.npy'}: the folder")
        assert out == ""
        status, out, err = run_cli(*cmd, "--output", tmp_path)
        assert_one_error_line(status, err, f"--output {tmp_path}: is a folder")
        assert out == ""
