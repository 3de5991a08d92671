"""The QAT report is generated end to end (tiny synthetic budget)."""

import json

from bitmill.models.report_qat import Budget, generate


def test_report_generated_and_reused(tmp_path):
    budget = Budget(width=4, fp_epochs=1, qat_epochs=1, train_subset=64, test_subset=32,
                    dataset="synthetic")
    path = generate(budget, tmp_path / "runs", tmp_path / "out", ("lsq", "qil"), ("w4a4", "w2a2"))
    text = path.read_text()
    assert "| lsq | W4A4 |" in text and "| qil | W2A2 |" in text and "qil-w4a4" in text
    assert text.startswith("# Quantization-aware training on synthetic data\n")
    assert "Fashion-MNIST" not in text
    assert (tmp_path / "out" / "accuracy.png").read_bytes()[:4] == b"\x89PNG"
    rows = json.loads((tmp_path / "out" / "results.json").read_text())["rows"]
    assert len(rows) == 5 and all(0 <= r["fake_quant"] <= 1 for r in rows)
    assert all(r["agreement"] >= 0.8 for r in rows[1:])
    before = (tmp_path / "runs" / "lsq-w4a4" / "checkpoint.pt").stat().st_mtime
    generate(budget, tmp_path / "runs", tmp_path / "out", ("lsq", "qil"), ("w4a4", "w2a2"))
    assert (tmp_path / "runs" / "lsq-w4a4" / "checkpoint.pt").stat().st_mtime == before
    text = generate(budget, tmp_path / "runs", tmp_path / "out2", ("lsq", "dq"), ("w4a4", "w2a2"),
                    finished_only=True).read_text()
    assert "| lsq | W2A2 |" in text and "| dq |" not in text
    assert "Pending (training not finished; `bitmill report qat` resumes them): dq W4A4, dq W2A2." in text
    assert not (tmp_path / "runs" / "dq-w4a4").exists()


def test_report_reuses_results_of_the_same_configuration(tmp_path):
    budget = Budget(width=4, fp_epochs=1, qat_epochs=1, train_subset=64, test_subset=32,
                    dataset="synthetic")
    out = tmp_path / "out"
    generate(budget, tmp_path / "runs", out, ("lsq", "qil"), ("w4a4", "w2a2"))
    first = json.loads((out / "results.json").read_text())["rows"]
    # A new checkout: the run directories are gone, results.json is there.
    text = generate(budget, tmp_path / "runs2", out, ("lsq", "qil"), ("w4a4", "w2a2")).read_text()
    assert not (tmp_path / "runs2").exists()
    again = json.loads((out / "results.json").read_text())["rows"]
    assert [r["integer"] for r in again[1:]] == [r["integer"] for r in first[1:]]
    assert all(r["reused"] for r in again) and "(reused)" in text
    # Another budget or --retrain: nothing is reused.
    generate(budget, tmp_path / "runs3", out, ("lsq",), ("w4a4",), retrain=True)
    assert (tmp_path / "runs3" / "lsq-w4a4" / "metrics.json").exists()


def test_report_retrains_qil_stages_a_later_stage_starts_from(tmp_path):
    budget = Budget(width=4, fp_epochs=1, qat_epochs=1, train_subset=64, test_subset=32,
                    dataset="synthetic")
    out = tmp_path / "out"
    generate(budget, tmp_path / "runs", out, ("qil",), ("w4a4",))
    generate(budget, tmp_path / "runs2", out, ("qil",), ("w4a4", "w2a2"))
    # w2a2 starts from the w4a4 checkpoint, so w4a4 is trained again rather than reused.
    assert (tmp_path / "runs2" / "qil-w4a4" / "metrics.json").exists()
    assert (tmp_path / "runs2" / "qil-w2a2" / "metrics.json").exists()


def test_finished_only_trains_nothing_not_even_fp(tmp_path, run_cli):
    """With no finished run, --finished-only lists every run as pending and trains nothing."""
    status, out, err = run_cli("report", "qat", "--runs", tmp_path / "runs", "--out", tmp_path / "out",
                               "--dataset", "synthetic", "--width", "4", "--train-subset", "64",
                               "--test-subset", "32", "--methods", "lsq", "--bits", "w4a4",
                               "--finished-only")
    assert status == 0, err
    assert not (tmp_path / "runs").exists()
    text = (tmp_path / "out" / "README.md").read_text()
    assert "Pending (training not finished; `bitmill report qat` resumes them): fp FP, lsq W4A4." in text
    assert "| lsq |" not in text and "| fp |" not in text
    assert (tmp_path / "out" / "accuracy.png").read_bytes()[:4] == b"\x89PNG"


def test_finished_only_reports_a_finished_run_without_training_fp(tmp_path):
    budget = Budget(width=4, fp_epochs=1, qat_epochs=1, train_subset=64, test_subset=32,
                    dataset="synthetic")
    generate(budget, tmp_path / "runs", tmp_path / "out", ("lsq",), ("w4a4",))
    # the FP run's directory is gone; the finished LSQ run stays
    import shutil
    shutil.rmtree(tmp_path / "runs" / "fp")
    text = generate(budget, tmp_path / "runs", tmp_path / "out2", ("lsq",), ("w4a4",),
                    finished_only=True).read_text()
    assert not (tmp_path / "runs" / "fp").exists()
    assert "| lsq | W4A4 |" in text and "Pending (training not finished; `bitmill report qat` " \
        "resumes them): fp FP." in text
