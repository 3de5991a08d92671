"""Shared fixtures and helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# CI runs the property tests on a fixed sequence of examples (reproducible gate); locally they
# explore new random examples on every run.
settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI") == "true":
    settings.load_profile("ci")

from bitmill import cli

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def run_cli(capsys):
    """Run ``bitmill ARGS`` in-process; return (exit status, stdout, stderr)."""
    def run(*args: str):
        try:
            status = cli.main([str(a) for a in args])
        except SystemExit as exc:     # argparse usage errors
            status = exc.code
        out = capsys.readouterr()
        return status, out.out, out.err
    return run


def assert_one_error_line(status: int, err: str, *fragments: str) -> None:
    """A user error: exit status 2 and exactly one ``error:`` line naming the fragments."""
    lines = [l for l in err.splitlines() if l.strip()]
    assert status == 2, (status, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for frag in fragments:
        assert frag in lines[0], (frag, lines[0])


CONFIGS = REPO / "configs" / "accel"


@pytest.fixture(scope="session")
def tiny():
    """The tiny bit-serial accelerator config (``configs/accel/tiny.yaml``)."""
    from bitmill.config import AccelConfig
    return AccelConfig.load(CONFIGS / "tiny.yaml")


@pytest.fixture(scope="session")
def tiny_bitparallel():
    """The tiny bit-parallel accelerator config."""
    from bitmill.config import AccelConfig
    return AccelConfig.load(CONFIGS / "tiny-bitparallel.yaml")


@pytest.fixture(scope="session")
def fp_resnet8(tmp_path_factory):
    """A full-precision ResNet-8 checkpoint trained briefly on synthetic data (search tests)."""
    from bitmill import cli
    out = tmp_path_factory.mktemp("fp-resnet8")
    assert cli.main(["train", "--model", "resnet8", "--quantizer", "fp", "--dataset", "synthetic",
                     "--train-subset", "32", "--test-subset", "16", "--out", str(out)]) == 0
    return out / "checkpoint.pt"
