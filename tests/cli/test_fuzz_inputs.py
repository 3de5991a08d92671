"""Every kind of bad input a user can hand the command line: a saved network's graph.json
(types and values of every field), its weights.npz (dtypes, values, damaged data), accelerator
configs, and what the accelerator cannot run. Each case is a correct result or one ``error:``
line naming the file or node and what is wrong, with exit status 2."""

import io
import json
import shutil
import zipfile

import numpy as np
import pytest

from bitmill.compiler import irio, zoo
from tests.conftest import REPO, assert_one_error_line

TINY = REPO / "configs" / "accel" / "tiny.yaml"


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / "r8"
    irio.save_graph(zoo.build("resnet8", "w4a4", seed=1), path)
    return path


def _node(doc: dict, name: str) -> dict:
    return next(n for n in doc["nodes"] if n["name"] == name)


def _set(name: str, key: str, value):
    def edit(doc):
        _node(doc, name)[key] = value
    return edit


def _set_out(name: str, key: str, value):
    def edit(doc):
        _node(doc, name)["out"][key] = value
    return edit


GRAPH_CASES = {
    "relu as a string": (_set("conv1", "relu", "false"), "conv1: relu must be true or false, not 'false'"),
    "relu as a number": (_set("conv1", "relu", 1), "conv1: relu must be true or false, not 1"),
    "padding as a boolean": (_set("conv1", "padding", True), "conv1: padding must be an integer, not True"),
    "stride as a float": (_set("conv1", "stride", 1.0), "conv1: stride must be an integer, not 1.0"),
    "stride as a string": (_set("conv1", "stride", "1"), "conv1: stride must be an integer, not '1'"),
    "negative stride": (_set("conv1", "stride", -1), "stride must be >= 1"),
    "w_bits as a float": (_set("conv1", "w_bits", 4.0), "conv1: w_bits must be an integer, not 4.0"),
    "w_bits out of range": (_set("conv1", "w_bits", 9), "w_bits must be in 1..8, not 9"),
    "unknown weight encoding": (_set("conv1", "w_enc", "ternary"),
                                "conv1: w_enc must be one of signed, unsigned, odd, not 'ternary'"),
    "weight encoding as a number": (_set("conv1", "w_enc", 1), "w_enc must be signed, unsigned or odd"),
    "fractional add multiplier": (_set("layer1.0.add", "mult_a", -2.5),
                                  "layer1.0.add: mult_a must be an integer, not -2.5"),
    "add multiplier out of range": (_set("layer1.0.add", "mult_a", 1 << 15),
                                    "mult_a 32768 outside the signed 16-bit range"),
    "add bias beyond int64": (_set("layer1.0.add", "bias", 1 << 63),
                              "layer1.0.add: bias 9223372036854775808 is outside the signed 64-bit range"),
    "add bias that overflows": (_set("layer1.0.add", "bias", 7 << 60),
                                "a*mult_a + b*mult_b + bias can exceed 2^62"),
    "add shift as a float": (_set("layer1.0.add", "shift", 15.0), "shift must be an integer, not 15.0"),
    "add shift too large": (_set("layer1.0.add", "shift", 63), "shift 63 outside 0..62"),
    "add of a tensor with itself": (_set("layer1.0.add", "inputs", ["conv1", "conv1"]),
                                    "adds 'conv1' to itself"),
    "inputs as a string": (_set("conv1", "inputs", "input"), "inputs must be a list of names"),
    "input that does not exist": (_set("conv1", "inputs", ["nothing"]), "input 'nothing' is not produced"),
    "tensor bits as a string": (_set_out("conv1", "bits", "4"), "conv1: out: tensor bits must be an integer, not '4'"),
    "tensor bits out of range": (_set_out("conv1", "bits", 40), "conv1: out: tensor bits must be an integer in 1..32, not 40"),
    "fractional tensor shape": (_set_out("conv1", "shape", [16, 28.5, 28]),
                                "tensor shape must be an integer, not 28.5"),
    "tensor shape as a number": (_set_out("conv1", "shape", 16), "tensor shape must be a list of integers"),
    "wrong tensor shape": (_set_out("conv1", "shape", [16, 27, 28]), "does not match the computed"),
    "unknown tensor encoding": (_set_out("conv1", "encoding", "gray"),
                                "conv1: out: tensor encoding must be one of signed, unsigned, odd, not 'gray'"),
    "infinite tensor scale": (_set_out("conv1", "scale", float("inf")), "tensor scale must be a finite number"),
    "extra tensor key": (_set_out("conv1", "colour", "red"), "a tensor type has the keys shape, bits"),
    "unknown op": (_set("conv1", "op", "conv3d"), "unknown op 'conv3d'"),
    "unknown field": (_set("conv1", "dilation", 2), "has unknown field 'dilation'"),
    "missing field": (lambda d: _node(d, "conv1").pop("stride"), "lacks field 'stride'"),
    "duplicate node name": (_set("layer1.0.conv1", "name", "conv1"), "duplicate node name"),
    "empty node name": (_set("conv1", "name", ""), "a node name must be a non-empty string"),
    "nodes not a list": (lambda d: d.update(nodes={}), "nodes must be a list"),
    "node not an object": (lambda d: d["nodes"].append(7), "a node is an object of fields"),
    "other schema version": (lambda d: d.update(schema_version=2), "schema_version 2 is not supported"),
    "output not a node": (lambda d: d.update(output="logits"), "output 'logits' is not a node"),
}


