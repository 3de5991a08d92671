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


@pytest.fixture(scope="module")
def uniform_runs(fp_resnet8, tmp_path_factory):
    """Three tiny uniform LSQ fine-tunes of the FP checkpoint: weights and activations apart."""
    from bitmill import cli
    folder = tmp_path_factory.mktemp("uniform")
    for bits in ("w6a6", "w8a6", "w6a8"):
        assert cli.main(["train", "--model", "resnet8", "--quantizer", "lsq", "--bits", bits, "--dataset",
                         "synthetic", "--train-subset", "32", "--test-subset", "16", "--init", str(fp_resnet8),
                         "--out", str(folder / bits)]) == 0
    return folder


def seed_calibration(out, fp, runs_folder, increases: dict, images: int, dataset: str = "synthetic") -> None:
    """Write ``out/calibration.json`` as `bitmill search --calibration` would after measuring
    ``increases`` (``{"6,8": 0.1, ...}``): tiny runs on synthetic data give no loss signal."""
    from pathlib import Path

    from bitmill.models.calibration import identify
    from bitmill.models.calibration import uniform_runs as find
    key = {"init": str(Path(fp).resolve()), "runs": identify(find(runs_folder)), "images": images, "seed": 0,
           "dataset": dataset}
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / "calibration.json").write_text(json.dumps({"key": key, "increases": increases}))


def test_calibrated_search_and_the_fastest_policy_as_sensitive_as_a_uniform_one(fp, uniform_runs, tmp_path, run_cli):
    from bitmill.config import AccelConfig
    from bitmill.sim import latency
    out = tmp_path / "q"
    calib = ("--calibration", uniform_runs, "--calib-loss-images", "16")
    status, _, err = run_cli("search", *SMALL, "--budget-ratio", "0.9", "--init", fp, "-o", tmp_path / "m", *calib)
    measured = json.loads((tmp_path / "m" / "calibration.json").read_text())     # measured, whatever the fit
    assert sorted(measured["increases"]) == ["6,6", "6,8", "8,6"]
    seed_calibration(out, fp, uniform_runs, {"6,6": 0.05, "6,8": 0.02, "8,6": 0.04}, 16)
    status, stdout, err = run_cli("search", *SMALL, "--budget-ratio", "0.9", "--init", fp, "-o", out, "--resume",
                                  *calib)
    assert status == 0, err
    doc = json.loads((out / "search.json").read_text())
    cal = doc["calibration"]
    assert [(w, a, m) for w, a, m, _ in cal["points"]] == [(6, 6, 0.05), (6, 8, 0.02), (8, 6, 0.04)]
    assert cal["alpha"] >= 0 and cal["beta"] >= 0 and cal["alpha"] + cal["beta"] > 0
    assert set(cal["runs"]) == {"w6a6", "w8a6", "w6a8"}
    assert doc["predicted_cycles"] <= doc["budget_cycles"] and "calibrated on 3 uniform QAT runs" in stdout
    iso = tmp_path / "iso"
    seed_calibration(iso, fp, uniform_runs, {"6,6": 0.05, "6,8": 0.02, "8,6": 0.04}, 16)
    status, stdout, err = run_cli("search", *SMALL, "--as-accurate-as", "w7a7", "--init", fp, "-o", iso,
                                  "--resume", *calib)
    assert status == 0, err
    doc = json.loads((iso / "search.json").read_text())
    assert doc["target"] == "w7a7" and doc["budget_cycles"] is None
    assert doc["sensitivity"] <= doc["max_sensitivity"] * (1 + 1e-6)
    table = latency.build_table("resnet8", AccelConfig.resolve("sim-4x4-k16"))
    uniform = table.predict({l: (7, 7) for l in doc["policy"]})
    assert doc["predicted_cycles"] <= uniform                 # W7A7 itself meets the bound
    assert "as the fastest policy at most as sensitive as uniform W7A7" in stdout


def test_bad_calibration_and_target_are_one_error_line(fp, uniform_runs, tmp_path, run_cli):
    status, _, err = run_cli("search", *SMALL, "--as-accurate-as", "w2a2", "--init", fp, "-o", tmp_path / "a")
    assert_one_error_line(status, err, "--as-accurate-as w2a2: W2A2 is outside the searched widths (weights 6..8")
    status, _, err = run_cli("search", *SMALL, "--method", "sdq", "--as-accurate-as", "w6a6", "--init", fp,
                             "-o", tmp_path / "b")
    assert_one_error_line(status, err, "--as-accurate-as needs --method ilp")
    status, _, err = run_cli("search", *SMALL, "--budget-ratio", "0.9", "--init", fp, "-o", tmp_path / "c",
                             "--calibration", tmp_path / "none")
    assert_one_error_line(status, err, "no such folder of uniform QAT runs")
    (tmp_path / "diag").mkdir()
    (tmp_path / "diag" / "w6a6").symlink_to(uniform_runs / "w6a6")
    status, _, err = run_cli("search", *SMALL, "--budget-ratio", "0.9", "--init", fp, "-o", tmp_path / "d",
                             "--calibration", tmp_path / "diag", "--calib-loss-images", "16")
    assert_one_error_line(status, err, "vary apart (e.g. W4A4, W2A4 and W4A2); found W6A6")
    assert not (tmp_path / "d" / "search.json").exists()
    seed_calibration(tmp_path / "e", fp, uniform_runs, {"6,6": 0.0, "6,8": 0.0, "8,6": 0.0}, 16)
    status, _, err = run_cli("search", *SMALL, "--budget-ratio", "0.9", "--init", fp, "-o", tmp_path / "e",
                             "--resume", *("--calibration", uniform_runs, "--calib-loss-images", "16"))
    assert_one_error_line(status, err, "losses do not grow with their quantization error")
