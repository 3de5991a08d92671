"""`bitmill demo`: its steps call the library, find their accelerator config by name, and each
prints one line ending with its seconds."""

import re

from bitmill.cli import demo

SECONDS = re.compile(r" \(\d+\.\d s\)$")


def test_simulate_step_runs_outside_the_repository(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    demo.run_step(demo.Step("simulate", demo.step_simulate), seed=0)
    out = capsys.readouterr().out
    assert out.startswith("simulate: resnet18 W4A4 (8-bit first/last layers) on ecp5-85f")
    # ResNet-18, first/last 8-bit, rest W4A4, on ecp5-85f
    assert "(33 tensors); 9,489,232 cycles = 94.892 ms at 100 MHz" in out
    assert len(out.splitlines()) == 1 and SECONDS.search(out.rstrip("\n"))


def test_rtl_step_emits_a_small_configuration_and_names_the_full_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = demo.step_rtl(seed=0)
    assert (tmp_path / "build" / "rtl" / "bitmill_tiny.v").read_text().count("module bitmill_tiny(") == 1
    assert (tmp_path / "build" / "rtl" / "bitmill_tiny.ports.json").exists()
    assert line.startswith("configuration tiny (2x2 bitserial PEs, 8 lanes): build/rtl/bitmill_tiny.v")
    assert line.endswith("bitmill hw emit --config ecp5-85f -o build/rtl-ecp5-85f")


def test_golden_step_is_one_line():
    line = demo.step_golden(seed=0)
    assert line.startswith("built-in resnet18 W4A4 (8-bit first/last layers), seeded weights: exact "
                           "integer inference of one 3x224x224 image, 1.81 GMAC in ")
    assert "\n" not in line and line.endswith("class 141")


def test_train_step_reuses_a_finished_run(tmp_path, monkeypatch):
    from bitmill.models.train import TrainConfig, train

    monkeypatch.chdir(tmp_path)
    train(TrainConfig(model="resnet8", width=4, quantizer="lsq", bits="w4a4", epochs=1,
                      train_subset=32, test_subset=16, dataset="synthetic"), demo.DEMO_RUN,
          progress=False)
    line = demo.step_train(seed=0)
    assert line.startswith("reused the finished run in runs/demo; integer network exported to "
                           "runs/demo/net; golden-model test accuracy 0.")
    assert line.endswith(" on 2,000 images")
    assert (tmp_path / "runs" / "demo" / "net" / "graph.json").exists()


def test_demo_prints_one_line_per_step_and_the_total(monkeypatch, capsys):
    steps = tuple(demo.Step(name, lambda seed, name=name: f"{name} done with seed {seed}")
                  for name in ("first", "second"))
    monkeypatch.setattr(demo, "STEPS", steps)
    assert demo.run(seed=3) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [l.split(" (")[0] for l in lines] == ["first: first done with seed 3",
                                                 "second: second done with seed 3",
                                                 "demo: 2 steps in 0.0 s"]
    assert all(SECONDS.search(l) for l in lines[:2])
