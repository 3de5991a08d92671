"""Provenance: the commit of the source checkout and the machine description."""

import os
import subprocess

from bitmill import provenance
from tests.conftest import REPO


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_git_revision_of_this_checkout():
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    assert provenance.git_revision() == _git("rev-parse", "--short", "HEAD") + ("+" if dirty else "")


def test_machine_lists_cpu_cores_and_the_given_versions_in_order():
    text = provenance.machine({"numpy": "1.2.3", "torch": "4.5"})
    assert text == f"{provenance.cpu_model()}, {os.cpu_count()} cores, numpy 1.2.3, torch 4.5"
    assert provenance.machine() == f"{provenance.cpu_model()}, {os.cpu_count()} cores"
