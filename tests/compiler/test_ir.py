"""IR consistency checks and the on-disk format."""

import json

import numpy as np
import pytest

from bitmill.compiler import irio, zoo
from bitmill.compiler.ir import Graph, Requant, TensorType
from bitmill.errors import IRError
from bitmill.numerics import Encoding
from bitmill.sim import golden
from tests.conftest import assert_one_error_line


@pytest.fixture(scope="module")
def net():
    return zoo.build("resnet8", zoo.BitSpec(3, 4, first_last_bits=8, w_enc=Encoding.ODD), seed=5)


def _replace(graph: Graph, name: str, **changes) -> Graph:
    nodes = tuple(type(n)(**{**vars(n), **changes}) if n.name == name else n for n in graph.nodes)
    return Graph(nodes, graph.output, graph.name)


def test_zoo_graph_verifies(net):
    assert net.verify() is net
    assert net.problems() == []


def test_shapes_that_do_not_chain_are_named(net):
    conv = net["layer1.0.conv2"]
    bad = _replace(net, "layer1.0.conv2", weight=np.ones((16, 8, 3, 3), dtype=np.int64))
    with pytest.raises(IRError, match=r"layer1\.0\.conv2: weight expects 8 input channels, input has 16"):
        bad.verify()
    bad = _replace(net, "layer1.0.conv2", out=TensorType((16, 27, 28), 8, "signed"))
    with pytest.raises(IRError, match=r"layer1\.0\.conv2: output shape \(16, 27, 28\) does not match"):
        bad.verify()
    assert conv.out.shape == (16, 28, 28)


def test_bits_and_encodings_are_checked(net):
    bad = _replace(net, "layer1.0.conv1", weight=net["layer1.0.conv1"].weight + 1)
    with pytest.raises(IRError, match=r"layer1\.0\.conv1: weights are not on the 3-bit odd grid"):
        bad.verify()
    bad = _replace(net, "layer1.0.conv1", w_bits=0)
    with pytest.raises(IRError, match="w_bits must be in 1..8, not 0"):
        bad.verify()
    bad = _replace(net, "maxpool" if "maxpool" in [n.name for n in net.nodes] else "flatten",
                   out=TensorType(net["flatten"].out.shape, 5, "unsigned"))
    with pytest.raises(IRError, match="flatten: output bits/encoding differ"):
        bad.verify()
    bad = _replace(net, "layer1.0.conv1", out=TensorType((16, 28, 28), 4, "odd"))
    with pytest.raises(IRError, match="layer1.0.conv1: output encoding odd is not signed or unsigned"):
        bad.verify()


def test_requant_and_structure_checks(net):
    c = net["conv1"]
    bad = _replace(net, "conv1", requant=Requant(c.requant.multiplier[:3], c.requant.bias, c.requant.shift))
    with pytest.raises(IRError, match=r"conv1: requant multiplier has shape \(3,\), expected \(16,\)"):
        bad.verify()
    bad = _replace(net, "layer1.0.add", inputs=("layer1.0.conv2", "nowhere"))
    with pytest.raises(IRError, match="layer1.0.add: input 'nowhere' is not produced by an earlier node"):
        bad.verify()
    with pytest.raises(IRError, match="output 'zz' is not a node"):
        Graph(net.nodes, "zz").verify()
    with pytest.raises(IRError, match="duplicate node name"):
        Graph(net.nodes + (net.nodes[-1],), net.output).verify()


def test_nodes_and_arrays_are_frozen(net):
    with pytest.raises(ValueError):
        net["conv1"].weight[0, 0, 0, 0] = 1
    with pytest.raises(AttributeError):
        net["conv1"].stride = 2


def test_save_load_gives_identical_golden_outputs(net, tmp_path):
    irio.save_graph(net, tmp_path / "n")
    loaded = irio.load_graph(tmp_path / "n")
    x = np.random.default_rng(1).integers(0, 256, (3, 1, 28, 28))
    a, b = golden.run_all(net, x), golden.run_all(loaded, x)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    for n1, n2 in zip(net.nodes, loaded.nodes):
        assert type(n1) is type(n2) and n1.name == n2.name and n1.out == n2.out
    assert sorted(p.name for p in (tmp_path / "n").iterdir()) == ["graph.json", "weights.npz"]


def _saved(net, tmp_path):
    return irio.save_graph(net, tmp_path / "n")


def test_truncated_weights(net, tmp_path):
    d = _saved(net, tmp_path)
    data = (d / "weights.npz").read_bytes()
    (d / "weights.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(IRError, match=r"weights\.npz: not a readable weights archive"):
        irio.load_graph(d)


@pytest.mark.parametrize("edit,fragment", [
    (lambda doc: doc.update(schema_version=99), "schema_version 99 is not supported"),
    (lambda doc: doc.pop("schema_version"), "no schema_version"),
    (lambda doc: doc["nodes"][1].pop("weight"), "conv1"),
    (lambda doc: doc["nodes"][1].update(op="conv3d"), "unknown op 'conv3d'"),
    (lambda doc: doc["nodes"][1]["out"].update(shape=[16, 28, 29]), "does not match the computed"),
])
def test_malformed_graph_json(net, tmp_path, edit, fragment):
    d = _saved(net, tmp_path)
    doc = json.loads((d / "graph.json").read_text())
    edit(doc)
    (d / "graph.json").write_text(json.dumps(doc))
    with pytest.raises(IRError, match=fragment):
        irio.load_graph(d)


def test_truncated_json_and_missing_files(net, tmp_path):
    d = _saved(net, tmp_path)
    text = (d / "graph.json").read_text()
    (d / "graph.json").write_text(text[:100])
    with pytest.raises(IRError, match=r"graph\.json: not valid JSON"):
        irio.load_graph(d)
    (d / "graph.json").unlink()
    with pytest.raises(IRError, match=r"graph\.json: file is missing"):
        irio.load_graph(d)
    with pytest.raises(IRError, match="no such network directory"):
        irio.load_graph(tmp_path / "absent")


def test_cli_reports_bad_networks(net, tmp_path, run_cli):
    d = _saved(net, tmp_path)
    data = (d / "weights.npz").read_bytes()
    (d / "weights.npz").write_bytes(data[:1000])
    status, _, err = run_cli("golden", d)
    assert_one_error_line(status, err, "weights.npz", "truncated or corrupt")

    d2 = irio.save_graph(net, tmp_path / "m")
    doc = json.loads((d2 / "graph.json").read_text())
    conv2 = next(n for n in doc["nodes"] if n["name"] == "layer1.0.conv2")
    conv2["inputs"] = ["input"]                  # 1-channel image into a 16-channel conv
    (d2 / "graph.json").write_text(json.dumps(doc))
    status, _, err = run_cli("golden", d2)
    assert_one_error_line(status, err, "layer1.0.conv2", "input channels")


def test_pool_larger_than_its_input_is_rejected(net):
    from bitmill.compiler.ir import MaxPool
    x = net["layer3.0.add"].out
    bad = Graph(net.nodes + (MaxPool("p", ("layer3.0.add",), TensorType((64, 0, 0), x.bits, x.encoding), 9, 1, 0),),
                "p")
    with pytest.raises(IRError, match=r"p: pool window 9 larger than padded input \(7, 7\)"):
        bad.verify()
