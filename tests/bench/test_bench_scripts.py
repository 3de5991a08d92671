"""The benchmark scripts: each describes itself with --help; the synthesis benches write into
a build folder by default and refuse an unusable report folder before synthesizing."""

import subprocess
import sys

import pytest

from tests.conftest import REPO, assert_one_error_line

BENCH = REPO / "bench"
SCRIPTS = sorted(p.name for p in BENCH.glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_bench_script_has_help(script):
    proc = subprocess.run([sys.executable, str(BENCH / script), "--help"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"usage: {script}")
    assert len([l for l in lines if l.strip()]) >= 4        # usage, a description, options


@pytest.mark.parametrize("script", ["flexibility.py", "lut_efficiency.py"])
def test_synthesis_bench_refuses_a_file_as_report_folder(script, tmp_path):
    (tmp_path / "taken").write_text("")
    proc = subprocess.run([sys.executable, str(BENCH / script), "--build-dir", str(tmp_path / "b"),
                           "--reports", str(tmp_path / "taken")], capture_output=True, text=True,
                          timeout=120)
    assert_one_error_line(proc.returncode, proc.stderr, "--reports", "not a folder")
    assert not (tmp_path / "b").exists()


def test_flexibility_writes_into_the_build_folder_by_default(tmp_path, monkeypatch):
    from tests.cli.test_hw import _canned_report

    monkeypatch.syspath_prepend(str(BENCH))
    import flexibility

    def pe_report(cfg, target, workdir, **kwargs):
        report = _canned_report(cfg, target, workdir)
        from dataclasses import replace
        return replace(report, block="pe", dsp=kwargs.get("dsp", True))

    monkeypatch.setattr(flexibility, "REPO", tmp_path)
    monkeypatch.setattr(flexibility, "synthesize", pe_report)
    assert flexibility.main(["--target", "ecp5"]) == 0
    written = sorted(p.name for p in (tmp_path / "build" / "reports" / "hw").iterdir())
    assert "flexibility-ecp5.md" in written and "flex-bitserial-k64-ecp5-pe.json" in written
    assert not (tmp_path / "reports").exists()
