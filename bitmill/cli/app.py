"""The ``bitmill`` command line. User errors print one ``error:`` line and exit with status 2."""

from __future__ import annotations

import argparse
import sys

from bitmill import __version__
from bitmill.cli import compile as compile_commands
from bitmill.cli import board, demo, hw, net, rtlsim, search, train
from bitmill.cli.args import EXIT_USER_ERROR, Parser
from bitmill.errors import BitmillError

DESCRIPTION = ("Mixed-precision quantized networks on runtime-variable-precision accelerators: "
               "golden model, compiler, cycle-accurate simulator, training and RTL. A wrong "
               "input prints one 'error:' line and exits with status 2.")


def build_parser() -> argparse.ArgumentParser:
    """The ``bitmill`` parser with every command group."""
    parser = Parser(prog="bitmill", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"bitmill {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    demo.register(sub)
    net.register_golden_zoo(sub)
    train.register(sub)
    compile_commands.register(sub)
    net.register_config(sub)
    hw.register(sub)
    rtlsim.register(sub)
    search.register(sub)
    board.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``bitmill`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BitmillError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except BrokenPipeError:               # output piped into e.g. head
        sys.stderr.close()
        return 141
    except OSError as exc:
        print(f"error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
