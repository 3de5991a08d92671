"""``bitmill search --method ilp``: a policy within the budget, written as a bits file that
``bitmill train`` reads; resume; one error line for bad input."""

from __future__ import annotations

import json

import pytest

from bitmill.models.bits import BitAssignment
from tests.conftest import assert_one_error_line

SMALL = ("--dataset", "synthetic", "--calib-images", "16", "--calib-batch", "8", "--samples", "1",
         "--min-bits", "6", "--config", "sim-4x4-k16", "--model", "resnet8")


@pytest.fixture
def fp(fp_resnet8):
    return fp_resnet8


@pytest.fixture(autouse=True)
def cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("BITMILL_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def test_search_writes_a_policy_within_the_budget(fp, tmp_path, run_cli):
    out = tmp_path / "s"
    status, stdout, err = run_cli("search", *SMALL, "--budget-ratio", "0.9", "--init", fp, "-o", out)
    assert status == 0, err
    doc = json.loads((out / "search.json").read_text())
    assert doc["predicted_cycles"] <= doc["budget_cycles"] == 0.9 * doc["reference_w8a8_cycles"]
    bits = BitAssignment.load(out / "policy.yaml")
    assert dict(bits.layers) == {l: tuple(int(c) for c in p[1:].split("a")) for l, p in doc["policy"].items()}
    assert bits.of("layer2.0.conv1")[1] == bits.of("layer2.0.downsample")[1]
    assert "predicted" in stdout and err == ""            # progress only on a terminal
    status, stdout, err = run_cli("search", *SMALL, "--budget-ratio", "0.9", "--init", fp, "-o", out, "--resume")
    assert status == 0 and "sensitivity: reused" in stdout
    assert json.loads((out / "search.json").read_text())["policy"] == doc["policy"]
    assert doc["sensitivity_estimator"] == "fisher"
    status, stdout, err = run_cli("search", *SMALL, "--budget-ratio", "0.9", "--init", fp, "-o", out, "--resume",
                                  "--sensitivity", "hessian", "--samples", "1")
    assert status == 0 and "computed with other settings" in stdout, err
    assert json.loads((out / "search.json").read_text())["sensitivity_estimator"] == "hessian"
    assert "warning: negative" not in run_cli("search", *SMALL, "--budget-ratio", "0.9", "--init", fp, "-o",
                                              tmp_path / "f")[1]
    status, _, err = run_cli("search", *SMALL, "--budget-ratio", "0.9", "--init", fp, "-o", tmp_path / "l",
                             "--sensitivity", "loss")
    loss = json.loads((tmp_path / "l" / "search.json").read_text())
    assert status == 0 and loss["sensitivity_estimator"] == "loss" and loss["predicted_cycles"] <= loss["budget_cycles"]


def test_min_act_bits_keeps_activations_wide_and_searches_weights_below(fp, tmp_path, run_cli):
    small = SMALL[:SMALL.index("--min-bits")] + SMALL[SMALL.index("--min-bits") + 2:]
    out = tmp_path / "a7"
    status, stdout, err = run_cli("search", *small, "--min-bits", "5", "--min-act-bits", "7",
                                  "--budget-ratio", "0.8", "--init", fp, "-o", out)
    assert status == 0, err
    doc = json.loads((out / "search.json").read_text())
    pairs = [tuple(int(c) for c in p[1:].split("a")) for p in doc["policy"].values()]
    assert doc["min_bits"] == 5 and doc["min_act_bits"] == 7
    assert all(a >= 7 for _, a in pairs) and min(w for w, _ in pairs) < 7     # only the weights go lower
    assert doc["predicted_cycles"] <= doc["budget_cycles"]
    status, _, err = run_cli("search", *small, "--min-act-bits", "9", "--budget-ratio", "0.8", "--init", fp,
                             "-o", tmp_path / "a9")
    assert_one_error_line(status, err, "activations 9..8")


def test_bad_input_is_one_error_line(fp, tmp_path, run_cli):
    status, _, err = run_cli("search", *SMALL, "--budget", "1000", "--init", fp, "-o", tmp_path / "a")
    assert_one_error_line(status, err, "budget 1,000 cycles is outside what resnet8 reaches on sim-4x4-k16")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x").write_text("")
    status, _, err = run_cli("search", *SMALL, "--budget", "1000", "--init", fp, "-o", tmp_path / "b")
    assert_one_error_line(status, err, "is not empty; --resume reuses its sensitivity")
    status, _, err = run_cli("search", *SMALL[:-2], "--model", "resnet20", "--budget-ratio", "0.5",
                             "--init", fp, "-o", tmp_path / "c")
    assert_one_error_line(status, err, "is a checkpoint of resnet8 width 16; the search runs resnet20")
    status, _, err = run_cli("search", *SMALL, "--budget-ratio", "0", "--init", fp, "-o", tmp_path / "d")
    assert status == 2 and "must be a number in (0, 10]" in err


def test_sdq_search_writes_a_policy_and_resumes(fp, tmp_path, run_cli):
    out = tmp_path / "sdq"
    args = ("search", *SMALL, "--method", "sdq", "--budget-ratio", "0.8", "--init", fp, "-o", out,
            "--train-images", "32", "--batch-size", "16", "--epochs", "2", "--dbp-lr", "0.5")
    status, stdout, err = run_cli(*args)
    assert status == 0, err
    doc = json.loads((out / "search.json").read_text())
    assert [h["epoch"] for h in doc["history"]] == [1, 2] and "sdq_phase1" in doc["seconds"]
    bits = BitAssignment.load(out / "policy.yaml")
    assert all(6 <= w <= 8 and 6 <= a <= 8 for _, (w, a) in bits.layers)
    status, _, err = run_cli(*args, "--resume")               # finished: the same policy again
    assert status == 0 and json.loads((out / "search.json").read_text())["policy"] == doc["policy"]
