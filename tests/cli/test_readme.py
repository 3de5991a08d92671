"""The README as a newcomer reads it: the tour's command lines run as written (in a temporary
folder, in order), every other `bitmill` line parses, every bench script and make target it names
exists, and the layout table names every module of the tree."""

import os
import re
import shlex
import subprocess

import pytest

from bitmill.cli.app import build_parser
from tests.conftest import REPO

README = (REPO / "README.md").read_text()
BLOCK = re.compile(r"(<!-- readme: run -->\n)?```sh\n(.*?)```", re.S)


def _lines(text: str) -> list[str]:
    """Command lines of a block: comments cut, indented continuation comments dropped."""
    out = []
    for line in text.splitlines():
        if not line.strip() or line.startswith(" "):
            continue
        out.append(re.split(r"\s+#", line, maxsplit=1)[0].strip())
    return out


RUN = [l for m in BLOCK.finditer(README) if m.group(1) for l in _lines(m.group(2))]
OTHER = [l for m in BLOCK.finditer(README) if not m.group(1) for l in _lines(m.group(2))]


def test_readme_has_a_tour_and_more():
    assert len(RUN) >= 8 and len(OTHER) >= 20


def test_tour_runs_as_written(tmp_path):
    env = {**os.environ, "PATH": f"{REPO / '.venv' / 'bin'}:{os.environ['PATH']}"}
    venv = tmp_path / ".venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "bitmill").symlink_to(REPO / ".venv" / "bin" / "bitmill")
    for line in RUN:
        proc = subprocess.run(shlex.split(line), cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, (line, proc.stderr[-2000:])


@pytest.mark.parametrize("line", [l for l in OTHER if l.startswith(".venv/bin/bitmill ")])
def test_other_bitmill_lines_parse(line):
    try:
        args = build_parser().parse_args(shlex.split(line)[1:])
    except SystemExit as exc:
        pytest.fail(f"{line!r} does not parse (exit {exc.code})")
    assert callable(args.func)


@pytest.mark.parametrize("line", [l for l in OTHER if l.startswith(".venv/bin/python ")])
def test_bench_lines_name_scripts_that_exist(line):
    script = shlex.split(line)[1]
    assert (REPO / script).is_file(), script


def test_make_targets_exist():
    targets = set(re.findall(r"^([a-z-]+):", (REPO / "Makefile").read_text(), re.M))
    named = set(re.findall(r"`?make ([a-z-]+)", README))
    assert named and named <= targets, named - targets


@pytest.mark.parametrize("folder, row", [("bitmill", "`bitmill/`"), ("bitmill/cli", "`bitmill/cli/`"),
                                         ("compiler", "`compiler/`"), ("sim", "`sim/`"),
                                         ("sim/cosim", "`sim/cosim/`"), ("models", "`models/`"),
                                         ("hw", "`hw/`")])
def test_layout_table_names_every_module(folder, row):
    line = next(l for l in README.splitlines() if l.startswith(f"| {row} |"))
    missing = [p.name for p in sorted((REPO / folder).glob("*.py"))
               if p.name not in ("__init__.py", "__main__.py") and f"`{p.name}`" not in line]
    assert not missing, f"README layout row {row} does not name {missing}"
