"""`bitmill demo`: its steps call the library and find their accelerator config by name."""

from bitmill.cli import demo


def test_simulate_step_runs_outside_the_repository(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    demo.step_simulate(seed=0)
    out = capsys.readouterr().out
    assert out.startswith("== simulate: built-in resnet18")
    # ResNet-18, first/last 8-bit, rest W4A4, on ecp5-85f
    assert "(33 tensors); 2,685,526 cycles = 26.855 ms at 100 MHz" in out
