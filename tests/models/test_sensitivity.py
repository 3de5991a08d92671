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


def test_fisher_traces_are_mean_squared_per_image_gradients():
    torch.manual_seed(0)
    model = build_model("resnet8", Method.parse("fp"), BitAssignment.parse("w4a4"))
    layers = list(layer_modules(model))
    layers = layers[1:]                            # the stem reads the image (no gradient)
    batches = list(data.batches(data.synthetic(6), 3, None))
    s = sensitivity(model, layers, batches, range(2, 9), estimator="fisher")
    assert all(v >= 0 and math.isfinite(v) for v in (*s.weight_trace.values(), *s.act_trace.values()))
    assert s.act_trace["layer2.0.downsample"] == 0.0 < s.act_trace["layer2.0.conv1"]
    # by hand for one layer: per image, the squared gradient of its own loss, per element
    conv = layer_modules(model)["layer2.0.conv2"]
    seen = {}
    hook = conv.register_forward_hook(lambda m, inp, out: seen.__setitem__("x", inp[0]))
    w_sum = x_sum = 0.0
    for x, y in batches:
        for i in range(len(x)):
            loss = torch.nn.functional.cross_entropy(model(x[i:i + 1]), y[i:i + 1])
            gw, gx = torch.autograd.grad(loss, [conv.weight, seen["x"]])
            w_sum += float((gw.double() ** 2).sum()) / gw.numel()
            x_sum += float((gx.double() ** 2).sum()) / gx.numel()
    hook.remove()
    assert math.isclose(s.weight_trace["layer2.0.conv2"], w_sum / 6, rel_tol=1e-9)
    assert math.isclose(s.act_trace["layer2.0.conv2"], x_sum / 6 / 3, rel_tol=1e-9)   # / the last batch's size
    # the activation errors are those of the last batch's whole tensor, as with hessian
    h = sensitivity(model, layers, batches, range(2, 9), samples=1, estimator="hessian")
    assert s.act_error == h.act_error and s.weight_error == h.weight_error


def test_unknown_estimator_is_refused():
    model = build_model("resnet8", Method.parse("fp"), BitAssignment.parse("w4a4"))
    try:
        sensitivity(model, ["layer1.0.conv1"], [], range(2, 9), estimator="fit")
    except ValueError as e:
        assert str(e) == "estimator must be one of fisher, hessian, not 'fit'"
    else:
        raise AssertionError("no error")
