"""Integer export: golden(IR) == torch integer-exact evaluation, bit for bit, every method."""

import numpy as np
import pytest
import torch

from bitmill.compiler import irio
from bitmill.errors import BitmillError
from bitmill.models import data, export, integer_eval
from bitmill.models.bits import BitAssignment
from bitmill.models.methods import Method
from bitmill.models.resnet import build_model
from bitmill.sim import golden

METHODS = ["lsq", "pact", "qil", "daq", "dq", "lsq+sawb"]


def _trained(method: str, bits: str, model: str = "resnet8", steps: int = 4):
    torch.manual_seed(0)
    net = build_model(model, Method.parse(method), BitAssignment.parse(bits), width=8)
    ds = data.synthetic(64, seed=3)
    opt = torch.optim.SGD(net.parameters(), lr=0.02, momentum=0.9)
    net.train()
    for i, (x, y) in enumerate(data.batches(ds, 16, seed=0)):
        if i == steps:
            break
        loss = torch.nn.functional.cross_entropy(net(x), y) + net.regularizer()
        opt.zero_grad()
        loss.backward()
        opt.step()
        net.constrain()
    return net.eval()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("bits", ["w4a4", "w2a3"])
def test_golden_equals_torch_integer_path(method, bits):
    net = _trained(method, bits)
    graph = export.export(net)
    x = data.synthetic(24, seed=7).images.astype(np.int64)
    want = golden.run(graph, x)
    got = integer_eval.run(graph, torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(got, want)
    # the integer network is the fake-quant network: same decisions on (almost) every image
    with torch.no_grad():
        fq = net(torch.from_numpy(x).float() / 255)
    agree = (fq.argmax(1).numpy() == want.argmax(1)).mean()
    assert agree >= 0.9, agree
    # and logits agree up to requant rounding (units of the logit step)
    diff = np.abs(fq.numpy() / graph["fc"].out.scale - want)
    assert np.median(diff) < 0.02 * np.abs(want).max() + 2


def test_export_encodings_and_bits():
    graph = export.export(_trained("pact", "w3a2"))
    conv = graph["layer1.0.conv1"]
    assert conv.w_enc.label == "odd" and conv.w_bits == 3
    assert graph[conv.inputs[0]].out.bits == 2                 # activations feeding it
    assert graph["conv1"].w_bits == 8 and graph["fc"].w_bits == 8   # first / last 8-bit
    assert graph["layer1.0.conv2"].out.encoding.label == "signed" and graph["layer1.0.conv2"].out.bits == 8
    g2 = export.export(_trained("lsq", "w4a4", model="resnet18"), image_shape=(1, 28, 28))
    assert "maxpool" in [n.name for n in g2.nodes]


def test_save_load_exported(tmp_path):
    graph = export.export(_trained("qil", "w3a3"))
    irio.save_graph(graph, tmp_path / "n")
    x = data.synthetic(8, seed=1).images.astype(np.int64)
    np.testing.assert_array_equal(golden.run(irio.load_graph(tmp_path / "n"), x), golden.run(graph, x))


def test_fp_model_has_no_integer_form():
    net = build_model("resnet8", Method.parse("fp"), BitAssignment.parse("w4a4"), width=8)
    with pytest.raises(BitmillError, match="full-precision model has no integer form"):
        export.export(net)


def test_checkpoint_without_fc_gain_flag_loads():
    """State dicts from before QLinear had an output gain still load (no gain: flag is set)."""
    from bitmill.models.train import TrainConfig

    model = TrainConfig(model="resnet8", width=4, quantizer="lsq", dataset="synthetic").build()
    state = model.state_dict()
    del state["fc.gain_initialized"]
    fresh = TrainConfig(model="resnet8", width=4, quantizer="lsq", dataset="synthetic").build()
    fresh.load_state_dict(state)
    assert bool(fresh.fc.gain_initialized)
