"""The ``bitmill`` command line, the application layer: one module per command group.

`main` is the entry point of the console script and of ``python -m bitmill``."""

from bitmill.cli.app import main

__all__ = ["main"]
