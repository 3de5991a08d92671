"""``bitmill report search --ray``: the fine-tunes as Ray tasks give the figures of the local path."""

from __future__ import annotations

import json
import sys

import pytest

from tests.conftest import assert_one_error_line

ray = pytest.importorskip("ray", reason="Ray is the 'ray' extra; make test installs it")


def _report(run_cli, fp, tmp_path, name, *extra):
    status, out, err = run_cli(
        "report", "search", "--init", fp, "--model", "resnet8", "--configs", "sim-4x4-k16",
        "--methods", "", "--uniform", "w8a8,w3a4", "--qat-epochs", "1", "--train-subset", "32",
        "--test-subset", "64", "--dataset", "synthetic", "--threads", "1",
        "--runs", tmp_path / name / "runs", "--out", tmp_path / name / "rep", *extra)
    assert status == 0, err
    rows = json.loads((tmp_path / name / "rep" / "results.json").read_text())["rows"]
    return {r["name"]: r for r in rows}, err


def test_ray_tasks_give_the_local_figures(fp_resnet8, tmp_path, run_cli, monkeypatch):
    monkeypatch.setenv("BITMILL_CACHE", str(tmp_path / "cache"))
    local, _ = _report(run_cli, fp_resnet8, tmp_path, "local")
    remote, err = _report(run_cli, fp_resnet8, tmp_path, "ray", "--ray", "local")
    assert "ray: 2/2 jobs done" in err
    assert not ray.is_initialized()
    assert set(local) == set(remote) == {"fp", "w8a8", "w3a4"}
    for name in ("w8a8", "w3a4"):
        for key in ("integer", "fake_quant", "agreement", "cycles"):
            assert remote[name][key] == local[name][key], (name, key)
    assert local["w3a4"]["cycles"]["sim-4x4-k16"] < local["w8a8"]["cycles"]["sim-4x4-k16"]


def test_ray_missing_is_one_error_line(fp_resnet8, tmp_path, run_cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    status, _, err = run_cli("report", "search", "--init", fp_resnet8, "--model", "resnet8", "--methods", "",
                             "--uniform", "w8a8", "--dataset", "synthetic", "--ray", "local",
                             "--runs", tmp_path / "runs", "--out", tmp_path / "rep")
    assert_one_error_line(status, err, "--ray needs Ray, an optional extra: pip install 'bitmill[ray]'")
    assert not (tmp_path / "rep").exists()


def test_no_cluster_at_the_address_is_one_error_line(fp_resnet8, tmp_path, run_cli, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    status, _, err = run_cli("report", "search", "--init", fp_resnet8, "--model", "resnet8", "--methods", "",
                             "--uniform", "w8a8", "--dataset", "synthetic", "--ray", "auto",
                             "--runs", tmp_path / "runs", "--out", tmp_path / "rep")
    assert_one_error_line(status, err, "cannot reach the Ray cluster at 'auto'")
    assert not (tmp_path / "rep").exists()
