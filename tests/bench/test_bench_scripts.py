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


def test_routed_nets_lists_the_latest_inputs_of_the_clock(tmp_path):
    """Arrivals later than 1 / Fmax (another clock or a pin) are left out; ``--group`` keeps
    the latest input per block; a report without net timings is one error line."""
    import json
    net = lambda name, ends: {"net": name, "driver": "d", "event": "posedge clk",
                              "endpoints": [{"cell": c, "port": p, "event": "posedge clk",
                                             "delay": [0.5, at]} for c, p, at in ends]}
    report = {"fmax": {"clk": {"achieved": 100.0, "constraint": 50.0}},
              "detailed_net_timings": [net("a.x", [("a.r1", "DI", 9.5), ("a.r2", "DI", 7.0)]),
                                       net("b.y", [("b.r3", "CE", 8.0), ("a.r2", "DI", 12.0)])]}
    path = tmp_path / "pnr.json"
    path.write_text(json.dumps(report))
    run = lambda *args: subprocess.run([sys.executable, str(BENCH / "routed_nets.py"), str(path), *args],
                                       capture_output=True, text=True, timeout=120)
    lines = [l.split() for l in run().stdout.splitlines()[3:]]
    assert [(l[0], l[1]) for l in lines] == [("9.50", "a.r1.DI"), ("8.00", "b.r3.CE"), ("7.00", "a.r2.DI")]
    grouped = [l.split()[1] for l in run("--group").stdout.splitlines()[3:]]
    assert grouped == ["a.r1.DI", "b.r3.CE"]
    path.write_text(json.dumps({"fmax": report["fmax"]}))
    proc = run()
    assert_one_error_line(proc.returncode, proc.stderr, "detailed_net_timings")
