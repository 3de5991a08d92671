"""`Transcript`: print a benchmark's lines and keep them, then write them as a Markdown report
(the command, the commit and the machine on top), atomically."""

from __future__ import annotations

import datetime
import os
import platform
import sys
from pathlib import Path

from bitmill.fileio import atomic_write_text
from bitmill.hw.synth import git_revision


class Transcript:
    def __init__(self, title: str):
        self.title = title
        self.lines: list[str] = []

    def __call__(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)

    def write(self, path: str | Path) -> Path:
        """Write the report to ``path``; return it."""
        cpu = platform.processor() or platform.machine()
        head = [f"# {self.title}", "",
                f"`python {' '.join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])}` at commit "
                f"{git_revision() or 'unknown'}, {datetime.date.today().isoformat()}, "
                f"{os.cpu_count()} CPUs ({cpu}). Written by the benchmark; not edited by hand.",
                ""]
        atomic_write_text(Path(path), "\n".join(head + self.lines) + "\n")
        return Path(path)
