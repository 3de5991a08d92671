"""``bitmill golden``, ``bitmill eval``, ``bitmill zoo`` and ``bitmill config check``: networks
and configs."""

from __future__ import annotations

import argparse
from pathlib import Path

from bitmill.cli.args import (Parser, add_net_args, add_output_dir_arg, check_output_file, load_net,
                              positive_int)
from bitmill.cli.arrays import load_input, save_output
from bitmill.compiler import irio
from bitmill.config import AccelConfig
from bitmill.errors import BitmillError
from bitmill.fileio import atomic_dir, check_new_dir
from bitmill.hw.engine import engine_chunks
from bitmill.isa import psum_width
from bitmill.sim.accuracy import DEFAULT_BATCH, check_images, golden_accuracy
from bitmill.sim.report import random_input, timed_golden_run

MAX_BATCH = 4096
SYNTHETIC_IMAGES = 1000


def cmd_golden(args: argparse.Namespace) -> int:
    if not 1 <= args.batch <= MAX_BATCH:
        raise BitmillError(f"--batch must be a positive integer up to {MAX_BATCH} (images held in "
                           f"memory at once), not {args.batch}")
    if args.output:
        check_output_file(args.output, "--output")
    graph = load_net(args)
    x = load_input(args.input, graph, batch=True) if args.input else random_input(graph, args.batch, args.seed)
    single = x.ndim == len(graph.input.out.shape)
    table, out = timed_golden_run(graph, x[None] if single else x)
    print(table)
    if args.output:
        save_output(args.output, out[0] if single else out)
        print(f"output codes of {graph.output} written to {args.output}")
    return 0


def _dataset(name: str, limit: int | None, seed: int):
    from bitmill.models import data

    if name == "synthetic":
        return data.synthetic(limit or SYNTHETIC_IMAGES, seed=seed)
    return data.fashion_mnist("test").subset(limit, seed=seed)


def cmd_eval(args: argparse.Namespace) -> int:
    graph = load_net(args)
    ds = _dataset(args.dataset, args.limit, args.seed)
    check_images(graph, ds.images, ds.name)
    acc = golden_accuracy(graph, ds.images, ds.labels, args.batch, progress=True)
    print(f"{graph.name} on {ds.name}: integer-path (golden model) top-1 accuracy "
          f"{acc.accuracy:.4f} ({acc.correct} of {acc.images} images)")
    return 0


def cmd_zoo(args: argparse.Namespace) -> int:
    out = check_new_dir(Path(args.output), args.force)
    graph = load_net(args)
    with atomic_dir(out, args.force) as d:
        irio.save_graph(graph, d)
    print(f"saved {graph.name} ({len(graph.nodes)} nodes) to {out}")
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    cfg = AccelConfig.resolve(args.file)
    chunks = engine_chunks(cfg)            # the tile engine can be built (ConfigError otherwise)
    print(f"ok: {cfg.name}: {cfg.rows}x{cfg.cols} {cfg.pe_family} PEs, {cfg.lanes} lanes, "
          f"W{cfg.weight_bits[0]}-{cfg.weight_bits[1]} A{cfg.act_bits[0]}-{cfg.act_bits[1]}, "
          f"{cfg.clock_mhz:g} MHz, board {cfg.board}; tile engine: up to {chunks * cfg.lanes} "
          f"terms per tile in {cfg.acc_bits}-bit accumulators" +
          (f", up to {cfg.k_passes} partial-sum passes summed in {psum_width(cfg)}-bit shadow registers"
           if cfg.k_passes > 1 else "") +
          (f"; activations staged from {cfg.act_word_bytes}-byte buffer words" if cfg.act_read_bytes else ""))
    return 0


def _add_golden(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("golden", help="exact integer inference with the golden model")
    add_net_args(p)
    p.add_argument("--batch", type=int, default=1,
                   help=f"random images per run, 1..{MAX_BATCH} (ignored with --input)")
    p.add_argument("--input", metavar="FILE.npy",
                   help="integer codes of the input: one image of the network's input shape, or "
                        "a batch (N, C, H, W) (default: --batch random images from --seed)")
    p.add_argument("--output", metavar="FILE.npy",
                   help="write the output codes here (with a batch axis when the input has one)")
    p.set_defaults(func=cmd_golden)


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="integer-path accuracy of a network on a test set",
                       description="Top-1 accuracy of a network's exact integer path (the golden "
                                   "model) on a labelled test set.")
    add_net_args(p)
    p.add_argument("--dataset", default="fashion-mnist", choices=["fashion-mnist", "synthetic"],
                   help="the Fashion-MNIST test set (10,000 images), or seeded synthetic images")
    p.add_argument("--limit", type=positive_int, default=None,
                   help="evaluate a seeded random subset of this many images (default: all of "
                        f"Fashion-MNIST, {SYNTHETIC_IMAGES} synthetic images)")
    p.add_argument("--batch", type=positive_int, default=DEFAULT_BATCH,
                   help="images per golden-model run")
    p.set_defaults(func=cmd_eval)


def register_golden_zoo(sub: argparse._SubParsersAction) -> None:
    """Add ``golden``, ``eval`` and ``zoo``."""
    _add_golden(sub)
    _add_eval(sub)
    p = sub.add_parser("zoo", help="save a built-in network as a network directory")
    add_net_args(p)
    add_output_dir_arg(p, "network folder")
    p.set_defaults(func=cmd_zoo)


def register_config(sub: argparse._SubParsersAction) -> None:
    """Add ``config check``."""
    p = sub.add_parser("config", help="accelerator configuration files")
    csub = p.add_subparsers(dest="config_command", required=True, parser_class=Parser)
    c = csub.add_parser("check", help="validate an accelerator config (a shipped name or a YAML file)")
    c.add_argument("file", help="a shipped config name (e.g. ecp5-85f) or a YAML file path")
    c.set_defaults(func=cmd_config_check)
