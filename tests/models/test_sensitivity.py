"""Hessian-trace sensitivity: finite traces per layer, one activation term per tensor,
quantization errors that shrink with more bits."""

from __future__ import annotations

import math

import torch

from bitmill.models import data
from bitmill.models.bits import BitAssignment
from bitmill.models.methods import Method
from bitmill.models.resnet import build_model
from bitmill.models.sensitivity import Sensitivity, layer_modules, quantization_error, sensitivity


def test_traces_errors_and_round_trip():
    torch.manual_seed(0)
    model = build_model("resnet8", Method.parse("fp"), BitAssignment.parse("w4a4"))
    layers = list(layer_modules(model))[1:]
    batches = list(data.batches(data.synthetic(16), 8, None))
    s = sensitivity(model, layers, batches, range(2, 9), samples=2)
    assert set(s.weight_trace) == set(layers)
    assert all(math.isfinite(v) for v in (*s.weight_trace.values(), *s.act_trace.values()))
    assert s.act_trace["layer2.0.downsample"] == 0.0 != s.act_trace["layer2.0.conv1"]
    for l in layers:
        errs = [s.weight_error[l][b] for b in range(2, 9)]
        assert all(x >= y for x, y in zip(errs, errs[1:])) and errs[0] > 0
    assert Sensitivity.from_dict(s.to_dict()) == s


def test_quantization_error_is_zero_on_the_grid():
    t = torch.tensor([0.0, 1.0, 2.0, 3.0])
    assert quantization_error(t, 2, signed=False) == 0.0
    assert quantization_error(torch.zeros(5), 3, signed=True) == 0.0
