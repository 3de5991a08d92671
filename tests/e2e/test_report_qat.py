"""The QAT report is generated end to end (tiny synthetic budget)."""

import json

from bitmill.report_qat import Budget, generate


def test_report_generated_and_reused(tmp_path):
    budget = Budget(width=4, fp_epochs=1, qat_epochs=1, train_subset=64, test_subset=32,
                    dataset="synthetic")
    path = generate(budget, tmp_path / "runs", tmp_path / "out", ("lsq", "qil"), ("w4a4", "w2a2"))
    text = path.read_text()
    assert "| lsq | W4A4 |" in text and "| qil | W2A2 |" in text and "qil-w4a4" in text
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