@pytest.mark.parametrize("case", GRAPH_CASES, ids=list(GRAPH_CASES))
def test_graph_json_case(case, saved, tmp_path, run_cli):
    edit, fragment = GRAPH_CASES[case]
    net = tmp_path / "net"
    shutil.copytree(saved, net)
    doc = json.loads((net / "graph.json").read_text())
    edit(doc)
    (net / "graph.json").write_text(json.dumps(doc))
    status, _, err = run_cli("golden", net)
    assert_one_error_line(status, err, str(net / "graph.json"), fragment)


def _array(key: str, make):
    def edit(arrays):
        arrays[key] = make(arrays[key])
    return edit


WEIGHT_CASES = {
    "fractional weights": (_array("conv1.weight", lambda w: w + 0.5), "conv1.weight has dtype float64"),
    "integral float weights": (_array("conv1.weight", lambda w: w.astype(np.float64)),
                               "conv1.weight has dtype float64"),
    "complex weights": (_array("conv1.weight", lambda w: w + 1j), "conv1.weight has dtype complex128"),
    "boolean weights": (_array("conv1.weight", lambda w: w != 0), "conv1.weight has dtype bool"),
    "NaN bias": (_array("conv1.requant.bias", lambda b: np.full(b.shape, np.nan)),
                 "conv1.requant.bias has dtype float64"),
    "infinite bias": (_array("conv1.requant.bias", lambda b: np.full(b.shape, np.inf)),
                      "conv1.requant.bias has dtype float64"),
    "uint64 bias beyond int64": (_array("conv1.requant.bias", lambda b: np.full(b.shape, 2**64 - 1, np.uint64)),
                                 "requant bias has values above 2^63-1"),
    "weights off the grid": (_array("conv1.weight", lambda w: w * 0 + 9), "weights are not on the 4-bit signed grid"),
    "weights of another shape": (_array("conv1.weight", lambda w: w[:, :, :2]), "does not match"),
    "bias of another length": (_array("conv1.requant.bias", lambda b: b[:3]),
                               "requant bias has shape (3,), expected (16,)"),
    "shift beyond 62": (_array("conv1.requant.shift", lambda s: s * 0 + 63), "requant shift outside 0..62"),
    "bias that overflows": (_array("conv1.requant.bias", lambda b: b * 0 + (3 << 61)),
                            "acc*multiplier+bias can exceed 2^62"),
    "missing array": (lambda a: a.pop("conv1.weight"), "missing entry 'conv1.weight'"),
}


