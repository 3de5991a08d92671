"""Argument helpers shared by the command groups: the parser class, network and config options."""

from __future__ import annotations

import argparse
import sys

from bitmill.compiler import irio, zoo
from bitmill.compiler.ir import Graph
from bitmill.config import AccelConfig
from bitmill.errors import BitmillError

EXIT_USER_ERROR = 2


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one ``error:`` line and exit status 2."""

    def error(self, message: str) -> None:  # noqa: D401 (argparse API)
        print(f"error: {self.prog}: {message}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def add_net_args(p: argparse.ArgumentParser) -> None:
    """NET or --model/--bits/--first-last-bits, and --seed."""
    p.add_argument("net", nargs="?", help="saved network directory (graph.json + weights.npz)")
    p.add_argument("--model", help="built-in network instead of NET: resnet8, resnet20, resnet18")
    p.add_argument("--bits", default="w8a8", help="bit-widths of a built-in network, e.g. w4a4")
    p.add_argument("--first-last-bits", type=int, default=None,
                   help="bit-width of the first and last layer of a built-in network")
    p.add_argument("--seed", type=int, default=0, help="seed of weights and input images")


def load_net(args: argparse.Namespace) -> Graph:
    """The graph named by NET or --model/--bits/--seed."""
    if (args.net is None) == (args.model is None):
        raise BitmillError("give either a saved network directory NET or --model NAME, not both or neither")
    if args.net is not None:
        return irio.load_graph(args.net)
    bits = zoo.BitSpec.parse(args.bits, first_last_bits=args.first_last_bits)
    return zoo.build(args.model, bits, seed=args.seed)


CONFIG_HELP = "accelerator config: a shipped name (e.g. ecp5-85f, tiny) or a YAML file path"


def add_config_arg(p: argparse.ArgumentParser) -> None:
    """--config NAME|PATH (required)."""
    p.add_argument("--config", required=True, help=CONFIG_HELP)

