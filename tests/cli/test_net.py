"""`bitmill golden`, `bitmill zoo`, `bitmill config check`: tables, saved networks, user errors."""

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


def test_config_check_by_shipped_name_and_by_path(run_cli):
    by_name = run_cli("config", "check", "ecp5-85f")
    by_path = run_cli("config", "check", REPO / "configs/accel/ecp5-85f.yaml")
    assert by_name == by_path
    assert by_name[0] == 0 and by_name[1].startswith("ok: ecp5-85f: 16x16 bitserial")


def test_config_check_unknown_name_lists_the_shipped_names(run_cli):
    status, _, err = run_cli("config", "check", "ecp5-86f")
    assert_one_error_line(status, err, "no shipped accelerator config named 'ecp5-86f'",
                          "ecp5-85f, ecp5-8x8-k32, pynq-z2, sim-16x16-k32, tiny, tiny-bitparallel, ulx3s-85f")
