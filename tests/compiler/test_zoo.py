"""Built-in networks: structure, bits, determinism."""

import numpy as np
import pytest

from bitmill.compiler import zoo
from bitmill.compiler.ir import Conv2d, Dense
from bitmill.errors import IRError
from bitmill.sim import golden
from bitmill.sim.report import macs


@pytest.fixture(scope="module")
def r18():
    return zoo.build("resnet18", zoo.BitSpec(4, 4, first_last_bits=8))


def test_resnet18_structure(r18):
    convs = [n for n in r18.nodes if isinstance(n, Conv2d)]
    assert len(convs) == 20 and sum(1 for n in convs if "downsample" in n.name) == 3
    assert r18["conv1"].weight.shape == (64, 3, 7, 7) and r18["fc"].out.shape == (1000,)
    assert r18["layer4.1.conv2"].out.shape == (512, 7, 7)
    assert sum(macs(n) for n in r18.nodes) == 1_814_073_344     # the standard 1.8 GMAC
    assert (r18["conv1"].w_bits, r18["fc"].w_bits, r18["layer2.0.conv1"].w_bits) == (8, 8, 4)
    assert r18["avgpool"].out.bits == 8
    assert r18["layer1.0.conv1"].out.bits == 4 and r18["layer1.0.conv2"].out.bits == 8


def test_resnet20_structure():
    g = zoo.build("resnet20", "w2a3")
    layers = [n for n in g.nodes if isinstance(n, (Conv2d, Dense)) and "downsample" not in n.name]
    assert len(layers) == 20
    assert g.input.out.shape == (1, 28, 28) and g["fc"].out.shape == (10,)
    assert g["layer3.2.conv2"].out.shape == (64, 7, 7)


def test_seeded_and_uses_its_range():
    a, b = zoo.build("resnet8", "w4a4", seed=1), zoo.build("resnet8", "w4a4", seed=1)
    c = zoo.build("resnet8", "w4a4", seed=2)
    np.testing.assert_array_equal(a["conv1"].weight, b["conv1"].weight)
    assert not np.array_equal(a["conv1"].weight, c["conv1"].weight)
    x = np.random.default_rng(9).integers(0, 256, (4, 1, 28, 28))
    vals = golden.run_all(a, x)
    for name in ("layer1.0.conv1", "layer2.0.add", "layer3.0.conv2"):
        assert len(np.unique(vals[name])) >= 8, name       # calibrated, not collapsed
    assert len(np.unique(vals["fc"])) > 20


def test_bad_specs():
    with pytest.raises(IRError, match="bits must look like w4a4"):
        zoo.BitSpec.parse("4bit")
    with pytest.raises(IRError, match="w_bits must be an integer in 1..8, not 0"):
        zoo.BitSpec.parse("w0a4")
    with pytest.raises(IRError, match="unknown model 'vgg'"):
        zoo.build("vgg", "w4a4")
