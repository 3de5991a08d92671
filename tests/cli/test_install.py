"""A non-editable install runs from any working directory, with its package data."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.conftest import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PACKAGE_DIRS = PYPROJECT["tool"]["setuptools"]["package-dir"]     # import name -> source folder


def _build_isolation_args() -> list[str]:
    """``--no-build-isolation`` when this environment has a build backend that makes wheels on
    its own (setuptools >= 70.1, a ``test`` extra), else nothing (pip fetches one)."""
    try:
        version = importlib.metadata.version("setuptools")
    except importlib.metadata.PackageNotFoundError:
        return []
    major, minor = (int(v) for v in version.split(".")[:2])
    return ["--no-build-isolation"] if (major, minor) >= (70, 1) else []


def _copy_sources(dest: Path) -> None:
    """What the build reads: pyproject.toml, the README and the package folders."""
    dest.mkdir()
    for name in ("pyproject.toml", PYPROJECT["project"]["readme"]):
        shutil.copy2(REPO / name, dest / name)
    for folder in set(PACKAGE_DIRS.values()):
        shutil.copytree(REPO / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__"))


def _data_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc")}


def test_installed_copy_runs_from_root_with_every_data_file(tmp_path):
    src, target = tmp_path / "src", tmp_path / "site"
    _copy_sources(src)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile",
                    *_build_isolation_args(), "--target", str(target), str(src)],
                   check=True, capture_output=True, cwd=tmp_path)
    for name, folder in PACKAGE_DIRS.items():         # non-Python files travel as package data
        installed = target.joinpath(*name.split("."))
        assert _data_files(REPO / folder) - _data_files(installed) == set(), name
    env = {**os.environ, "PYTHONPATH": str(target)}

    def run(*cmd: str) -> str:
        r = subprocess.run(cmd, cwd="/", env=env, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return r.stdout

    probe = run(sys.executable, "-c", "import bitmill, bitmill.config as c, bitmill.provenance as p; "
                "print(bitmill.__file__); print(*c.shipped_names()); print(p.git_revision())")
    module_file, names, revision = probe.splitlines()
    assert Path(module_file).is_relative_to(target)
    assert names.split() == sorted(p.stem for p in (REPO / "configs" / "accel").glob("*.yaml"))
    assert revision == "unknown"                     # not a git checkout of the sources
    out = run(sys.executable, "-m", "bitmill", "config", "check", "ecp5-85f")
    assert out.startswith("ok: ecp5-85f: 16x16 bitserial PEs")
    script = target / "bin" / "bitmill"
    entry = [str(script)] if script.exists() else [sys.executable, "-m", "bitmill"]
    out = run(*entry, "simulate", "--model", "resnet8", "--bits", "w4a4", "--config", "sim-4x4-k16")
    assert "bit-exact: every tensor of the final memory image equals the golden model" in out
