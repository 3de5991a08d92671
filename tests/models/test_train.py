"""Training runs: resume exactness, init from another run, user errors."""

import json

import numpy as np
import pytest

from bitmill.errors import BitmillError
from bitmill.models import data
from bitmill.models.train import TrainConfig, train
from tests.conftest import assert_one_error_line

TINY = dict(model="resnet8", width=4, dataset="synthetic", train_subset=96, test_subset=48,
            batch_size=32, epochs=2, lr=0.05)


def test_killed_run_resumes_to_identical_metrics(tmp_path):
    cfg = TrainConfig(quantizer="lsq", bits="w3a3", **TINY)
    full = train(cfg, tmp_path / "full", progress=False)
    stopped = train(cfg, tmp_path / "cut", progress=False, stop_after=1)
    assert stopped == {"stopped_at_epoch": 1}
    assert not (tmp_path / "cut" / "metrics.json").exists()
    resumed = train(cfg, tmp_path / "cut", resume=True, progress=False)
    strip = lambda m: [{k: v for k, v in h.items() if k != "seconds"} for h in m["history"]]
    assert strip(resumed) == strip(full)
    assert json.loads((tmp_path / "cut" / "metrics.json").read_text())["test_accuracy"] == full["test_accuracy"]


def test_qat_from_fp_checkpoint_and_progressive(tmp_path, run_cli):
    fp = TrainConfig(quantizer="fp", **TINY)
    train(fp, tmp_path / "fp", progress=False)
    args = ["train", "--model", "resnet8", "--width", "4", "--dataset", "synthetic",
            "--train-subset", "96", "--test-subset", "48", "--batch-size", "32", "--epochs", "1"]
    status, out, err = run_cli(*args, "--quantizer", "qil", "--progressive", "4,3",
                               "--init", tmp_path / "fp" / "checkpoint.pt", "--out", tmp_path / "qil")
    assert status == 0, err
    assert (tmp_path / "qil" / "w4a4" / "checkpoint.pt").exists()
    assert (tmp_path / "qil" / "w3a3" / "metrics.json").exists()
    assert out.rstrip().endswith(f"checkpoint and metrics in {tmp_path / 'qil' / 'w3a3'}")
    status, out, err = run_cli("export", tmp_path / "qil" / "w3a3" / "checkpoint.pt", "-o", tmp_path / "net")
    assert status == 0 and (tmp_path / "net" / "graph.json").exists(), err
    status, out, err = run_cli("golden", tmp_path / "net")
    assert status == 0 and "w3s a3u" in out


def test_user_errors(tmp_path, run_cli):
    args = ["train", "--model", "resnet8", "--width", "4", "--dataset", "synthetic", "--epochs", "1",
            "--train-subset", "32", "--test-subset", "16"]
    status, _, err = run_cli(*args, "--quantizer", "xnor", "--out", tmp_path / "a")
    assert_one_error_line(status, err, "unknown quantizer 'xnor'")
    status, _, err = run_cli(*args, "--quantizer", "lsq", "--bits", "w4a9", "--out", tmp_path / "a")
    assert_one_error_line(status, err, "activation bits must be an integer in 1..8, not 9")
    status, _, err = run_cli(*args, "--quantizer", "lsq", "--bits", "w0a4", "--out", tmp_path / "a")
    assert_one_error_line(status, err, "weight bits must be an integer in 1..8, not 0")
    train(TrainConfig(quantizer="fp", **{**TINY, "epochs": 1, "model": "resnet20"}), tmp_path / "r20",
          progress=False)
    status, _, err = run_cli(*args, "--quantizer", "lsq", "--init", tmp_path / "r20" / "checkpoint.pt",
                             "--out", tmp_path / "b")
    assert_one_error_line(status, err, "checkpoint of another architecture")
    status, _, err = run_cli("export", tmp_path / "nothing.pt", "-o", tmp_path / "n")
    assert_one_error_line(status, err, "no such checkpoint file")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    status, _, err = run_cli("export", tmp_path / "junk.pt", "-o", tmp_path / "n")
    assert_one_error_line(status, err, "not a readable checkpoint")
    status, _, err = run_cli("export", tmp_path / "r20" / "checkpoint.pt", "-o", tmp_path / "n")
    assert_one_error_line(status, err, "full-precision model has no integer form")
    status, _, err = run_cli(*args, "--quantizer", "fp", "--out", tmp_path / "r20", "--model", "resnet20")
    assert_one_error_line(status, err, "exists; pass --resume")