@pytest.mark.parametrize("case", WEIGHT_CASES, ids=list(WEIGHT_CASES))
def test_weights_npz_case(case, saved, tmp_path, run_cli):
    edit, fragment = WEIGHT_CASES[case]
    net = tmp_path / "net"
    shutil.copytree(saved, net)
    with np.load(net / "weights.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    edit(arrays)
    np.savez_compressed(net / "weights.npz", **arrays)
    status, _, err = run_cli("golden", net)
    assert_one_error_line(status, err, str(net), fragment)


def _damage_member(blob: bytes) -> bytes:
    """Flip bytes inside the compressed data of the first member (the zip directory stays valid)."""
    zf = zipfile.ZipFile(io.BytesIO(blob))
    info = zf.infolist()[0]
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 40
    data = bytearray(blob)
    for i in range(start, start + 16):
        data[i] ^= 0xA5
    return bytes(data)


ARCHIVE_CASES = {
    "damaged compressed data": (_damage_member, "not a readable weights archive"),
    "truncated archive": (lambda b: b[: len(b) // 2], "not a readable weights archive"),
    "empty file": (lambda b: b"", "not a readable weights archive"),
    "not a zip archive": (lambda b: b"PK\x03\x04" + bytes(100), "not a readable weights archive"),
}


@pytest.mark.parametrize("case", ARCHIVE_CASES, ids=list(ARCHIVE_CASES))
def test_weights_archive_case(case, saved, tmp_path, run_cli):
    damage, fragment = ARCHIVE_CASES[case]
    net = tmp_path / "net"
    shutil.copytree(saved, net)
    (net / "weights.npz").write_bytes(damage((net / "weights.npz").read_bytes()))
    status, _, err = run_cli("golden", net)
    assert_one_error_line(status, err, str(net / "weights.npz"), fragment)


CONFIG_CASES = {
    "not UTF-8": (lambda text: b"\xff\xfe" + text.encode("utf-16-le"), "not UTF-8 text"),
    "tile engine too small for the network": (
        lambda text: text.replace("acc_bits: 24", "acc_bits: 20").encode(),
        "conv1: 9 terms per output need 2 partial-sum passes of 2 kernel row(s) (6 terms, the engine "
        "holds 8); tiny allows k_passes 1: choose a config with more acc_bits, lanes, buffer or k_passes"),
    "weights too wide for the array": (
        lambda text: text.replace("weight_bits: [1, 8]", "weight_bits: [1, 3]").encode(),
        "supports weights 1..3"),
}


@pytest.mark.parametrize("case", CONFIG_CASES, ids=list(CONFIG_CASES))
def test_config_case(case, saved, tmp_path, run_cli):
    make, fragment = CONFIG_CASES[case]
    cfg = tmp_path / "accel.yaml"
    cfg.write_bytes(make(TINY.read_text()))
    status, _, err = run_cli("simulate", saved, "--config", cfg)
    assert_one_error_line(status, err, fragment)



@pytest.mark.parametrize("command", [("config", "check", "{cfg}"), ("hw", "emit", "--config", "{cfg}", "-o", "{out}")])
def test_config_the_tile_engine_cannot_hold(command, tmp_path, run_cli):
    """acc_bits too narrow for one chunk: config check and hw emit say the same one line."""
    cfg = tmp_path / "accel.yaml"
    cfg.write_text(TINY.read_text().replace("acc_bits: 24", "acc_bits: 12"))
    status, _, err = run_cli(*(a.format(cfg=cfg, out=tmp_path / "rtl") for a in command))
    assert_one_error_line(status, err, "tiny: the tile engine cannot be built: acc_bits 12 is too "
                                       "narrow for one 8-lane chunk at 8 bits (needs 20)")
    assert not (tmp_path / "rtl").exists()
