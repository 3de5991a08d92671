"""`bitmill eval`: integer-path accuracy on a test set, via `bitmill.sim.accuracy`."""

import numpy as np

from bitmill.compiler import zoo
from bitmill.models import data
from bitmill.sim import golden
from bitmill.sim.accuracy import Accuracy, golden_accuracy
from tests.conftest import assert_one_error_line

R8 = ("--model", "resnet8", "--bits", "w4a4")


def _reference(graph, ds) -> int:
    pred = golden.run(graph, ds.images.astype(np.int64)).argmax(1)
    return int((pred == ds.labels).sum())


def test_golden_accuracy_counts_correct_predictions_in_any_batch_size():
    graph = zoo.build("resnet8", "w4a4", seed=0)
    ds = data.synthetic(37, seed=4)
    want = _reference(graph, ds)
    for batch in (1, 8, 500):
        assert golden_accuracy(graph, ds.images, ds.labels, batch) == Accuracy(want, 37)
    labels = (golden.run(graph, ds.images[:5]).argmax(1) + 1) % 10       # every one wrong
    assert golden_accuracy(graph, ds.images[:5], labels).correct == 0
    assert Accuracy(3, 4).accuracy == 0.75


def test_eval_on_synthetic_images(run_cli, tmp_path):
    status, out, err = run_cli("eval", *R8, "--dataset", "synthetic", "--limit", "40", "--seed", "2",
                               "--batch", "16")
    assert status == 0, err
    want = _reference(zoo.build("resnet8", "w4a4", seed=2), data.synthetic(40, seed=2))
    assert f"top-1 accuracy {want / 40:.4f} ({want} of 40 images)" in out
    assert err == ""                                                      # no progress bar off a terminal


def test_eval_on_a_fashion_mnist_subset_of_a_saved_network(run_cli, tmp_path):
    assert run_cli("zoo", *R8, "-o", tmp_path / "net")[0] == 0
    status, out, err = run_cli("eval", tmp_path / "net", "--limit", "60")
    assert status == 0, err
    ds = data.fashion_mnist("test").subset(60, seed=0)
    want = _reference(zoo.build("resnet8", "w4a4", seed=0), ds)
    assert out.strip().endswith(f"({want} of 60 images)") and "fashion-mnist/test[60]" in out


def test_eval_refuses_a_network_for_other_images(run_cli):
    status, _, err = run_cli("eval", "--model", "resnet18", "--dataset", "synthetic", "--limit", "2")
    assert_one_error_line(status, err, "resnet18 takes inputs of shape (3, 224, 224)",
                          "have shape (1, 28, 28)")


def test_eval_refuses_bad_counts(run_cli):
    for option in ("--limit", "--batch"):
        for value in ("0", "-3"):
            status, _, err = run_cli("eval", *R8, option, value)
            assert_one_error_line(status, err, f"argument {option}: expected a positive integer")
    status, _, err = run_cli("eval", *R8, "--dataset", "mnist")
    assert_one_error_line(status, err, "invalid choice: 'mnist'")