def test_missing_dataset_names_the_package(tmp_path):
    with pytest.raises(BitmillError, match="apt-get install -y dataset-fashion-mnist"):
        data.fashion_mnist("train", root=tmp_path)


def test_fashion_mnist_reads_real_files():
    ds = data.fashion_mnist("test")
    assert ds.images.shape == (10000, 1, 28, 28) and ds.images.dtype == np.uint8
    assert np.bincount(ds.labels).tolist() == [1000] * 10


def test_bits_file_sets_per_layer_bits(tmp_path, run_cli):
    from bitmill.models.train import load_model
    (tmp_path / "bits.yaml").write_text("default: w3a4\nfirst_last: 8\nlayers:\n  layer2.0.conv1: w2a4\n")
    status, _, err = run_cli("train", "--model", "resnet8", "--width", "4", "--dataset", "synthetic",
                             "--train-subset", "32", "--test-subset", "16", "--epochs", "1",
                             "--quantizer", "lsq", "--bits-file", tmp_path / "bits.yaml",
                             "--out", tmp_path / "r")
    assert status == 0, err
    model, cfg = load_model(tmp_path / "r" / "checkpoint.pt")
    assert model.blocks[1].conv1.wq.bits == 2 and model.blocks[1].conv2.wq.bits == 3
    assert model.conv1.wq.bits == 8 and model.blocks[0].act1.bits == 4
    (tmp_path / "bad.yaml").write_text("default: w3a4\nlayers:\n  fc: w3a12\n")
    status, _, err = run_cli("train", "--bits-file", tmp_path / "bad.yaml", "--out", tmp_path / "q",
                             "--dataset", "synthetic")
    assert_one_error_line(status, err, "layers.fc: activation bits must be an integer in 1..8, not 12")


@pytest.mark.parametrize("field,value,message", [
    ("lr", float("inf"), "lr must be a finite number > 0, not inf"),
    ("lr", float("nan"), "lr must be a finite number > 0"),
    ("lr", 0.0, "lr must be a finite number > 0, not 0.0"),
    ("weight_decay", -1e-4, "weight_decay must be a finite number >= 0"),
    ("seed", -1, "seed must be an integer in 0..4294967295, not -1"),
    ("batch_size", 10_000_000, "batch_size must be an integer in 1..8192, not 10000000"),
    ("width", 100_000, "width must be an integer in 1..256, not 100000"),
    ("layer_bits", (("layer9.0.conv1", "w2a2"),), "layer 'layer9.0.conv1' is not a conv/dense layer of resnet8"),
])
def test_config_refuses_values_that_cannot_train(field, value, message):
    with pytest.raises(BitmillError, match=message.replace(".", r"\.").replace("(", r"\(")):
        TrainConfig(quantizer="lsq", **{**TINY, field: value})


def test_known_layer_names_are_accepted():
    cfg = TrainConfig(quantizer="lsq", **{**TINY, "layer_bits": (("layer2.0.downsample", "w2a4"),
                                                                  ("fc", "w8a8"))})
    assert cfg.assignment.of("fc") == (8, 8)


def test_damaged_checkpoints_are_one_error_line(tmp_path, run_cli):
    import torch

    from bitmill.models import checkpoint

    cfg = TrainConfig(quantizer="lsq", bits="w3a3", **{**TINY, "epochs": 1})
    train(cfg, tmp_path / "run", progress=False)
    ck = checkpoint.load(tmp_path / "run" / "checkpoint.pt")
    damaged = {
        "config": {**ck, "config": {**ck["config"], "colour": "red"}},
        "keys": {k: v for k, v in ck.items() if k != "optimizers"},
        "shapes": {**ck, "model": {k: torch.zeros(3) for k in ck["model"]}},
    }
    for name, payload in damaged.items():
        path = tmp_path / name / "checkpoint.pt"
        checkpoint.save(path, {k: v for k, v in payload.items() if k not in ("format", "version")})
        status, _, err = run_cli("export", path, "-o", tmp_path / f"net-{name}")
        if name != "keys":
            assert_one_error_line(status, err, str(path))
        args = ["train", "--model", "resnet8", "--width", "4", "--dataset", "synthetic",
                "--train-subset", "96", "--test-subset", "48", "--batch-size", "32", "--epochs", "1",
                "--quantizer", "lsq", "--bits", "w3a3", "--lr", "0.05"]
        status, _, err = run_cli(*args, "--out", tmp_path / name, "--resume")
        assert_one_error_line(status, err, str(path))
        status, _, err = run_cli(*args, "--out", tmp_path / f"init-{name}", "--init", path)
        if name != "keys":
            assert_one_error_line(status, err, str(path))
