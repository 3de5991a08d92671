"""The QAT calibration of the ILP's sensitivity: the fit recovers known factors exactly, refuses
runs that cannot tell weights from activations, and finds only uniform LSQ runs."""

from __future__ import annotations

import json

import pytest

from bitmill.errors import BitmillError
from bitmill.models.calibration import QatCalibration, fit, uniform_runs
from bitmill.models.sensitivity import Sensitivity

LAYERS = ("l1", "l2", "l3")


def _sensitivity() -> Sensitivity:
    bits = range(2, 9)
    return Sensitivity({"l1": 2.0, "l2": 0.5, "l3": 1.0}, {"l1": 1.0, "l2": 3.0, "l3": 0.0},
                       {l: {b: 4.0 ** -b * (k + 1) for b in bits} for k, l in enumerate(LAYERS)},
                       {l: {b: 3.0 ** -b * (k + 2) for b in bits} for k, l in enumerate(LAYERS)})


def _terms(sens, w, a):
    return (sum(sens.weight_trace[l] * sens.weight_error[l][w] for l in LAYERS),
            sum(sens.act_trace[l] * sens.act_error[l][a] for l in LAYERS))


def test_fit_recovers_known_factors_and_weighs_each_layer():
    sens = _sensitivity()
    alpha, beta, offset = 0.1, 0.7, -0.002
    pairs = [(2, 2), (2, 4), (4, 2), (4, 4), (3, 4), (8, 8)]
    increases = {p: offset + alpha * _terms(sens, *p)[0] + beta * _terms(sens, *p)[1] for p in pairs}
    cal = fit(sens, LAYERS, increases, {"w4a4": "0" * 16}, 64)
    assert (cal.alpha, cal.beta, cal.offset) == pytest.approx((alpha, beta, offset), rel=1e-6, abs=1e-9)
    assert all(m == pytest.approx(f, abs=1e-9) for _, _, m, f in cal.points)
    assert cal.omega(sens, "l2", 3, 5) == pytest.approx(alpha * 0.5 * sens.weight_error["l2"][3]
                                                        + beta * 3.0 * sens.act_error["l2"][5])
    assert QatCalibration.from_dict(json.loads(json.dumps(cal.to_dict()))) == cal


def test_factors_never_go_negative():
    """Weights that QAT recovers completely: the fit gives them no weight rather than a reward."""
    sens = _sensitivity()
    pairs = [(2, 4), (4, 4), (4, 2), (8, 8), (3, 3)]
    increases = {p: 0.5 * _terms(sens, *p)[1] - 0.2 * _terms(sens, *p)[0] for p in pairs}
    cal = fit(sens, LAYERS, increases, {}, 8)
    assert cal.alpha == 0.0 and cal.beta > 0


def test_runs_that_cannot_tell_weights_from_activations_are_refused():
    sens = _sensitivity()
    with pytest.raises(BitmillError, match=r"vary apart \(e.g. W4A4, W2A4 and W4A2\); found W2A2, W4A4, W8A8$"):
        fit(sens, LAYERS, {(2, 2): 0.1, (4, 4): 0.01, (8, 8): 0.0}, {}, 8)


def test_uniform_runs_are_the_finished_uniform_lsq_runs(tmp_path):
    def run(name, checkpoint=True, **cfg):
        d = tmp_path / name
        d.mkdir()
        base = {"quantizer": "lsq", "bits": name, "first_last": 8, "layer_bits": [], "teacher": None}
        (d / "metrics.json").write_text(json.dumps({"config": {**base, **cfg}}))
        if checkpoint:
            (d / "checkpoint.pt").write_bytes(b"x")
    run("w4a4")
    run("w2a4")
    run("w3a3", checkpoint=False)                                   # killed
    run("w5a5", layer_bits=[["layer1.0.conv1", "w8a8"]])            # a searched policy
    run("w6a6", quantizer="pact")
    run("w7a7", first_last=7)
    run("w8a8", teacher="fp.pt")
    run("w4a4-seed1", bits="w4a4", seed=1)                          # a repeat of another seed
    assert uniform_runs(tmp_path) == {(4, 4): tmp_path / "w4a4" / "checkpoint.pt",
                                      (2, 4): tmp_path / "w2a4" / "checkpoint.pt"}
    assert uniform_runs(tmp_path, seed=1) == {(4, 4): tmp_path / "w4a4-seed1" / "checkpoint.pt"}
    run("w4a4-again", bits="w4a4")
    with pytest.raises(BitmillError, match=r"two uniform W4A4 runs of seed 0 \(w4a4, w4a4-again\); keep one$"):
        uniform_runs(tmp_path)


def test_losses_that_do_not_grow_with_the_error_are_refused():
    with pytest.raises(BitmillError, match=r"do not grow with their quantization error \(both fitted factors are 0\)"):
        fit(_sensitivity(), LAYERS, {(2, 4): 0.0, (4, 2): 0.0, (4, 4): 0.0}, {}, 8)


def test_the_loss_increase_of_the_reference_itself_is_zero(fp_resnet8):
    from bitmill.models.calibration import measure_increases
    increases = measure_increases({(8, 8): fp_resnet8}, fp_resnet8, 16, 0, "synthetic")
    assert increases == {(8, 8): 0.0}
