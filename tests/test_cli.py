"""The command line: tables, console script, user errors."""

import subprocess
import sys

from tests.conftest import REPO, assert_one_error_line


def test_golden_table_for_builtin_model(run_cli):
    status, out, err = run_cli("golden", "--model", "resnet8", "--bits", "w2a2", "--batch", "2")
    assert status == 0, err
    assert "layer1.0.conv1" in out and "w2s a2u -> 2u" in out and "total" in out
    assert "wall time:" in out and "output fc (2, 10)" in out


def test_saved_network_round_trip_through_cli(run_cli, tmp_path):
    status, out, _ = run_cli("zoo", "--model", "resnet8", "--bits", "w4a4", "-o", tmp_path / "n")
    assert status == 0 and "saved resnet8" in out
    s1, o1, _ = run_cli("golden", tmp_path / "n")
    s2, o2, _ = run_cli("golden", "--model", "resnet8", "--bits", "w4a4")
    assert s1 == s2 == 0
    assert o1.splitlines()[-1].split("argmax")[1] == o2.splitlines()[-1].split("argmax")[1]


def test_user_errors(run_cli, tmp_path):
    cases = [
        (("golden", "--model", "resnet8", "--bits", "w0a0"), "w_bits must be an integer in 1..8, not 0"),
        (("golden", "--model", "resnet8", "--bits", "w4"), "bits must look like w4a4"),
        (("golden", "--model", "alexnet"), "unknown model 'alexnet'"),
        (("golden",), "give either a saved network directory NET or --model NAME"),
        (("golden", tmp_path / "nothing"), "no such network directory"),
        (("golden", "--model", "resnet8", "--batch", "0"), "--batch must be a positive integer"),
        (("golden", "--model", "resnet8", "--batch", "x"), "invalid int value"),
        (("frobnicate",), "invalid choice"),
    ]
    for args, fragment in cases:
        status, _, err = run_cli(*args)
        assert_one_error_line(status, err, fragment)


def test_console_script_and_module_entry_points():
    exe = REPO / ".venv" / "bin" / "bitmill"
    for cmd in ([sys.executable, "-m", "bitmill"], [str(exe)] if exe.exists() else None):
        if cmd is None:
            continue
        r = subprocess.run(cmd + ["config", "check", "configs/accel/rows0.yaml"], cwd=REPO,
                           capture_output=True, text=True)
        assert r.returncode == 2 and r.stderr.startswith("error: cannot read") and r.stdout == ""
        r = subprocess.run(cmd + ["golden", "--model", "resnet8", "--bits", "w9a9"], cwd=REPO,
                           capture_output=True, text=True)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
