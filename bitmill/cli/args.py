"""Argument helpers shared by the command groups: the parser class and its help formatter,
integer types with ranges, output-path checks, network and config options."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bitmill.compiler import irio, zoo
from bitmill.compiler.ir import Graph
from bitmill.errors import BitmillError

EXIT_USER_ERROR = 2


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Help with each option's default, except options without one (None or a flag's False)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False or action.default is argparse.SUPPRESS:
            return action.help or ""
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one ``error:`` line and exit status 2, and the help
    shows every option's default."""

    def __init__(self, *args, formatter_class=HelpFormatter, **kwargs) -> None:
        super().__init__(*args, formatter_class=formatter_class, **kwargs)

    def error(self, message: str) -> None:  # noqa: D401 (argparse API)
        print(f"error: {self.prog}: {message}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)


def int_in_range(lo: int, hi: int | None = None, name: str | None = None):
    """argparse type: an integer in ``lo..hi`` (``hi`` None: no upper bound)."""
    what = name or (f"integer in {lo}..{hi}" if hi is not None else f"integer >= {lo}")

    def parse(text: str) -> int:
        v = int(text)                 # ValueError: argparse says "invalid <what> value: 'x'"
        if v < lo or (hi is not None and v > hi):
            raise argparse.ArgumentTypeError(f"expected {'an' if what[0] in 'aeiou' else 'a'} {what}, "
                                             f"got {v}")
        return v
    parse.__name__ = what
    return parse


positive_int = int_in_range(1, name="positive integer")
non_negative_int = int_in_range(0, name="non-negative integer")
SEED_HELP = "seed of the random generator (a non-negative integer)"


def bit_schedule(text: str) -> tuple[int, ...]:
    """argparse type: comma-separated bit-widths in 1..8, e.g. ``8,5,4,3,2``."""
    try:
        stages = tuple(int(b) for b in text.split(","))
    except ValueError:
        stages = ()
    if not stages or any(not 1 <= b <= 8 for b in stages):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated bit-widths in 1..8, e.g. 8,5,4,3,2; got {text!r}")
    return stages


def check_output_file(path: str | Path, option: str) -> Path:
    """``path`` if a file can be written there: its parent is a folder and it is not one.
    Call it before the work starts."""
    path = Path(path)
    if path.is_dir():
        raise BitmillError(f"{option} {path}: is a folder; give a file name")
    parent = path.parent
    if not parent.is_dir():
        raise BitmillError(f"{option} {path}: the folder {parent} does not exist; create it first "
                           f"or choose another path")
    return path


NET_HELP = "saved network directory (graph.json + weights.npz)"


def add_net_args(p: argparse.ArgumentParser, net_help: str = NET_HELP) -> None:
    """NET or --model/--bits/--first-last-bits, and --seed."""
    p.add_argument("net", nargs="?", help=net_help)
    p.add_argument("--model", help="built-in network instead of NET: resnet8, resnet20, resnet18")
    p.add_argument("--bits", default="w8a8", help="bit-widths of a built-in network, e.g. w4a4")
    p.add_argument("--first-last-bits", type=int_in_range(1, 8), default=None,
                   help="bit-width of the first and last layer of a built-in network "
                        "(default: as --bits)")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="seed of a built-in network's weights and of random input images")


def load_net(args: argparse.Namespace) -> Graph:
    """The graph named by NET or --model/--bits/--seed."""
    if (args.net is None) == (args.model is None):
        raise BitmillError("give either a saved network directory NET or --model NAME, not both or neither")
    if args.net is not None:
        return irio.load_graph(args.net)
    bits = zoo.BitSpec.parse(args.bits, first_last_bits=args.first_last_bits)
    return zoo.build(args.model, bits, seed=args.seed)


CONFIG_HELP = "accelerator config: a shipped name (e.g. ecp5-85f, tiny) or a YAML file path"


def add_output_dir_arg(p: argparse.ArgumentParser, what: str = "output folder") -> None:
    """``-o/--output`` (a folder written whole) and ``--force`` (replace an existing one)."""
    p.add_argument("-o", "--output", required=True, help=f"{what} to write (written whole)")
    p.add_argument("--force", action="store_true", help="replace an existing output folder")


def add_config_arg(p: argparse.ArgumentParser, required: bool = True, help: str = CONFIG_HELP) -> None:
    """--config NAME|PATH."""
    p.add_argument("--config", required=required, help=help)
