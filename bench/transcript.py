"""`Transcript`: print a benchmark's lines and keep them, then write them as a Markdown report
(the command, the commit and the machine on top), atomically."""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

from bitmill import provenance
from bitmill.fileio import atomic_write_text


class Transcript:
    def __init__(self, title: str):
        self.title = title
        self.lines: list[str] = []

    def __call__(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)

    def write(self, path: str | Path) -> Path:
        """Write the report to ``path``; return it."""
        head = [f"# {self.title}", "",
                f"`python {' '.join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])}` at commit "
                f"{provenance.git_revision()}, {datetime.date.today().isoformat()}, "
                f"{provenance.machine()}. Written by the benchmark; not edited by hand.",
                ""]
        atomic_write_text(Path(path), "\n".join(head + self.lines) + "\n")
        return Path(path)


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0] + " A module that the "
                            "benchmark scripts import; it runs nothing itself.").parse_args()
