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
    s = sensitivity(model, layers, batches, range(2, 9), samples=2, estimator="hessian")
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
        assert str(e) == "estimator must be one of fisher, hessian, loss, not 'fit'"
    else:
        raise AssertionError("no error")


def test_loss_sensitivity_is_the_measured_loss_increase():
    from bitmill.models.sensitivity import best_step, quantized
    torch.manual_seed(0)
    model = build_model("resnet8", Method.parse("fp"), BitAssignment.parse("w4a4"))
    model.eval()
    layers = list(layer_modules(model))[1:]
    batches = list(data.batches(data.synthetic(8), 4, None))
    s = sensitivity(model, layers, batches, (2, 8), estimator="loss")
    assert set(s.weight_trace.values()) == {1.0} and s.act_trace["layer2.0.downsample"] == 0.0
    assert all(v >= 0 for l in layers for v in (*s.weight_error[l].values(), *s.act_error[l].values()))

    def mean_loss():
        with torch.no_grad():
            return sum(float(torch.nn.functional.cross_entropy(model(x), y, reduction="sum"))
                       for x, y in batches) / 8
    base = mean_loss()
    conv = layer_modules(model)["layer2.0.conv2"]
    kept = conv.weight.detach().clone()
    with torch.no_grad():
        conv.weight.copy_(quantized(kept, 2, True).float())
    assert math.isclose(s.weight_error["layer2.0.conv2"][2], max(0.0, mean_loss() - base), abs_tol=1e-12)
    with torch.no_grad():
        conv.weight.copy_(kept)
    # an input tensor read by two layers is quantized in both, with the step of the first batch
    mods = layer_modules(model)
    seen = {}
    h = mods["layer2.0.conv1"].register_forward_hook(lambda m, inp, out: seen.__setitem__("x", inp[0]))
    with torch.no_grad():
        model(batches[0][0])
    h.remove()
    step = best_step(seen["x"], 2, False)
    hooks = [mods[n].register_forward_pre_hook(lambda m, args: (quantized(args[0], 2, False, step).float(),))
             for n in ("layer2.0.conv1", "layer2.0.downsample")]
    expected = max(0.0, mean_loss() - base)
    for h in hooks:
        h.remove()
    assert math.isclose(s.act_error["layer2.0.conv1"][2], expected, abs_tol=1e-12)
