"""Provenance of generated reports: the commit of the source tree and the machine it ran on."""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Mapping
from pathlib import Path

UNKNOWN = "unknown"
_THIS_FILE = Path(__file__).resolve()


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=_THIS_FILE.parent, capture_output=True, text=True,
                          check=True).stdout.strip()


def git_revision() -> str:
    """Short hash of the commit of the bitmill source tree, with ``+`` when tracked files have
    changes; ``"unknown"`` when bitmill does not run from a git checkout of its own source
    (e.g. an installed copy, even one that lies inside another repository)."""
    try:
        top = Path(_git("rev-parse", "--show-toplevel")).resolve()
        if top / "bitmill" / _THIS_FILE.name != _THIS_FILE:
            return UNKNOWN
        rev = _git("rev-parse", "--short", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return UNKNOWN
    return rev + ("+" if dirty else "")


def cpu_model() -> str:
    """The processor's model name (``/proc/cpuinfo``), else what `platform` knows of it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(versions: Mapping[str, str] | None = None) -> str:
    """``"<cpu model>, <n> cores"`` followed by ``", <name> <version>"`` for each entry of
    ``versions`` (e.g. ``{"torch": torch.__version__}``), in the given order."""
    parts = [cpu_model(), f"{os.cpu_count()} cores"]
    parts += [f"{name} {version}" for name, version in (versions or {}).items()]
    return ", ".join(parts)

