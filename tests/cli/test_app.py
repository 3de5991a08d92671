"""The entry points: the console script and ``python -m bitmill``, one error line per user error."""

import subprocess
import sys

from tests.conftest import REPO


def test_console_script_and_module_entry_points():
    exe = REPO / ".venv" / "bin" / "bitmill"
    for cmd in ([sys.executable, "-m", "bitmill"], [str(exe)] if exe.exists() else None):
        if cmd is None:
            continue
        r = subprocess.run(cmd + ["config", "check", "configs/accel/rows0.yaml"], cwd=REPO,
                           capture_output=True, text=True)
        assert r.returncode == 2 and r.stderr.startswith("error: cannot read") and r.stdout == ""
        r = subprocess.run(cmd + ["golden", "--model", "resnet8", "--bits", "w9a9"], cwd=REPO,
                           capture_output=True, text=True)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
