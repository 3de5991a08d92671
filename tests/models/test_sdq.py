"""SDQ phase 1: DBPs (probabilities, Concrete gate, width decay), the expected latency and its
gradient, a search that lowers the widths under a tight budget, and an exact resume."""

from __future__ import annotations

import pytest
import torch

from bitmill.models import data
from bitmill.models.sdq import (DBP, SDQWeight, SearchSettings, attach, base_model, expected_cycles,
                                run_phase1)
from bitmill.models.sensitivity import layer_modules


def test_dbp_probabilities_gate_and_decay():
    d = DBP(floor=6)
    p = d.probs()
    assert set(p) == {8, 7} and float((p[8] + p[7]).detach()) == pytest.approx(1.0)
    d.eval()
    assert float(d.gate(None)) == 1.0 and d.chosen == 8
    d.train()
    g = d.gate(torch.Generator().manual_seed(0))
    assert 0.0 < float(g.detach()) < 1.0
    assert not d.decay()
    with torch.no_grad():
        d.theta.fill_(-1.0)
    assert d.chosen == 7 and d.decay() and d.high == 7 and d.chosen == 7
    with torch.no_grad():
        d.theta.fill_(-1.0)
    assert d.decay() and d.high == 6 and d.at_floor and not d.decay() and set(d.probs()) == {6}


def test_weight_grid_at_the_floor():
    q = SDQWeight(floor=8)
    w = torch.tensor([-1.0, -0.5, 0.0, 0.25, 1.0])
    y = q(w)                                   # alpha = max|w| = 1, step 1/128
    assert torch.equal(y, torch.clamp(torch.round(w * 128), -128, 127) / 128)


def test_expected_cycles_and_its_gradient():
    model = base_model("resnet8")
    searched = tuple(list(layer_modules(model))[1:])
    weights, acts = attach(model, searched, floor=2)
    costs = {l: {(w, a): float(w * a * (i + 1)) for w in range(1, 9) for a in range(1, 9)}
             for i, l in enumerate(searched)}
    e = expected_cycles(costs, weights, acts)
    b = torch.sigmoid(torch.tensor(2.0))
    ew = 8 * b + 7 * (1 - b)                   # expected width of every DBP
    assert float(e) == pytest.approx(float(sum((i + 1) * ew * ew for i in range(len(searched)))), rel=1e-5)
    e.backward()
    assert all(q.dbp.theta.grad > 0 for q in weights.values())   # more probability on 8 costs more
    assert acts["layer2.0.downsample"] is acts["layer2.0.conv1"]
    _, floored = attach(base_model("resnet8"), searched, floor=2, act_floor=4)
    assert {q.dbp.floor for q in floored.values()} == {4}


@pytest.fixture
def fp(fp_resnet8):
    return str(fp_resnet8)


def test_phase1_lowers_widths_and_resumes_exactly(fp, tmp_path):
    model = base_model("resnet8")
    searched = tuple(list(layer_modules(model))[1:])
    costs = {l: {(w, a): float(1000 * w * a) for w in range(1, 9) for a in range(1, 9)} for l in searched}
    settings = SearchSettings("resnet8", fp, 4, 2, 0.01, 0.5, 1.0, 100_000.0, 16, 0, 48, "synthetic")
    train = data.synthetic(48)
    policy, history, seconds = run_phase1(settings, searched, costs, 0.0, train, tmp_path / "a.pt", False)
    assert set(policy) == set(searched) and history[-1]["expected_cycles"] < history[0]["expected_cycles"]
    assert all(4 <= w <= 7 and 4 <= a <= 7 for w, a in policy.values())
    assert policy["layer2.0.downsample"][1] == policy["layer2.0.conv1"][1]
    stop = run_phase1(settings, searched, costs, 0.0, train, tmp_path / "b.pt", False, stop_after=1)
    assert len(stop[1]) == 1
    resumed = run_phase1(settings, searched, costs, 0.0, train, tmp_path / "b.pt", True)
    assert resumed[:2] == (policy, history)
    assert seconds > 0 and resumed[2] >= stop[2] > 0           # the epochs of both calls counted
    again = run_phase1(settings, searched, costs, 0.0, train, tmp_path / "b.pt", True)
    assert again == resumed                                    # finished: nothing run, seconds kept
