"""``bitmill golden``, ``bitmill zoo`` and ``bitmill config check``: networks and configs."""

from __future__ import annotations

import argparse

from bitmill.cli.args import Parser, add_net_args, load_net
from bitmill.compiler import irio
from bitmill.config import AccelConfig
from bitmill.errors import BitmillError
from bitmill.sim.report import timed_golden_report


def cmd_golden(args: argparse.Namespace) -> int:
    if args.batch < 1:
        raise BitmillError(f"--batch must be a positive integer, not {args.batch}")
    print(timed_golden_report(load_net(args), args.batch, args.seed))
    return 0


def cmd_zoo(args: argparse.Namespace) -> int:
    graph = load_net(args)
    path = irio.save_graph(graph, args.output)
    print(f"saved {graph.name} ({len(graph.nodes)} nodes) to {path}")
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    cfg = AccelConfig.resolve(args.file)
    print(f"ok: {cfg.name}: {cfg.rows}x{cfg.cols} {cfg.pe_family} PEs, {cfg.lanes} lanes, "
          f"W{cfg.weight_bits[0]}-{cfg.weight_bits[1]} A{cfg.act_bits[0]}-{cfg.act_bits[1]}, "
          f"{cfg.clock_mhz:g} MHz, board {cfg.board}")
    return 0


def register_golden_zoo(sub: argparse._SubParsersAction) -> None:
    """Add ``golden`` and ``zoo``."""
    p = sub.add_parser("golden", help="exact integer inference with the golden model")
    add_net_args(p)
    p.add_argument("--batch", type=int, default=1, help="images per run")
    p.set_defaults(func=cmd_golden)

    p = sub.add_parser("zoo", help="save a built-in network as a network directory")
    add_net_args(p)
    p.add_argument("-o", "--output", required=True, help="directory to write")
    p.set_defaults(func=cmd_zoo)


def register_config(sub: argparse._SubParsersAction) -> None:
    """Add ``config check``."""
    p = sub.add_parser("config", help="accelerator configuration files")
    csub = p.add_subparsers(dest="config_command", required=True, parser_class=Parser)
    c = csub.add_parser("check", help="validate an accelerator config (a shipped name or a YAML file)")
    c.add_argument("file", help="a shipped config name (e.g. ecp5-85f) or a YAML file path")
    c.set_defaults(func=cmd_config_check)
