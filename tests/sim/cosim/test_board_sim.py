"""``bitmill board run --sim``: an exported Fashion-MNIST ResNet-8 classified on the Verilated
board core through the host link over a pseudo-terminal, every output equal to golden's and
every CYCLES register equal to the simulator's (on-chip memory) or measured against its
prediction (the SDRAM behind LiteDRAM's controller and SDRAM model); bad requests of the command
are one error line."""

import re

import pytest

from tests.conftest import assert_one_error_line


@pytest.fixture(scope="module")
def resnet8_net(tmp_path_factory):
    """A W4A4 ResNet-8 trained briefly on Fashion-MNIST and exported."""
    from bitmill import cli
    d = tmp_path_factory.mktemp("r8")
    assert cli.main(["train", "--model", "resnet8", "--quantizer", "lsq", "--bits", "w4a4", "--train-subset", "2000",
                     "--test-subset", "200", "--out", str(d / "run")]) == 0
    assert cli.main(["export", str(d / "run" / "checkpoint.pt"), "-o", str(d / "net")]) == 0
    return d / "net"


@pytest.mark.cosim
@pytest.mark.verilator
def test_resnet8_through_the_host_link_equals_golden(resnet8_net, run_cli, verilator, tmp_path):
    status, out, err = run_cli("board", "run", resnet8_net, "--sim", "--images", "10",
                               "--build-dir", tmp_path / "board")
    assert status == 0, err
    assert "outputs equal to golden: 10/10; predictions equal: 10/10" in out
    board, gold = re.search(r"accuracy on .*: board ([\d.]+), golden ([\d.]+)", out).groups()
    assert board == gold
    assert re.search(r"CYCLES register: 10/10 equal to the simulator's [\d,]+", out)


@pytest.mark.cosim
@pytest.mark.verilator
def test_resnet8_in_the_sdram_through_the_host_link_equals_golden(resnet8_net, run_cli, verilator, tmp_path):
    status, out, err = run_cli("board", "run", resnet8_net, "--board", "ulx3s-85f", "--sim", "--images", "4",
                               "--build-dir", tmp_path / "board")
    assert status == 0, err
    assert "outputs equal to golden: 4/4; predictions equal: 4/4" in out
    board, gold = re.search(r"accuracy on .*: board ([\d.]+), golden ([\d.]+)", out).groups()
    assert board == gold
    lo, hi, model, err_lo, err_hi = re.search(
        r"CYCLES register \(SDRAM\): ([\d,]+) \.\. ([\d,]+), mean [\d,]+ .*the simulator predicts ([\d,]+): "
        r"error ([-+][\d.]+) \.\. ([-+][\d.]+)%", out).groups()
    lo, hi, model = (int(v.replace(",", "")) for v in (lo, hi, model))
    assert model < lo <= hi            # the controller's row misses and refreshes cost cycles
    assert float(err_lo) == pytest.approx((model - hi) / hi * 100, abs=0.01)
    assert (tmp_path / "board" / "litedram" / "gateware" / "litedram_core.v").exists()


@pytest.mark.slow
@pytest.mark.cosim
@pytest.mark.verilator
def test_resnet20_fits_on_chip_with_reused_memory_and_equals_golden(run_cli, verilator, tmp_path):
    from bitmill import cli
    assert cli.main(["train", "--model", "resnet20", "--quantizer", "lsq", "--bits", "w4a4",
                     "--train-subset", "1000", "--test-subset", "100", "--out", str(tmp_path / "run")]) == 0
    assert cli.main(["export", str(tmp_path / "run" / "checkpoint.pt"), "-o", str(tmp_path / "net")]) == 0
    status, out, err = run_cli("board", "run", tmp_path / "net", "--sim", "--images", "2",
                               "--build-dir", tmp_path / "board")
    assert status == 0, err
    assert "outputs equal to golden: 2/2; predictions equal: 2/2" in out
    assert re.search(r"CYCLES register: 2/2 equal to the simulator's [\d,]+", out)


def test_bad_requests_are_one_error_line(run_cli, tmp_path):
    status, _, err = run_cli("board", "run", "--model", "resnet8", "--images", "1")
    assert_one_error_line(status, err, "give either --port DEVICE (a flashed board) or --sim")
    status, _, err = run_cli("board", "run", "--model", "resnet8", "--sim", "--port", "/dev/null")
    assert_one_error_line(status, err, "give either --port DEVICE (a flashed board) or --sim")
    status, _, err = run_cli("board", "run", "--model", "resnet8", "--sim", "--board", "de10-nano")
    assert_one_error_line(status, err, "unknown board 'de10-nano'; choose one of ulx3s-85f-bram")
    status, _, err = run_cli("board", "run", "--model", "resnet20", "--bits", "w8a8", "--sim", "--images", "1",
                             "--build-dir", tmp_path / "b")
    assert_one_error_line(status, err, "resnet20 needs 3")
    assert "bytes of board memory" in err and not (tmp_path / "b").exists()
    status, _, err = run_cli("board", "run", "--model", "resnet8", "--bits", "w4a4", "--first-last-bits", "8",
                             "--images", "1", "--port", tmp_path / "no-tty")
    assert_one_error_line(status, err, f"cannot open {tmp_path / 'no-tty'}")
