"""SDQ phase 2 terms: KD is zero against itself and positive otherwise; EBR is zero for weights
on their levels with uniform use and grows as they leave them; a phase-2 run trains with both."""

from __future__ import annotations

import json

import pytest
import torch

from bitmill.models.distill import bin_regularizer, kd_loss


def test_kd_loss():
    z = torch.randn(4, 10)
    assert float(kd_loss(z, z)) == pytest.approx(0.0, abs=1e-6)
    assert float(kd_loss(z, torch.randn(4, 10))) > 0


def test_bin_regularizer_on_and_off_the_levels():
    step = torch.tensor(0.5)
    on = torch.arange(-2, 2).repeat(50).float() * 0.5          # every level of 2 bits, equally used
    off = on + 0.2
    r_on, r_off = bin_regularizer(on, step, -2, 1), bin_regularizer(off, step, -2, 1)
    assert float(r_on) < 0.05 < float(r_off)
    w = off.clone().requires_grad_(True)
    bin_regularizer(w, step, -2, 1).backward()
    assert float(w.grad.sum()) > 0                               # pulled back towards the levels


def test_phase2_trains_with_teacher_and_ebr(tmp_path, run_cli):
    fp = tmp_path / "fp"
    common = ("--model", "resnet8", "--dataset", "synthetic", "--train-subset", "32", "--test-subset", "16")
    assert run_cli("train", *common, "--quantizer", "fp", "--out", fp)[0] == 0
    status, out, err = run_cli("train", *common, "--quantizer", "lsq", "--bits", "w4a4", "--init",
                               fp / "checkpoint.pt", "--teacher", fp / "checkpoint.pt", "--ebr", "0.1",
                               "--out", tmp_path / "q")
    assert status == 0, err
    cfg = json.loads((tmp_path / "q" / "metrics.json").read_text())["config"]
    assert cfg["teacher"] == str(fp / "checkpoint.pt") and cfg["ebr"] == 0.1
    status, _, err = run_cli("train", *common, "--quantizer", "lsq", "--ebr", "-1", "--out", tmp_path / "x")
    assert status == 2 and "ebr must be a finite number >= 0, not -1.0" in err
